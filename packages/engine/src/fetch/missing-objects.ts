/**
 * Objects an index entry names before they exist: with parallel commit an append's entry is
 * committed while its upload is still on its way, and a writer that dies in between leaves an
 * entry whose object never comes (ARCHITECTURE.md, "Parallel commit"). Readers of objects — the
 * fetch path and the maintenance jobs — settle such an object here.
 */
import { type Clock, ConflictError, encodeRecordBatch, NotFoundError, UnavailableError } from "@sluice/core";
import type { ObjectStore } from "@sluice/storage";
import { objectKeyTimeMs } from "../keys.js";
import type { IndexEntry } from "./index-entry.js";

/**
 * How long after its key was chosen an upload may still arrive. Until then a reader waits for the
 * object; after it, the first reader to look gives the offsets up. Lambda's longest invocation
 * is 15 minutes, but an upload is one PUT that the SDK retries for a few seconds at most: an
 * upload this late has failed, and the append that made it was not acknowledged.
 */
export const PENDING_UPLOAD_MS = 30_000;

/**
 * What an object its (freshly read) entry names, and that could not be read, turned out to be:
 * - `present`: it exists with bytes (it arrived meanwhile): read it again;
 * - `pending`: it does not exist yet, and its upload may still arrive: read no further;
 * - `gap`: an empty object holds its key, now or from an earlier reader: the offsets hold nothing.
 */
export type MissingObjectState = "present" | "pending" | "gap";

/**
 * Only an entry committed beside its upload can name an object that is missing for a reason other
 * than a stale index: segments, and the objects of every other append, exist before their
 * entries are committed.
 */
export function mayBePending(entry: Pick<IndexEntry, "parallelCommit" | "objectKey">): boolean {
  return entry.parallelCommit === true && objectKeyTimeMs(entry.objectKey) !== undefined;
}

/**
 * Settles an object a fresh index read still names but a read could not find (or found empty).
 * Past PENDING_UPLOAD_MS it writes an empty object under the key, create-only: whichever of that
 * and the late upload lands first decides for every reader.
 */
export async function settleMissingObject(
  objects: ObjectStore,
  clock: Clock,
  objectKey: string,
): Promise<MissingObjectState> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return (await objects.head(objectKey)).size === 0 ? "gap" : "present";
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const chosenAt = objectKeyTimeMs(objectKey);
    if (chosenAt === undefined || clock.now() - chosenAt < PENDING_UPLOAD_MS) return "pending";
    try {
      await objects.put(objectKey, new Uint8Array(0), { condition: { ifNoneMatch: "*" } });
      return "gap";
    } catch (error) {
      // The upload, or another reader's empty object, came first: the next look reads which.
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  throw new UnavailableError(`object ${objectKey} was created and is gone again; read again`, {
    details: { objectKey },
  });
}

/**
 * A gap as bytes: one RecordBatch v2 without records spanning the entry's offsets, as Kafka's
 * cleaner writes them, so readers and compaction account for the offsets as for any batch.
 */
export function gapBatch(entry: Pick<IndexEntry, "offsetCount" | "maxTimestamp">): Promise<Uint8Array> {
  return encodeRecordBatch([], {
    compression: "none",
    lastOffsetDelta: entry.offsetCount - 1,
    timestamp: entry.maxTimestamp,
  });
}
