import { backoffMs, ConflictError, UnavailableError } from "@sluice/core";
import {
  COMMIT_WINDOW_MS,
  entryEnd,
  indexEntryItem,
  keys,
  type StoredIndexEntry,
  type Topic,
} from "@sluice/engine";
import { cond, TransactionCanceledError, type TransactOperation } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";
import type { PartitionLog } from "./partition-log.js";
import type { SegmentContent } from "./segment.js";

const UNAVAILABLE_ATTEMPTS_MAX = 6;

/**
 * Replaces the run `[a, b)` of tiling entries by one entry naming a new segment object
 * (ARCHITECTURE.md, "The conditioned transaction that changes the index"): upload the segment
 * create-only, then one transaction — the lease guard, the layout version moving from the one
 * read (`log.state.layoutVersion`, advanced here on success), and the put at `a` conditioned on
 * the entry there being the one read — then delete the entries left shadowed inside, in
 * ascending order. False when the index changed meanwhile (nothing was replaced; the uploaded
 * object is garbage for the collector).
 */
export async function replaceRun(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  log: PartitionLog,
  run: readonly StoredIndexEntry[],
  content: SegmentContent,
  extra: { deleteHorizonMs?: number } = {},
): Promise<boolean> {
  const { objects, metadata, clock } = context;
  const first = run[0]!;
  const last = run[run.length - 1]!;
  if (content.offsetCount !== entryEnd(last) - first.baseOffset) {
    throw new Error(
      `a segment for offsets ${first.baseOffset} to ${entryEnd(last)} covers ${content.offsetCount} offsets`,
    );
  }
  const uploadedAt = clock.now();
  const objectKey = keys.newSegmentObjectKey(topic.topicId, log.partition, uploadedAt);
  await objects.put(objectKey, content.body, { condition: { ifNoneMatch: "*" } });
  const entry: StoredIndexEntry = {
    baseOffset: first.baseOffset,
    recordCount: content.recordCount,
    offsetCount: content.offsetCount,
    objectKey,
    position: 0,
    length: content.body.byteLength,
    firstTimestamp: content.firstTimestamp,
    maxTimestamp: content.maxTimestamp,
    pieces: content.pieces,
    ...(extra.deleteHorizonMs === undefined ? {} : { deleteHorizonMs: extra.deleteHorizonMs }),
  };
  const version = log.state.layoutVersion;
  const operations: TransactOperation[] = [
    lease.guard(),
    {
      kind: "update",
      key: keys.maintenanceStateKey(topic.topicId, log.partition),
      changes: { add: { layoutVersion: 1 } },
      condition:
        version === 0
          ? cond.or(cond.notExists("layoutVersion"), cond.eq("layoutVersion", 0))
          : cond.eq("layoutVersion", version),
    },
    {
      kind: "put",
      item: indexEntryItem(topic.topicId, log.partition, entry),
      condition: cond.and(cond.eq("objectKey", first.objectKey), cond.eq("position", first.position)),
    },
  ];
  let committed = false;
  for (let attempt = 1; !committed; attempt++) {
    // Like an append, a segment is named by an entry only within its commit window.
    if (clock.now() > uploadedAt + COMMIT_WINDOW_MS) return false;
    try {
      await metadata.transactWrite(operations);
      committed = true;
    } catch (error) {
      if (error instanceof TransactionCanceledError) {
        // A lost answer to an earlier attempt that did commit: the entry at `a` is ours.
        const current = error.failures.find((failure) => failure.index === 2)?.current;
        if (current?.objectKey === objectKey) committed = true;
        else return false;
      } else if (error instanceof UnavailableError && attempt < UNAVAILABLE_ATTEMPTS_MAX) {
        await clock.sleep(backoffMs(clock, attempt));
        const now = await metadata.get(keys.indexKey(topic.topicId, log.partition, first.baseOffset));
        if (now?.objectKey === objectKey) committed = true;
      } else {
        throw error;
      }
    }
  }
  log.state.layoutVersion = version + 1;
  await deleteShadowed(context, lease, topic.topicId, log.partition, run.slice(1));
  return true;
}

/**
 * Deletes entries that lie inside another (shadowed, or below the log start) in ascending order,
 * a prefix at a time, each conditioned on being the entry read. Stops quietly when one changed:
 * the next run looks again.
 */
export async function deleteShadowed(
  context: JobContext,
  lease: HeldLease,
  topicId: string,
  partition: number,
  entries: readonly StoredIndexEntry[],
): Promise<number> {
  let deleted = 0;
  const perTransaction = context.settings.itemsPerTransaction;
  for (let start = 0; start < entries.length; start += perTransaction) {
    const chunk = entries.slice(start, start + perTransaction);
    await lease.keepAlive();
    try {
      await context.metadata.transactWrite([
        lease.guard(),
        ...chunk.map((entry) => deleteEntry(topicId, partition, entry)),
      ]);
    } catch (error) {
      if (error instanceof ConflictError) return deleted;
      throw error;
    }
    deleted += chunk.length;
  }
  return deleted;
}

/** The delete of one index entry, conditioned on its naming the object and position read. */
export function deleteEntry(topicId: string, partition: number, entry: StoredIndexEntry): TransactOperation {
  return {
    kind: "delete",
    key: keys.indexKey(topicId, partition, entry.baseOffset),
    condition: cond.and(cond.eq("objectKey", entry.objectKey), cond.eq("position", entry.position)),
  };
}
