import type { ProduceRecord } from "@sluice/engine";
import type { ProcessorOutput, ProcessorResult } from "@sluice/processor-sdk";

/** A handler's answer, checked: outputs as records to append, failures as offsets (with why, when said). */
export interface HandlerResult {
  outputs: HandlerOutput[];
  failures: number[];
  /** What the handler said about a failure, by offset. */
  errors: Map<number, string>;
}

export interface HandlerOutput {
  /** Undefined: the processor's only output topic. */
  topic: string | undefined;
  record: ProduceRecord;
  sourceOffset: number | undefined;
}

/**
 * A handler answered something that is not a result: the whole batch fails (and is retried, then
 * dead-lettered, like any failure) with this message in `sluice-error`.
 */
export class MalformedResultError extends Error {
  override readonly name = "MalformedResultError";
}

const utf8 = new TextEncoder();

function bytes(value: unknown, index: number, suffix: string): Uint8Array | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return utf8.encode(value);
  throw new MalformedResultError(
    `${at(index, suffix)} must be bytes, a string or null, got ${describe(value)}`,
  );
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

function integer(value: unknown, index: number, suffix: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new MalformedResultError(
      `${at(index, suffix)} must be a non-negative integer, got ${describe(value)}`,
    );
  }
  return value;
}

/** Checks a module handler's result (anything it returned) against ProcessorResult. */
export function checkModuleResult(value: unknown): HandlerResult {
  if (value === undefined || value === null) return { outputs: [], failures: [], errors: new Map() };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedResultError(
      `the handler must return { outputs, failures } or nothing, got ${describe(value)}`,
    );
  }
  const result = value as ProcessorResult;
  return {
    outputs: checkList(result.outputs, "outputs").map((output, index) =>
      checkModuleOutput(output as ProcessorOutput, index),
    ),
    ...checkFailures(result.failures),
  };
}

/**
 * One output, checked. It runs for every output of every batch, so the happy path makes no field
 * names (`at` makes one only for a message), no closures and no throwaway objects.
 */
function checkModuleOutput(output: ProcessorOutput, index: number): HandlerOutput {
  if (typeof output !== "object" || output === null)
    throw new MalformedResultError(`${at(index)} must be an object, got ${describe(output)}`);
  if (output.topic !== undefined && typeof output.topic !== "string")
    throw new MalformedResultError(`${at(index, ".topic")} must be a string`);
  if (!("value" in output))
    throw new MalformedResultError(`${at(index, ".value")} is missing (null for none)`);
  const key = output.key === undefined || output.key === null ? null : bytes(output.key, index, ".key");
  const value = bytes(output.value, index, ".value");
  let headers: { key: string; value: Uint8Array | null }[] | undefined;
  const headerList = output.headers;
  if (headerList !== undefined && headerList !== null) {
    const listed = Array.isArray(headerList) ? headerList : checkList(headerList, at(index, ".headers"));
    if (listed.length > 0)
      headers = listed.map((header, headerIndex) => checkHeader(header, index, headerIndex));
  }
  // Every field is there from the start (undefined when not given): routing sets the partition
  // without growing the object, and all outputs share one shape.
  const record: ProduceRecord = {
    key,
    value,
    headers,
    partition: output.partition === undefined ? undefined : integer(output.partition, index, ".partition"),
    timestamp: output.timestamp === undefined ? undefined : integer(output.timestamp, index, ".timestamp"),
  };
  return {
    topic: output.topic,
    sourceOffset:
      output.sourceOffset === undefined ? undefined : integer(output.sourceOffset, index, ".sourceOffset"),
    record,
  };
}

function checkHeader(
  header: unknown,
  index: number,
  headerIndex: number,
): { key: string; value: Uint8Array | null } {
  if (
    typeof header !== "object" ||
    header === null ||
    typeof (header as { key?: unknown }).key !== "string"
  ) {
    throw new MalformedResultError(`${at(index, `.headers[${headerIndex}]`)} must be { key, value }`);
  }
  const { key, value } = header as { key: string; value: unknown };
  return { key, value: bytes(value ?? null, index, `.headers[${headerIndex}].value`) };
}

/** The name of output `index`'s field `suffix` in a message: `outputs[3].key`. */
function at(index: number, suffix = ""): string {
  return `outputs[${index}]${suffix}`;
}

export function checkList(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new MalformedResultError(`${field} must be a list, got ${describe(value)}`);
  return value;
}

/**
 * Failures: offsets, `{ offset, error }`, or Lambda's `{ itemIdentifier }` entries with the offset
 * as text.
 */
export function checkFailures(value: unknown): { failures: number[]; errors: Map<number, string> } {
  const errors = new Map<number, string>();
  const failures = checkList(value, "failures").map((entry, index) => {
    let candidate: unknown = entry;
    if (typeof entry === "object" && entry !== null) {
      const object = entry as { itemIdentifier?: unknown; offset?: unknown; error?: unknown };
      candidate = "itemIdentifier" in object ? Number(object.itemIdentifier) : object.offset;
      if (typeof object.error === "string" && typeof candidate === "number")
        errors.set(candidate, object.error.slice(0, 1_000));
    }
    if (typeof candidate !== "number" || !Number.isSafeInteger(candidate) || candidate < 0) {
      throw new MalformedResultError(
        `failures[${index}] must be the offset of a record of the batch (or {offset, error}), got ${describe(entry)}`,
      );
    }
    return candidate;
  });
  return { failures, errors };
}
