import {
  type Clock,
  DataCorruptionError,
  type DecodedRecord,
  type DecodeRecordBatchesOptions,
  decodeRecordBatches,
  InvalidArgumentError,
  NotFoundError,
  patchBaseOffset,
  type SluiceErrorOptions,
  verifyRecordBatch,
} from "@sluice/core";
import type { ObjectStore } from "@sluice/storage";
import { batchCacheKey } from "../append/appender.js";
import { OffsetOutOfRangeError } from "../errors.js";
import type { LruCache } from "../lru-cache.js";
import type { Topic } from "../topics/topic-registry.js";
import type { IndexReader } from "./index-entries.js";
import { entryEnd, type IndexEntry } from "./index-entry.js";
import { gapBatch, mayBePending, settleMissingObject } from "./missing-objects.js";

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
/** Adjacent ranges of one object are read with one GET, up to this many bytes. */
const COALESCED_READ_BYTES_MAX = 8 * 1024 * 1024;

/**
 * What a reader finds when maintenance changed the index under it: no entry for an offset the
 * head said was in the log (retention moved the log start meanwhile), or an object its entry
 * names deleted (the entry was cached before compaction replaced it). The engine reads the head
 * and the index again, once; a second time it is what it says, a corruption.
 */
export class StaleIndexError extends DataCorruptionError {
  override readonly name: string = "StaleIndexError";
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "STALE_INDEX", ...options });
  }
}

/** Which records of each entry a read builds (decodeRecordBatches' options of the same names). */
type DecodeRange = Required<Pick<DecodeRecordBatchesOptions, "fromOffset" | "maxRecords">>;

/**
 * The bytes of the entries a read could take, in order: all of them, or those before the first
 * whose object is still on its way (parallel commit). An entry whose offsets are a gap comes back
 * as an entry of no records whose bytes are one empty batch spanning them.
 */
export interface ReadEntries {
  entries: IndexEntry[];
  bytes: Uint8Array[];
}

/** The read path (ARCHITECTURE.md, "Fetch"): index → byte ranges → verified, offset-patched records. */
export class Reader {
  constructor(
    private readonly objects: ObjectStore,
    private readonly index: IndexReader,
    private readonly batches: LruCache<string, Uint8Array>,
    private readonly clock: Clock,
    /** How long a read that can take nothing, its first entry's upload on its way, waits before it answers. */
    private readonly pendingWaitMs: number,
  ) {}

  /**
   * `retried`: the engine's second try, after reading the head and the index afresh; an offset
   * still without an entry then reads as empty rather than as a stale index.
   */
  async fetch(
    topic: Topic,
    request: FetchRequest,
    offsets: PartitionOffsets,
    retried = false,
  ): Promise<FetchResult> {
    const maxRecords = positiveInteger(request.maxRecords ?? FETCH_MAX_RECORDS_DEFAULT, "max_records");
    const { offset, partition } = request;
    const empty = { topic: topic.name, partition, records: [], nextOffset: offset, ...offsets };
    const wanted = await this.entriesToRead(topic, request, offsets, retried);
    if (wanted.length === 0) return empty;
    const { entries, bytes } = await this.readBytes(topic, partition, wanted, retried);
    if (entries.length === 0) return this.afterPending(empty);
    // Only what the read returns is built (and one more, which tells a cut read from one that
    // ends with its entries): a read of a few records from a large batch costs little.
    const range = { fromOffset: offset, maxRecords: maxRecords + 1 };
    const decoded = await Promise.all(
      entries.map((entry, index) => decodeEntry(topic, partition, entry, bytes[index]!, range)),
    );
    const records: ConsumedRecord[] = [];
    let cut = false;
    for (const batch of decoded) {
      for (const record of batch) {
        if (record.offset < offset) continue;
        if (records.length >= maxRecords) {
          cut = true;
          break;
        }
        records.push(record);
      }
      if (cut) break;
    }
    const last = records[records.length - 1];
    // Read whole, the entries end where the next read starts, even past their last record (key
    // compaction leaves offsets without records, as in Kafka).
    const nextOffset = cut ? last!.offset + 1 : Math.max(offset, entryEnd(entries[entries.length - 1]!));
    return { ...empty, records, nextOffset };
  }

  /**
   * The same batches `fetch` would read, as bytes: nothing is decoded, so a reader that decodes
   * them itself costs the server only the copy. `maxRecords` counts whole batches here.
   */
  async fetchBatches(
    topic: Topic,
    request: FetchRequest,
    offsets: PartitionOffsets,
    retried = false,
  ): Promise<FetchBatchesResult> {
    const { offset, partition } = request;
    const wanted = await this.entriesToRead(topic, request, offsets, retried);
    const result = { topic: topic.name, partition, nextOffset: offset, ...offsets };
    if (wanted.length === 0) return { ...result, batches: new Uint8Array(0) };
    const { entries, bytes: stored } = await this.readBytes(topic, partition, wanted, retried);
    if (entries.length === 0) return this.afterPending({ ...result, batches: new Uint8Array(0) });
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
    return { ...result, batches, nextOffset: entryEnd(entries[entries.length - 1]!) };
  }

  /**
   * An empty answer because the next entry's upload is on its way: given after a poll interval,
   * so a caller that reads again at once (the high watermark is past the offset) does not spin.
   */
  private async afterPending<T>(answer: T): Promise<T> {
    await this.clock.sleep(this.pendingWaitMs);
    return answer;
  }

  /** Validates the request and walks the index to the entries a read from `offset` covers. */
  private async entriesToRead(
    topic: Topic,
    request: FetchRequest,
    offsets: PartitionOffsets,
    retried: boolean,
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
    if (!first) {
      if (retried) return [];
      throw new StaleIndexError(
        `no index entry holds offset ${offset} of partition ${partition} of topic ${topic.name}, inside ${offsets.logStartOffset} to ${offsets.highWatermark}`,
        { details: { topic: topic.name, partition, offset } },
      );
    }
    const entries = [first];
    let bytes = first.length;
    let count = Math.min(first.recordCount, entryEnd(first) - offset);
    let next = entryEnd(first);
    while (next < offsets.highWatermark && bytes < maxBytes && count < maxRecords) {
      const more = await this.index.entriesFrom(topic.topicId, partition, next, offsets.highWatermark, 32);
      if (more.length === 0) break;
      for (const entry of more) {
        if (bytes + entry.length > maxBytes || count >= maxRecords) break;
        entries.push(entry);
        bytes += entry.length;
        count += entry.recordCount;
        // Where the entry's offsets end: past its records when key compaction left gaps.
        next = entryEnd(entry);
      }
      if (entries[entries.length - 1] !== more[more.length - 1]) break;
    }
    return entries;
  }

  /**
   * Reads and decodes one entry, verifying every batch's CRC: its records, none for a gap, or
   * undefined while its object is still on its way (parallel commit). `retried` as for `fetch`.
   */
  async readEntry(
    topic: Topic,
    partition: number,
    entry: IndexEntry,
    retried: boolean,
  ): Promise<ConsumedRecord[] | undefined> {
    const { entries, bytes } = await this.readBytes(topic, partition, [entry], retried);
    if (entries.length === 0) return undefined;
    return decodeEntry(topic, partition, entries[0]!, bytes[0]!, undefined);
  }

  /**
   * The stored bytes of each entry, in order: from the cache, or read with ranged GETs — one per
   * run of adjacent ranges of one object (a segment's pieces), at most READ_CONCURRENCY at a time.
   * An object missing on a first read is a stale index (the engine reads afresh); on a read after
   * a fresh index it may be an upload still on its way, or a gap (ARCHITECTURE.md, "Parallel
   * commit").
   */
  private async readBytes(
    topic: Topic,
    partition: number,
    entries: IndexEntry[],
    retried: boolean,
  ): Promise<ReadEntries> {
    // `entries` is the caller's own list, built for this read: a gap's entry is replaced in it,
    // and it is cut before an upload on its way, without a copy on every fetch.
    const results: Uint8Array[] = new Array(entries.length);
    /** The first entry whose object is still on its way: the read ends before it. */
    let pendingFrom = entries.length;
    const runs: number[][] = [];
    entries.forEach((entry, index) => {
      if (entry.inline) {
        results[index] = entry.inline;
        return;
      }
      const cached = this.batches.get(batchCacheKey(entry.objectKey, entry.position, entry.length));
      if (cached) {
        results[index] = cached;
        return;
      }
      const run = runs[runs.length - 1];
      const previous = run && entries[run[run.length - 1]!]!;
      if (
        run &&
        previous &&
        run[run.length - 1] === index - 1 &&
        previous.objectKey === entry.objectKey &&
        previous.position + previous.length === entry.position &&
        entry.position + entry.length - entries[run[0]!]!.position <= COALESCED_READ_BYTES_MAX
      ) {
        run.push(index);
      } else {
        runs.push([index]);
      }
    });
    let nextRun = 0;
    const worker = async () => {
      while (nextRun < runs.length) {
        const run = runs[nextRun++]!;
        const first = entries[run[0]!]!;
        const last = entries[run[run.length - 1]!]!;
        const length = last.position + last.length - first.position;
        const body = await this.readRange(topic, partition, first, length, retried);
        if (body === "pending") {
          pendingFrom = Math.min(pendingFrom, run[0]!);
          continue;
        }
        if (body === "gap") {
          for (const index of run) {
            const entry = entries[index]!;
            results[index] = await gapBatch(entry);
            entries[index] = { ...entry, recordCount: 0, position: 0, length: results[index].byteLength };
          }
          continue;
        }
        for (const index of run) {
          const entry = entries[index]!;
          const bytes = body.subarray(
            entry.position - first.position,
            entry.position - first.position + entry.length,
          );
          this.batches.set(batchCacheKey(entry.objectKey, entry.position, entry.length), bytes);
          results[index] = bytes;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, runs.length) }, worker));
    entries.length = pendingFrom;
    results.length = pendingFrom;
    return { entries, bytes: results };
  }

  /**
   * `length` bytes of `entry`'s object from the entry's position: one ranged GET. A data object
   * that is missing, or empty (a range starting past its end), after a fresh index read is settled
   * (missing-objects.ts): still on its way, a gap, or arrived meanwhile and read again.
   */
  private async readRange(
    topic: Topic,
    partition: number,
    entry: IndexEntry,
    length: number,
    retried: boolean,
  ): Promise<Uint8Array | "pending" | "gap"> {
    let object: Awaited<ReturnType<ObjectStore["get"]>>;
    try {
      object = await this.objects.get(entry.objectKey, { range: { offset: entry.position, length } });
    } catch (error) {
      const absent =
        error instanceof NotFoundError || (error instanceof InvalidArgumentError && mayBePending(entry));
      if (!absent) throw error;
      if (retried && mayBePending(entry)) {
        const state = await settleMissingObject(this.objects, this.clock, entry.objectKey);
        if (state !== "present") return state;
        return this.readRange(topic, partition, entry, length, false);
      }
      throw new StaleIndexError(
        `object ${entry.objectKey}, named by the index entry at offset ${entry.baseOffset} of partition ${partition} of topic ${topic.name}, does not exist`,
        { cause: error, details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
      );
    }
    if (object.body.byteLength !== length) {
      throw new DataCorruptionError(
        `object ${entry.objectKey} is shorter than its index entries: wanted ${length} bytes at ${entry.position}, got ${object.body.byteLength}`,
        { details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
      );
    }
    return object.body;
  }
}

async function decodeEntry(
  topic: Topic,
  partition: number,
  entry: IndexEntry,
  bytes: Uint8Array,
  range: DecodeRange | undefined,
): Promise<ConsumedRecord[]> {
  const batches = await decodeRecordBatches(bytes, { baseOffsetOverride: entry.baseOffset, ...range });
  const records = batches.length === 1 ? batches[0]!.records : batches.flatMap((batch) => batch.records);
  const last = batches[batches.length - 1];
  // Counted from the headers: their records were all walked, if not all built.
  const count = batches.reduce((sum, batch) => sum + batch.recordCount, 0);
  if (count !== entry.recordCount || (last && last.lastOffset + 1 !== entryEnd(entry))) {
    throw new DataCorruptionError(
      `batch at offset ${entry.baseOffset} of partition ${partition} holds ${count} records up to offset ${last ? last.lastOffset : "none"}; its index entry says ${entry.recordCount} records up to ${entryEnd(entry) - 1}`,
      { details: { topic: topic.name, partition, baseOffset: entry.baseOffset } },
    );
  }
  return records;
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
  if (records !== entry.recordCount || baseOffset !== entryEnd(entry)) {
    throw new DataCorruptionError(
      `batch at offset ${entry.baseOffset} of partition ${partition} holds ${records} records up to offset ${baseOffset - 1}; its index entry says ${entry.recordCount} up to ${entryEnd(entry) - 1}`,
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
