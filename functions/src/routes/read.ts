import { createRoute, z } from "@hono/zod-openapi";
import {
  type ConsumedRecord,
  type FetchResult,
  OffsetOutOfRangeError,
  type PartitionOffsets,
} from "@sluice/engine";
import { streamSSE } from "hono/streaming";
import { type AppContext, type SluiceApp, waitSignal } from "../context.js";
import { DATA_TYPES, type DataType, decodeData, encodeBase64 } from "../data-encoding.js";
import { describeError } from "../http-errors.js";
import { COMMON_ERRORS, errorResponses, integerText, PartitionParamsSchema } from "../schemas.js";
import { isoTimestamp } from "../timestamps.js";

const DataOutSchema = z.object({ type: z.enum(DATA_TYPES), data: z.unknown() }).openapi("DataOut");

const ConsumedRecordSchema = z
  .object({
    offset: z.number().int(),
    timestamp: z.string().openapi({ description: "ISO-8601" }),
    timestamp_ms: z.number().int(),
    key: DataOutSchema.nullable(),
    value: DataOutSchema.nullable(),
    headers: z.array(
      z.object({ name: z.string(), value: z.string().nullable().openapi({ description: "Base64" }) }),
    ),
  })
  .openapi("ConsumedRecord");

const ReadResponseSchema = z
  .object({
    cluster_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    records: z.array(ConsumedRecordSchema),
    next_offset: z.number().int().openapi({ description: "The offset to read from next" }),
    high_watermark: z.number().int(),
    log_start_offset: z.number().int(),
  })
  .openapi("ReadResponse");

type ConsumedRecordJson = z.infer<typeof ConsumedRecordSchema>;

/**
 * The binary form of a read: the stored Kafka RecordBatch v2 batches, concatenated, as they are
 * (docs/http-api.md, "Reading record batches"). Serving them needs no decoding and no JSON.
 */
const RECORD_BATCH_MEDIA_TYPE = "application/vnd.kafka.record-batch.v2";

/** Where a read stands, on JSON and record-batch answers alike: a binary body has no room for it. */
const OFFSET_HEADERS = {
  "Sluice-Next-Offset": {
    description: "The offset to read from next (next_offset)",
    schema: { type: "integer" as const, minimum: 0 },
  },
  "Sluice-High-Watermark": {
    description: "The partition's high watermark (high_watermark)",
    schema: { type: "integer" as const, minimum: 0 },
  },
  "Sluice-Log-Start-Offset": {
    description: "The partition's first offset (log_start_offset)",
    schema: { type: "integer" as const, minimum: 0 },
  },
};

function offsetHeaders(result: { nextOffset: number; highWatermark: number; logStartOffset: number }) {
  return {
    "Sluice-Next-Offset": String(result.nextOffset),
    "Sluice-High-Watermark": String(result.highWatermark),
    "Sluice-Log-Start-Offset": String(result.logStartOffset),
  };
}

function recordJson(record: ConsumedRecord, keyType: DataType, valueType: DataType): ConsumedRecordJson {
  return {
    offset: record.offset,
    timestamp: isoTimestamp(record.timestamp),
    timestamp_ms: record.timestamp,
    key: decodeData(record.key, keyType),
    value: decodeData(record.value, valueType),
    headers: record.headers.map((header) => ({
      name: header.key,
      value: header.value === null ? null : encodeBase64(header.value),
    })),
  };
}

/** `earliest` and `latest` need the partition's offsets; a number needs nothing read. */
async function resolveOffset(
  requested: string | undefined,
  offsets: () => Promise<PartitionOffsets>,
  where: { topic: string; partition: number },
): Promise<number> {
  if (requested === undefined || requested === "earliest") return (await offsets()).logStartOffset;
  if (requested === "latest") return (await offsets()).highWatermark;
  const offset = Number(requested);
  if (!Number.isSafeInteger(offset)) {
    // Past 2^53 a number is no longer exact, and no partition gets there: quote the text as sent.
    const known = await offsets();
    throw new OffsetOutOfRangeError(
      `offset ${requested} is out of range for partition ${where.partition} of topic ${where.topic}: valid offsets are ${known.logStartOffset} to ${known.highWatermark}`,
    );
  }
  return offset;
}

/**
 * Settles with undefined as soon as `signal` aborts, even when the abort lands before the engine
 * listens for it (the engine reads the topic and head first, and an abort in between would
 * otherwise hold the request until its timeout).
 */
function unlessAborted<T>(signal: AbortSignal, start: () => Promise<T>): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    start().then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export function registerReadRoutes(app: SluiceApp, context: AppContext): void {
  const { engine, limits, clusterId } = context;

  const readRecords = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}/records",
    tags: ["Read"],
    summary: "Read a partition: a page of records, a long-poll, or a server-sent-events tail",
    description: [
      "Returns records from `offset` on. With `timeout_ms` and no records at `offset` yet, waits up to that long for one",
      "(long-poll), then answers. With `Accept: text/event-stream`, streams every record from `offset` (or from",
      "Last-Event-ID + 1) as an SSE event `record` whose id is the offset, with `: keep-alive` comments while idle; the",
      "stream ends when the client disconnects, or after `timeout_ms` when given. An error during the stream is sent",
      "as an `error` event with {error_code, message}, and the stream ends.",
      `With \`Accept: ${RECORD_BATCH_MEDIA_TYPE}\`, answers the stored Kafka RecordBatch v2 batches as bytes instead`,
      "(whole batches from the one holding `offset`, base offsets set, compressed ones as stored; records before `offset`",
      "are the reader's to skip; `max_records` then counts whole batches, and `key_type` and `value_type` do not apply),",
      "with the offsets in the Sluice-Next-Offset, Sluice-High-Watermark and Sluice-Log-Start-Offset headers.",
    ].join(" "),
    request: {
      params: PartitionParamsSchema,
      query: z.object({
        offset: z
          .string()
          .regex(/^(earliest|latest|\d+)$/, { message: "must be earliest, latest or a non-negative integer" })
          .optional()
          .openapi({ description: "earliest (default), latest, or an offset", example: "earliest" }),
        max_bytes: integerText(1, limits.readBytesMax).optional().openapi({
          description: "Soft limit; at least one batch is returned. Default 1 MiB",
        }),
        max_records: integerText(1, 10_000).optional().openapi({ description: "Default 10,000" }),
        timeout_ms: integerText(0, limits.readTimeoutMsMax)
          .optional()
          .openapi({
            description: `Long-poll wait when no records are there yet (0 to ${limits.readTimeoutMsMax}, default 0); bounds an SSE stream`,
          }),
        key_type: z.enum(DATA_TYPES).optional().openapi({
          description:
            "The preferred type of keys; each record falls back when its bytes do not fit (JSON to STRING when not JSON text, to BINARY when not UTF-8) and says the type it got. Default JSON",
        }),
        value_type: z.enum(DATA_TYPES).optional().openapi({
          description:
            "The preferred type of values; each record falls back when its bytes do not fit (JSON to STRING when not JSON text, to BINARY when not UTF-8) and says the type it got. Default JSON",
        }),
      }),
      headers: z.object({
        "last-event-id": integerText(0, Number.MAX_SAFE_INTEGER).optional().openapi({
          description: "SSE: resume after this offset",
        }),
      }),
    },
    responses: {
      200: {
        description: "Records",
        headers: OFFSET_HEADERS,
        content: {
          "application/json": { schema: ReadResponseSchema },
          [RECORD_BATCH_MEDIA_TYPE]: {
            schema: {
              type: "string",
              format: "binary",
              description: "Concatenated Kafka RecordBatch v2 batches (empty when there are no records yet)",
            },
          },
          // A plain schema object (not zod): the stream is text, so the handler returns a plain Response.
          "text/event-stream": {
            schema: {
              type: "string",
              description:
                "Events `record` (id = offset, data = a ConsumedRecord plus partition_id) and `error`",
            },
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS, 416),
    },
  });

  app.openapi(readRecords, async (c) => {
    const { topic_name, partition_id } = c.req.valid("param");
    const query = c.req.valid("query");
    // JSON by default: with its fallbacks, each record comes back as it was most likely produced.
    const keyType = query.key_type ?? "JSON";
    const valueType = query.value_type ?? "JSON";
    const where = { topic: topic_name, partition: partition_id };
    let known: PartitionOffsets | undefined;
    const offsets = async () => {
      known ??= await engine.partitionOffsets(topic_name, partition_id);
      return known;
    };
    const readFrom = (offset: number) =>
      engine.fetch({
        topic: topic_name,
        partition: partition_id,
        offset,
        ...(query.max_bytes === undefined ? {} : { maxBytes: query.max_bytes }),
        ...(query.max_records === undefined ? {} : { maxRecords: query.max_records }),
      });

    if (c.req.header("accept")?.includes("text/event-stream")) {
      const lastEventId = c.req.valid("header")["last-event-id"];
      const start =
        lastEventId === undefined ? await resolveOffset(query.offset, offsets, where) : lastEventId + 1;
      // The first fetch happens before the stream starts, so a bad offset is a plain 416.
      const first = await readFrom(start);
      const deadline =
        query.timeout_ms === undefined ? Number.POSITIVE_INFINITY : engine.clock.now() + query.timeout_ms;
      return streamSSE(c, async (stream) => {
        const stop = new AbortController();
        const onRequestAbort = () => stop.abort();
        stream.onAbort(() => stop.abort());
        const requestSignal = waitSignal(c.req.raw, context);
        requestSignal.addEventListener("abort", onRequestAbort);
        try {
          let result: FetchResult = first;
          for (;;) {
            for (const record of result.records) {
              if (stop.signal.aborted) return;
              const data = { ...recordJson(record, keyType, valueType), partition_id };
              await stream.writeSSE({
                id: String(record.offset),
                event: "record",
                data: JSON.stringify(data),
              });
            }
            const offset = result.nextOffset;
            if (stop.signal.aborted || engine.clock.now() >= deadline) return;
            if (result.records.length === 0) {
              const wait = Math.min(deadline - engine.clock.now(), limits.keepAliveIntervalMs);
              const highWatermark = await unlessAborted(stop.signal, () =>
                engine.waitForRecords(topic_name, partition_id, offset, wait, stop.signal),
              );
              if (highWatermark === undefined || stop.signal.aborted) return;
              if (highWatermark <= offset) {
                if (engine.clock.now() >= deadline) return;
                await stream.write(": keep-alive\n\n");
                result = { ...result, records: [] };
                continue;
              }
            }
            result = await readFrom(offset);
          }
        } catch (error) {
          const described = describeError(error, context.logger, {
            method: "GET",
            path: c.req.path,
            sse: true,
          });
          await stream.writeSSE({
            event: "error",
            data: JSON.stringify({ error_code: described.status, message: described.message }),
          });
        } finally {
          requestSignal.removeEventListener("abort", onRequestAbort);
        }
      });
    }

    const offset = await resolveOffset(query.offset, offsets, where);
    const timeoutMs = query.timeout_ms ?? 0;
    // Only a read at the end waits; an offset past the end must answer 416 at once, not after the wait.
    if (timeoutMs > 0 && offset === (await offsets()).highWatermark) {
      const signal = waitSignal(c.req.raw, context);
      await unlessAborted(signal, () =>
        engine.waitForRecords(topic_name, partition_id, offset, timeoutMs, signal),
      );
    }
    if (c.req.header("accept")?.includes(RECORD_BATCH_MEDIA_TYPE)) {
      const batches = await engine.fetchBatches({
        topic: topic_name,
        partition: partition_id,
        offset,
        ...(query.max_bytes === undefined ? {} : { maxBytes: query.max_bytes }),
        ...(query.max_records === undefined ? {} : { maxRecords: query.max_records }),
      });
      // Bytes, where the typed route expects its JSON schema.
      return c.body(batches.batches, 200, {
        "Content-Type": RECORD_BATCH_MEDIA_TYPE,
        ...offsetHeaders(batches),
      }) as never;
    }
    const result = await readFrom(offset);
    for (const [name, value] of Object.entries(offsetHeaders(result))) c.header(name, value);
    return c.json(
      {
        cluster_id: clusterId,
        topic_name,
        partition_id,
        records: result.records.map((record) => recordJson(record, keyType, valueType)),
        next_offset: result.nextOffset,
        high_watermark: result.highWatermark,
        log_start_offset: result.logStartOffset,
      },
      200,
    );
  });
}
