import {
  DataCorruptionError,
  type DecodedRecord,
  decodeRecordBatches,
  InvalidArgumentError,
  patchBaseOffset,
  verifyRecordBatch,
} from "@sluice/core";
import type { ObjectStore } from "@sluice/storage";
import { batchCacheKey } from "../append/appender.js";
import { OffsetOutOfRangeError } from "../errors.js";
import type { LruCache } from "../lru-cache.js";
import type { Topic } from "../topics/topic-registry.js";
import type { IndexEntry, IndexReader } from "./index-entries.js";

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  /** Soft limit: at least one batch is returned even if it is larger (as in Kafka). Default 1 MiB. */
  maxBytes?: number;
  /** Hard limit on records returned. Default 10,000. */
  maxRecords?: number;
}

/**
 * A record as read back: offset, timestamp, key, value and headers. The partition is the fetch's.
 * Records are read-only views into the fetched bytes: callers must not modify them.
 */
export type ConsumedRecord = DecodedRecord;

export interface FetchResult {
  topic: string;
  partition: number;
  records: ConsumedRecord[];
  /** The offset to fetch next. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export interface FetchBatchesResult {
  topic: string;
  partition: number;
  /**
   * Whole RecordBatch v2 batches, concatenated, each CRC-checked and with its base offset set to
   * its place in the partition; empty when there is nothing at the offset yet. The first batch
   * may start before the offset asked: the reader skips those records (as Kafka consumers do).
   * Compressed batches are as stored, still compressed.
   */
  batches: Uint8Array<ArrayBuffer>;
  /** The offset to fetch next: the end of the last batch, or the offset asked when there is none. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export interface PartitionOffsets {
  logStartOffset: number;
  highWatermark: number;
}

export const FETCH_MAX_BYTES_DEFAULT = 1024 * 1024;
export const FETCH_MAX_RECORDS_DEFAULT = 10_000;
/** Object reads in flight per fetch: S3 latency is per request, so a fetch reads batches in parallel. */
const READ_CONCURRENCY = 8;

/** The read path (ARCHITECTURE.md, "Fetch"): index → byte ranges → verified, offset-patched records. */
export class Reader {
  constructor(
    private readonly objects: ObjectStore,
    private readonly index: IndexReader,
    private readonly batches: LruCache<string, Uint8Array>,
  ) {}

  async fetch(topic: Topic, request: FetchRequest, offsets: PartitionOffsets): Promise<FetchResult> {
    const maxRecords = positiveInteger(request.maxRecords ?? FETCH_MAX_RECORDS_DEFAULT, "max_records");
    const { offset, partition } = request;
    const empty = { topic: topic.name, partition, records: [], nextOffset: offset, ...offsets };
    const entries = await this.entriesToRead(topic, request, offsets);
    if (entries.length === 0) return empty;
    const decoded = await this.readEntries(topic, partition, entries);
    const records: ConsumedRecord[] = [];
    for (const batch of decoded) {
      for (const record of batch) {
        if (record.offset < offset) continue;
        if (records.length >= maxRecords) break;
        records.push(record);
      }
    }
    const last = records[records.length - 1];
    return { ...empty, records, nextOffset: last ? last.offset + 1 : offset };
  }

  /**
   * The same batches `fetch` would read, as bytes: nothing is decoded, so a reader that decodes
   * them itself costs the server only the copy. `maxRecords` counts whole batches here.
   */
  async fetchBatches(
    topic: Topic,
    request: FetchRequest,
    offsets: PartitionOffsets,
  ): Promise<FetchBatchesResult> {
    const { offset, partition } = request;
    const entries = await this.entriesToRead(topic, request, offsets);
    const result = { topic: topic.name, partition, nextOffset: offset, ...offsets };
    if (entries.length === 0) return { ...result, batches: new Uint8Array(0) };
    const stored = await this.readAll(entries, (entry) => this.readEntryBytes(topic, partition, entry));
    let total = 0;
    for (const bytes of stored) total += bytes.byteLength;
    // A copy, so patching offsets never touches the cached bytes other reads share.
    const batches = new Uint8Array(total);
    let position = 0;
    for (let i = 0; i < entries.length; i++) {
      batches.set(stored[i]!, position);
      verifyAndPatch(
        topic,
        partition,
        entries[i]!,
        batches.subarray(position, position + stored[i]!.byteLength),
      );
      position += stored[i]!.byteLength;
    }
    const last = entries[entries.length - 1]!;
    return { ...result, batches, nextOffset: last.baseOffset + last.recordCount };
  }

  /** Validates the request and walks the index to the entries a read from `offset` covers. */
  private async entriesToRead(
    topic: Topic,
    request: FetchRequest,
    offsets: PartitionOffsets,
  ): Promise<IndexEntry[]> {
    const maxBytes = positiveInteger(request.maxBytes ?? FETCH_MAX_BYTES_DEFAULT, "max_bytes");
    const maxRecords = positiveInteger(request.maxRecords ?? FETCH_MAX_RECORDS_DEFAULT, "max_records");
    const { offset, partition } = request;
    if (!Number.isSafeInteger(offset) || offset < offsets.logStartOffset || offset > offsets.highWatermark) {
      throw new OffsetOutOfRangeError(
        `offset ${offset} is out of range for partition ${partition} of topic ${topic.name}: valid offsets are ${offsets.logStartOffset} to ${offsets.highWatermark}`,
        { details: { offset, ...offsets } },
      );
    }
    if (offset === offsets.highWatermark) return [];

    const first = await this.index.entryHolding(topic.topicId, partition, offset);
    if (!first) return [];
    const entries = [first];
    let bytes = first.length;
    let count = first.baseOffset + first.recordCount - offset;
    let next = first.baseOffset + first.recordCount;
    while (next < offsets.highWatermark && bytes < maxBytes && count < maxRecords) {
      const more = await this.index.entriesFrom(topic.topicId, partition, next, offsets.highWatermark, 32);
      if (more.length === 0) break;
      for (const entry of more) {
        if (bytes + entry.length > maxBytes || count >= maxRecords) break;
        entries.push(entry);
        bytes += entry.length;
        count += entry.recordCount;
        next = entry.baseOffset + entry.recordCount;
      }
      if (entries[entries.length - 1] !== more[more.length - 1]) break;
    }
    return entries;
  }

  /** Reads and decodes the given entries, in order, verifying every batch's CRC. */
  readEntries(topic: Topic, partition: number, entries: IndexEntry[]): Promise<ConsumedRecord[][]> {
    return this.readAll(entries, (entry) => this.readEntry(topic, partition, entry));
  }

  /** `read` of every entry, in order, at most READ_CONCURRENCY at a time. */
  private async readAll<T>(entries: IndexEntry[], read: (entry: IndexEntry) => Promise<T>): Promise<T[]> {
    const results: T[] = new Array(entries.length);
    let nextIndex = 0;
    const worker = async () => {
      while (nextIndex < entries.length) {
        const position = nextIndex++;
        results[position] = await read(entries[position]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, entries.length) }, worker));
    return results;
  }

  private async readEntry(topic: Topic, partition: number, entry: IndexEntry): Promise<ConsumedRecord[]> {
    const bytes = await this.readEntryBytes(topic, partition, entry);
    const batches = await decodeRecordBatches(bytes, { baseOffsetOverride: entry.baseOffset });
    const records = batches.length === 1 ? batches[0]!.records : batches.flatMap((batch) => batch.records);
    if (records.length !== entry.recordCount) {
      throw new DataCorruptionError(
        `batch at offset ${entry.baseOffset} of partition ${partition} holds ${records.length} records; its index entry says ${entry.recordCount}`,
        { details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
      );
    }
    return records;
  }

  /** The entry's stored bytes, from the cache or one ranged read. */
  private async readEntryBytes(topic: Topic, partition: number, entry: IndexEntry): Promise<Uint8Array> {
    const cacheKey = batchCacheKey(entry.objectKey, entry.position, entry.length);
    let bytes = this.batches.get(cacheKey);
    if (!bytes) {
      const object = await this.objects.get(entry.objectKey, {
        range: { offset: entry.position, length: entry.length },
      });
      bytes = object.body;
      if (bytes.byteLength !== entry.length) {
        throw new DataCorruptionError(
          `object ${entry.objectKey} is shorter than its index entry: wanted ${entry.length} bytes at ${entry.position}, got ${bytes.byteLength}`,
          { details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
        );
      }
      this.batches.set(cacheKey, bytes);
    }
    return bytes;
  }
}

/**
 * Checks every batch of one entry's bytes (in place in the answer) as decoding would — magic,
 * lengths, CRC-32C, the record count the index promises — and sets each batch's base offset,
 * consecutive from the entry's, as decoding with `baseOffsetOverride` reports them. Records are
 * not decoded: the CRC covers them.
 */
function verifyAndPatch(topic: Topic, partition: number, entry: IndexEntry, bytes: Uint8Array): void {
  let position = 0;
  let baseOffset = entry.baseOffset;
  let records = 0;
  while (position < bytes.byteLength) {
    const header = verifyRecordBatch(bytes, position);
    patchBaseOffset(bytes, baseOffset, position);
    baseOffset += header.lastOffsetDelta + 1;
    records += header.recordCount;
    position += header.byteLength;
  }
  if (records !== entry.recordCount) {
    throw new DataCorruptionError(
      `batch at offset ${entry.baseOffset} of partition ${partition} holds ${records} records; its index entry says ${entry.recordCount}`,
      { details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
    );
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}
