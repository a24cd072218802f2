/**
 * Every object key and item key the engine uses, in one place (ARCHITECTURE.md, "Keys").
 * Offsets and ids in sort keys are zero-padded to 20 digits so byte order is numeric order.
 */
import { randomBytes } from "node:crypto";
import type { ItemKey } from "@sluice/storage";

const OFFSET_DIGITS = 20;

export function padOffset(offset: number): string {
  return offset.toString().padStart(OFFSET_DIGITS, "0");
}

export const TOPICS_PK = "topics";

export function topicKey(name: string): ItemKey {
  return { pk: TOPICS_PK, sk: name };
}

export function partitionPk(topicId: string, partition: number): string {
  return `partition#${topicId}#${partition}`;
}

export function headKey(topicId: string, partition: number): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: "head" };
}

export const INDEX_PREFIX = "index#";

export function indexKey(topicId: string, partition: number, baseOffset: number): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: `${INDEX_PREFIX}${padOffset(baseOffset)}` };
}

export function indexSortKey(offset: number): string {
  return `${INDEX_PREFIX}${padOffset(offset)}`;
}

export function producerStateKey(topicId: string, partition: number, producerId: number): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: `producer#${padOffset(producerId)}` };
}

export const PRODUCERS_PK = "producers";

export const producerCounterKey: ItemKey = { pk: PRODUCERS_PK, sk: "next-id" };

export function producerKey(producerId: number): ItemKey {
  return { pk: PRODUCERS_PK, sk: padOffset(producerId) };
}

export function idempotencyKeyItem(topicId: string, key: string): ItemKey {
  return { pk: `idempotency#${topicId}`, sk: key };
}

export function topicDataPrefix(topicId: string): string {
  return `topics/${topicId}/data/`;
}

/** Time-ordered, then random: unique without coordination, and listable in write order. */
export function newDataObjectKey(topicId: string, nowMs: number): string {
  return `${topicDataPrefix(topicId)}${nowMs.toString(36).padStart(9, "0")}-${randomBytes(8).toString("hex")}.batches`;
}

export function newTopicId(): string {
  return randomBytes(8).toString("hex");
}
