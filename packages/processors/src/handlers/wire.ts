import type { EventData, ProcessorBatch, ProcessorEvent, ProcessorEventOutput } from "@sluice/processor-sdk";
import {
  checkFailures,
  checkList,
  type HandlerOutput,
  type HandlerResult,
  MalformedResultError,
} from "./result.js";

/**
 * The JSON event a Lambda function or a webhook receives, and the JSON result it answers: keys and
 * values as the HTTP API's reads give them (`{type, data}`: JSON when the bytes parse, else text,
 * else base64), header values in base64 (ARCHITECTURE.md, "Processors"; docs/processors.md).
 */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

export function toEvent(batch: ProcessorBatch, idempotencyKey: (offset: number) => string): ProcessorEvent {
  return {
    processor: batch.processor,
    topic: batch.topic,
    partition: batch.partition,
    attempt: batch.attempt,
    records: batch.records.map((record) => ({
      offset: record.offset,
      timestamp: record.timestamp,
      key: toData(record.key),
      value: toData(record.value),
      headers: record.headers.map((header) => ({
        key: header.key,
        value: header.value === null ? null : base64(header.value),
      })),
      idempotencyKey: idempotencyKey(record.offset),
    })),
  };
}

export function toData(bytes: Uint8Array | null): EventData | null {
  if (bytes === null) return null;
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { type: "BINARY", data: base64(bytes) };
  }
  try {
    return { type: "JSON", data: JSON.parse(text) as unknown };
  } catch {
    return { type: "STRING", data: text };
  }
}

/** Checks a JSON result (already parsed) from a Lambda function or a webhook. */
export function fromEventResult(value: unknown): HandlerResult {
  if (value === undefined || value === null || value === "")
    return { outputs: [], failures: [], errors: new Map() };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedResultError(
      `the answer must be a JSON object { outputs, failures } or empty, got ${JSON.stringify(value).slice(0, 100)}`,
    );
  }
  const result = value as { outputs?: unknown; failures?: unknown; batchItemFailures?: unknown };
  return {
    outputs: checkList(result.outputs, "outputs").map((output, index) => fromEventOutput(output, index)),
    // Lambda's ReportBatchItemFailures answer is accepted too, with offsets as item identifiers.
    ...checkFailures(result.failures ?? result.batchItemFailures),
  };
}

function fromEventOutput(value: unknown, index: number): HandlerOutput {
  const field = `outputs[${index}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MalformedResultError(`${field} must be an object`);
  const output = value as ProcessorEventOutput;
  if (output.topic !== undefined && typeof output.topic !== "string")
    throw new MalformedResultError(`${field}.topic must be a string`);
  const headers = checkList(output.headers, `${field}.headers`).map((header, headerIndex) => {
    const entry = header as { key?: unknown; value?: unknown };
    if (typeof entry !== "object" || entry === null || typeof entry.key !== "string") {
      throw new MalformedResultError(
        `${field}.headers[${headerIndex}] must be { key, value } with value in base64 or null`,
      );
    }
    return {
      key: entry.key,
      value:
        entry.value === null || entry.value === undefined
          ? null
          : fromBase64(entry.value, `${field}.headers[${headerIndex}].value`),
    };
  });
  const integer = (candidate: unknown, name: string) => {
    if (candidate === undefined) return undefined;
    if (typeof candidate !== "number" || !Number.isSafeInteger(candidate) || candidate < 0) {
      throw new MalformedResultError(`${field}.${name} must be a non-negative integer`);
    }
    return candidate;
  };
  const partition = integer(output.partition, "partition");
  const timestamp = integer(output.timestamp, "timestamp");
  return {
    topic: output.topic,
    sourceOffset: integer(output.sourceOffset, "sourceOffset"),
    record: {
      key: fromData(output.key ?? null, `${field}.key`),
      value: fromData(output.value ?? null, `${field}.value`),
      ...(headers.length > 0 ? { headers } : {}),
      ...(partition === undefined ? {} : { partition }),
      ...(timestamp === undefined ? {} : { timestamp }),
    },
  };
}

function fromData(data: unknown, field: string): Uint8Array | null {
  if (data === null) return null;
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new MalformedResultError(`${field} must be {"type": "JSON"|"STRING"|"BINARY", "data": …} or null`);
  }
  const { type, data: payload } = data as { type?: unknown; data?: unknown };
  switch (type) {
    case "JSON":
      if (payload === undefined) throw new MalformedResultError(`${field}.data is missing`);
      return utf8.encode(JSON.stringify(payload));
    case "STRING":
      if (typeof payload !== "string")
        throw new MalformedResultError(`${field}.data must be a string for type STRING`);
      return utf8.encode(payload);
    case "BINARY":
      if (typeof payload !== "string")
        throw new MalformedResultError(`${field}.data must be base64 for type BINARY`);
      return fromBase64(payload, `${field}.data`);
    default:
      throw new MalformedResultError(
        `${field}.type must be JSON, STRING or BINARY, got ${JSON.stringify(type)}`,
      );
  }
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function fromBase64(value: unknown, field: string): Uint8Array {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new MalformedResultError(`${field} is not base64`);
  }
  return new Uint8Array(Buffer.from(value, "base64"));
}
