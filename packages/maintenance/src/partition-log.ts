import {
  entryEnd,
  keys,
  type PartitionMaintenanceState,
  partitionMaintenanceState,
  type StoredIndexEntry,
  storedIndexEntries,
} from "@sluice/engine";
import type { MetadataStore } from "@sluice/storage";

/**
 * A partition's index as maintenance sees it (ARCHITECTURE.md, "The index as a tiling"): the
 * entries that tile the log from its start, the shadowed ones inside them waiting to be deleted,
 * and any left below the log start.
 */
export interface PartitionLog {
  topicId: string;
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  /** Read before the entries: a rewrite conditioned on it replaces exactly what was read. */
  state: PartitionMaintenanceState;
  tiling: StoredIndexEntry[];
  /** Each shadowed entry with the tiling entry it lies inside, in offset order. */
  shadowed: StoredIndexEntry[];
  /** Entries wholly below the log start. */
  below: StoredIndexEntry[];
}

export async function readPartitionLog(
  metadata: MetadataStore,
  topicId: string,
  partition: number,
): Promise<PartitionLog> {
  const state = partitionMaintenanceState(await metadata.get(keys.maintenanceStateKey(topicId, partition)));
  const head = await metadata.get(keys.headKey(topicId, partition));
  const logStartOffset = Number(head?.logStartOffset ?? 0);
  const highWatermark = Number(head?.nextOffset ?? 0);
  const log: PartitionLog = {
    topicId,
    partition,
    logStartOffset,
    highWatermark,
    state,
    tiling: [],
    shadowed: [],
    below: [],
  };
  let next = logStartOffset;
  for await (const entry of storedIndexEntries(metadata, topicId, partition)) {
    if (log.tiling.length === 0 && entryEnd(entry) <= logStartOffset) {
      log.below.push(entry);
    } else if (
      next < highWatermark &&
      (entry.baseOffset === next || (log.tiling.length === 0 && entry.baseOffset < next))
    ) {
      // (An entry holding the log start but starting below it cannot arise; if one did, it leads.)
      log.tiling.push(entry);
      next = entryEnd(entry);
    } else if (entry.baseOffset < next) {
      log.shadowed.push(entry);
    } else {
      // An entry past the high watermark read before it, or a hole: stop at what tiles.
      break;
    }
  }
  return log;
}

/** Stored bytes of the entries (what retention.bytes counts). */
export function sizeOf(entries: readonly StoredIndexEntry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.length;
  return bytes;
}
