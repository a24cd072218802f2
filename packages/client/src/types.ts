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
  /** How keys are returned. Default BINARY. */
  keyType?: DataType;
  /** How values are returned. Default BINARY. */
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
