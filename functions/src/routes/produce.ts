import type { Readable } from "node:stream";
import { createRoute, z } from "@hono/zod-openapi";
import { IDEMPOTENCY_KEY_PATTERN } from "@sluice/engine";
import type { Context } from "hono";
import { parseJsonBytes, readBodyBytes, readBodyChunks } from "../body.js";
import { type AppContext, type SluiceApp, untypedResponse } from "../context.js";
import { type DataType, JSON_DATA_DEPTH_MAX } from "../data-encoding.js";
import { type ErrorBody, httpError, validationHook } from "../http-errors.js";
import { type JsonObjectSlice, JsonObjectSplitter, MalformedJsonError } from "../json-stream.js";
import type { HttpLimits } from "../limits.js";
import { headerText, nodeHeaders, nodeIncoming } from "../node-bindings.js";
import {
  BASE64_PATTERN,
  TIMESTAMP_DESCRIPTION,
  TIMESTAMP_SCHEMA,
  WELL_FORMED_TEXT_PATTERN,
} from "../patterns.js";
import { ProduceAnswer } from "../produce-answer.js";
import { FastRecordPreparer } from "../produce-fast-path.js";
import { type ScannedRecord, scanBody } from "../produce-record-scanner.js";
import {
  type AppendOutcome,
  appendInChunks,
  type DeliveryReport,
  DeliveryReportSchema,
  deliveryReport,
  type PreparedRecord,
  ProduceRecordSchema,
  type ProducerHeaders,
  prepareRecord,
  producerPartition,
  recordError,
  topicForRecords,
} from "../produce-records.js";
import { COMMON_ERRORS, errorResponses, integerText, TopicParamsSchema } from "../schemas.js";

/** What OpenAPI cannot say of parameters, said in each one's description. */
const PRODUCER_HEADERS_RULE =
  "Sluice-Producer-Id, -Epoch and -Sequence go together (one without the others is 400), and with them every record names the same explicit partition_id.";

const ProduceHeadersSchema = z.object({
  "idempotency-key": z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, { message: "must be 1 to 255 printable ASCII characters without spaces" })
    .optional()
    .openapi({
      description:
        "A retry with the same key (within 24 hours) returns the original reports and writes nothing",
    }),
  "sluice-producer-id": integerText(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .openapi({ description: `From POST /producers. ${PRODUCER_HEADERS_RULE}` }),
  "sluice-producer-epoch": integerText(0, 32_767)
    .optional()
    .openapi({ description: `From POST /producers. ${PRODUCER_HEADERS_RULE}` }),
  "sluice-producer-sequence": integerText(0, 2_147_483_647)
    .optional()
    .openapi({
      description: `Sequence number of the request's first record in its partition. ${PRODUCER_HEADERS_RULE}`,
    }),
});

/**
 * ProduceRecord as the document states it: the record's fields, with the timestamp in exactly the
 * forms parseTimestamp reads. Documentation only: records are checked one by one by prepareRecord,
 * so that one bad record in a stream or batch is reported without failing the others.
 */
const DocumentedRecordShape = {
  ...ProduceRecordSchema.shape,
  headers: z
    .array(z.unknown())
    .optional()
    .openapi({ items: { $ref: "#/components/schemas/ProduceHeader" } }),
  key: z
    .unknown()
    .optional()
    .openapi({ oneOf: [{ $ref: "#/components/schemas/ProduceData" }, { type: "null" }] }),
  value: z
    .unknown()
    .optional()
    .openapi({ oneOf: [{ $ref: "#/components/schemas/ProduceData" }, { type: "null" }] }),
  timestamp: z
    .unknown()
    .optional()
    .openapi({ ...TIMESTAMP_SCHEMA, description: `${TIMESTAMP_DESCRIPTION}; default the append time` }),
};
/** `{type, data}` with `data` as each type takes it (encodeData). */
const PRODUCE_DATA_SCHEMA = {
  description: `How \`data\` becomes the stored bytes. JSON data nests at most ${JSON_DATA_DEPTH_MAX} levels.`,
  oneOf: [
    dataForm("BINARY", { type: "string", pattern: BASE64_PATTERN, description: "Canonical base64" }),
    dataForm("STRING", {
      type: "string",
      pattern: WELL_FORMED_TEXT_PATTERN,
      description: "Text, stored as UTF-8 (so no lone surrogate)",
    }),
    dataForm("JSON", { description: "Any JSON value, null included, stored as its JSON text" }),
  ],
};

function dataForm(type: DataType, data: Record<string, unknown>) {
  return {
    type: "object" as const,
    additionalProperties: false,
    required: ["type", "data"],
    properties: { type: { type: "string" as const, const: type }, data },
  };
}

const PRODUCE_HEADER_SCHEMA = {
  type: "object" as const,
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string" as const, pattern: WELL_FORMED_TEXT_PATTERN },
    value: {
      oneOf: [{ type: "string" as const, pattern: BASE64_PATTERN }, { type: "null" as const }],
      description: "Canonical base64, or null",
    },
  },
};

const DocumentedRecordSchema = z.strictObject(DocumentedRecordShape).openapi("ProduceRecord");

const BatchEntrySchema = z
  .strictObject({
    id: z.string().min(1).openapi({ description: "The caller's name for the entry, unique in the request" }),
    ...DocumentedRecordShape,
  })
  .openapi("ProduceBatchEntry");

const BatchRequestSchema = z
  .strictObject({ entries: z.array(BatchEntrySchema).min(1).max(10_000) })
  .openapi("ProduceBatchRequest");

const BatchResponseSchema = z
  .object({
    successes: z.array(DeliveryReportSchema.extend({ id: z.string() })),
    failures: z.array(z.object({ id: z.string(), error_code: z.number().int(), message: z.string() })),
  })
  .openapi("ProduceBatchResponse");

const TAGS = ["Produce"];

/** The request's headers that ProduceHeadersSchema knows, each read on its own. */
function produceHeaders(c: Context): Record<string, string> {
  const node = nodeHeaders(c);
  const headers: Record<string, string> = {};
  for (const name of PRODUCE_HEADER_NAMES) {
    const value = node ? headerText(node[name]) : c.req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

const PRODUCE_HEADER_NAMES = Object.keys(ProduceHeadersSchema.shape);

/** Hono's path syntax for an OpenAPI path: `{name}` → `:name`. */
function honoPath(path: string): string {
  return path.replaceAll(/\{([^}]+)\}/g, ":$1");
}

function validationFailed(c: Context, target: "param" | "header", error: z.ZodError): Response {
  return validationHook({ success: false, error, data: undefined, target } as never, c) as Response;
}

function producerFrom(headers: z.output<typeof ProduceHeadersSchema>): ProducerHeaders | undefined {
  const id = headers["sluice-producer-id"];
  const epoch = headers["sluice-producer-epoch"];
  const sequence = headers["sluice-producer-sequence"];
  if (id === undefined && epoch === undefined && sequence === undefined) return undefined;
  if (id === undefined || epoch === undefined || sequence === undefined) {
    const missing = [
      id === undefined && "Sluice-Producer-Id",
      epoch === undefined && "Sluice-Producer-Epoch",
      sequence === undefined && "Sluice-Producer-Sequence",
    ].filter(Boolean);
    throw httpError(
      400,
      `missing header ${missing.join(" and ")}: Sluice-Producer-Id, Sluice-Producer-Epoch and Sluice-Producer-Sequence go together`,
    );
  }
  return { producerId: id, producerEpoch: epoch, sequence };
}

interface RecordStream {
  /**
   * The records, in order: parsed JSON, or ScannedRecords when every record had the common form
   * the scanner reads (then `recordBytes` is set).
   */
  items: unknown[];
  /** Each record's bytes, when `items` are ScannedRecords: a record refused is parsed for its message. */
  recordBytes?: (index: number) => Uint8Array;
  /** The first malformed record (its index is items.length); nothing after it was parsed. */
  malformed?: string;
}

/**
 * Reads the body's concatenated JSON objects: all of the common form, by the scanner, straight from
 * the bytes; otherwise as a stream of objects, stopping at the first place where it stops being
 * one (splitRecords), the objects parsed together at the end (parseRecords).
 */
async function readRecordStream(
  request: Request,
  limits: HttpLimits,
  incoming: Readable | undefined,
): Promise<RecordStream> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of readBodyChunks(request, limits.requestBytesMax, incoming)) chunks.push(chunk);
  } catch (error) {
    // Split as it arrived, the body would have stopped at a malformed record, or one too many,
    // before this error if either came first: that answer stands.
    const stopped = splitRecords(chunks, limits, false);
    if (stopped) return stopped;
    throw error;
  }
  // The usual small request is one chunk: a view of it, not a copy.
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  const body = only ? Buffer.from(only.buffer, only.byteOffset, only.byteLength) : Buffer.concat(chunks);
  const scanned = scanBody(body, limits.recordsPerRequestMax);
  if (scanned) {
    const { records, starts, ends } = scanned;
    return { items: records, recordBytes: (index) => body.subarray(starts[index], ends[index]) };
  }
  return splitRecords(chunks, limits, true)!;
}

/**
 * The body's records, split as a stream of concatenated JSON objects. `complete` false: the body
 * ended in an error, and only a stop before it (a malformed record, one too many) is answered;
 * undefined when there was none.
 */
function splitRecords(chunks: Uint8Array[], limits: HttpLimits, complete: boolean): RecordStream | undefined {
  const splitter = new JsonObjectSplitter();
  const slices: JsonObjectSlice[] = [];
  let broken: string | undefined;
  try {
    for (const chunk of chunks) {
      for (const slice of splitter.push(chunk)) {
        slices.push(slice);
        if (slices.length > limits.recordsPerRequestMax) {
          // A malformed record before the limit ends the stream there, as if read one by one.
          const counted = parseRecords(slices);
          if (counted.malformed !== undefined) return counted;
          throw httpError(
            413,
            `too many records in one request: over the limit of ${limits.recordsPerRequestMax}`,
          );
        }
      }
      if (splitter.failure) throw splitter.failure;
    }
    if (!complete) return undefined;
    splitter.end();
  } catch (error) {
    if (!(error instanceof MalformedJsonError)) throw error;
    broken = error.message;
  }
  const parsed = parseRecords(slices);
  return parsed.malformed === undefined && broken !== undefined ? { ...parsed, malformed: broken } : parsed;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const OPEN = 0x5b;
const COMMA = 0x2c;
const CLOSE = 0x5d;

/**
 * Parses the records: all at once as one JSON array (one UTF-8 decode, one JSON.parse — most of
 * the cost of a streaming produce used to be a decode and a parse per record), and, only when that
 * fails, one by one up to the first malformed record, for its message.
 */
function parseRecords(slices: JsonObjectSlice[]): RecordStream {
  if (slices.length === 0) return { items: [] };
  let size = 1 + slices.length;
  for (const slice of slices) size += slice.bytes.byteLength;
  const joined = new Uint8Array(size);
  joined[0] = OPEN;
  let position = 1;
  for (const slice of slices) {
    joined.set(slice.bytes, position);
    position += slice.bytes.byteLength;
    joined[position++] = COMMA;
  }
  joined[size - 1] = CLOSE;
  try {
    const items = JSON.parse(strictUtf8.decode(joined)) as unknown[];
    if (items.length === slices.length) return { items };
  } catch {
    // Some record is malformed: find the first below.
  }
  const items: unknown[] = [];
  for (const slice of slices) {
    try {
      items.push(parseJsonBytes(slice.bytes, "record"));
    } catch (error) {
      const problem = (error as Error).message.replace(/^malformed JSON in record: /, "");
      return { items, malformed: `${problem} (the record starts at byte ${slice.start} of the body)` };
    }
  }
  return { items };
}

interface Slot {
  prepared?: PreparedRecord;
  error?: unknown;
}

/**
 * Producer requests are written whole or not at all: their sequence numbers count every record,
 * so dropping one would shift the rest. One rejected record rejects the others.
 */
function rejectAllIfAnyFails(slots: Slot[], label: (index: number) => string): void {
  const first = slots.findIndex((slot) => slot.error !== undefined);
  if (first < 0) return;
  slots.forEach((slot, index) => {
    if (slot.error !== undefined) return;
    slot.prepared = undefined;
    slot.error = httpError(
      400,
      `${label(index)} not written: ${label(first)} was rejected, and a request with Sluice-Producer-* headers is written whole or not at all`,
    );
  });
}

async function appendSlots(
  context: AppContext,
  topicName: string,
  slots: Slot[],
  options: { idempotencyKey?: string; producer?: ProducerHeaders & { partition: number } },
): Promise<(AppendOutcome & { prepared?: PreparedRecord })[]> {
  const valid = slots.filter((slot) => slot.prepared !== undefined);
  const outcomes =
    valid.length === 0
      ? []
      : await appendInChunks(
          context,
          topicName,
          valid.map((slot) => slot.prepared!.record),
          options,
        );
  let next = 0;
  return slots.map((slot) => {
    if (slot.prepared === undefined) return { ok: false, error: slot.error };
    // The engine's outcome, given its record: a spread here cost a tenth of the server's time on
    // batches of 1,000 (V8 copies properties one by one).
    const outcome: AppendOutcome & { prepared?: PreparedRecord } = outcomes[next++]!;
    outcome.prepared = slot.prepared;
    return outcome;
  });
}

function retryAfterIfUnavailable(c: Context, errors: ErrorBody[]): void {
  if (errors.some((error) => error.error_code === 503)) c.header("Retry-After", "1");
}

export function registerProduceRoutes(app: SluiceApp, context: AppContext): void {
  const { engine, limits } = context;
  app.openAPIRegistry.registerComponent("schemas", "ProduceData", PRODUCE_DATA_SCHEMA);
  app.openAPIRegistry.registerComponent("schemas", "ProduceHeader", PRODUCE_HEADER_SCHEMA);
  app.openAPIRegistry.register("ProduceRecord", DocumentedRecordSchema);
  app.openAPIRegistry.register("ProduceBatchRequest", BatchRequestSchema);

  const produce = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/records",
    tags: TAGS,
    summary: "Produce one record, or a stream of concatenated records",
    description: [
      "The body is one ProduceRecord, or several concatenated (whitespace between them optional) — Confluent's streaming mode.",
      "One record answers with its DeliveryReport, or with the error status and an error body.",
      "Several records answer 200 with one report per line (application/x-ndjson), in order: a DeliveryReport, or",
      "`{error_code, message}` for a record that was rejected; the valid records are written as one append.",
      "A malformed record ends the stream: the records before it are written, it gets a 400 report, and nothing after it is read",
      "(when the first record is malformed the answer is 400 and nothing is written).",
    ].join(" "),
    request: {
      params: TopicParamsSchema,
      headers: ProduceHeadersSchema,
      body: {
        required: true,
        content: { "application/json": { schema: { $ref: "#/components/schemas/ProduceRecord" } } },
      },
    },
    responses: {
      200: {
        description: "The delivery report(s)",
        content: {
          "application/json": { schema: DeliveryReportSchema },
          // A plain schema object (not zod): this body is text, so the handler returns a plain Response.
          "application/x-ndjson": {
            schema: {
              type: "string",
              description: "Several records: one DeliveryReport or {error_code, message} per line, in order",
            },
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });

  const produceBatch = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/records:batch",
    tags: TAGS,
    summary: "Produce a batch of records with a success or failure per entry",
    description:
      "Entries are checked one by one; the valid ones are written as one append (one object, one commit) and the invalid ones are listed in `failures`.",
    request: {
      params: TopicParamsSchema,
      headers: ProduceHeadersSchema,
      body: {
        required: true,
        content: { "application/json": { schema: { $ref: "#/components/schemas/ProduceBatchRequest" } } },
      },
    },
    responses: {
      207: {
        description: "One success or failure per entry",
        content: { "application/json": { schema: BatchResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });

  // The hottest route checks its path and headers itself, with the same schemas and messages as
  // the generated validators, but synchronously and reading only the four headers it has, where
  // the validators built every header into an object and parsed it asynchronously (about a
  // twentieth of a single produce's server time; docs/benchmarks.md). The document still
  // describes it from `produce`.
  app.openAPIRegistry.registerPath(produce);
  app.post(honoPath(produce.path), async (c) => {
    const params = TopicParamsSchema.safeParse(c.req.param());
    if (!params.success) return validationFailed(c, "param", params.error);
    const checked = ProduceHeadersSchema.safeParse(produceHeaders(c));
    if (!checked.success) return validationFailed(c, "header", checked.error);
    const { topic_name } = params.data;
    const headers = checked.data;
    const producer = producerFrom(headers);
    await engine.topics.get(topic_name);
    const stream = await readRecordStream(c.req.raw, limits, nodeIncoming(c));
    if (stream.items.length === 0) {
      if (stream.malformed !== undefined)
        throw httpError(400, `malformed JSON in request body: ${stream.malformed}`);
      throw httpError(
        400,
        "request body is empty: expected a ProduceRecord JSON object, or several concatenated",
      );
    }
    const single = stream.items.length === 1 && stream.malformed === undefined;
    const topic = await topicForRecords(context, topic_name, stream.items);
    const partition = producer ? producerPartition(stream.items, (index) => `record ${index}`) : undefined;
    const fast = new FastRecordPreparer(topic);
    const { recordBytes } = stream;
    const slots: Slot[] = stream.items.map((input, index) => {
      const prepared = recordBytes ? fast.prepareScanned(input as ScannedRecord) : fast.prepare(input);
      if (prepared) return { prepared };
      try {
        // A scanned record the topic refuses is parsed, so that prepareRecord words the error.
        const parsed = recordBytes ? parseJsonBytes(recordBytes(index), "record") : input;
        return { prepared: prepareRecord(parsed, `record ${index}`, topic) };
      } catch (error) {
        if (single) throw error;
        return { error };
      }
    });
    if (stream.malformed !== undefined) {
      slots.push({ error: httpError(400, `record ${slots.length}: malformed JSON: ${stream.malformed}`) });
    }
    if (producer) rejectAllIfAnyFails(slots, (index) => `record ${index}`);
    const outcomes = await appendSlots(context, topic_name, slots, {
      ...(headers["idempotency-key"] === undefined ? {} : { idempotencyKey: headers["idempotency-key"] }),
      ...(producer ? { producer: { ...producer, partition: partition! } } : {}),
    });

    if (single) {
      const outcome = outcomes[0]!;
      if (!outcome.ok) throw outcome.error;
      return c.json(deliveryReport(context, topic_name, outcome.prepared!, outcome.appended), 200);
    }
    const logged = new Map<unknown, ErrorBody>();
    const answer = new ProduceAnswer(context.clusterId, topic_name, outcomes.length);
    for (const outcome of outcomes) {
      if (outcome.ok) answer.report(outcome.prepared!, outcome.appended);
      else answer.error(recordError(context, outcome.error, logged, topic_name));
    }
    retryAfterIfUnavailable(c, [...logged.values()]);
    c.header("Content-Type", "application/x-ndjson");
    return untypedResponse(c.body(answer.bytes(), 200));
  });

  app.openapi(produceBatch, async (c) => {
    const { topic_name } = c.req.valid("param");
    const headers = c.req.valid("header");
    const producer = producerFrom(headers);
    await engine.topics.get(topic_name);
    const body = parseJsonBytes(
      await readBodyBytes(c.req.raw, limits.requestBytesMax, nodeIncoming(c)),
      "request body",
    );
    const entries = batchEntries(body, limits);
    const topic = await topicForRecords(
      context,
      topic_name,
      entries.map((entry) => entry.record),
    );
    const label = (index: number) => `entries.${index} (id ${JSON.stringify(entries[index]!.id)})`;
    const partition = producer
      ? producerPartition(
          entries.map((entry) => entry.record),
          label,
        )
      : undefined;
    const fast = new FastRecordPreparer(topic);
    const slots: Slot[] = entries.map((entry, index) => {
      const prepared = fast.prepare(entry.record);
      if (prepared) return { prepared };
      try {
        return { prepared: prepareRecord(entry.record, label(index), topic) };
      } catch (error) {
        return { error };
      }
    });
    if (producer) rejectAllIfAnyFails(slots, label);
    const outcomes = await appendSlots(context, topic_name, slots, {
      ...(headers["idempotency-key"] === undefined ? {} : { idempotencyKey: headers["idempotency-key"] }),
      ...(producer ? { producer: { ...producer, partition: partition! } } : {}),
    });
    const logged = new Map<unknown, ErrorBody>();
    const successes: (DeliveryReport & { id: string })[] = [];
    const failures: ({ id: string } & ErrorBody)[] = [];
    outcomes.forEach((outcome, index) => {
      const id = entries[index]!.id;
      if (outcome.ok)
        successes.push({ id, ...deliveryReport(context, topic_name, outcome.prepared!, outcome.appended) });
      else failures.push({ id, ...recordError(context, outcome.error, logged, topic_name) });
    });
    retryAfterIfUnavailable(c, [...logged.values()]);
    return c.json({ successes, failures }, 207);
  });
}

/** The entries of a batch body with their ids split off; shape errors fail the whole request. */
function batchEntries(body: unknown, limits: HttpLimits): { id: string; record: unknown }[] {
  if (typeof body !== "object" || body === null || !Array.isArray((body as { entries?: unknown }).entries)) {
    throw httpError(
      400,
      'invalid request body: expected {"entries": [...]}, an object with an array of records',
    );
  }
  const raw = (body as { entries: unknown[] }).entries;
  const extra = Object.keys(body).filter((key) => key !== "entries");
  if (extra.length > 0) throw httpError(400, `invalid request body: unknown field ${extra.join(", ")}`);
  if (raw.length === 0) throw httpError(400, "invalid request body: entries is empty");
  if (raw.length > limits.recordsPerRequestMax) {
    throw httpError(
      413,
      `too many records in one request: ${raw.length} (at most ${limits.recordsPerRequestMax})`,
    );
  }
  const seen = new Set<string>();
  return raw.map((entry, index) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw httpError(400, `invalid request body: entries.${index} must be an object`);
    }
    const { id, ...record } = entry as Record<string, unknown>;
    if (typeof id !== "string" || id.length === 0) {
      throw httpError(400, `invalid request body: entries.${index}.id must be a non-empty string`);
    }
    if (seen.has(id))
      throw httpError(400, `invalid request body: entries.${index}.id ${JSON.stringify(id)} is used twice`);
    seen.add(id);
    return { id, record };
  });
}
