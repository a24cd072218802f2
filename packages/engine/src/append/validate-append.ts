import { InvalidArgumentError } from "@sluice/core";
import { RecordTooLargeError } from "../errors.js";
import type { Topic } from "../topics/topic-registry.js";
import { type AppendRequest, type ProduceRecord, RECORDS_PER_REQUEST_MAX } from "./append-types.js";

/** Printable ASCII without spaces, 1 to 255 characters (the HTTP schema documents the same pattern). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * Checks the whole request before anything is written, so a rejected request leaves no trace.
 * Messages name the record index and the limit, so a client can find the bad record.
 */
export function validateAppend(request: AppendRequest, topic: Topic): void {
  const { records } = request;
  if (!Array.isArray(records) || records.length === 0) {
    throw new InvalidArgumentError("an append needs at least one record");
  }
  if (records.length > RECORDS_PER_REQUEST_MAX) {
    throw new InvalidArgumentError(
      `too many records in one request: ${records.length} (at most ${RECORDS_PER_REQUEST_MAX})`,
      { details: { records: records.length } },
    );
  }
  for (let index = 0; index < records.length; index++) {
    validateRecord(records[index]!, topic, { label: `record ${index}` });
  }
  if (request.idempotencyKey !== undefined) validateIdempotencyKey(request.idempotencyKey);
  if (request.producer) validateProducer(request.producer);
}

export interface RecordLabels {
  /** Names the record in messages: `record 2`, `entries.2 (id "c")`. */
  label: string;
  /** What the caller calls the partition field. Default "partition". */
  partitionField?: string;
}

/**
 * The rules for one record, whoever sends it (the HTTP apps check each record with these before
 * appending, so one bad record is reported on its own): bytes or null, a sane timestamp, an
 * existing partition, and key, value and headers within the topic's max.message.bytes.
 * Throws InvalidArgumentError, or RecordTooLargeError (413).
 */
export function validateRecord(record: ProduceRecord, topic: Topic, labels: RecordLabels): void {
  const { label } = labels;
  const partitionField = labels.partitionField ?? "partition";
  if (record.key !== null && !(record.key instanceof Uint8Array)) {
    throw new InvalidArgumentError(`${label}: key must be bytes or null`);
  }
  if (record.value !== null && !(record.value instanceof Uint8Array)) {
    throw new InvalidArgumentError(`${label}: value must be bytes or null`);
  }
  if (record.key === null && topic.settings.cleanupPolicy.compact) {
    // Kafka refuses these too: key compaction keeps the latest record per key.
    throw new InvalidArgumentError(
      `${label} has no key; topic ${topic.name} has cleanup.policy ${topic.configs["cleanup.policy"]}, which keeps the latest record per key, so every record needs one`,
      { code: "INVALID_RECORD" },
    );
  }
  if (record.timestamp !== undefined && (!Number.isSafeInteger(record.timestamp) || record.timestamp < 0)) {
    throw new InvalidArgumentError(`${label}: timestamp must be a non-negative integer of milliseconds`);
  }
  if (record.partition !== undefined) {
    if (!Number.isInteger(record.partition) || record.partition < 0) {
      throw new InvalidArgumentError(`${label}: invalid ${partitionField} ${record.partition}`);
    }
    if (record.partition >= topic.partitions) {
      throw new InvalidArgumentError(
        `${label}: ${partitionField} ${record.partition} does not exist; topic ${topic.name} has ${topic.partitions} partition${topic.partitions === 1 ? "" : "s"} (0 to ${topic.partitions - 1})`,
        { details: { partition: record.partition, partitions: topic.partitions } },
      );
    }
  }
  for (const header of record.headers ?? []) {
    if (typeof header.key !== "string")
      throw new InvalidArgumentError(`${label}: header keys must be strings`);
    if (header.value !== null && !(header.value instanceof Uint8Array)) {
      throw new InvalidArgumentError(`${label}: header ${header.key} value must be bytes or null`);
    }
  }
  const size = recordPayloadBytes(record);
  const limit = topic.settings.maxMessageBytes;
  if (size > limit) {
    throw new RecordTooLargeError(
      `${label} is ${size} bytes (key, value and headers), over the topic's max.message.bytes of ${limit}`,
      { details: { bytes: size, limit } },
    );
  }
}

/** An idempotency key is 1 to 255 printable ASCII characters without spaces. */
export function validateIdempotencyKey(key: string): void {
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new InvalidArgumentError(
      `invalid idempotency key: an idempotency key is 1 to 255 printable ASCII characters without spaces`,
    );
  }
}

function validateProducer(producer: NonNullable<AppendRequest["producer"]>): void {
  const { producerId, producerEpoch, baseSequences } = producer;
  if (!Number.isSafeInteger(producerId) || producerId < 0) {
    throw new InvalidArgumentError(`invalid producer id ${producerId}`);
  }
  if (!Number.isInteger(producerEpoch) || producerEpoch < 0 || producerEpoch > 32767) {
    throw new InvalidArgumentError(`invalid producer epoch ${producerEpoch}: expected 0 to 32767`);
  }
  for (const [partition, sequence] of Object.entries(baseSequences)) {
    if (!Number.isInteger(sequence) || sequence < 0 || sequence > 2147483647) {
      throw new InvalidArgumentError(`invalid producer sequence ${sequence} for partition ${partition}`);
    }
  }
}

/** The bytes a record carries: key, value, header keys and values. */
export function recordPayloadBytes(record: ProduceRecord): number {
  let size = (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
  for (const header of record.headers ?? []) {
    size += Buffer.byteLength(header.key) + (header.value?.byteLength ?? 0);
  }
  return size;
}
