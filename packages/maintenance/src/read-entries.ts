import {
  type Clock,
  DataCorruptionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@sluice/core";
import { gapBatch, mayBePending, type StoredIndexEntry, settleMissingObject } from "@sluice/engine";
import type { ObjectStore } from "@sluice/storage";

const READS_IN_FLIGHT = 8;

/**
 * An entry committed beside its upload whose object has not arrived yet (ARCHITECTURE.md,
 * "Parallel commit"): the job leaves the entries from there for a later run.
 */
export class ObjectPendingError extends UnavailableError {
  override readonly name: string = "ObjectPendingError";
}

/**
 * The stored bytes of each entry, in order (one ranged GET each, a few in parallel; an entry that
 * carries its bytes needs none). The entries
 * come from this run's own read of the index, so an object missing under an entry committed
 * beside its upload is settled at once: a gap reads as one empty batch spanning the entry's
 * offsets; one still on its way is an ObjectPendingError.
 */
export async function readEntryBytes(
  context: { objects: ObjectStore; clock: Clock },
  entries: readonly StoredIndexEntry[],
): Promise<Uint8Array[]> {
  const results: Uint8Array[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      results[index] = await readEntry(context, entries[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, entries.length) }, worker));
  return results;
}

async function readEntry(
  context: { objects: ObjectStore; clock: Clock },
  entry: StoredIndexEntry,
): Promise<Uint8Array> {
  if (entry.inline) return entry.inline;
  for (let attempt = 0; ; attempt++) {
    try {
      const object = await context.objects.get(entry.objectKey, {
        range: { offset: entry.position, length: entry.length },
      });
      if (object.body.byteLength !== entry.length) {
        throw new DataCorruptionError(
          `object ${entry.objectKey} is shorter than its index entry at offset ${entry.baseOffset}`,
          { details: { objectKey: entry.objectKey, baseOffset: entry.baseOffset } },
        );
      }
      return object.body;
    } catch (error) {
      const absent = error instanceof NotFoundError || error instanceof InvalidArgumentError;
      if (!absent || !mayBePending(entry) || attempt > 0) throw error;
      const state = await settleMissingObject(context.objects, context.clock, entry.objectKey);
      if (state === "gap") return gapBatch(entry);
      if (state === "pending") {
        throw new ObjectPendingError(
          `object ${entry.objectKey} of the entry at offset ${entry.baseOffset} is still being uploaded`,
          { details: { objectKey: entry.objectKey, baseOffset: entry.baseOffset } },
        );
      }
    }
  }
}
