import type { PartitionActivity, TopicActivity } from "./activity.js";
import type { Data, DataInput, DataType, Header, HeaderInput } from "./data.js";

export interface Cluster {
  clusterId: string;
}

export interface TopicInfo {
  clusterId: string;
  topicName: string;
  isInternal: boolean;
  replicationFactor: number;
  partitionsCount: number;
  /** Where the topic's data stands; `describeTopic` only (a server that does not say: undefined). */
  storage?: TopicStorage;
  /** Rates over the server's recent window; absent from servers that do not report them. */
  activity?: TopicActivity;
}

/**
 * A topic's storage: sizes and object count as of the last maintenance runs, live log start
 * offsets, and when maintenance last ran (milliseconds since the epoch). Null: not measured yet.
 */
export interface TopicStorage {
  sizeBytes: number | null;
  objectCount: number | null;
  objectBytes: number | null;
  maintenanceLastRunAt: number | null;
  garbageCollectedAt: number | null;
  partitions: PartitionStorage[];
}

export interface PartitionStorage {
  partitionId: number;
  logStartOffset: number;
  highWatermark: number;
  sizeBytes: number | null;
  indexEntries: number | null;
  records: number | null;
  maintenanceLastRunAt: { retention: number | null; compaction: number | null; timeIndex: number | null };
}

export interface CreateTopicOptions {
  /** Default 1. */
  partitions?: number;
  /** Accepted and ignored by the server (storage is replicated by the object store). */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export interface TopicConfig {
  name: string;
  value: string | null;
  isDefault: boolean;
  isReadOnly: boolean;
  isSensitive: boolean;
  source: string;
}

/** One change of `alterTopicConfigs`: SET (the default) needs a value, DELETE resets to the default. */
export interface TopicConfigChange {
  name: string;
  value?: string;
  operation?: "SET" | "DELETE";
}

export interface PartitionInfo {
  clusterId: string;
  topicName: string;
  partitionId: number;
  /** The log start offset. */
  earliestOffset: number;
  /** The high watermark: the offset the next record will get. */
  latestOffset: number;
  /** Rates over the server's recent window; absent from servers that do not report them. */
  activity?: PartitionActivity;
}

export interface ProduceRecord {
  /** Explicit partition; otherwise the key chooses it (murmur2, as in Kafka), or the server does. */
  partitionId?: number;
  key?: DataInput | null;
  value?: DataInput | null;
  headers?: HeaderInput;
  /** Epoch milliseconds, a Date, or an ISO-8601 string. Default: the server's time. */
  timestamp?: number | Date | string;
}

export interface ProduceOptions {
  /** `Idempotency-Key`: a retry with the same key returns the same reports and writes nothing. */
  idempotencyKey?: string;
  /** Idempotent producer fields; the records must all name one `partitionId`. */
  producer?: { producerId: number; producerEpoch: number; sequence: number };
  signal?: AbortSignal;
}

export interface DeliveryReport {
  clusterId: string;
  topicName: string;
  partitionId: number;
  offset: number;
  /** Epoch milliseconds. */
  timestamp: number;
  key: { type: DataType; size: number } | null;
  value: { type: DataType; size: number } | null;
}

/** The outcome of one record of a streaming produce request. */
export type ProduceOutcome =
  | { ok: true; report: DeliveryReport }
  | { ok: false; errorCode: number; message: string };

export interface BatchEntry extends ProduceRecord {
  id: string;
}

export interface BatchResult {
  successes: Array<DeliveryReport & { id: string }>;
  failures: Array<{ id: string; errorCode: number; message: string }>;
}

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
}

export type OffsetSpec = number | "earliest" | "latest";

export interface ReadOptions {
  /** Default "earliest". */
  offset?: OffsetSpec;
  maxBytes?: number;
  maxRecords?: number;
  /** Long-poll: wait up to this long (0..30,000 ms) when there are no records at `offset` yet. */
  timeoutMs?: number;
  /**
   * The preferred type for keys. Default JSON: each key comes back as JSON when its bytes are JSON
   * text, else as STRING when they are UTF-8, else as BINARY, and names the type it got
   * (docs/http-api.md, "Reading back what was produced").
   */
  keyType?: DataType;
  /** The preferred type for values, as for `keyType`. Default JSON, with the same per-record fallback. */
  valueType?: DataType;
  signal?: AbortSignal;
}

export interface ConsumedRecord {
  topicName: string;
  partitionId: number;
  offset: number;
  /** Epoch milliseconds. */
  timestamp: number;
  key: Data | null;
  value: Data | null;
  headers: Header[];
}

export interface ReadResult {
  clusterId: string;
  topicName: string;
  partitionId: number;
  records: ConsumedRecord[];
  /** The offset to read next. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/**
 * A binary read's answer before its records are decoded (`fetchPartitionBatches`): the offsets
 * are known at once, the records when `decode` runs.
 */
export interface BatchPage {
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
  /** Nothing was read: the partition had no records at the offset (yet). */
  empty: boolean;
  /**
   * The records, as `readPartitionBatches` gives them (CRC-checked; a page holding a compressed
   * batch is read again as JSON), at most `maxRecords` of them (default: all the page holds),
   * from `fromOffset` on (default: from the offset read). Decoding a large page in parts, each
   * from after the last record of the one before, walks the page once: a reader that hands out a
   * few hundred records at a time keeps few record objects alive, which costs far less garbage
   * collection than a page decoded whole.
   */
  decode(maxRecords?: number, fromOffset?: number): Promise<ReadResult>;
}

export interface TailOptions {
  /** Where to start. Default "latest" (only new records). */
  offset?: OffsetSpec;
  /** Resume after this event id (an offset), as an EventSource would after a reconnect. */
  lastEventId?: string;
  keyType?: DataType;
  valueType?: DataType;
  /** Ends the iteration (cleanly: the loop just stops). */
  signal?: AbortSignal;
  /**
   * Asks the server to end the stream after this long; the iteration then ends too (no
   * reconnect). Without it the tail runs until `signal` aborts or the loop breaks.
   */
  timeoutMs?: number;
  /** Reconnect (resuming after the last record seen) when the stream ends or fails. Default true without `timeoutMs`. */
  reconnect?: boolean;
  /** Delay before reconnecting after a failure, unless the server sent `retry:`. Default 1,000 ms. */
  retryDelayMs?: number;
  /** "sse" (default): one event stream; "poll": long-polling reads. */
  transport?: "sse" | "poll";
  /** Long-poll wait per request when the server answers without an event stream. Default 30,000 ms. */
  pollTimeoutMs?: number;
}

export interface PartitionOffsetForTimestamp {
  partitionId: number;
  /** The first offset whose timestamp is at or after the one asked, or null when there is none yet. */
  offset: number | null;
}

// --- consumer groups ----------------------------------------------------------------------

export interface TopicPartition {
  topicName: string;
  partitionId: number;
}

/** Kafka's names for a group's state. */
export type ConsumerGroupState = "EMPTY" | "RECONCILING" | "STABLE" | "DEAD" | (string & {});

export type GroupAssignor = "uniform" | "range";

export type AutoOffsetReset = "earliest" | "latest" | "none";

/** One heartbeat of Sluice's client-side group protocol (`POST …/consumer-groups/{group}/heartbeat`). */
export interface GroupHeartbeatRequest {
  /** Unique to this incarnation of the member. */
  memberId: string;
  /** 0 to join, -1 to leave, else the member's current epoch. */
  memberEpoch: number;
  /** Required when joining. */
  subscribedTopicNames?: string[];
  /** The partitions the member still holds (a revoked one until it has committed it). */
  ownedPartitions?: TopicPartition[];
  instanceId?: string;
  clientId?: string;
  sessionTimeoutMs?: number;
  assignor?: GroupAssignor;
}

export interface GroupHeartbeatResponse {
  memberId: string;
  memberEpoch: number;
  groupEpoch: number;
  heartbeatIntervalMs: number;
  /** How long the session lasts without another heartbeat, counted from when the request was sent. */
  sessionRemainingMs: number;
  /** What the member owns now: it may fetch these and commit their offsets. */
  assignment: TopicPartition[];
  /** What it holds that is now another member's: stop fetching, commit, then stop reporting them. */
  revoking: TopicPartition[];
  /** Its partitions still held by their previous owner; they come in a later heartbeat. */
  pending: TopicPartition[];
}

export interface OffsetToCommit extends TopicPartition {
  /** The offset of the next record to read (the last processed one + 1). */
  offset: number;
  metadata?: string;
}

export interface CommittedGroupOffset extends TopicPartition {
  offset: number;
  metadata: string | null;
  /** Epoch milliseconds, when the server says. */
  committedAt: number | null;
}

export interface ConsumerGroupInfo {
  groupId: string;
  state: ConsumerGroupState;
  partitionAssignor: string;
  groupEpoch: number | null;
}

export interface ConsumerGroupMember {
  consumerId: string;
  instanceId: string | null;
  clientId: string | null;
  /** The partitions it owns, when the server lists them with the member. */
  assignments: TopicPartition[];
}

export interface ConsumerGroupLag extends TopicPartition {
  /** The committed offset; null when the group has none for the partition. */
  currentOffset: number | null;
  logEndOffset: number;
  lag: number;
  /** The member owning the partition now; null when nobody does. */
  consumerId: string | null;
}

export interface ConsumerGroupLagSummary {
  maxLag: number;
  totalLag: number;
  maxLagTopicName: string | null;
  maxLagPartitionId: number | null;
  maxLagConsumerId: string | null;
}

/** What `resetGroupOffsets` moves the group's committed offsets to (kafka-consumer-groups' --to-* options). */
export type OffsetResetTarget =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "offset"; offset: number }
  | { to: "datetime"; datetime: Date | string | number }
  | { to: "shift-by"; shiftBy: number };

export interface OffsetResetOptions {
  /** Default: every topic the group has offsets for. */
  topics?: string[];
  /** Default true: only the plan, nothing changes. */
  dryRun?: boolean;
}

export interface OffsetResetPlanEntry extends TopicPartition {
  previousOffset: number | null;
  newOffset: number;
}

export interface OffsetResetResult {
  dryRun: boolean;
  data: OffsetResetPlanEntry[];
}
