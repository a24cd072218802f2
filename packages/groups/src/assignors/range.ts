/**
 * Kafka's RangeAssignor: topic by topic, the subscribed members in order split the partitions
 * into contiguous ranges, the first `partitions % members` of them taking one extra. Members are
 * ordered by instance id when they have one (as Kafka does for static members), so a static
 * member coming back under a new member id gets the same ranges; by member id otherwise.
 *
 * It ignores `previous`: the layout follows from membership alone. Because every topic puts its
 * extra partitions on the same first members, counts across topics can differ by more than one;
 * that co-location of equal partition numbers is what callers choose range for.
 */
import type { Assignment, AssignmentInput, Assignor, TopicPartition } from "./assignor.js";
import {
  compareStrings,
  type NormalizedMember,
  normalizeMembers,
  partitionCountOf,
  toAssignment,
} from "./normalize.js";

function rangeOrder(a: NormalizedMember, b: NormalizedMember): number {
  // memberId breaks ties: an instance id could equal another member's memberId.
  return (
    compareStrings(a.instanceId ?? a.memberId, b.instanceId ?? b.memberId) ||
    compareStrings(a.memberId, b.memberId)
  );
}

function assignRange(input: AssignmentInput): Assignment {
  const members = normalizeMembers(input.members).sort(rangeOrder);
  const targets = new Map<string, TopicPartition[]>(members.map((member) => [member.memberId, []]));

  const subscribers = new Map<string, NormalizedMember[]>();
  for (const member of members) {
    for (const topic of member.topics) {
      const list = subscribers.get(topic);
      if (list === undefined) subscribers.set(topic, [member]);
      else list.push(member);
    }
  }

  for (const [topic, topicMembers] of subscribers) {
    const count = partitionCountOf(input.partitionCounts, topic);
    const base = Math.floor(count / topicMembers.length);
    const extra = count % topicMembers.length;
    topicMembers.forEach((member, index) => {
      const start = index * base + Math.min(index, extra);
      const length = base + (index < extra ? 1 : 0);
      const target = targets.get(member.memberId)!;
      for (let partition = start; partition < start + length; partition++) target.push({ topic, partition });
    });
  }

  const byMemberId = [...targets].sort(([a], [b]) => compareStrings(a, b));
  return toAssignment(byMemberId);
}

export const rangeAssignor: Assignor = { name: "range", assign: assignRange };
