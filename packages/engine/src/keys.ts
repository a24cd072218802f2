/**
 * Every object key and item key the engine uses, in one place (ARCHITECTURE.md, "Keys").
 * Offsets and ids in sort keys are zero-padded to 20 digits so byte order is numeric order.
 */
import { randomHex } from "@sluice/core";
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

/** Every object of a topic: produce requests' objects and compaction's segments. */
export function topicObjectsPrefix(topicId: string): string {
  return `topics/${topicId}/`;
}

export function topicDataPrefix(topicId: string): string {
  return `topics/${topicId}/data/`;
}

/** Time-ordered, then random: unique without coordination, and listable in write order. */
export function newDataObjectKey(topicId: string, nowMs: number): string {
  return `${topicDataPrefix(topicId)}${timeRandomName(nowMs)}.batches`;
}

export function segmentPrefix(topicId: string, partition: number): string {
  return `topics/${topicId}/segments/${partition}/`;
}

/** A segment written by compaction: time-ordered like data objects, under its partition. */
export function newSegmentObjectKey(topicId: string, partition: number, nowMs: number): string {
  return `${segmentPrefix(topicId, partition)}${timeRandomName(nowMs)}.segment`;
}

export function isSegmentObjectKey(key: string): boolean {
  return key.endsWith(".segment");
}

function timeRandomName(nowMs: number): string {
  return `${nowMs.toString(36).padStart(9, "0")}-${randomHex(8)}`;
}

/**
 * When the object's upload began, read from its key (the writer's clock), or undefined for a key
 * this engine did not make. Garbage collection judges an object's age by it, on the same clock
 * that bounds the commit window (append/commit-window.ts).
 */
export function objectKeyTimeMs(key: string): number | undefined {
  const match = /\/([0-9a-z]{9,})-[0-9a-f]{16}\.(?:batches|segment)$/.exec(key);
  if (!match) return undefined;
  const time = Number.parseInt(match[1]!, 36);
  return Number.isSafeInteger(time) ? time : undefined;
}

// ---- maintenance (ARCHITECTURE.md, "Maintenance") ----

/** A partition's maintenance state: layout version, cleaning and time-index progress, stats. */
export function maintenanceStateKey(topicId: string, partition: number): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: "maintenance" };
}

/** The lease of maintenance job `job` on one partition. */
export function partitionJobLeaseKey(topicId: string, partition: number, job: string): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: `lease#${job}` };
}

export const TIME_INDEX_PREFIX = "time#";

/**
 * Time-index item of one generation (the index is rebuilt as a new generation when retention has
 * moved the log start well past where it was built from): the first entry whose maxTimestamp
 * reaches `timestamp` (negative counts as 0).
 */
export function timeIndexKey(
  topicId: string,
  partition: number,
  generation: number,
  timestamp: number,
): ItemKey {
  return { pk: partitionPk(topicId, partition), sk: timeIndexSortKey(generation, timestamp) };
}

export function timeIndexGenerationPrefix(generation: number): string {
  return `${TIME_INDEX_PREFIX}${generation.toString().padStart(10, "0")}#`;
}

export function timeIndexSortKey(generation: number, timestamp: number): string {
  return `${timeIndexGenerationPrefix(generation)}${padOffset(Math.max(0, timestamp))}`;
}

/** The generation of a time-index item's sort key. */
export function timeIndexGenerationOf(sortKey: string): number {
  return Number(sortKey.slice(TIME_INDEX_PREFIX.length, TIME_INDEX_PREFIX.length + 10));
}

export function topicMaintenancePk(topicId: string): string {
  return `maintenance#${topicId}`;
}

/** A topic's garbage-collection state: object count and bytes, when it last ran. */
export function topicMaintenanceStateKey(topicId: string): ItemKey {
  return { pk: topicMaintenancePk(topicId), sk: "state" };
}

export function topicJobLeaseKey(topicId: string, job: string): ItemKey {
  return { pk: topicMaintenancePk(topicId), sk: `lease#${job}` };
}

export const GARBAGE_PREFIX = "garbage#";

/** An object no index entry names, with the time it was first found so. */
export function garbageMarkKey(topicId: string, objectKey: string): ItemKey {
  return { pk: topicMaintenancePk(topicId), sk: `${GARBAGE_PREFIX}${objectKey}` };
}

export const DELETIONS_PK = "deletions";

/** A deleted topic's pending purge (and the purge job's lease). */
export function deletionKey(topicId: string): ItemKey {
  return { pk: DELETIONS_PK, sk: topicId };
}

export function newTopicId(): string {
  return randomHex(8);
}
