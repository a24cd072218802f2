import type { AttributeValue, Item } from "@sluice/storage";
import type { ShareGroupConfigs } from "./configs.js";

/** A share group's `meta` item (ARCHITECTURE.md, "Queues"). */
export interface ShareGroupMeta {
  /** Random per group: names its dead letters' idempotency keys. */
  uid: string;
  createdAtMs: number;
  /** Members not yet removed (an expired one counts until someone removes it). */
  memberCount: number;
  configs: ShareGroupConfigs;
}

export interface ShareMember {
  memberId: string;
  topics: string[];
  clientId?: string;
  sessionTimeoutMs: number;
  sessionDeadlineMs: number;
  joinedAtMs: number;
}

export function metaFromItem(item: Item): ShareGroupMeta {
  const deadLetterTopic = String(item.deadLetterTopic ?? "");
  return {
    uid: String(item.uid),
    createdAtMs: Number(item.createdAtMs),
    memberCount: Number(item.memberCount ?? 0),
    configs: {
      deliveryCountLimit: Number(item.deliveryCountLimit),
      lockDurationMs: Number(item.lockDurationMs),
      autoOffsetReset: item.autoOffsetReset === "earliest" ? "earliest" : "latest",
      deadLetterTopic: deadLetterTopic === "" ? null : deadLetterTopic,
    },
  };
}

export function metaAttributes(meta: ShareGroupMeta): Record<string, AttributeValue> {
  return {
    uid: meta.uid,
    createdAtMs: meta.createdAtMs,
    memberCount: meta.memberCount,
    deliveryCountLimit: meta.configs.deliveryCountLimit,
    lockDurationMs: meta.configs.lockDurationMs,
    autoOffsetReset: meta.configs.autoOffsetReset,
    deadLetterTopic: meta.configs.deadLetterTopic ?? "",
  };
}

export function memberFromItem(item: Item): ShareMember {
  return {
    memberId: String(item.memberId),
    topics: Array.isArray(item.topics) ? item.topics.map(String) : [],
    ...(typeof item.clientId === "string" ? { clientId: item.clientId } : {}),
    sessionTimeoutMs: Number(item.sessionTimeoutMs),
    sessionDeadlineMs: Number(item.sessionDeadlineMs),
    joinedAtMs: Number(item.joinedAtMs),
  };
}

export function memberAttributes(member: ShareMember): Record<string, AttributeValue> {
  return {
    memberId: member.memberId,
    topics: member.topics,
    ...(member.clientId === undefined ? {} : { clientId: member.clientId }),
    sessionTimeoutMs: member.sessionTimeoutMs,
    sessionDeadlineMs: member.sessionDeadlineMs,
    joinedAtMs: member.joinedAtMs,
  };
}
