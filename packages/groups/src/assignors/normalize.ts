/**
 * Input checks and ordering shared by the assignors. Everything here reads the input through
 * `Object.hasOwn` and sorts with plain code-unit comparison, never `localeCompare` or object key
 * order, so that every function instance gets the same answer for the same stored state.
 */
import { InvalidArgumentError } from "@sluice/core";
import type { Assignment, AssignmentInput, AssignorMember, TopicPartition } from "./assignor.js";

export interface NormalizedMember {
  memberId: string;
  instanceId: string | undefined;
  /** Subscribed topics, deduplicated and sorted. */
  topics: string[];
}

/** Code-unit order: the same on every runtime and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  return compareStrings(a.topic, b.topic) || a.partition - b.partition;
}

/**
 * The members sorted by memberId, each with its topics deduplicated and sorted. Two entries with
 * one memberId are refused: the assignment is keyed by memberId, so one of them would silently
 * lose its entry.
 */
export function normalizeMembers(members: readonly AssignorMember[]): NormalizedMember[] {
  const normalized = members.map((member) => ({
    memberId: member.memberId,
    instanceId: member.instanceId,
    topics: [...new Set(member.topics)].sort(compareStrings),
  }));
  normalized.sort((a, b) => compareStrings(a.memberId, b.memberId));
  for (let i = 1; i < normalized.length; i++) {
    if (normalized[i]!.memberId === normalized[i - 1]!.memberId) {
      throw new InvalidArgumentError(`duplicate member memberId=${normalized[i]!.memberId}`, {
        details: { memberId: normalized[i]!.memberId },
      });
    }
  }
  return normalized;
}

/**
 * A topic's partition count: 0 when it is missing (a subscription may name a topic that does not
 * exist yet). A count that is present but not a non-negative integer is a caller's bug, refused
 * rather than guessed at.
 */
export function partitionCountOf(partitionCounts: AssignmentInput["partitionCounts"], topic: string): number {
  if (!Object.hasOwn(partitionCounts, topic)) return 0;
  const count = partitionCounts[topic];
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) {
    throw new InvalidArgumentError(`invalid partition count topic=${topic} count=${String(count)}`, {
      details: { topic, count },
    });
  }
  return count;
}

/** The previous target of one member, or none; never an inherited property. */
export function previousOf(
  previous: AssignmentInput["previous"],
  memberId: string,
): readonly TopicPartition[] {
  return Object.hasOwn(previous, memberId) ? (previous[memberId] ?? []) : [];
}

/**
 * The output object, keys in memberId order. Built with `Object.fromEntries`, which defines own
 * properties, so a memberId such as `__proto__` is an ordinary key and not a prototype change.
 */
export function toAssignment(entries: ReadonlyArray<readonly [string, TopicPartition[]]>): Assignment {
  return Object.fromEntries(
    entries.map(([memberId, partitions]) => [memberId, partitions.sort(compareTopicPartitions)]),
  );
}
