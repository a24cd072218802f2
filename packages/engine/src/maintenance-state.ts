/**
 * The maintenance items every reader and the maintenance jobs agree on (ARCHITECTURE.md,
 * "Maintenance"): per partition, the `maintenance` item (layout version, cleaning and time-index
 * progress, stats and when each job last ran); per topic, its garbage collector's state. The jobs
 * write them (packages/maintenance); the engine reads them for the time index and for describe.
 */
import type { Item, MetadataStore } from "@sluice/storage";
import { headKey, maintenanceStateKey, topicMaintenanceStateKey } from "./keys.js";
import type { Topic } from "./topics/topic-registry.js";

export const MAINTENANCE_JOBS = ["retention", "compaction", "time-index"] as const;
export type PartitionJob = (typeof MAINTENANCE_JOBS)[number];

export interface PartitionMaintenanceState {
  /** Grows by one with every transaction that replaces index entries. */
  layoutVersion: number;
  /** Key compaction: the log below this offset was cleaned by an earlier run. */
  cleanedTo: number;
  /**
   * Time index: the generation lookups use, the log start it was built from, the offset it covers
   * up to and the running maximum there; and the next generation while it is being built.
   */
  timeIndexGeneration: number;
  timeIndexFrom: number;
  timeIndexTo: number;
  timeIndexMax: number;
  timeIndexNext: { generation: number; from: number; to: number; max: number } | undefined;
  /** Stored bytes, entries and records of the live log, as of `statsAt` (undefined: never measured). */
  sizeBytes: number | undefined;
  indexEntries: number | undefined;
  records: number | undefined;
  statsAt: number | undefined;
  /** When each job last finished a run on the partition (ms since the epoch). */
  lastRunAt: Partial<Record<PartitionJob, number>>;
}

export function partitionMaintenanceState(item: Item | undefined): PartitionMaintenanceState {
  const number = (name: string, fallback: number) =>
    item?.[name] === undefined ? fallback : Number(item[name]);
  const optional = (name: string) => (item?.[name] === undefined ? undefined : Number(item[name]));
  const lastRunAt: Partial<Record<PartitionJob, number>> = {};
  for (const job of MAINTENANCE_JOBS) {
    const at = optional(lastRunAttribute(job));
    if (at !== undefined) lastRunAt[job] = at;
  }
  return {
    layoutVersion: number("layoutVersion", 0),
    cleanedTo: number("cleanedTo", 0),
    timeIndexGeneration: number("timeIndexGeneration", 0),
    timeIndexFrom: number("timeIndexFrom", 0),
    timeIndexTo: number("timeIndexTo", 0),
    timeIndexMax: number("timeIndexMax", -1),
    timeIndexNext:
      item?.timeIndexNextGeneration === undefined
        ? undefined
        : {
            generation: number("timeIndexNextGeneration", 0),
            from: number("timeIndexNextFrom", 0),
            to: number("timeIndexNextTo", 0),
            max: number("timeIndexNextMax", -1),
          },
    sizeBytes: optional("sizeBytes"),
    indexEntries: optional("indexEntries"),
    records: optional("records"),
    statsAt: optional("statsAt"),
    lastRunAt,
  };
}

/** The attribute of the `maintenance` item recording when `job` last ran. */
export function lastRunAttribute(job: PartitionJob | "gc"): string {
  return `last-${job}-at`;
}

export interface TopicMaintenanceState {
  objectCount: number | undefined;
  objectBytes: number | undefined;
  lastGcAt: number | undefined;
}

export function topicMaintenanceState(item: Item | undefined): TopicMaintenanceState {
  const optional = (name: string) => (item?.[name] === undefined ? undefined : Number(item[name]));
  return {
    objectCount: optional("objectCount"),
    objectBytes: optional("objectBytes"),
    lastGcAt: optional(lastRunAttribute("gc")),
  };
}

export interface PartitionStorage {
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  sizeBytes: number | undefined;
  indexEntries: number | undefined;
  records: number | undefined;
  lastRunAt: Partial<Record<PartitionJob, number>>;
}

/** What a topic's storage looks like: live offsets, and sizes as of the last maintenance runs. */
export interface TopicStorage {
  partitions: PartitionStorage[];
  /** Sum over partitions of their last measured size (undefined until every one was measured). */
  sizeBytes: number | undefined;
  objectCount: number | undefined;
  objectBytes: number | undefined;
  lastGcAt: number | undefined;
  /** The latest time any maintenance job finished on the topic, undefined if none ever did. */
  maintenanceLastRunAt: number | undefined;
}

const READS_IN_FLIGHT = 16;

export async function readTopicStorage(metadata: MetadataStore, topic: Topic): Promise<TopicStorage> {
  const partitions: PartitionStorage[] = new Array(topic.partitions);
  let next = 0;
  const worker = async () => {
    while (next < topic.partitions) {
      const partition = next++;
      const [head, item] = await Promise.all([
        metadata.get(headKey(topic.topicId, partition)),
        metadata.get(maintenanceStateKey(topic.topicId, partition)),
      ]);
      const state = partitionMaintenanceState(item);
      partitions[partition] = {
        partition,
        logStartOffset: Number(head?.logStartOffset ?? 0),
        highWatermark: Number(head?.nextOffset ?? 0),
        sizeBytes: state.sizeBytes,
        indexEntries: state.indexEntries,
        records: state.records,
        lastRunAt: state.lastRunAt,
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, topic.partitions) }, worker));
  const topicState = topicMaintenanceState(await metadata.get(topicMaintenanceStateKey(topic.topicId)));
  const sizes = partitions.map((partition) => partition.sizeBytes);
  const times = [
    ...partitions.flatMap((partition) => Object.values(partition.lastRunAt)),
    ...(topicState.lastGcAt === undefined ? [] : [topicState.lastGcAt]),
  ];
  return {
    partitions,
    sizeBytes: sizes.every((size) => size !== undefined)
      ? sizes.reduce((sum: number, size) => sum + (size ?? 0), 0)
      : undefined,
    objectCount: topicState.objectCount,
    objectBytes: topicState.objectBytes,
    lastGcAt: topicState.lastGcAt,
    maintenanceLastRunAt: times.length === 0 ? undefined : Math.max(...times),
  };
}
