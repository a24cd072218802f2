import type { Compression } from "@sluice/core";

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface ProduceRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  /** Milliseconds since the epoch; defaults to the append time. */
  timestamp?: number;
  /** Explicit partition; otherwise chosen from the key. */
  partition?: number;
}

/** Kafka's idempotent producer: one id and epoch, a base sequence per partition written. */
export interface ProducerContext {
  producerId: number;
  producerEpoch: number;
  /** Base sequence of this request's records, per partition it touches. */
  baseSequences: Record<number, number>;
}

export interface AppendRequest {
  topic: string;
  records: ProduceRecord[];
  producer?: ProducerContext;
  /** Remembered for 24 hours: a retry with the same key returns the original offsets. */
  idempotencyKey?: string;
  /** Codec when the topic's compression.type is "producer". Default none. */
  compression?: Compression;
}

export interface AppendedRecord {
  partition: number;
  offset: number;
  timestamp: number;
}

export interface AppendResult {
  topic: string;
  /** One entry per record, in request order. */
  records: AppendedRecord[];
  /** True when the request was a retry answered from a previous commit; nothing new was written. */
  duplicate: boolean;
}

/**
 * The fate of one record of a chunked append (Engine.appendInChunks). `duplicate`: its chunk was
 * a retry answered from an earlier commit, and nothing new was written.
 */
export type RecordOutcome =
  | { ok: true; appended: AppendedRecord; duplicate?: boolean }
  | { ok: false; error: unknown };

export const RECORDS_PER_REQUEST_MAX = 10_000;
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
