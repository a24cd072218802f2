/**
 * Every item key of the share groups, in one place (ARCHITECTURE.md, "Keys" and "Queues"). A
 * group's own items (meta, members, topics) share one `pk`; each share-partition has a `pk` of its
 * own, named by topic id, so its window is one query and a queue's writes spread over the topic's
 * partitions. Offsets in sort keys are zero-padded to 20 digits so byte order is numeric order.
 */
import type { ItemKey } from "@sluice/storage";

export const SHARE_GROUPS_PK = "share-groups";

/** The list of share groups: one item per group, so listing needs no scan. */
export function shareGroupListKey(groupId: string): ItemKey {
  return { pk: SHARE_GROUPS_PK, sk: groupId };
}

export function shareGroupPk(groupId: string): string {
  return `share-group#${groupId}`;
}

export function shareGroupMetaKey(groupId: string): ItemKey {
  return { pk: shareGroupPk(groupId), sk: "meta" };
}

export const MEMBER_PREFIX = "member#";
export const TOPIC_PREFIX = "topic#";

export function shareMemberKey(groupId: string, memberId: string): ItemKey {
  return { pk: shareGroupPk(groupId), sk: `${MEMBER_PREFIX}${memberId}` };
}

/** A topic some member of the group has subscribed to: describe and reset walk these. */
export function shareTopicKey(groupId: string, topic: string): ItemKey {
  return { pk: shareGroupPk(groupId), sk: `${TOPIC_PREFIX}${topic}` };
}

export function sharePartitionPk(groupId: string, topicId: string, partition: number): string {
  return `share-partition#${groupId}#${topicId}#${partition}`;
}

export const STATE_SK = "state";
export const BATCH_PREFIX = "batch#";

export function windowStateKey(groupId: string, topicId: string, partition: number): ItemKey {
  return { pk: sharePartitionPk(groupId, topicId, partition), sk: STATE_SK };
}

export function batchSortKey(baseOffset: number): string {
  return `${BATCH_PREFIX}${baseOffset.toString().padStart(20, "0")}`;
}

export function batchKey(groupId: string, topicId: string, partition: number, baseOffset: number): ItemKey {
  return { pk: sharePartitionPk(groupId, topicId, partition), sk: batchSortKey(baseOffset) };
}
