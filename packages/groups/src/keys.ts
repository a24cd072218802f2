/**
 * Every item key of the consumer groups, in one place (ARCHITECTURE.md, "Keys"). A group's items
 * share one `pk`, so one query reads its state; partitions in sort keys are zero-padded to 10
 * digits so byte order is numeric order.
 */
import type { ItemKey } from "@sluice/storage";

export const GROUPS_PK = "groups";

/** The list of groups: one item per group, so listing needs no scan. */
export function groupListKey(groupId: string): ItemKey {
  return { pk: GROUPS_PK, sk: groupId };
}

export function groupPk(groupId: string): string {
  return `group#${groupId}`;
}

export function metaKey(groupId: string): ItemKey {
  return { pk: groupPk(groupId), sk: "meta" };
}

export const MEMBER_PREFIX = "member#";
export const LEASE_PREFIX = "lease#";
export const OFFSET_PREFIX = "offset#";
export const INSTANCE_PREFIX = "instance#";

export function memberKey(groupId: string, memberId: string): ItemKey {
  return { pk: groupPk(groupId), sk: `${MEMBER_PREFIX}${memberId}` };
}

function partitionSuffix(topic: string, partition: number): string {
  return `${topic}#${partition.toString().padStart(10, "0")}`;
}

/** Who owns partition `partition` of `topic` in the group: a lease (packages/leases). */
export function partitionLeaseKey(groupId: string, topic: string, partition: number): ItemKey {
  return { pk: groupPk(groupId), sk: `${LEASE_PREFIX}${partitionSuffix(topic, partition)}` };
}

export function offsetKey(groupId: string, topic: string, partition: number): ItemKey {
  return { pk: groupPk(groupId), sk: `${OFFSET_PREFIX}${partitionSuffix(topic, partition)}` };
}

/** A REST Proxy v2 consumer instance of the group (its name, format and fetch positions). */
export function instanceKey(groupId: string, name: string): ItemKey {
  return { pk: groupPk(groupId), sk: `${INSTANCE_PREFIX}${name}` };
}

/** The topic and partition a lease or offset sort key names. */
export function parsePartitionSortKey(sk: string, prefix: string): { topic: string; partition: number } {
  const rest = sk.slice(prefix.length);
  const cut = rest.lastIndexOf("#");
  return { topic: rest.slice(0, cut), partition: Number(rest.slice(cut + 1)) };
}
