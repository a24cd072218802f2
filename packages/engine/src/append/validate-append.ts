import { InvalidArgumentError } from "@sluice/core";
import { RecordTooLargeError } from "../errors.js";
import type { Topic } from "../topics/topic-registry.js";
import { type AppendRequest, type ProduceRecord, RECORDS_PER_REQUEST_MAX } from "./append-types.js";

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

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
  const limit = topic.settings.maxMessageBytes;
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    validateRecordShape(record, index, topic);
    const size = recordPayloadBytes(record);
    if (size > limit) {
      throw new RecordTooLargeError(
        `record ${index} is ${size} bytes, over the topic's max.message.bytes of ${limit}`,
        { details: { record: index, bytes: size, limit } },
      );
    }
  }
  if (request.idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(request.idempotencyKey)) {
    throw new InvalidArgumentError(
      "an idempotency key is 1 to 255 printable ASCII characters without spaces",
    );
  }
  if (request.producer) validateProducer(request.producer);
}

function validateRecordShape(record: ProduceRecord, index: number, topic: Topic): void {
  if (record.key !== null && !(record.key instanceof Uint8Array)) {
    throw new InvalidArgumentError(`record ${index}: key must be bytes or null`);
  }
  if (record.value !== null && !(record.value instanceof Uint8Array)) {
    throw new InvalidArgumentError(`record ${index}: value must be bytes or null`);
  }
  if (record.timestamp !== undefined && (!Number.isSafeInteger(record.timestamp) || record.timestamp < 0)) {
    throw new InvalidArgumentError(
      `record ${index}: timestamp must be a non-negative integer of milliseconds`,
    );
  }
  if (record.partition !== undefined) {
    if (!Number.isInteger(record.partition) || record.partition < 0) {
      throw new InvalidArgumentError(`record ${index}: invalid partition ${record.partition}`);
    }
    if (record.partition >= topic.partitions) {
      throw new InvalidArgumentError(
        `record ${index}: partition ${record.partition} does not exist; topic ${topic.name} has ${topic.partitions} partitions (0 to ${topic.partitions - 1})`,
        { details: { partition: record.partition, partitions: topic.partitions } },
      );
    }
  }
  for (const header of record.headers ?? []) {
    if (typeof header.key !== "string")
      throw new InvalidArgumentError(`record ${index}: header keys must be strings`);
    if (header.value !== null && !(header.value instanceof Uint8Array)) {
      throw new InvalidArgumentError(`record ${index}: header ${header.key} value must be bytes or null`);
    }
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
