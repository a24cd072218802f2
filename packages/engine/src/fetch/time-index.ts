import type { MetadataStore } from "@sluice/storage";
import { maintenanceStateKey, partitionPk, timeIndexGenerationPrefix, timeIndexSortKey } from "../keys.js";
import { partitionMaintenanceState } from "../maintenance-state.js";
import type { Topic } from "../topics/topic-registry.js";
import type { IndexReader } from "./index-entries.js";
import type { PartitionOffsets, Reader } from "./reader.js";

/**
 * Where a search for the first record at or after `timestamp` may start (ARCHITECTURE.md,
 * "The time index"): the entry named by the first item of the current generation at or after it,
 * or — when none reaches it — the end of what the index covers. Every entry from where the
 * generation was built up to that start holds only earlier timestamps, however retention and
 * compaction changed the log since (they only take records away).
 */
export async function timeIndexStart(
  metadata: MetadataStore,
  topicId: string,
  partition: number,
  timestamp: number,
): Promise<number> {
  const state = partitionMaintenanceState(await metadata.get(maintenanceStateKey(topicId, partition)));
  const page = await metadata.query({
    pk: partitionPk(topicId, partition),
    sk: {
      kind: "between",
      low: timeIndexSortKey(state.timeIndexGeneration, timestamp),
      high: `${timeIndexGenerationPrefix(state.timeIndexGeneration)}~`,
    },
    order: "asc",
    limit: 1,
  });
  const item = page.items[0];
  if (item) return Number(item.baseOffset);
  return state.timeIndexTo;
}

/**
 * The first offset whose record's timestamp is at or after `timestamp`, or null when there is
 * none yet: one time-index query, then a walk from there reading only the entries (a segment's
 * pieces) whose greatest timestamp reaches it.
 */
export async function offsetForTimestamp(
  deps: { metadata: MetadataStore; index: IndexReader; reader: Reader },
  topic: Topic,
  partition: number,
  timestamp: number,
  offsets: PartitionOffsets,
  retried: boolean,
): Promise<number | null> {
  const indexed = await timeIndexStart(deps.metadata, topic.topicId, partition, timestamp);
  const start = Math.max(indexed, offsets.logStartOffset);
  if (start >= offsets.highWatermark) return null;
  for await (const entry of deps.index.walk(topic.topicId, partition, start, offsets.highWatermark)) {
    if (entry.maxTimestamp < timestamp) continue;
    const records = await deps.reader.readEntry(topic, partition, entry, retried);
    // An entry whose upload is still on its way may hold the record: answer where it starts, so a
    // reader seeking there misses nothing.
    if (records === undefined) return Math.max(entry.baseOffset, start);
    const found = records.find((record) => record.timestamp >= timestamp && record.offset >= start);
    if (found) return found.offset;
  }
  return null;
}
