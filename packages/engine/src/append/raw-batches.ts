import { createHash } from "node:crypto";
import {
  type CheckedProducerBatch,
  type Clock,
  type Compression,
  ConflictError,
  checkProducerBatch,
  decodeRecordBatches,
  encodeRecordBatch,
  InvalidArgumentError,
  rewriteBatchTimestamps,
} from "@sluice/core";
import type { MetadataStore } from "@sluice/storage";
import { RecordTooLargeError } from "../errors.js";
import type { Topic } from "../topics/topic-registry.js";
import type { ObjectWriteOptions } from "./appender.js";
import type { CommitOutcome, PartitionWrite } from "./commit.js";
import {
  type IdempotencyRecord,
  idempotencyItemKey,
  idempotencyRecordFromItem,
  isExpired,
} from "./idempotency.js";
import { validateIdempotencyKey } from "./validate-append.js";

/**
 * The binary produce path (ARCHITECTURE.md, "Append", record batches as sent): Kafka RecordBatch v2
 * batches, one per partition, are checked and stored as the producer encoded them — the request's
 * bytes become the object — and committed exactly as appends of records are. Offsets are assigned
 * by the index, never written into the bytes; an idempotent producer's id, epoch and sequence come
 * from each batch's header and are checked by the same commit as the records path's headers.
 *
 * The bytes change only where a Kafka broker would change them too: a maxTimestamp that disagrees
 * with the records, or a topic with log-append time, rewrites two header fields and the CRC; a
 * topic whose compression.type names a codec other than the batch's re-encodes that batch.
 */
export interface AppendBatchesRequest {
  topic: string;
  /** RecordBatch v2 batches, concatenated. Their baseOffset and partitionLeaderEpoch are ignored. */
  batches: Uint8Array;
  /** The partition of each batch, in order; each partition at most once (as in a Kafka produce request). */
  partitions: number[];
  /** As for records: a retry with the same key and bytes within 24 hours writes nothing. */
  idempotencyKey?: string;
}

export interface AppendedBatch {
  partition: number;
  /** The offset of the batch's first record. */
  baseOffset: number;
  recordCount: number;
  /** True when an earlier request had written this batch (the same producer sequence); nothing new was written. */
  duplicate: boolean;
  /** The time every record of the batch got, on a topic with message.timestamp.type=LogAppendTime. */
  logAppendTime?: number;
}

export interface AppendBatchesResult {
  topic: string;
  /** One entry per batch, in request order. */
  batches: AppendedBatch[];
  /** True when the whole request was answered from an earlier commit. */
  duplicate: boolean;
}

export interface RawBatchDependencies {
  clock: Clock;
  metadata: MetadataStore;
  /** The topic, looked up afresh when its cached partition count is below `highestPartition` + 1. */
  topicWithPartitions(name: string, highestPartition: number): Promise<Topic>;
  writeObject(
    topic: Topic,
    body: Uint8Array,
    writes: PartitionWrite[],
    options: ObjectWriteOptions,
  ): Promise<CommitOutcome>;
}

export async function appendRecordBatches(
  request: AppendBatchesRequest,
  deps: RawBatchDependencies,
): Promise<AppendBatchesResult> {
  const { partitions } = request;
  if (!Array.isArray(partitions) || partitions.length === 0) {
    throw new InvalidArgumentError(
      "a produce of record batches names the partition of each batch; none was given",
    );
  }
  if (!(request.batches instanceof Uint8Array) || request.batches.byteLength === 0) {
    throw new InvalidArgumentError("a produce of record batches needs at least one batch; the body is empty");
  }
  const topic = await deps.topicWithPartitions(request.topic, Math.max(...partitions));
  checkPartitions(partitions, topic);
  if (request.idempotencyKey !== undefined) validateIdempotencyKey(request.idempotencyKey);
  const checked = await checkBatches(request, topic);
  const producer = producerOf(checked, partitions);

  const requestHash = request.idempotencyKey === undefined ? undefined : hashBatches(request);
  if (request.idempotencyKey !== undefined) {
    const replay = await replayIfSeen(deps, topic, request, requestHash!, checked);
    if (replay) return replay;
  }

  const appendTime = deps.clock.now();
  const { body, writes } = await prepareObject(request, topic, checked, producer, appendTime);
  const idempotencyRecord: IdempotencyRecord | undefined =
    requestHash === undefined
      ? undefined
      : { requestHash, baseOffsets: {}, recordPartitions: encodePartitions(partitions), appendTime };
  const outcome = await deps.writeObject(topic, body, writes, {
    ...(producer ? { producer } : {}),
    ...(idempotencyRecord ? { idempotencyKey: request.idempotencyKey!, idempotencyRecord } : {}),
    chunk: 0,
  });
  if (outcome.kind === "idempotent-replay") return replayResult(topic, partitions, checked, outcome.record);
  const logAppend = topic.settings.timestampType === "LogAppendTime";
  const batches = writes.map((write): AppendedBatch => {
    const duplicate = outcome.duplicatePartitions.has(write.partition);
    return {
      partition: write.partition,
      baseOffset: outcome.baseOffsets.get(write.partition)!,
      recordCount: write.recordCount,
      duplicate,
      ...(logAppend && !duplicate ? { logAppendTime: appendTime } : {}),
    };
  });
  return { topic: topic.name, batches, duplicate: batches.every((batch) => batch.duplicate) };
}

function checkPartitions(partitions: number[], topic: Topic): void {
  const seen = new Set<number>();
  partitions.forEach((partition, index) => {
    if (!Number.isInteger(partition) || partition < 0) {
      throw new InvalidArgumentError(`batch ${index}: invalid partition ${partition}`);
    }
    if (partition >= topic.partitions) {
      throw new InvalidArgumentError(
        `batch ${index}: partition ${partition} does not exist; topic ${topic.name} has ${topic.partitions} partition${topic.partitions === 1 ? "" : "s"} (0 to ${topic.partitions - 1})`,
        { details: { partition, partitions: topic.partitions } },
      );
    }
    if (seen.has(partition)) {
      throw new InvalidArgumentError(
        `batch ${index}: partition ${partition} is named twice; a request carries at most one batch per partition (as in Kafka)`,
      );
    }
    seen.add(partition);
  });
}

/**
 * The most bytes a request's compressed batches may decompress to, together: their records are
 * held decompressed while they are checked. Well above what a 6 MiB body of real records
 * compresses from; a payload whose framing claims more (a decompression bomb) is refused before
 * it is decoded.
 */
export const DECOMPRESSED_BYTES_MAX = 128 * 1024 * 1024;

/** Splits the body into batches and checks each; the body must hold exactly one per partition named. */
async function checkBatches(request: AppendBatchesRequest, topic: Topic): Promise<CheckedProducerBatch[]> {
  const { batches: body, partitions } = request;
  const checked: CheckedProducerBatch[] = [];
  let position = 0;
  let decompressedBytes = 0;
  for (let index = 0; index < partitions.length; index++) {
    const label = `batch ${index} (partition ${partitions[index]})`;
    if (position >= body.byteLength) {
      throw new InvalidArgumentError(
        `the body holds ${index} record batch${index === 1 ? "" : "es"} but ${partitions.length} partitions were named, one per batch`,
      );
    }
    const budget = DECOMPRESSED_BYTES_MAX - decompressedBytes;
    const batch = await checkProducerBatch(body, position, label, budget).catch((error: unknown) => {
      if (error instanceof InvalidArgumentError && error.code === "DECOMPRESSED_TOO_LARGE") {
        throw new RecordTooLargeError(
          `${error.message}: a request's compressed batches may decompress to ${DECOMPRESSED_BYTES_MAX} bytes in all`,
          { cause: error, details: error.details },
        );
      }
      throw error;
    });
    if (batch.header.compression !== "none") decompressedBytes += batch.payload.byteLength;
    const limit = topic.settings.maxMessageBytes;
    if (batch.largestRecord.bytes > limit) {
      throw new RecordTooLargeError(
        `${label} record ${batch.largestRecord.index} is ${batch.largestRecord.bytes} bytes (key, value and headers), over the topic's max.message.bytes of ${limit}`,
        { details: { bytes: batch.largestRecord.bytes, limit } },
      );
    }
    checked.push(batch);
    position += batch.byteLength;
  }
  if (position < body.byteLength) {
    throw new InvalidArgumentError(
      `the body holds more than the ${partitions.length} record batch${partitions.length === 1 ? "" : "es"} named: ${body.byteLength - position} bytes follow batch ${partitions.length - 1}`,
    );
  }
  return checked;
}

/**
 * The request's idempotent producer, from the batch headers: every batch from the same producer id
 * and epoch, or none from any (producerId -1; its epoch and sequence are then ignored, as Kafka
 * ignores them).
 */
function producerOf(
  checked: CheckedProducerBatch[],
  partitions: number[],
): { producerId: number; producerEpoch: number } | undefined {
  const first = checked[0]!.header;
  for (let index = 1; index < checked.length; index++) {
    const header = checked[index]!.header;
    const idempotent = header.producerId >= 0;
    if (idempotent !== first.producerId >= 0) {
      const [withId, without] = idempotent ? [index, 0] : [0, index];
      throw new InvalidArgumentError(
        `batch ${withId} (partition ${partitions[withId]}) is from idempotent producer ${checked[withId]!.header.producerId} but batch ${without} (partition ${partitions[without]}) is from no producer: one request carries one producer's batches`,
      );
    }
    if (
      idempotent &&
      (header.producerId !== first.producerId || header.producerEpoch !== first.producerEpoch)
    ) {
      throw new InvalidArgumentError(
        `batch ${index} (partition ${partitions[index]}) is from producer ${header.producerId} epoch ${header.producerEpoch} but batch 0 from producer ${first.producerId} epoch ${first.producerEpoch}: one request carries one producer's batches`,
      );
    }
  }
  return first.producerId >= 0
    ? { producerId: first.producerId, producerEpoch: first.producerEpoch }
    : undefined;
}

/**
 * The object to upload: the request's bytes as they are, unless a batch must change (see the
 * module comment); then a copy, so the caller's bytes are never modified.
 */
async function prepareObject(
  request: AppendBatchesRequest,
  topic: Topic,
  checked: CheckedProducerBatch[],
  producer: { producerId: number; producerEpoch: number } | undefined,
  appendTime: number,
): Promise<{ body: Uint8Array; writes: PartitionWrite[] }> {
  const logAppend = topic.settings.timestampType === "LogAppendTime";
  const target = targetCompression(topic);
  const pieces: Uint8Array[] = [];
  let changed = false;
  let position = 0;
  for (const batch of checked) {
    const original = request.batches.subarray(position, position + batch.byteLength);
    position += batch.byteLength;
    let piece = original;
    if (target !== undefined && target !== batch.header.compression) {
      piece = await reencode(original, target, logAppend ? appendTime : undefined);
    } else if (logAppend || batch.header.maxTimestamp !== batch.maxTimestamp) {
      piece = original.slice();
      rewriteBatchTimestamps(
        piece,
        logAppend ? appendTime : batch.maxTimestamp,
        logAppend ? "log_append" : "create",
      );
    }
    changed ||= piece !== original;
    pieces.push(piece);
  }
  const body = changed ? concat(pieces) : request.batches;
  const writes: PartitionWrite[] = [];
  let offset = 0;
  checked.forEach((batch, index) => {
    const length = pieces[index]!.byteLength;
    writes.push({
      partition: request.partitions[index]!,
      recordCount: batch.header.recordCount,
      position: offset,
      length,
      firstTimestamp: logAppend ? appendTime : batch.minTimestamp,
      maxTimestamp: logAppend ? appendTime : batch.maxTimestamp,
      ...(producer ? { sequence: batch.header.baseSequence } : {}),
    });
    offset += length;
  });
  return { body, writes };
}

/** The codec a topic imposes, or undefined when it stores what producers send. */
function targetCompression(topic: Topic): Compression | undefined {
  const configured = topic.settings.compressionType;
  if (configured === "producer") return undefined;
  return configured === "uncompressed" ? "none" : configured;
}

/** A batch re-encoded with the topic's codec, its producer fields and record timestamps kept. */
async function reencode(
  batch: Uint8Array,
  compression: Compression,
  logAppendTime: number | undefined,
): Promise<Uint8Array> {
  const [decoded] = await decodeRecordBatches(batch);
  const header = decoded!;
  return encodeRecordBatch(header.records, {
    compression,
    ...(logAppendTime === undefined
      ? {}
      : { timestamp: logAppendTime, timestampType: "log_append" as const }),
    producerId: header.producerId,
    producerEpoch: header.producerId >= 0 ? header.producerEpoch : -1,
    baseSequence: header.producerId >= 0 ? header.baseSequence : -1,
  });
}

async function replayIfSeen(
  deps: RawBatchDependencies,
  topic: Topic,
  request: AppendBatchesRequest,
  requestHash: string,
  checked: CheckedProducerBatch[],
): Promise<AppendBatchesResult | undefined> {
  const item = await deps.metadata.get(idempotencyItemKey(topic.topicId, request.idempotencyKey!));
  if (!item || isExpired(item, deps.clock.now())) return undefined;
  if (item.state === "pending") {
    throw new ConflictError(`a request with idempotency key ${request.idempotencyKey} is still in progress`);
  }
  const record = idempotencyRecordFromItem(item);
  if (!record || record.requestHash !== requestHash) {
    throw new ConflictError(
      `idempotency key ${request.idempotencyKey} was already used for a different request`,
    );
  }
  return replayResult(topic, request.partitions, checked, record);
}

function replayResult(
  topic: Topic,
  partitions: number[],
  checked: CheckedProducerBatch[],
  record: IdempotencyRecord,
): AppendBatchesResult {
  const logAppend = topic.settings.timestampType === "LogAppendTime";
  const batches = partitions.map(
    (partition, index): AppendedBatch => ({
      partition,
      baseOffset: record.baseOffsets[partition]!,
      recordCount: checked[index]!.header.recordCount,
      duplicate: true,
      ...(logAppend ? { logAppendTime: record.appendTime } : {}),
    }),
  );
  return { topic: topic.name, batches, duplicate: true };
}

/** A digest of the request as sent: the same key with other bytes or partitions is a different request. */
function hashBatches(request: AppendBatchesRequest): string {
  const hash = createHash("sha256");
  hash.update(`record-batches\u001f${request.topic}\u001f${request.partitions.join(",")}\u001f`);
  hash.update(request.batches);
  return hash.digest("hex");
}

function encodePartitions(partitions: number[]): Uint8Array {
  const bytes = new Uint8Array(partitions.length * 2);
  const view = new DataView(bytes.buffer);
  partitions.forEach((partition, index) => {
    view.setUint16(index * 2, partition, true);
  });
  return bytes;
}

function concat(pieces: Uint8Array[]): Uint8Array {
  const body = new Uint8Array(pieces.reduce((total, piece) => total + piece.byteLength, 0));
  let position = 0;
  for (const piece of pieces) {
    body.set(piece, position);
    position += piece.byteLength;
  }
  return body;
}
