import { z } from "@hono/zod-openapi";
import type { TopicStorage } from "@sluice/engine";

const time = () =>
  z
    .string()
    .nullable()
    .openapi({ description: "ISO 8601; null when it never ran", example: "2026-01-01T12:00:00.000Z" });
const measured = (description: string) =>
  z
    .number()
    .int()
    .nullable()
    .openapi({ description: `${description}; null until maintenance has measured it` });

const PartitionStorageSchema = z
  .object({
    partition_id: z.number().int(),
    log_start_offset: z
      .number()
      .int()
      .openapi({ description: "The first offset still in the log (retention moves it)" }),
    high_watermark: z.number().int(),
    size_bytes: measured("Stored bytes of the live log, as of the last retention run"),
    index_entries: measured("Index entries of the live log"),
    records: measured("Records in the live log (fewer than offsets after key compaction)"),
    maintenance_last_run_at: z.object({ retention: time(), compaction: time(), time_index: time() }),
  })
  .openapi("PartitionStorage");

/** Where a topic's data stands: what `GET …/topics/{topic}` adds to Confluent's topic resource. */
export const TopicStorageSchema = z
  .object({
    size_bytes: measured("Stored bytes of every partition's live log"),
    object_count: measured("Objects in the object store (as of the last garbage collection)"),
    object_bytes: measured("Their bytes, unreferenced objects waiting for deletion included"),
    maintenance_last_run_at: time(),
    garbage_collected_at: time(),
    partitions: z.array(PartitionStorageSchema),
  })
  .openapi("TopicStorage", {
    description:
      "Sizes, object count and log start offsets, and when maintenance (retention, compaction, garbage collection) last ran. Sizes are as of the last runs; offsets are live.",
  });

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function topicStorageResource(storage: TopicStorage): z.infer<typeof TopicStorageSchema> {
  return {
    size_bytes: storage.sizeBytes ?? null,
    object_count: storage.objectCount ?? null,
    object_bytes: storage.objectBytes ?? null,
    maintenance_last_run_at: iso(storage.maintenanceLastRunAt),
    garbage_collected_at: iso(storage.lastGcAt),
    partitions: storage.partitions.map((partition) => ({
      partition_id: partition.partition,
      log_start_offset: partition.logStartOffset,
      high_watermark: partition.highWatermark,
      size_bytes: partition.sizeBytes ?? null,
      index_entries: partition.indexEntries ?? null,
      records: partition.records ?? null,
      maintenance_last_run_at: {
        retention: iso(partition.lastRunAt.retention),
        compaction: iso(partition.lastRunAt.compaction),
        time_index: iso(partition.lastRunAt["time-index"]),
      },
    })),
  };
}
