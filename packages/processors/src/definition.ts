import { InvalidArgumentError } from "@sluice/core";

/**
 * A processor's settings (ARCHITECTURE.md, "Processors"), in the JSON shape the HTTP API, the CLI
 * and the local server's config file share (snake_case, Confluent style), and the checked form
 * the runner uses. Every setting the API accepts is enforced; `parseProcessorJson` refuses the
 * rest with an error naming the field.
 */

export type HandlerSpec =
  | { kind: "module"; module: string; exportName: string }
  | { kind: "lambda"; functionName: string }
  | { kind: "webhook"; url: string; headers: Record<string, string> };

export type StartingPosition =
  | { kind: "earliest" }
  | { kind: "latest" }
  | { kind: "timestamp"; timestampMs: number };

/** A condition on one string or JSON value; all conditions of a filter must hold. */
export type Match =
  | { kind: "equals"; value: string | number | boolean | null }
  | { kind: "prefix"; prefix: string }
  | { kind: "exists"; exists: boolean }
  | { kind: "anyOf"; values: (string | number | boolean | null)[] };

export interface RecordFilter {
  /** On the key as UTF-8 text. */
  key?: Match;
  /** On header values as UTF-8 text, by header name. */
  headers: Record<string, Match>;
  /** On fields of the JSON value, by dot path (`customer.tier`). */
  value: Record<string, Match>;
}

export interface RetryPolicy {
  /** Handler calls for one record before it is dead-lettered, the first included. */
  maxAttempts: number;
  /** Wait before the second attempt; doubled for each further one. */
  backoffMs: number;
  maxBackoffMs: number;
  /** A record that fails when older than this is dead-lettered at once. */
  maxRecordAgeMs: number | null;
  /** A handler call running longer fails (the whole batch). */
  timeoutMs: number;
}

/**
 * `partition`: one batch of a partition at a time, in offset order. `key`: `parallelism` lanes per
 * partition, each key in order. `shared`: no order; the processor's own share group hands records
 * to `parallelism` concurrent batches per runtime, however many partitions there are
 * (ARCHITECTURE.md, "Shared processors").
 */
export type Ordering =
  | { kind: "partition" }
  | { kind: "key"; parallelism: number }
  | { kind: "shared"; parallelism: number };

export interface ProcessorSpec {
  name: string;
  topics: string[];
  handler: HandlerSpec;
  batchRecords: number;
  batchBytes: number;
  batchWindowMs: number;
  startingPosition: StartingPosition;
  filter: RecordFilter | null;
  retry: RetryPolicy;
  bisectOnError: boolean;
  deadLetterTopic: string | null;
  outputTopics: string[];
  ordering: Ordering;
}

export const PROCESSOR_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
const LAMBDA_NAME_PATTERN =
  /^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$/;
const EXPORT_NAME_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;

export const LIMITS = {
  topics: 10,
  outputTopics: 10,
  batchRecords: { min: 1, max: 10_000, default: 100 },
  batchBytes: { min: 1_024, max: 16 * 1024 * 1024, default: 1024 * 1024 },
  /** A Lambda payload is at most 6 MB, and JSON with base64 takes more room than the records. */
  lambdaBatchBytesMax: 4 * 1024 * 1024,
  batchWindowMs: { min: 0, max: 300_000, default: 0 },
  maxAttempts: { min: 1, max: 10_000, default: 3 },
  backoffMs: { min: 0, max: 3_600_000, default: 1_000 },
  maxBackoffMs: { max: 24 * 3_600_000, default: 60_000 },
  maxRecordAgeMs: { min: 1_000, max: 365 * 24 * 3_600_000 },
  timeoutMs: { min: 1, max: 900_000, default: 30_000 },
  parallelism: { min: 1, max: 100, default: 4 },
  /**
   * Under SHARED ordering a record's deliveries are counted by its share group, whose
   * `delivery.count.limit` is at most 100; one delivery beyond the attempts is kept for a record
   * whose holder died (ARCHITECTURE.md, "Shared processors").
   */
  sharedMaxAttempts: 99,
  filterConditions: 50,
  webhookHeaders: 50,
} as const;

/** The JSON shape (snake_case) of a processor's definition, as sent and as described. */
export interface ProcessorJson {
  name: string;
  topics: string[];
  handler:
    | { type: "module"; module: string; export?: string }
    | { type: "lambda"; function_name: string }
    | { type: "webhook"; url: string; headers?: Record<string, string> };
  batch_size?: number;
  batch_max_bytes?: number;
  batch_window_ms?: number;
  starting_position?: "EARLIEST" | "LATEST" | "AT_TIMESTAMP";
  /** Milliseconds since the epoch or an ISO-8601 date-time; with AT_TIMESTAMP. */
  starting_timestamp?: number | string;
  filter?: { key?: unknown; headers?: Record<string, unknown>; value?: Record<string, unknown> } | null;
  retry?: {
    max_attempts?: number;
    backoff_ms?: number;
    max_backoff_ms?: number;
    max_record_age_ms?: number | null;
    timeout_ms?: number;
  };
  bisect_on_error?: boolean;
  dead_letter_topic?: string | null;
  output_topics?: string[];
  ordering?: "PARTITION" | "KEY" | "SHARED";
  parallelism?: number;
}

function invalid(field: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${problem}`, { details: { field } });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function integer(value: unknown, field: string, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value))
    throw invalid(field, `must be an integer, got ${JSON.stringify(value)}`);
  if (value < min || value > max) throw invalid(field, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function topicName(value: unknown, field: string): string {
  if (typeof value !== "string" || !TOPIC_NAME_PATTERN.test(value)) {
    throw invalid(
      field,
      `must be a topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function refuseUnknown(value: Record<string, unknown>, field: string, known: readonly string[]): void {
  for (const name of Object.keys(value)) {
    if (!known.includes(name))
      throw invalid(field ? `${field}.${name}` : name, `unknown field (known: ${known.join(", ")})`);
  }
}

const TOP_LEVEL_FIELDS = [
  "name",
  "topics",
  "handler",
  "batch_size",
  "batch_max_bytes",
  "batch_window_ms",
  "starting_position",
  "starting_timestamp",
  "filter",
  "retry",
  "bisect_on_error",
  "dead_letter_topic",
  "output_topics",
  "ordering",
  "parallelism",
] as const;

/**
 * Checks a definition in its JSON shape and fills in the defaults. Every problem is an
 * InvalidArgumentError naming the field (`retry.max_attempts: must be between 1 and 10000`).
 * Whether the topics exist is checked by ProcessorAdmin, which knows them.
 */
export function parseProcessorJson(json: unknown): ProcessorSpec {
  if (!isObject(json)) throw new InvalidArgumentError("a processor definition is a JSON object");
  refuseUnknown(json, "", TOP_LEVEL_FIELDS);
  const name = json.name;
  if (typeof name !== "string" || !PROCESSOR_NAME_PATTERN.test(name)) {
    throw invalid("name", `must be 1 to 249 of a-z, A-Z, 0-9, '.', '_', '-', got ${JSON.stringify(name)}`);
  }
  if (!Array.isArray(json.topics) || json.topics.length === 0)
    throw invalid("topics", "must name at least one source topic");
  if (json.topics.length > LIMITS.topics) throw invalid("topics", `at most ${LIMITS.topics} source topics`);
  const topics = json.topics.map((topic, index) => topicName(topic, `topics[${index}]`));
  if (new Set(topics).size !== topics.length) throw invalid("topics", "names a topic twice");

  const handler = parseHandler(json.handler);
  const batchRecords = integer(
    json.batch_size,
    "batch_size",
    LIMITS.batchRecords.min,
    LIMITS.batchRecords.max,
    LIMITS.batchRecords.default,
  );
  const batchBytes = integer(
    json.batch_max_bytes,
    "batch_max_bytes",
    LIMITS.batchBytes.min,
    LIMITS.batchBytes.max,
    LIMITS.batchBytes.default,
  );
  if (handler.kind === "lambda" && batchBytes > LIMITS.lambdaBatchBytesMax) {
    throw invalid(
      "batch_max_bytes",
      `at most ${LIMITS.lambdaBatchBytesMax} for a Lambda handler (a synchronous invocation carries at most 6 MB, and the JSON event is larger than its records), got ${batchBytes}`,
    );
  }
  const batchWindowMs = integer(
    json.batch_window_ms,
    "batch_window_ms",
    LIMITS.batchWindowMs.min,
    LIMITS.batchWindowMs.max,
    LIMITS.batchWindowMs.default,
  );
  const startingPosition = parseStartingPosition(json.starting_position, json.starting_timestamp);
  const filter = json.filter === undefined || json.filter === null ? null : parseFilter(json.filter);
  const retry = parseRetry(json.retry);
  if (json.bisect_on_error !== undefined && typeof json.bisect_on_error !== "boolean")
    throw invalid("bisect_on_error", "must be true or false");
  const bisectOnError = json.bisect_on_error === true;

  const deadLetterTopic =
    json.dead_letter_topic === undefined || json.dead_letter_topic === null
      ? null
      : topicName(json.dead_letter_topic, "dead_letter_topic");
  if (json.output_topics !== undefined && !Array.isArray(json.output_topics))
    throw invalid("output_topics", "must be a list of topic names");
  const outputTopics = ((json.output_topics as unknown[] | undefined) ?? []).map((topic, index) =>
    topicName(topic, `output_topics[${index}]`),
  );
  if (outputTopics.length > LIMITS.outputTopics)
    throw invalid("output_topics", `at most ${LIMITS.outputTopics} output topics`);
  if (new Set(outputTopics).size !== outputTopics.length)
    throw invalid("output_topics", "names a topic twice");
  for (const [index, topic] of outputTopics.entries()) {
    // A processor writing to its own source would read its own outputs again, forever.
    if (topics.includes(topic))
      throw invalid(`output_topics[${index}]`, `${topic} is a source topic of this processor`);
  }
  if (deadLetterTopic !== null) {
    if (topics.includes(deadLetterTopic))
      throw invalid("dead_letter_topic", `${deadLetterTopic} is a source topic of this processor`);
    if (outputTopics.includes(deadLetterTopic))
      throw invalid("dead_letter_topic", `${deadLetterTopic} is also an output topic`);
  }

  const orderingText = json.ordering ?? "PARTITION";
  if (orderingText !== "PARTITION" && orderingText !== "KEY" && orderingText !== "SHARED")
    throw invalid("ordering", `must be PARTITION, KEY or SHARED, got ${JSON.stringify(orderingText)}`);
  let ordering: Ordering;
  if (orderingText === "PARTITION") {
    if (json.parallelism !== undefined && json.parallelism !== 1) {
      throw invalid(
        "parallelism",
        "applies to ordering KEY or SHARED only: under PARTITION ordering a partition's records are handled one batch at a time",
      );
    }
    ordering = { kind: "partition" };
  } else {
    const parallelism = integer(
      json.parallelism,
      "parallelism",
      LIMITS.parallelism.min,
      LIMITS.parallelism.max,
      LIMITS.parallelism.default,
    );
    ordering = orderingText === "KEY" ? { kind: "key", parallelism } : { kind: "shared", parallelism };
  }
  if (ordering.kind === "shared") refuseUnenforcedInShared(batchWindowMs, bisectOnError, retry);
  return {
    name,
    topics,
    handler,
    batchRecords,
    batchBytes,
    batchWindowMs,
    startingPosition,
    filter,
    retry,
    bisectOnError,
    deadLetterTopic,
    outputTopics,
    ordering,
  };
}

/**
 * Settings a shared processor cannot honour are refused rather than ignored: a share group hands
 * out what is available at once (no batching window), redelivers records one by one (nothing to
 * bisect), and counts deliveries up to 100.
 */
function refuseUnenforcedInShared(batchWindowMs: number, bisectOnError: boolean, retry: RetryPolicy): void {
  if (batchWindowMs > 0)
    throw invalid(
      "batch_window_ms",
      "must be 0 with ordering SHARED: a shared processor hands records out as they are acquired",
    );
  if (bisectOnError)
    throw invalid(
      "bisect_on_error",
      "does not apply with ordering SHARED: failed records are redelivered one by one, each with its own delivery count",
    );
  if (retry.maxAttempts > LIMITS.sharedMaxAttempts)
    throw invalid(
      "retry.max_attempts",
      `at most ${LIMITS.sharedMaxAttempts} with ordering SHARED (a share group counts at most 100 deliveries of a record), got ${retry.maxAttempts}`,
    );
}

function parseHandler(value: unknown): HandlerSpec {
  if (!isObject(value)) throw invalid("handler", 'must be an object with "type": module, lambda or webhook');
  switch (value.type) {
    case "module": {
      refuseUnknown(value, "handler", ["type", "module", "export"]);
      if (typeof value.module !== "string" || value.module.length === 0 || value.module.length > 4_096) {
        throw invalid(
          "handler.module",
          "must be the path of a module (relative to the config file) or a package name",
        );
      }
      const exportName = value.export ?? "default";
      if (typeof exportName !== "string" || !EXPORT_NAME_PATTERN.test(exportName))
        throw invalid("handler.export", "must be an export name");
      return { kind: "module", module: value.module, exportName };
    }
    case "lambda": {
      refuseUnknown(value, "handler", ["type", "function_name"]);
      if (typeof value.function_name !== "string" || !LAMBDA_NAME_PATTERN.test(value.function_name)) {
        throw invalid(
          "handler.function_name",
          "must be a Lambda function name or ARN, optionally with :alias or :version",
        );
      }
      return { kind: "lambda", functionName: value.function_name };
    }
    case "webhook": {
      refuseUnknown(value, "handler", ["type", "url", "headers"]);
      let url: URL;
      try {
        url = new URL(String(value.url));
      } catch {
        throw invalid(
          "handler.url",
          `must be an absolute http or https URL, got ${JSON.stringify(value.url)}`,
        );
      }
      if (typeof value.url !== "string" || (url.protocol !== "http:" && url.protocol !== "https:")) {
        throw invalid(
          "handler.url",
          `must be an absolute http or https URL, got ${JSON.stringify(value.url)}`,
        );
      }
      const headers: Record<string, string> = {};
      if (value.headers !== undefined) {
        if (!isObject(value.headers))
          throw invalid("handler.headers", "must be an object of header names to string values");
        const entries = Object.entries(value.headers);
        if (entries.length > LIMITS.webhookHeaders)
          throw invalid("handler.headers", `at most ${LIMITS.webhookHeaders} headers`);
        for (const [header, headerValue] of entries) {
          if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(header))
            throw invalid(`handler.headers.${header}`, "is not a valid header name");
          if (typeof headerValue !== "string" || /[\r\n\0]/.test(headerValue) || headerValue.length > 8_192) {
            throw invalid(
              `handler.headers.${header}`,
              "must be a string without line breaks, at most 8192 characters",
            );
          }
          headers[header] = headerValue;
        }
      }
      return { kind: "webhook", url: value.url, headers };
    }
    default:
      throw invalid("handler.type", `must be module, lambda or webhook, got ${JSON.stringify(value.type)}`);
  }
}

function parseStartingPosition(position: unknown, timestamp: unknown): StartingPosition {
  const kind = position ?? "LATEST";
  if (kind === "EARLIEST" || kind === "LATEST") {
    if (timestamp !== undefined)
      throw invalid("starting_timestamp", "applies to starting_position AT_TIMESTAMP only");
    return { kind: kind === "EARLIEST" ? "earliest" : "latest" };
  }
  if (kind !== "AT_TIMESTAMP") {
    throw invalid(
      "starting_position",
      `must be EARLIEST, LATEST or AT_TIMESTAMP, got ${JSON.stringify(kind)}`,
    );
  }
  let timestampMs: number;
  if (typeof timestamp === "number" && Number.isSafeInteger(timestamp) && timestamp >= 0)
    timestampMs = timestamp;
  else if (
    typeof timestamp === "string" &&
    /^\d{4}-\d{2}-\d{2}T/.test(timestamp) &&
    !Number.isNaN(Date.parse(timestamp))
  ) {
    timestampMs = Date.parse(timestamp);
  } else {
    throw invalid(
      "starting_timestamp",
      "required with AT_TIMESTAMP: milliseconds since the epoch or an ISO-8601 date-time",
    );
  }
  return { kind: "timestamp", timestampMs };
}

function parseRetry(value: unknown): RetryPolicy {
  if (value === undefined) value = {};
  if (!isObject(value)) throw invalid("retry", "must be an object");
  refuseUnknown(value, "retry", [
    "max_attempts",
    "backoff_ms",
    "max_backoff_ms",
    "max_record_age_ms",
    "timeout_ms",
  ]);
  const maxAttempts = integer(
    value.max_attempts,
    "retry.max_attempts",
    LIMITS.maxAttempts.min,
    LIMITS.maxAttempts.max,
    LIMITS.maxAttempts.default,
  );
  const backoffMs = integer(
    value.backoff_ms,
    "retry.backoff_ms",
    LIMITS.backoffMs.min,
    LIMITS.backoffMs.max,
    LIMITS.backoffMs.default,
  );
  const maxBackoffMs = integer(
    value.max_backoff_ms,
    "retry.max_backoff_ms",
    backoffMs,
    LIMITS.maxBackoffMs.max,
    Math.max(backoffMs, LIMITS.maxBackoffMs.default),
  );
  const maxRecordAgeMs =
    value.max_record_age_ms === undefined || value.max_record_age_ms === null
      ? null
      : integer(
          value.max_record_age_ms,
          "retry.max_record_age_ms",
          LIMITS.maxRecordAgeMs.min,
          LIMITS.maxRecordAgeMs.max,
        );
  const timeoutMs = integer(
    value.timeout_ms,
    "retry.timeout_ms",
    LIMITS.timeoutMs.min,
    LIMITS.timeoutMs.max,
    LIMITS.timeoutMs.default,
  );
  return { maxAttempts, backoffMs, maxBackoffMs, maxRecordAgeMs, timeoutMs };
}

function parseFilter(value: unknown): RecordFilter {
  if (!isObject(value))
    throw invalid("filter", "must be an object with key, headers and/or value conditions");
  refuseUnknown(value, "filter", ["key", "headers", "value"]);
  let conditions = 0;
  const filter: RecordFilter = { headers: {}, value: {} };
  if (value.key !== undefined) {
    filter.key = parseMatch(value.key, "filter.key");
    conditions++;
  }
  for (const part of ["headers", "value"] as const) {
    const entries = value[part];
    if (entries === undefined) continue;
    if (!isObject(entries)) throw invalid(`filter.${part}`, "must be an object of names to conditions");
    for (const [name, match] of Object.entries(entries)) {
      if (name.length === 0 || name.length > 256)
        throw invalid(`filter.${part}`, "names must be 1 to 256 characters");
      if (part === "value" && name.split(".").some((segment) => segment.length === 0)) {
        throw invalid(`filter.value.${name}`, "is not a dot path of field names (customer.tier)");
      }
      filter[part][name] = parseMatch(match, `filter.${part}.${name}`);
      conditions++;
    }
  }
  if (conditions === 0) throw invalid("filter", "has no conditions (leave it out to handle every record)");
  if (conditions > LIMITS.filterConditions)
    throw invalid("filter", `at most ${LIMITS.filterConditions} conditions`);
  return filter;
}

function isScalar(value: unknown): value is string | number | boolean | null {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function parseMatch(value: unknown, field: string): Match {
  if (isScalar(value)) return { kind: "equals", value };
  if (!isObject(value) || Object.keys(value).length !== 1) {
    throw invalid(
      field,
      'must be a value to equal, or one of {"prefix": text}, {"exists": true|false}, {"any_of": [values]}',
    );
  }
  if ("prefix" in value) {
    if (typeof value.prefix !== "string") throw invalid(`${field}.prefix`, "must be a string");
    return { kind: "prefix", prefix: value.prefix };
  }
  if ("exists" in value) {
    if (typeof value.exists !== "boolean") throw invalid(`${field}.exists`, "must be true or false");
    return { kind: "exists", exists: value.exists };
  }
  if ("any_of" in value) {
    if (!Array.isArray(value.any_of) || value.any_of.length === 0 || !value.any_of.every(isScalar)) {
      throw invalid(`${field}.any_of`, "must be a non-empty list of strings, numbers, booleans or null");
    }
    return { kind: "anyOf", values: value.any_of };
  }
  throw invalid(field, `unknown condition ${Object.keys(value)[0]} (known: prefix, exists, any_of)`);
}

/** The JSON shape of a checked definition, every default filled in. */
export function toProcessorJson(spec: ProcessorSpec): Required<
  Omit<ProcessorJson, "starting_timestamp" | "parallelism">
> & {
  starting_timestamp?: number;
  parallelism?: number;
} {
  const handler: ProcessorJson["handler"] =
    spec.handler.kind === "module"
      ? { type: "module", module: spec.handler.module, export: spec.handler.exportName }
      : spec.handler.kind === "lambda"
        ? { type: "lambda", function_name: spec.handler.functionName }
        : { type: "webhook", url: spec.handler.url, headers: spec.handler.headers };
  return {
    name: spec.name,
    topics: spec.topics,
    handler,
    batch_size: spec.batchRecords,
    batch_max_bytes: spec.batchBytes,
    batch_window_ms: spec.batchWindowMs,
    starting_position:
      spec.startingPosition.kind === "earliest"
        ? "EARLIEST"
        : spec.startingPosition.kind === "latest"
          ? "LATEST"
          : "AT_TIMESTAMP",
    ...(spec.startingPosition.kind === "timestamp"
      ? { starting_timestamp: spec.startingPosition.timestampMs }
      : {}),
    filter: spec.filter === null ? null : filterJson(spec.filter),
    retry: {
      max_attempts: spec.retry.maxAttempts,
      backoff_ms: spec.retry.backoffMs,
      max_backoff_ms: spec.retry.maxBackoffMs,
      max_record_age_ms: spec.retry.maxRecordAgeMs,
      timeout_ms: spec.retry.timeoutMs,
    },
    bisect_on_error: spec.bisectOnError,
    dead_letter_topic: spec.deadLetterTopic,
    output_topics: spec.outputTopics,
    ordering:
      spec.ordering.kind === "partition" ? "PARTITION" : spec.ordering.kind === "key" ? "KEY" : "SHARED",
    ...(spec.ordering.kind === "partition" ? {} : { parallelism: spec.ordering.parallelism }),
  };
}

function matchJson(match: Match): unknown {
  switch (match.kind) {
    case "equals":
      return match.value;
    case "prefix":
      return { prefix: match.prefix };
    case "exists":
      return { exists: match.exists };
    case "anyOf":
      return { any_of: match.values };
  }
}

function filterJson(filter: RecordFilter): NonNullable<ProcessorJson["filter"]> {
  return {
    ...(filter.key ? { key: matchJson(filter.key) } : {}),
    headers: Object.fromEntries(
      Object.entries(filter.headers).map(([name, match]) => [name, matchJson(match)]),
    ),
    value: Object.fromEntries(Object.entries(filter.value).map(([name, match]) => [name, matchJson(match)])),
  };
}
