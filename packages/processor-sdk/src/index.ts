/**
 * What a Sluice processor handler imports. A handler receives a batch of one source partition's
 * records, in offset order, and answers with the records to append to its output topics and the
 * offsets that failed:
 *
 * ```ts
 * import { defineProcessor, json } from "@sluice/processor-sdk";
 *
 * export default defineProcessor(async (batch) => ({
 *   outputs: batch.records.map((record) => ({
 *     key: record.key,
 *     value: JSON.stringify({ ...json(record.value), seenAt: Date.now() }),
 *   })),
 * }));
 * ```
 *
 * Outputs are appended, and the checkpoint moved, in one transaction: a retried or re-run batch
 * never duplicates them. Side effects inside the handler run at least once; deduplicate them
 * with `ctx.idempotencyKey(record)`, which is the same on every attempt. No dependencies.
 */

export interface ProcessorHeader {
  key: string;
  value: Uint8Array | null;
}

export interface ProcessorRecord {
  offset: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: ProcessorHeader[];
}

export interface ProcessorBatch {
  processor: string;
  topic: string;
  partition: number;
  /** 1 on the first try of this batch's first record, then 2, 3, … on its retries. */
  attempt: number;
  /** In offset order; under per-key ordering a batch may hold several keys, each in order. */
  records: ProcessorRecord[];
}

export interface ProcessorContext {
  /** Stable across retries, runners and crashes: deduplicate side effects with it. */
  idempotencyKey(record: Pick<ProcessorRecord, "offset">): string;
  /** Aborted when the call runs past its timeout or the runner stops: stop then. */
  signal: AbortSignal;
}

/** A record to append to an output topic. */
export interface ProcessorOutput {
  /** One of the processor's output topics; may be left out when it has exactly one. */
  topic?: string;
  /** A string is stored as UTF-8. */
  key?: Uint8Array | string | null;
  /** A string is stored as UTF-8 (so `JSON.stringify(value)` stores JSON text). */
  value: Uint8Array | string | null;
  headers?: { key: string; value: Uint8Array | string | null }[];
  /** Default: the key's partition, or for a record without a key the source partition modulo the topic's partitions. */
  partition?: number;
  /** Milliseconds since the epoch; default the append time. */
  timestamp?: number;
  /**
   * The offset of the source record this output comes from. Required on every output of a result
   * that names failures: outputs of records that did not succeed are dropped (they come again
   * with the retry).
   */
  sourceOffset?: number;
}

export interface ProcessorResult {
  outputs?: ProcessorOutput[];
  /**
   * The batch's records that failed: offsets, or `{ offset, error }` to say why (the error ends up
   * in the dead letter's `sluice-error`). Records before the first failure of their ordering key
   * (the partition, under per-partition ordering) succeed; that failure is retried.
   */
  failures?: Failure[];
}

export type Failure = number | { offset: number; error?: string };

export type ProcessorHandler = (
  batch: ProcessorBatch,
  ctx: ProcessorContext,
) => ProcessorResult | undefined | Promise<ProcessorResult | undefined>;

/** A handler as Sluice loads it from a module: the module's default export (or a named one). */
export interface Processor {
  readonly kind: "sluice-processor";
  readonly handle: ProcessorHandler;
}

/** A batch handler. Throwing (or rejecting) fails the whole batch. */
export function defineProcessor(handle: ProcessorHandler): Processor {
  if (typeof handle !== "function")
    throw new TypeError("defineProcessor needs a function (batch, ctx) => result");
  return { kind: "sluice-processor", handle };
}

/**
 * A handler called once per record, in order. What it returns (nothing, one output or several)
 * becomes that record's outputs; a record whose call throws is a failure of that record alone.
 */
export function defineRecordProcessor(
  handle: (
    record: ProcessorRecord,
    ctx: ProcessorContext,
    batch: ProcessorBatch,
  ) =>
    | ProcessorOutput
    | ProcessorOutput[]
    | undefined
    | Promise<ProcessorOutput | ProcessorOutput[] | undefined>,
): Processor {
  return defineProcessor(async (batch, ctx) => {
    const outputs: ProcessorOutput[] = [];
    const failures: Failure[] = [];
    for (const record of batch.records) {
      try {
        const produced = await handle(record, ctx, batch);
        const list = produced === undefined ? [] : Array.isArray(produced) ? produced : [produced];
        for (const output of list) outputs.push({ ...output, sourceOffset: record.offset });
      } catch (error) {
        failures.push({
          offset: record.offset,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    return { outputs, failures };
  });
}

export function isProcessor(value: unknown): value is Processor {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Processor).kind === "sluice-processor" &&
    typeof (value as Processor).handle === "function"
  );
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes as UTF-8 text (null stays null). Throws on bytes that are not UTF-8. */
export function text(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : utf8.decode(bytes);
}

/** The bytes parsed as JSON text (null stays null). Throws on anything else. */
export function json<T = unknown>(bytes: Uint8Array | null): T | null {
  const decoded = text(bytes);
  return decoded === null ? null : (JSON.parse(decoded) as T);
}

// ---- The JSON event: what a Lambda function or a webhook receives and answers ----

/** Bytes in JSON, as the HTTP API's reads give them: JSON when they parse, else text, else base64. */
export type EventData =
  | { type: "JSON"; data: unknown }
  | { type: "STRING"; data: string }
  | { type: "BINARY"; data: string };

export interface ProcessorEventRecord {
  offset: number;
  timestamp: number;
  key: EventData | null;
  value: EventData | null;
  /** Header values in base64. */
  headers: { key: string; value: string | null }[];
  /** `ctx.idempotencyKey(record)` of a module handler. */
  idempotencyKey: string;
}

export interface ProcessorEvent {
  processor: string;
  topic: string;
  partition: number;
  attempt: number;
  records: ProcessorEventRecord[];
}

export interface ProcessorEventOutput {
  topic?: string;
  key?: EventData | null;
  value?: EventData | null;
  /** Header values in base64. */
  headers?: { key: string; value: string | null }[];
  partition?: number;
  timestamp?: number;
  sourceOffset?: number;
}

/** A webhook may also answer 2xx with no body: every record succeeded and there are no outputs. */
export interface ProcessorEventResult {
  outputs?: ProcessorEventOutput[];
  failures?: Failure[];
}

/**
 * Wraps a processor as a handler of the JSON event: the export of a Lambda function
 * (`export const handler = eventHandler(processor)`) or the body of a webhook endpoint.
 */
export function eventHandler(
  processor: Processor,
): (event: ProcessorEvent, signal?: unknown) => Promise<ProcessorEventResult> {
  return async (event, signal) => {
    const keys = new Map(event.records.map((record) => [record.offset, record.idempotencyKey]));
    const batch: ProcessorBatch = {
      processor: event.processor,
      topic: event.topic,
      partition: event.partition,
      attempt: event.attempt,
      records: event.records.map((record) => ({
        offset: record.offset,
        timestamp: record.timestamp,
        key: fromEventData(record.key),
        value: fromEventData(record.value),
        headers: record.headers.map((header) => ({
          key: header.key,
          value: header.value === null ? null : fromBase64(header.value),
        })),
      })),
    };
    const ctx: ProcessorContext = {
      idempotencyKey: (record) =>
        keys.get(record.offset) ?? `${event.processor}:${event.topic}:${event.partition}:${record.offset}`,
      // As a Lambda handler the second argument is Lambda's context, not a signal.
      signal: signal instanceof AbortSignal ? signal : new AbortController().signal,
    };
    const result = (await processor.handle(batch, ctx)) ?? {};
    return {
      ...(result.failures ? { failures: result.failures } : {}),
      outputs: (result.outputs ?? []).map((output) => ({
        ...(output.topic === undefined ? {} : { topic: output.topic }),
        key: toEventData(output.key ?? null),
        value: toEventData(output.value),
        ...(output.headers
          ? {
              headers: output.headers.map((header) => ({
                key: header.key,
                value: header.value === null ? null : toBase64(bytesOf(header.value)),
              })),
            }
          : {}),
        ...(output.partition === undefined ? {} : { partition: output.partition }),
        ...(output.timestamp === undefined ? {} : { timestamp: output.timestamp }),
        ...(output.sourceOffset === undefined ? {} : { sourceOffset: output.sourceOffset }),
      })),
    };
  };
}

const encoder = new TextEncoder();

function bytesOf(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

function fromEventData(data: EventData | null): Uint8Array | null {
  if (data === null) return null;
  if (data.type === "BINARY") return fromBase64(data.data);
  if (data.type === "STRING") return encoder.encode(data.data);
  return encoder.encode(JSON.stringify(data.data));
}

function toEventData(value: Uint8Array | string | null): EventData | null {
  if (value === null) return null;
  if (typeof value === "string") return { type: "STRING", data: value };
  return { type: "BINARY", data: toBase64(value) };
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
