import type { MetadataStore } from "@sluice/storage";
import { maintenanceStateKey, partitionPk, TIME_INDEX_PREFIX, timeIndexSortKey } from "../keys.js";
import { partitionMaintenanceState } from "../maintenance-state.js";
import type { Topic } from "../topics/topic-registry.js";
import type { IndexReader } from "./index-entries.js";
import type { PartitionOffsets, Reader } from "./reader.js";

/**
 * Where a search for the first record at or after `timestamp` may start (ARCHITECTURE.md,
 * "The time index"): the entry named by the first time-index item at or after it, or — when none
 * reaches it — the end of what the index covers. Every entry before that start holds only
 * earlier timestamps, however maintenance changed the log since the item was written.
 */
export async function timeIndexStart(
  metadata: MetadataStore,
  topicId: string,
  partition: number,
  timestamp: number,
): Promise<number> {
  const [state, page] = await Promise.all([
    metadata.get(maintenanceStateKey(topicId, partition)),
    metadata.query({
      pk: partitionPk(topicId, partition),
      sk: { kind: "between", low: timeIndexSortKey(timestamp), high: `${TIME_INDEX_PREFIX}~` },
      order: "asc",
      limit: 1,
    }),
  ]);
  const item = page.items[0];
  if (item) return Number(item.baseOffset);
  return partitionMaintenanceState(state).timeIndexTo;
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
): Promise<number | null> {
  const indexed = await timeIndexStart(deps.metadata, topic.topicId, partition, timestamp);
  const start = Math.max(indexed, offsets.logStartOffset);
  if (start >= offsets.highWatermark) return null;
  for await (const entry of deps.index.walk(topic.topicId, partition, start, offsets.highWatermark)) {
    if (entry.maxTimestamp < timestamp) continue;
    const [records] = await deps.reader.readEntries(topic, partition, [entry]);
    const found = records?.find((record) => record.timestamp >= timestamp && record.offset >= start);
    if (found) return found.offset;
  }
  return null;
}
