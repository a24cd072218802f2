import { RECORD_BATCH_HEADER_SIZE, readBatchHeader, readVarint, readVarlong } from "@sluice/core";
import {
  type Counter,
  type Histogram,
  type Metrics,
  type RecentActivity,
  secondsSince,
  series,
} from "@sluice/telemetry";
import type { AppendResult, ProduceRecord, RecordOutcome } from "./append/append-types.js";
import type { AppendBatchesResult } from "./append/raw-batches.js";
import type { ConsumedRecord, FetchBatchesResult, FetchRequest, FetchResult } from "./fetch/reader.js";

/**
 * Measures the engine's produce and fetch calls from the outside of each (ARCHITECTURE.md,
 * "Observability"): the append and read paths know nothing of it. It records into the metrics
 * sink the engine was given (nothing by default) and into the recent-activity window the topic
 * resources read.
 */
export class EngineMeter {
  private readonly produceRequests: Counter<"topic">;
  private readonly produceRecords: Counter<"topic" | "partition">;
  private readonly produceBytes: Counter<"topic" | "partition">;
  private readonly produceLatency: Histogram<"topic">;
  private readonly produceBatchRecords: Histogram<"topic">;
  private readonly produceBatchBytes: Histogram<"topic">;
  private readonly fetchRequests: Counter<"topic" | "partition">;
  private readonly fetchRecords: Counter<"topic" | "partition">;
  private readonly fetchBytes: Counter<"topic" | "partition">;
  private readonly fetchLatency: Histogram<"topic">;

  constructor(
    metrics: Metrics,
    readonly activity: RecentActivity,
  ) {
    this.produceRequests = metrics.counter(series.produceRequests);
    this.produceRecords = metrics.counter(series.produceRecords);
    this.produceBytes = metrics.counter(series.produceBytes);
    this.produceLatency = metrics.histogram(series.produceLatency);
    this.produceBatchRecords = metrics.histogram(series.produceBatchRecords);
    this.produceBatchBytes = metrics.histogram(series.produceBatchBytes);
    this.fetchRequests = metrics.counter(series.fetchRequests);
    this.fetchRecords = metrics.counter(series.fetchRecords);
    this.fetchBytes = metrics.counter(series.fetchBytes);
    this.fetchLatency = metrics.histogram(series.fetchLatency);
  }

  async append(
    topic: string,
    records: readonly ProduceRecord[],
    append: () => Promise<AppendResult>,
  ): Promise<AppendResult> {
    const started = performance.now();
    this.produceRequests.add(1, { topic });
    const result = await append();
    // A retry answered from an earlier commit wrote nothing: it was counted when it was written.
    if (!result.duplicate) {
      this.acknowledged(topic, records, (index) => result.records[index]!.partition, secondsSince(started));
    }
    return result;
  }

  async appendInChunks(
    topic: string,
    records: readonly ProduceRecord[],
    append: () => Promise<RecordOutcome[]>,
  ): Promise<RecordOutcome[]> {
    const started = performance.now();
    this.produceRequests.add(1, { topic });
    const outcomes = await append();
    const written = (index: number) => {
      const outcome = outcomes[index]!;
      return outcome.ok && !outcome.duplicate ? outcome.appended.partition : undefined;
    };
    if (outcomes.some((_, index) => written(index) !== undefined)) {
      this.acknowledged(topic, records, written, secondsSince(started));
    }
    return outcomes;
  }

  /**
   * A produce of record batches as sent (engine.appendBatches): counted per batch, its records and
   * its bytes as stored (compressed batches compressed), since the records are not decoded.
   */
  async appendBatches(
    topic: string,
    body: Uint8Array,
    append: () => Promise<AppendBatchesResult>,
  ): Promise<AppendBatchesResult> {
    const started = performance.now();
    this.produceRequests.add(1, { topic });
    const result = await append();
    const seconds = secondsSince(started);
    // The body was checked before anything was written: each batch's length field is sound.
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    let position = 0;
    let totalRecords = 0;
    let totalBytes = 0;
    for (const batch of result.batches) {
      const bytes = 12 + view.getInt32(position + 8);
      position += bytes;
      if (batch.duplicate) continue;
      this.produceRecords.add(batch.recordCount, { topic, partition: batch.partition });
      this.produceBytes.add(bytes, { topic, partition: batch.partition });
      this.activity.produced(topic, batch.partition, batch.recordCount, bytes);
      totalRecords += batch.recordCount;
      totalBytes += bytes;
    }
    if (totalRecords > 0) {
      this.produceLatency.record(seconds, { topic });
      this.produceBatchRecords.record(totalRecords, { topic });
      this.produceBatchBytes.record(totalBytes, { topic });
      this.activity.produceLatency(topic, seconds);
    }
    return result;
  }

  async fetch(request: FetchRequest, fetch: () => Promise<FetchResult>): Promise<FetchResult> {
    const started = performance.now();
    this.fetchRequests.add(1, { topic: request.topic, partition: request.partition });
    const result = await fetch();
    this.fetched(request, result.records.length, recordsBytes(result.records), secondsSince(started));
    return result;
  }

  async fetchBatches(
    request: FetchRequest,
    fetch: () => Promise<FetchBatchesResult>,
  ): Promise<FetchBatchesResult> {
    const started = performance.now();
    this.fetchRequests.add(1, { topic: request.topic, partition: request.partition });
    const result = await fetch();
    const { records, bytes } = batchRecordsFrom(result.batches, request.offset);
    this.fetched(request, records, bytes, secondsSince(started));
    return result;
  }

  /** Counts the records `partitionOf` places (undefined: not written) by partition. */
  private acknowledged(
    topic: string,
    records: readonly ProduceRecord[],
    partitionOf: (index: number) => number | undefined,
    seconds: number,
  ): void {
    const perPartition = new Map<number, { records: number; bytes: number }>();
    let totalRecords = 0;
    let totalBytes = 0;
    for (let index = 0; index < records.length; index++) {
      const partition = partitionOf(index);
      if (partition === undefined) continue;
      const bytes = recordBytes(records[index]!);
      const counts = perPartition.get(partition);
      if (counts) {
        counts.records++;
        counts.bytes += bytes;
      } else perPartition.set(partition, { records: 1, bytes });
      totalRecords++;
      totalBytes += bytes;
    }
    for (const [partition, counts] of perPartition) {
      this.produceRecords.add(counts.records, { topic, partition });
      this.produceBytes.add(counts.bytes, { topic, partition });
      this.activity.produced(topic, partition, counts.records, counts.bytes);
    }
    this.produceLatency.record(seconds, { topic });
    this.produceBatchRecords.record(totalRecords, { topic });
    this.produceBatchBytes.record(totalBytes, { topic });
    this.activity.produceLatency(topic, seconds);
  }

  private fetched(request: FetchRequest, records: number, bytes: number, seconds: number): void {
    const labels = { topic: request.topic, partition: request.partition };
    this.fetchRecords.add(records, labels);
    this.fetchBytes.add(bytes, labels);
    this.fetchLatency.record(seconds, { topic: request.topic });
    this.activity.fetched(request.topic, request.partition, records, bytes);
    this.activity.fetchLatency(request.topic, seconds);
  }
}

const utf8 = new TextEncoder();

function textBytes(text: string): number {
  // ASCII header names are the rule; only others need encoding to be measured.
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return utf8.encode(text).byteLength;
  return text.length;
}

/** Record bytes (docs/operations.md): key, value, header names and values. */
export function recordBytes(record: {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: readonly { key: string; value: Uint8Array | null }[];
}): number {
  let bytes = (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
  if (record.headers) {
    for (const header of record.headers) bytes += textBytes(header.key) + (header.value?.byteLength ?? 0);
  }
  return bytes;
}

function recordsBytes(records: readonly ConsumedRecord[]): number {
  let bytes = 0;
  for (const record of records) bytes += recordBytes(record);
  return bytes;
}

/**
 * Records at or after `offset` in stored RecordBatch v2 bytes, and their record bytes, read from
 * the record framing without decoding a record. A compressed batch is not decompressed to be
 * measured: it counts the records from `offset` and its stored records section.
 */
export function batchRecordsFrom(batches: Uint8Array, offset: number): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  let position = 0;
  while (position < batches.byteLength) {
    const header = readBatchHeader(batches, position);
    const end = position + header.byteLength;
    if (header.compression !== "none") {
      records += Math.max(0, header.lastOffset + 1 - Math.max(offset, header.baseOffset));
      bytes += header.byteLength - RECORD_BATCH_HEADER_SIZE;
    } else {
      const cursor = { pos: position + RECORD_BATCH_HEADER_SIZE, end };
      for (let i = 0; i < header.recordCount; i++) {
        const length = readVarint(batches, cursor);
        const bodyEnd = cursor.pos + length;
        cursor.pos++; // attributes
        readVarlong(batches, cursor); // timestamp delta
        const recordOffset = header.baseOffset + readVarint(batches, cursor);
        if (recordOffset >= offset) {
          records++;
          bytes += fieldBytes(batches, cursor); // key
          bytes += fieldBytes(batches, cursor); // value
          const headerCount = readVarint(batches, cursor);
          for (let h = 0; h < headerCount; h++) {
            bytes += fieldBytes(batches, cursor);
            bytes += fieldBytes(batches, cursor);
          }
        }
        cursor.pos = bodyEnd;
      }
    }
    position = end;
  }
  return { records, bytes };
}

/** A length-prefixed field (-1: null): skips it and returns its length. */
function fieldBytes(bytes: Uint8Array, cursor: { pos: number; end: number }): number {
  const length = readVarint(bytes, cursor);
  if (length <= 0) return 0;
  cursor.pos += length;
  return length;
}
