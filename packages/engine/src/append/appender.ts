import { createHash } from "node:crypto";
import type { Clock } from "@sluice/core";
import {
  type Compression,
  ConflictError,
  type EncodeRecordBatchOptions,
  encodeRecordBatch,
  InvalidArgumentError,
  partitionForKey,
  readBatchHeader,
  UnavailableError,
} from "@sluice/core";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import { PENDING_UPLOAD_MS } from "../fetch/missing-objects.js";
import { newDataObjectKey } from "../keys.js";
import type { LruCache } from "../lru-cache.js";
import type { Topic, TopicRegistry } from "../topics/topic-registry.js";
import {
  type AppendedRecord,
  type AppendRequest,
  type AppendResult,
  IDEMPOTENCY_KEY_TTL_MS,
  type ProduceRecord,
  RECORDS_PER_REQUEST_MAX,
  type RecordOutcome,
} from "./append-types.js";
import {
  type CommitGroup,
  type CommitOutcome,
  commitGroup,
  fixedOperations,
  operationsPerPartition,
  type PartitionWrite,
} from "./commit.js";
import { withinCommitWindow } from "./commit-window.js";
import { hedgedUpload } from "./hedged-upload.js";
import {
  doneItem,
  type IdempotencyClaim,
  type IdempotencyRecord,
  idempotencyItemKey,
  idempotencyKeyFree,
  idempotencyRecordFromItem,
  isExpired,
  pendingItem,
} from "./idempotency.js";
import type { ProducerState } from "./producer-state.js";
import { type AppendBatchesRequest, type AppendBatchesResult, appendRecordBatches } from "./raw-batches.js";
import { validateAppend } from "./validate-append.js";

export interface AppenderDependencies {
  objects: ObjectStore;
  metadata: MetadataStore;
  clock: Clock;
  topics: TopicRegistry;
  heads: LruCache<string, number>;
  producerStates: LruCache<string, ProducerState>;
  /** Freshly written batches, so tail readers need not read them back. */
  batches: LruCache<string, Uint8Array>;
  /** Told of every partition whose high watermark moved. */
  onCommit: (topicId: string, partition: number, highWatermark: number) => void;
  /** Start a second upload under another key when the first has not answered by then (hedged-upload.ts). */
  uploadHedgeAfterMs?: number;
  /**
   * Upload and commit at once the appends that carry neither producer sequences nor an
   * idempotency key (ARCHITECTURE.md, "Parallel commit").
   */
  parallelCommit?: boolean;
  /**
   * Appends whose object would be at most this many bytes are not uploaded: each index entry
   * carries its batch (ARCHITECTURE.md, "Small appends carried in the index"). 0: always upload.
   */
  inlineMaxBytes?: number;
}

const TRANSACTION_OPERATIONS = 100;

/** What an object's commit carries besides its writes. */
export interface ObjectWriteOptions {
  producer?: { producerId: number; producerEpoch: number };
  idempotencyKey?: string;
  /** With idempotencyKey: the outcome the key will remember. */
  idempotencyRecord?: IdempotencyRecord;
  /** Which chunk of a chunked request this is (its idempotency item); 0 otherwise. */
  chunk: number;
}

/** The write path (ARCHITECTURE.md, "Append"): validate, partition, encode, upload, commit, acknowledge. */
export class Appender {
  /** Rotates the partition that receives a request's unkeyed records, per topic. */
  private readonly stickyCounters = new Map<string, number>();

  constructor(private readonly deps: AppenderDependencies) {}

  /** One append of at most RECORDS_PER_REQUEST_MAX records: one object, one commit. */
  append(request: AppendRequest): Promise<AppendResult> {
    return this.appendChunk(request, 0);
  }

  /**
   * Appends any number of records as consecutive appends of at most RECORDS_PER_REQUEST_MAX
   * each, and reports per record. A chunk fails or succeeds as a whole; later chunks are still
   * tried, as Kafka's producer sends later batches after one failed. An idempotency key covers
   * every chunk (each remembers its own outcome), and an idempotent producer's sequences run on
   * across chunks per partition, so a retry of the whole request writes nothing twice.
   */
  async appendInChunks(request: AppendRequest): Promise<RecordOutcome[]> {
    if (request.records.length <= RECORDS_PER_REQUEST_MAX) {
      try {
        const result = await this.appendChunk(request, 0);
        return result.records.map((appended) => ({ ok: true, appended, duplicate: result.duplicate }));
      } catch (error) {
        return request.records.map(() => ({ ok: false, error }));
      }
    }
    const sequences = request.producer && (await this.chunkSequences(request));
    const outcomes: RecordOutcome[] = [];
    for (
      let start = 0, chunk = 0;
      start < request.records.length;
      start += RECORDS_PER_REQUEST_MAX, chunk++
    ) {
      const records = request.records.slice(start, start + RECORDS_PER_REQUEST_MAX);
      const producer = request.producer && { ...request.producer, baseSequences: sequences![chunk]! };
      try {
        const result = await this.appendChunk(
          { ...request, records, ...(producer ? { producer } : {}) },
          chunk,
        );
        for (const appended of result.records)
          outcomes.push({ ok: true, appended, duplicate: result.duplicate });
      } catch (error) {
        for (let index = 0; index < records.length; index++) outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  }

  /**
   * Each chunk's base sequence per partition: the request's base plus the records earlier chunks
   * send to that partition. Every record must name its partition or carry a key, so its partition
   * is known before it is sent.
   */
  private async chunkSequences(request: AppendRequest): Promise<Record<number, number>[]> {
    const topic = await this.topicFor(request);
    const sent = new Map<number, number>();
    const chunks: Record<number, number>[] = [];
    for (let start = 0; start < request.records.length; start += RECORDS_PER_REQUEST_MAX) {
      const end = Math.min(request.records.length, start + RECORDS_PER_REQUEST_MAX);
      const bases: Record<number, number> = {};
      for (let index = start; index < end; index++) {
        const record = request.records[index]!;
        const partition =
          record.partition ??
          (record.key === null ? undefined : partitionForKey(record.key, topic.partitions));
        if (partition === undefined) {
          throw new InvalidArgumentError(
            `record ${index} has neither a partition nor a key: an idempotent producer's request of more than ${RECORDS_PER_REQUEST_MAX} records names each record's partition`,
          );
        }
        const base = request.producer!.baseSequences[partition];
        if (base === undefined) {
          throw new InvalidArgumentError(
            `producer ${request.producer!.producerId} sent no base sequence for partition ${partition}, which record ${index} goes to`,
          );
        }
        bases[partition] ??= base + (sent.get(partition) ?? 0);
      }
      for (let index = start; index < end; index++) {
        const record = request.records[index]!;
        const partition = record.partition ?? partitionForKey(record.key!, topic.partitions);
        sent.set(partition, (sent.get(partition) ?? 0) + 1);
      }
      chunks.push(bases);
    }
    return chunks;
  }

  private async appendChunk(request: AppendRequest, chunk: number): Promise<AppendResult> {
    const topic = await this.topicFor(request);
    validateAppend(request, topic);
    const appendTime = this.deps.clock.now();
    const requestHash = request.idempotencyKey === undefined ? undefined : hashRequest(request);
    if (request.idempotencyKey !== undefined) {
      const replay = await this.replayIfSeen(topic, request, requestHash!, chunk);
      if (replay) return replay;
    }

    const recordPartitions = this.assignPartitions(request.records, topic);
    const byPartition = groupByPartition(request.records, recordPartitions);
    if (request.producer) requireSequences(request, byPartition);

    const timestamps = request.records.map((record) =>
      topic.settings.timestampType === "LogAppendTime" ? appendTime : (record.timestamp ?? appendTime),
    );
    const { body, writes } = await encodeObject(request, topic, byPartition, appendTime);
    const idempotencyRecord: IdempotencyRecord | undefined =
      request.idempotencyKey === undefined
        ? undefined
        : {
            requestHash: requestHash!,
            baseOffsets: {},
            recordPartitions: encodePartitions(recordPartitions),
            appendTime,
          };
    // Filled in, not spread together: see commit.ts (V8 and spreads with added properties).
    const writeOptions: ObjectWriteOptions = { chunk };
    if (request.producer) writeOptions.producer = request.producer;
    if (idempotencyRecord) {
      writeOptions.idempotencyKey = request.idempotencyKey!;
      writeOptions.idempotencyRecord = idempotencyRecord;
    }
    const outcome = await this.writeObject(topic, body, writes, writeOptions);
    if (outcome.kind === "idempotent-replay") return replayResult(topic, request, outcome.record);
    return {
      topic: topic.name,
      records: assignOffsets(recordPartitions, outcome.baseOffsets, timestamps),
      duplicate: writes.every((write) => outcome.duplicatePartitions.has(write.partition)),
    };
  }

  private topicFor(request: AppendRequest): Promise<Topic> {
    const highest = request.records.reduce((max, record) => Math.max(max, record.partition ?? -1), -1);
    return this.topicWithPartitions(request.topic, highest);
  }

  private async topicWithPartitions(name: string, highestPartition: number): Promise<Topic> {
    let topic = await this.deps.topics.get(name);
    // The cached partition count may be behind a recent increase; look again before refusing.
    if (highestPartition >= topic.partitions) topic = await this.deps.topics.describe(name);
    return topic;
  }

  /**
   * Appends record batches as a producer encoded them, stored as they are (append/raw-batches.ts):
   * one object for the request, one commit, as for records.
   */
  appendBatches(request: AppendBatchesRequest): Promise<AppendBatchesResult> {
    return appendRecordBatches(request, {
      clock: this.deps.clock,
      metadata: this.deps.metadata,
      topicWithPartitions: (name, highest) => this.topicWithPartitions(name, highest),
      writeObject: (topic, body, writes, options) => this.writeObject(topic, body, writes, options),
    });
  }

  /**
   * The tail every append shares: upload the object, keep its batches for tail readers, commit,
   * and tell waiting readers of the new high watermarks.
   */
  private async writeObject(
    topic: Topic,
    body: Uint8Array,
    writes: PartitionWrite[],
    options: ObjectWriteOptions,
  ): Promise<CommitOutcome> {
    const inlineMaxBytes = this.deps.inlineMaxBytes ?? 0;
    const inline = inlineMaxBytes > 0 && body.byteLength <= inlineMaxBytes;
    if (!inline && this.deps.parallelCommit && !options.producer && options.idempotencyKey === undefined)
      return this.writeObjectInParallel(topic, body, writes, options);
    // An inline append's key names no object: it is the entries' identity (a retry after a lost
    // answer recognises its own entry by it) and is never uploaded. Its batches are not cached
    // either: readers take them from the entries, which they read anyway.
    const objectKey = inline
      ? newDataObjectKey(topic.topicId, this.deps.clock.now())
      : await this.upload(topic, body);
    if (!inline)
      for (const write of writes)
        this.deps.batches.set(
          batchCacheKey(objectKey, write.position, write.length),
          body.subarray(write.position, write.position + write.length),
        );
    const outcome = await this.commit(topic, objectKey, writes, options, false, inline ? body : undefined);
    if (outcome.kind === "idempotent-replay") return outcome;
    this.notifyCommitted(topic, writes, outcome);
    return outcome;
  }

  /**
   * Parallel commit (ARCHITECTURE.md): the upload and the commit at once, under a key chosen
   * first, answered when both succeeded. A commit that fails leaves the object, if it lands,
   * named by nothing: garbage. An upload that fails after the commit leaves an entry whose object
   * readers wait for, then give up as a gap; the append is not acknowledged either way.
   */
  private async writeObjectInParallel(
    topic: Topic,
    body: Uint8Array,
    writes: PartitionWrite[],
    options: ObjectWriteOptions,
  ): Promise<CommitOutcome> {
    const objectKey = newDataObjectKey(topic.topicId, this.deps.clock.now());
    const [uploaded, committed] = await Promise.allSettled([
      hedgedUpload(this.deps.clock, this.deps.uploadHedgeAfterMs, () => this.uploadUnder(objectKey, body)),
      this.commit(topic, objectKey, writes, options, true),
    ]);
    if (committed.status === "rejected") throw committed.reason;
    const outcome = committed.value;
    if (outcome.kind === "idempotent-replay") throw new Error("unreachable: no idempotency key");
    if (uploaded.status === "rejected")
      throw uploadFailedAfterCommit(topic, writes, outcome, uploaded.reason);
    // Kept for tail readers only now: bytes whose upload failed must never be served.
    for (const write of writes)
      this.deps.batches.set(
        batchCacheKey(objectKey, write.position, write.length),
        body.subarray(write.position, write.position + write.length),
      );
    this.notifyCommitted(topic, writes, outcome);
    return outcome;
  }

  /**
   * A create-only upload under a key the commit already names: refused because the key exists, it
   * is this writer's own earlier attempt (a lost answer, or the hedge) when the object has bytes,
   * and a reader's verdict that the offsets are a gap when it is empty.
   */
  private async uploadUnder(objectKey: string, body: Uint8Array): Promise<string> {
    try {
      await this.deps.objects.put(objectKey, body, { condition: { ifNoneMatch: "*" } });
      return objectKey;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if ((await this.deps.objects.head(objectKey)).size > 0) return objectKey;
      throw new UploadTooLateError(
        `the upload of these records arrived more than ${PENDING_UPLOAD_MS} ms after it began, after readers had given their offsets up: nothing was written; send the records again`,
        { cause: error, code: UPLOAD_TOO_LATE, details: { objectKey } },
      );
    }
  }

  private notifyCommitted(
    topic: Topic,
    writes: PartitionWrite[],
    outcome: Extract<CommitOutcome, { kind: "committed" }>,
  ): void {
    for (const write of writes) {
      if (outcome.duplicatePartitions.has(write.partition)) continue;
      this.deps.onCommit(
        topic.topicId,
        write.partition,
        outcome.baseOffsets.get(write.partition)! + write.recordCount,
      );
    }
  }

  private async replayIfSeen(
    topic: Topic,
    request: AppendRequest,
    requestHash: string,
    chunk: number,
  ): Promise<AppendResult | undefined> {
    const item = await this.deps.metadata.get(
      idempotencyItemKey(topic.topicId, request.idempotencyKey!, chunk),
    );
    if (!item || isExpired(item, this.deps.clock.now())) return undefined;
    const record = idempotencyRecordFromItem(item);
    if (item.state === "pending") {
      throw new ConflictError(
        `a request with idempotency key ${request.idempotencyKey} is still in progress`,
      );
    }
    if (!record || record.requestHash !== requestHash) {
      throw new ConflictError(
        `idempotency key ${request.idempotencyKey} was already used for a different request`,
      );
    }
    return replayResult(topic, request, record);
  }

  private assignPartitions(records: ProduceRecord[], topic: Topic): Uint16Array {
    const partitions = new Uint16Array(records.length);
    let sticky: number | undefined;
    for (let index = 0; index < records.length; index++) {
      const record = records[index]!;
      if (record.partition !== undefined) partitions[index] = record.partition;
      else if (record.key !== null) partitions[index] = partitionForKey(record.key, topic.partitions);
      else {
        sticky ??= this.nextStickyPartition(topic);
        partitions[index] = sticky;
      }
    }
    return partitions;
  }

  private nextStickyPartition(topic: Topic): number {
    const counter =
      this.stickyCounters.get(topic.topicId) ?? Math.floor(this.deps.clock.random() * topic.partitions);
    this.stickyCounters.set(topic.topicId, counter + 1);
    return counter % topic.partitions;
  }

  private upload(topic: Topic, body: Uint8Array): Promise<string> {
    return hedgedUpload(this.deps.clock, this.deps.uploadHedgeAfterMs, () => this.uploadOnce(topic, body));
  }

  private async uploadOnce(topic: Topic, body: Uint8Array): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const key = newDataObjectKey(topic.topicId, this.deps.clock.now());
      try {
        await this.deps.objects.put(key, body, { condition: { ifNoneMatch: "*" } });
        return key;
      } catch (error) {
        // A collision of 64 random bits; never overwrite, pick another key.
        if (!(error instanceof ConflictError) || attempt >= 2) throw error;
      }
    }
  }

  private async commit(
    topic: Topic,
    objectKey: string,
    writes: PartitionWrite[],
    options: ObjectWriteOptions,
    parallelCommit = false,
    inline?: Uint8Array,
  ): Promise<CommitOutcome> {
    const { idempotencyRecord, chunk } = options;
    const producer = options.producer && {
      producerId: options.producer.producerId,
      producerEpoch: options.producer.producerEpoch,
    };
    const expiresAtMs = this.deps.clock.now() + IDEMPOTENCY_KEY_TTL_MS;
    const idempotency: IdempotencyClaim | undefined = idempotencyRecord && {
      key: options.idempotencyKey!,
      itemKey: idempotencyItemKey(topic.topicId, options.idempotencyKey!, chunk),
      record: idempotencyRecord,
      expiresAtMs,
    };
    const perGroup = Math.floor(
      (TRANSACTION_OPERATIONS - fixedOperations({ producer, idempotency })) /
        operationsPerPartition({ producer }),
    );
    const deps = {
      ...this.deps,
      metadata: withinCommitWindow(this.deps.metadata, this.deps.clock, objectKey),
    };
    if (writes.length <= perGroup) {
      const group: CommitGroup = { topic, objectKey, producer, writes };
      if (idempotency) group.idempotency = idempotency;
      if (parallelCommit) group.parallelCommit = true;
      if (inline) group.inline = inline;
      return commitGroup(deps, group);
    }

    // Several transactions: claim the idempotency key first, so a concurrent retry waits instead of writing.
    if (idempotency) await this.claimIdempotencyKey(idempotency);
    const baseOffsets = new Map<number, number>();
    const duplicatePartitions = new Set<number>();
    const groupSize = Math.floor(
      (TRANSACTION_OPERATIONS - fixedOperations({ producer })) / operationsPerPartition({ producer }),
    );
    for (let start = 0; start < writes.length; start += groupSize) {
      const outcome = await commitGroup(deps, {
        topic,
        objectKey,
        producer,
        writes: writes.slice(start, start + groupSize),
        ...(parallelCommit ? { parallelCommit } : {}),
        ...(inline ? { inline } : {}),
      });
      if (outcome.kind !== "committed")
        throw new Error("unreachable: a group without an idempotency key cannot replay");
      for (const [partition, offset] of outcome.baseOffsets) baseOffsets.set(partition, offset);
      for (const partition of outcome.duplicatePartitions) duplicatePartitions.add(partition);
    }
    if (idempotency) await this.completeIdempotencyKey(idempotency, baseOffsets);
    return { kind: "committed", baseOffsets, duplicatePartitions };
  }

  private async claimIdempotencyKey(idempotency: IdempotencyClaim): Promise<void> {
    try {
      await this.deps.metadata.put(pendingItem(idempotency), {
        condition: idempotencyKeyFree(this.deps.clock.now()),
      });
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new ConflictError(`a request with idempotency key ${idempotency.key} is in progress or done`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  private async completeIdempotencyKey(
    idempotency: IdempotencyClaim,
    baseOffsets: Map<number, number>,
  ): Promise<void> {
    await this.deps.metadata.put(doneItem(idempotency, baseOffsets));
  }
}

function groupByPartition(records: ProduceRecord[], partitions: Uint16Array): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let index = 0; index < records.length; index++) {
    const partition = partitions[index]!;
    const indexes = groups.get(partition);
    if (indexes) indexes.push(index);
    else groups.set(partition, [index]);
  }
  return groups;
}

function requireSequences(request: AppendRequest, byPartition: Map<number, number[]>): void {
  for (const partition of byPartition.keys()) {
    if (request.producer!.baseSequences[partition] === undefined) {
      throw new InvalidArgumentError(
        `producer ${request.producer!.producerId} sent no base sequence for partition ${partition}, which this request writes to`,
      );
    }
  }
}

async function encodeObject(
  request: AppendRequest,
  topic: Topic,
  byPartition: Map<number, number[]>,
  appendTime: number,
): Promise<{ body: Uint8Array; writes: PartitionWrite[] }> {
  const compression = chooseCompression(topic, request.compression);
  const logAppendTime = topic.settings.timestampType === "LogAppendTime";
  const partitions = [...byPartition.keys()].sort((a, b) => a - b);
  const batches = await Promise.all(
    partitions.map((partition) => {
      const indexes = byPartition.get(partition)!;
      // The producer's record objects go to the encoder as they are: no copy per record.
      const records =
        indexes.length === request.records.length
          ? request.records
          : indexes.map((index) => request.records[index]!);
      // Filled in, not spread together: see commit.ts (V8 and spreads with added properties).
      const options: EncodeRecordBatchOptions = {
        compression,
        defaultTimestamp: appendTime,
        timestampType: logAppendTime ? "log_append" : "create",
        producerId: request.producer?.producerId ?? -1,
        producerEpoch: request.producer?.producerEpoch ?? -1,
        baseSequence: request.producer?.baseSequences[partition] ?? -1,
      };
      if (logAppendTime) options.timestamp = appendTime;
      return encodeRecordBatch(records, options);
    }),
  );
  const size = batches.reduce((total, batch) => total + batch.byteLength, 0);
  const body = new Uint8Array(size);
  const writes: PartitionWrite[] = [];
  let position = 0;
  partitions.forEach((partition, order) => {
    const batch = batches[order]!;
    body.set(batch, position);
    // The encoder already found the timestamp bounds; read them from the batch header.
    const header = readBatchHeader(batch);
    writes.push({
      partition,
      recordCount: header.recordCount,
      position,
      length: batch.byteLength,
      firstTimestamp: header.firstTimestamp,
      maxTimestamp: header.maxTimestamp,
      sequence: request.producer?.baseSequences[partition],
    });
    position += batch.byteLength;
  });
  return { body, writes };
}

function chooseCompression(topic: Topic, requested: Compression | undefined): Compression {
  const configured = topic.settings.compressionType;
  if (configured === "producer") return requested ?? "none";
  if (configured === "uncompressed") return "none";
  return configured;
}

function assignOffsets(
  partitions: Uint16Array,
  baseOffsets: Map<number, number>,
  timestamps: number[],
): AppendedRecord[] {
  const next = new Map(baseOffsets);
  const records: AppendedRecord[] = new Array(partitions.length);
  for (let index = 0; index < partitions.length; index++) {
    const partition = partitions[index]!;
    const offset = next.get(partition)!;
    next.set(partition, offset + 1);
    records[index] = { partition, offset, timestamp: timestamps[index]! };
  }
  return records;
}

function replayResult(topic: Topic, request: AppendRequest, record: IdempotencyRecord): AppendResult {
  const partitions = decodePartitions(record.recordPartitions);
  const baseOffsets = new Map(
    Object.entries(record.baseOffsets).map(([partition, offset]) => [Number(partition), offset]),
  );
  const timestamps = request.records.map((item) =>
    topic.settings.timestampType === "LogAppendTime"
      ? record.appendTime
      : (item.timestamp ?? record.appendTime),
  );
  return { topic: topic.name, records: assignOffsets(partitions, baseOffsets, timestamps), duplicate: true };
}

function encodePartitions(partitions: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(partitions.length * 2);
  const view = new DataView(bytes.buffer);
  for (let index = 0; index < partitions.length; index++) view.setUint16(index * 2, partitions[index]!, true);
  return bytes;
}

function decodePartitions(bytes: Uint8Array): Uint16Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const partitions = new Uint16Array(bytes.byteLength / 2);
  for (let index = 0; index < partitions.length; index++) partitions[index] = view.getUint16(index * 2, true);
  return partitions;
}

/** A stable digest of what a request asks to write, to tell a retry from a different request. */
function hashRequest(request: AppendRequest): string {
  const hash = createHash("sha256");
  const field = (bytes: Uint8Array | null) => {
    const length = Buffer.alloc(5);
    length.writeInt32BE(bytes === null ? -1 : bytes.byteLength, 1);
    length[0] = 0x1f;
    hash.update(length);
    if (bytes) hash.update(bytes);
  };
  const text = (value: string) => field(Buffer.from(value));
  text(request.topic);
  for (const record of request.records) {
    text(`${record.partition ?? ""}|${record.timestamp ?? ""}|${record.headers?.length ?? 0}`);
    field(record.key);
    field(record.value);
    for (const header of record.headers ?? []) {
      text(header.key);
      field(header.value);
    }
  }
  return hash.digest("hex");
}

/** The codes of parallel commit's two failures, whose messages are the caller's to read (HTTP 503). */
export const UPLOAD_TOO_LATE = "UPLOAD_TOO_LATE";
export const UPLOAD_FAILED_AFTER_COMMIT = "UPLOAD_FAILED_AFTER_COMMIT";

/** A parallel commit's upload that lost to a reader's gap: nothing was written, so sending again is safe. */
export class UploadTooLateError extends UnavailableError {
  override readonly name: string = "UploadTooLateError";
}

/**
 * The answer when the offsets were committed and the upload failed: not acknowledged. Unless a
 * reader's gap already won, whether the records appear depends on whether a PUT that failed
 * landed anyway, as with any lost answer.
 */
function uploadFailedAfterCommit(
  topic: Topic,
  writes: PartitionWrite[],
  outcome: Extract<CommitOutcome, { kind: "committed" }>,
  cause: unknown,
): Error {
  if (cause instanceof UploadTooLateError) return cause;
  const committed = writes.map((write) => ({
    partition: write.partition,
    baseOffset: outcome.baseOffsets.get(write.partition)!,
    recordCount: write.recordCount,
  }));
  const ranges = committed
    .map(({ partition, baseOffset, recordCount }) => {
      return `partition ${partition} offsets ${baseOffset} to ${baseOffset + recordCount - 1}`;
    })
    .join(", ");
  return new UnavailableError(
    `the records of topic ${topic.name} were committed (${ranges}) but their upload failed: they are not acknowledged, and appear there only if the upload landed after all`,
    { cause, code: UPLOAD_FAILED_AFTER_COMMIT, details: { topic: topic.name, committed } },
  );
}

export function batchCacheKey(objectKey: string, position: number, length: number): string {
  return `${objectKey}@${position}+${length}`;
}
