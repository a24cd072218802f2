import { DataCorruptionError } from "@sluice/core";
import type { StoredIndexEntry } from "@sluice/engine";
import type { ObjectStore } from "@sluice/storage";

const READS_IN_FLIGHT = 8;

/** The stored bytes of each entry, in order (one ranged GET each, a few in parallel). */
export async function readEntryBytes(
  objects: ObjectStore,
  entries: readonly StoredIndexEntry[],
): Promise<Uint8Array[]> {
  const results: Uint8Array[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      const entry = entries[index]!;
      const object = await objects.get(entry.objectKey, {
        range: { offset: entry.position, length: entry.length },
      });
      if (object.body.byteLength !== entry.length) {
        throw new DataCorruptionError(
          `object ${entry.objectKey} is shorter than its index entry at offset ${entry.baseOffset}`,
          { details: { objectKey: entry.objectKey, baseOffset: entry.baseOffset } },
        );
      }
      results[index] = object.body;
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, entries.length) }, worker));
  return results;
}
