import { type LeaseState, leaseStateOf } from "@sluice/leases";
import type { AttributeValue, Item, MetadataStore } from "@sluice/storage";
import type { AssignorName, TopicPartition } from "./assignors/assignor.js";
import { groupPk, LEASE_PREFIX, MEMBER_PREFIX, OFFSET_PREFIX, parsePartitionSortKey } from "./keys.js";

/** A group's `meta` item (ARCHITECTURE.md, "Consumer groups"). */
export interface GroupMeta {
  /** Random per incarnation of the group: offsets of a deleted group never reach a new one. */
  uid: string;
  groupEpoch: number;
  /** Incremented by every write of `meta`; every coordinator decision is conditioned on it. */
  version: number;
  memberCount: number;
  assignor: AssignorName;
  createdAtMs: number;
  /** The target assignment of the current group epoch, per member id. */
  target: Record<string, TopicPartition[]>;
  /** Partition counts the target was computed for. */
  partitionCounts: Record<string, number>;
}

export interface MemberRecord {
  memberId: string;
  memberEpoch: number;
  /** The epoch before the last bump: a heartbeat whose answer was lost still carries it. */
  previousEpoch: number;
  instanceId?: string;
  clientId?: string;
  subscription: string[];
  sessionTimeoutMs: number;
  sessionDeadlineMs: number;
  joinedAtMs: number;
}

export interface GroupState {
  groupId: string;
  meta: GroupMeta | undefined;
  members: Map<string, MemberRecord>;
  /** Partition leases by `tpKey`. */
  leases: Map<string, LeaseState & TopicPartition>;
}

export function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Reads everything but the committed offsets: one query of the group's `pk` (paged). */
export async function loadGroupState(metadata: MetadataStore, groupId: string): Promise<GroupState> {
  const state: GroupState = { groupId, meta: undefined, members: new Map(), leases: new Map() };
  let cursor: string | undefined;
  do {
    const page = await metadata.query({
      pk: groupPk(groupId),
      sk: { kind: "lt", value: OFFSET_PREFIX },
      cursor,
    });
    for (const item of page.items) {
      if (item.sk === "meta") state.meta = metaFromItem(item);
      else if (item.sk.startsWith(MEMBER_PREFIX)) {
        const member = memberFromItem(item);
        state.members.set(member.memberId, member);
      } else if (item.sk.startsWith(LEASE_PREFIX)) {
        const { topic, partition } = parsePartitionSortKey(item.sk, LEASE_PREFIX);
        const lease = leaseStateOf({ pk: item.pk, sk: item.sk }, item)!;
        state.leases.set(tpKey(topic, partition), { ...lease, topic, partition });
      }
    }
    cursor = page.cursor;
  } while (cursor);
  return state;
}

export function metaFromItem(item: Item): GroupMeta {
  return {
    uid: String(item.uid),
    groupEpoch: Number(item.groupEpoch),
    version: Number(item.version),
    memberCount: Number(item.memberCount),
    assignor: String(item.assignor) as AssignorName,
    createdAtMs: Number(item.createdAtMs),
    target: decodeTarget(item.target),
    partitionCounts: Object.fromEntries(
      Object.entries((item.partitionCounts ?? {}) as Record<string, number>).map(([topic, count]) => [
        topic,
        Number(count),
      ]),
    ),
  };
}

export function metaAttributes(meta: GroupMeta): Record<string, AttributeValue> {
  return {
    uid: meta.uid,
    groupEpoch: meta.groupEpoch,
    version: meta.version,
    memberCount: meta.memberCount,
    assignor: meta.assignor,
    createdAtMs: meta.createdAtMs,
    target: encodeTarget(meta.target),
    partitionCounts: meta.partitionCounts,
  };
}

export function memberFromItem(item: Item): MemberRecord {
  return {
    memberId: String(item.memberId),
    memberEpoch: Number(item.memberEpoch),
    previousEpoch: Number(item.previousEpoch ?? item.memberEpoch),
    ...(typeof item.instanceId === "string" ? { instanceId: item.instanceId } : {}),
    ...(typeof item.clientId === "string" ? { clientId: item.clientId } : {}),
    subscription: Array.isArray(item.subscription) ? item.subscription.map(String) : [],
    sessionTimeoutMs: Number(item.sessionTimeoutMs),
    sessionDeadlineMs: Number(item.sessionDeadlineMs),
    joinedAtMs: Number(item.joinedAtMs),
  };
}

export function memberAttributes(member: MemberRecord): Record<string, AttributeValue> {
  return {
    memberId: member.memberId,
    memberEpoch: member.memberEpoch,
    previousEpoch: member.previousEpoch,
    ...(member.instanceId === undefined ? {} : { instanceId: member.instanceId }),
    ...(member.clientId === undefined ? {} : { clientId: member.clientId }),
    subscription: member.subscription,
    sessionTimeoutMs: member.sessionTimeoutMs,
    sessionDeadlineMs: member.sessionDeadlineMs,
    joinedAtMs: member.joinedAtMs,
  };
}

/** Targets are stored compactly: member → topic → partition numbers. */
function encodeTarget(target: Record<string, TopicPartition[]>): Record<string, AttributeValue> {
  const encoded: Record<string, Record<string, number[]>> = {};
  for (const [memberId, partitions] of Object.entries(target)) {
    const byTopic: Record<string, number[]> = {};
    for (const { topic, partition } of partitions) {
      byTopic[topic] ??= [];
      byTopic[topic].push(partition);
    }
    encoded[memberId] = byTopic;
  }
  return encoded;
}

function decodeTarget(value: AttributeValue | undefined): Record<string, TopicPartition[]> {
  const target: Record<string, TopicPartition[]> = {};
  if (!value || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array)
    return target;
  for (const [memberId, byTopic] of Object.entries(value)) {
    const partitions: TopicPartition[] = [];
    for (const [topic, numbers] of Object.entries((byTopic ?? {}) as Record<string, number[]>)) {
      for (const partition of numbers) partitions.push({ topic, partition: Number(partition) });
    }
    target[memberId] = sortPartitions(partitions);
  }
  return target;
}

export function sortPartitions(partitions: TopicPartition[]): TopicPartition[] {
  return partitions.sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  );
}

export function samePartitions(a: readonly TopicPartition[], b: readonly TopicPartition[]): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map((tp) => tpKey(tp.topic, tp.partition)));
  return b.every((tp) => keys.has(tpKey(tp.topic, tp.partition)));
}
