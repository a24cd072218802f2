/**
 * Processors as the HTTP API describes them (docs/processors.md). A definition travels in the
 * API's own JSON (snake_case), as it is written in the local server's config file too.
 */
export interface ProcessorDefinition {
  name: string;
  topics: string[];
  handler:
    | { type: "lambda"; function_name: string }
    | { type: "webhook"; url: string; headers?: Record<string, string> }
    | { type: "module"; module: string; export?: string };
  batch_size?: number;
  batch_max_bytes?: number;
  batch_window_ms?: number;
  starting_position?: "EARLIEST" | "LATEST" | "AT_TIMESTAMP";
  /** Epoch milliseconds or an ISO-8601 date-time, with AT_TIMESTAMP. */
  starting_timestamp?: number | string;
  filter?: { key?: unknown; headers?: Record<string, unknown>; value?: Record<string, unknown> } | null;
  retry?: {
    max_attempts?: number;
    backoff_ms?: number;
    max_backoff_ms?: number;
    max_record_age_ms?: number | null;
    timeout_ms?: number;
  };
  bisect_on_error?: boolean;
  dead_letter_topic?: string | null;
  output_topics?: string[];
  ordering?: "PARTITION" | "KEY" | "SHARED";
  parallelism?: number;
}

export interface ProcessorInfo {
  name: string;
  uid: string;
  state: "RUNNING" | "PAUSED";
  /** As stored: every default filled in. */
  definition: ProcessorDefinition;
  createdAt: number;
  updatedAt: number;
}

export interface ProcessorBlockedKey {
  /** The key's first record not done. */
  offset: number;
  attempts: number;
  firstFailedAt: number;
  nextAttemptAt: number;
  error: string;
}

export interface ProcessorPartition {
  topicName: string;
  partitionId: number;
  /** Null before the processor first ran on a partition added after it was created. */
  checkpoint: number | null;
  highWatermark: number;
  lag: number;
  pending: number;
  blockedKeys: ProcessorBlockedKey[];
  lastError: { message: string; offset: number; at: number } | null;
  owner: string | null;
  processed: number;
  deadLettered: number;
  filtered: number;
}

/** One share-partition of a SHARED processor's own share group. */
export interface ProcessorSharePartition {
  topicName: string;
  partitionId: number;
  /** Every record below it is settled: accepted with its outputs, or dead-lettered. */
  startOffset: number;
  endOffset: number;
  highWatermark: number;
  /** Records locked to a runtime now. */
  inFlight: number;
  available: number;
  lag: number;
}

export interface ProcessorDetails extends ProcessorInfo {
  lag: number;
  /** Empty for a SHARED processor: see `shared`. */
  partitions: ProcessorPartition[];
  shared?: { shareGroupId: string; members: number; partitions: ProcessorSharePartition[] };
}

export type ProcessorResetTarget =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "datetime"; datetime: string | number | Date }
  | { to: "offsets"; offsets: { topicName: string; partitionId: number; offset: number }[] };
