import { type Condition, cond, type Item, type ItemKey } from "@sluice/storage";
import { idempotencyKeyItem } from "../keys.js";

/**
 * The items an idempotency key leaves (ARCHITECTURE.md, "Idempotency keys"), built here only.
 * A key is `done` once its records are committed — written in the same transaction — or
 * `pending` while a request that spans several transactions is under way.
 */

/** The outcome an idempotency key remembers. */
export interface IdempotencyRecord {
  requestHash: string;
  baseOffsets: Record<number, number>;
  /** The partition of each record, in request order (Uint16, little-endian). */
  recordPartitions: Uint8Array;
  appendTime: number;
}

/** One key's claim on a request, or on one chunk of a request larger than one append. */
export interface IdempotencyClaim {
  /** The caller's key, for messages. */
  key: string;
  itemKey: ItemKey;
  record: IdempotencyRecord;
  expiresAtMs: number;
}

/**
 * The item of a key, or of chunk `chunk` of a chunked request. Chunk items append ` #n`: a space
 * is never part of a key (printable ASCII without spaces), so they cannot collide with a real key.
 */
export function idempotencyItemKey(topicId: string, key: string, chunk = 0): ItemKey {
  return idempotencyKeyItem(topicId, chunk === 0 ? key : `${key} #${chunk}`);
}

/** The condition under which a key may be written: unused, or expired (TTL deletion is lazy). */
export function idempotencyKeyFree(nowMs: number): Condition {
  return cond.or(cond.notExists("pk"), cond.compare("expiresAt", "<", Math.floor(nowMs / 1000)));
}

export function isExpired(item: Item, nowMs: number): boolean {
  return Number(item.expiresAt) * 1000 < nowMs;
}

export function doneItem(claim: IdempotencyClaim, baseOffsets: Map<number, number>): Item {
  return {
    ...claim.itemKey,
    state: "done",
    requestHash: claim.record.requestHash,
    baseOffsets: Object.fromEntries(
      [...baseOffsets].map(([partition, offset]) => [String(partition), offset]),
    ),
    recordPartitions: claim.record.recordPartitions,
    appendTime: claim.record.appendTime,
    expiresAt: expiresAtSeconds(claim),
  };
}

export function pendingItem(claim: IdempotencyClaim): Item {
  return {
    ...claim.itemKey,
    state: "pending",
    requestHash: claim.record.requestHash,
    expiresAt: expiresAtSeconds(claim),
  };
}

export function idempotencyRecordFromItem(item: Item | undefined): IdempotencyRecord | undefined {
  if (!item || typeof item.requestHash !== "string") return undefined;
  const baseOffsets: Record<number, number> = {};
  for (const [partition, offset] of Object.entries((item.baseOffsets ?? {}) as Record<string, number>)) {
    baseOffsets[Number(partition)] = Number(offset);
  }
  return {
    requestHash: item.requestHash,
    baseOffsets,
    recordPartitions: item.recordPartitions instanceof Uint8Array ? item.recordPartitions : new Uint8Array(),
    appendTime: Number(item.appendTime ?? 0),
  };
}

function expiresAtSeconds(claim: IdempotencyClaim): number {
  return Math.ceil(claim.expiresAtMs / 1000);
}
