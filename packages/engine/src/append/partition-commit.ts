import { cond, type Item, type TransactOperation } from "@sluice/storage";
import { headKey, indexKey } from "../keys.js";

/** Where one partition's batch lies in an uploaded object, and what the index entry says of it. */
export interface IndexedBatch {
  objectKey: string;
  position: number;
  length: number;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
  /** Committed while the object's upload may still be on its way (ARCHITECTURE.md, "Parallel commit"). */
  parallelCommit?: boolean;
  /** The batch's bytes, carried by the entry instead of an object (ARCHITECTURE.md, "Small appends carried in the index"). */
  inline?: Uint8Array;
}

/**
 * The two operations that assign the offsets `[base, base + recordCount)` of a partition
 * (ARCHITECTURE.md, "Append", step 5): the head moves from exactly `base`, and the index entry at
 * `base` is created. Both the plain append and the transactional append build them here, so the
 * rules a commit relies on (a stale head fails; an existing entry fails and names its object key)
 * are written once.
 */
export function partitionCommitOperations(
  topicId: string,
  partition: number,
  base: number,
  batch: IndexedBatch,
): { head: TransactOperation; index: TransactOperation } {
  // The entry's key written out, not spread: see commit.ts (V8 and spreads with added properties).
  const entryKey = indexKey(topicId, partition, base);
  const item: Item = {
    pk: entryKey.pk,
    sk: entryKey.sk,
    objectKey: batch.objectKey,
    position: batch.position,
    length: batch.length,
    recordCount: batch.recordCount,
    firstTimestamp: batch.firstTimestamp,
    maxTimestamp: batch.maxTimestamp,
  };
  if (batch.parallelCommit) item.parallelCommit = true;
  if (batch.inline) item.inline = batch.inline;
  return {
    head: {
      kind: "update",
      key: headKey(topicId, partition),
      changes: { set: { nextOffset: base + batch.recordCount } },
      condition:
        base === 0
          ? cond.or(cond.notExists("nextOffset"), cond.eq("nextOffset", 0))
          : cond.eq("nextOffset", base),
    },
    index: { kind: "put", item, condition: cond.notExists("pk") },
  };
}
