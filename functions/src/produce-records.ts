import { z } from "@hono/zod-openapi";
import { InvalidArgumentError } from "@sluice/core";
import {
  type AppendedRecord,
  type ProduceRecord,
  RECORDS_PER_REQUEST_MAX,
  RecordTooLargeError,
  type Topic,
} from "@sluice/engine";
import type { AppContext } from "./context.js";
import { DATA_TYPES, type DataType, decodeBase64, encodeData, encodeUtf8 } from "./data-encoding.js";
import { describeError, type ErrorBody } from "./http-errors.js";
import { isoTimestamp, parseTimestamp } from "./timestamps.js";

/**
 * The produce pipeline shared by `records` (single and streaming) and `records:batch`: validate
 * each record on its own (so one bad record is reported, not the whole request), then append the
 * valid ones in as few engine appends as possible — one per 10,000 records.
 */

export const DataSchema = z
  .strictObject({
    type: z.enum(DATA_TYPES).openapi({ description: "How `data` is encoded into the stored bytes" }),
    data: z
      .unknown()
      .refine((data) => data !== undefined, { message: "is required" })
      .openapi({
        description:
          "BINARY: a base64 string. STRING: a string, stored as UTF-8. JSON: any JSON value, stored as its JSON text.",
      }),
  })
  .openapi("Data");

export const HeaderSchema = z
  .strictObject({
    name: z.string(),
    value: z.string().nullable().optional().openapi({ description: "Base64, or null" }),
  })
  .openapi("Header");

export const ProduceRecordSchema = z
  .strictObject({
    partition_id: z.number().int().min(0).max(2_147_483_647).optional().openapi({
      description:
        "Explicit partition; otherwise murmur2(key) like Kafka's default partitioner, or sticky for null keys",
    }),
    headers: z.array(HeaderSchema).optional(),
    key: DataSchema.nullable().optional(),
    value: DataSchema.nullable().optional(),
    timestamp: z.union([z.string(), z.number()]).optional().openapi({
      description: "ISO-8601 date-time with a zone, or epoch milliseconds; default the append time",
    }),
  })
  .openapi("ProduceRecord");

export const DeliveryReportSchema = z
  .object({
    error_code: z.literal(200),
    cluster_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    offset: z.number().int(),
    timestamp: z.string().openapi({ description: "ISO-8601" }),
    key: z.object({ type: z.enum(DATA_TYPES), size: z.number().int() }).nullable(),
    value: z.object({ type: z.enum(DATA_TYPES), size: z.number().int() }).nullable(),
  })
  .openapi("DeliveryReport");

export type DeliveryReport = z.infer<typeof DeliveryReportSchema>;

/** A record ready for the engine, with what its delivery report needs. */
export interface PreparedRecord {
  record: ProduceRecord;
  key: { type: DataType; size: number } | null;
  value: { type: DataType; size: number } | null;
}

/** The identity and first sequence of an idempotent producer's request. */
export interface ProducerHeaders {
  producerId: number;
  producerEpoch: number;
  sequence: number;
}

/** A partition_id the cached topic may not know yet (partitions were just added): look again. */
export async function topicForRecords(
  context: AppContext,
  topicName: string,
  inputs: unknown[],
): Promise<Topic> {
  const topic = await context.engine.topics.get(topicName);
  const highest = inputs.reduce<number>((max, input) => {
    const partition = (input as { partition_id?: unknown } | null)?.partition_id;
    return typeof partition === "number" ? Math.max(max, partition) : max;
  }, -1);
  return highest >= topic.partitions ? context.engine.describeTopic(topicName) : topic;
}

/**
 * Checks one record and turns it into engine bytes. `label` names it in errors (`record 2`,
 * `entries.2 (id "c")`). Throws InvalidArgumentError, or RecordTooLargeError (413).
 */
export function prepareRecord(input: unknown, label: string, topic: Topic): PreparedRecord {
  const parsed = ProduceRecordSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.map(String).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    });
    throw new InvalidArgumentError(`${label}: ${problems.join("; ")}`);
  }
  const fields = parsed.data;
  if (fields.partition_id !== undefined && fields.partition_id >= topic.partitions) {
    throw new InvalidArgumentError(
      `${label}: partition_id ${fields.partition_id} does not exist; topic ${topic.name} has ${topic.partitions} partition${topic.partitions === 1 ? "" : "s"} (0 to ${topic.partitions - 1})`,
      { details: { partition: fields.partition_id, partitions: topic.partitions } },
    );
  }
  const key = fields.key ? encodeData(fields.key, `${label}: key`) : null;
  const value = fields.value ? encodeData(fields.value, `${label}: value`) : null;
  const headers = (fields.headers ?? []).map((header, index) => ({
    key: header.name,
    keyBytes: encodeUtf8(header.name, `${label}: headers.${index}.name`),
    value:
      header.value === null || header.value === undefined
        ? null
        : decodeBase64(header.value, `${label}: headers.${index}.value`),
  }));
  const timestamp =
    fields.timestamp === undefined ? undefined : parseTimestamp(fields.timestamp, `${label}: timestamp`);
  let size = (key?.byteLength ?? 0) + (value?.byteLength ?? 0);
  for (const header of headers) size += header.keyBytes.byteLength + (header.value?.byteLength ?? 0);
  const limit = topic.settings.maxMessageBytes;
  if (size > limit) {
    throw new RecordTooLargeError(
      `${label} is ${size} bytes (key, value and headers), over the topic's max.message.bytes of ${limit}`,
      { details: { bytes: size, limit } },
    );
  }
  return {
    record: {
      key,
      value,
      headers: headers.map((header) => ({ key: header.key, value: header.value })),
      ...(timestamp === undefined ? {} : { timestamp }),
      ...(fields.partition_id === undefined ? {} : { partition: fields.partition_id }),
    },
    key: fields.key && key ? { type: fields.key.type, size: key.byteLength } : null,
    value: fields.value && value ? { type: fields.value.type, size: value.byteLength } : null,
  };
}

/**
 * With producer headers, every record must go to one explicit partition: the sequence numbers
 * count records of one partition. Checked on the raw records, before anything is written.
 */
export function producerPartition(inputs: unknown[], label: (index: number) => string): number {
  let partition: number | undefined;
  inputs.forEach((input, index) => {
    const candidate = (input as { partition_id?: unknown } | null)?.partition_id;
    if (typeof candidate !== "number") {
      throw new InvalidArgumentError(
        `${label(index)} has no partition_id: with Sluice-Producer-* headers every record names the same explicit partition_id`,
      );
    }
    if (partition !== undefined && candidate !== partition) {
      throw new InvalidArgumentError(
        `${label(index)} goes to partition ${candidate}, ${label(0)} to ${partition}: with Sluice-Producer-* headers every record names the same partition_id`,
      );
    }
    partition = candidate;
  });
  return partition!;
}

export type AppendOutcome = { ok: true; appended: AppendedRecord } | { ok: false; error: unknown };

/**
 * Appends records in chunks of at most the engine's limit: one object and one commit per chunk.
 * Returns one outcome per record; a chunk's failure is every record of that chunk's failure.
 */
export async function appendInChunks(
  context: AppContext,
  topicName: string,
  records: ProduceRecord[],
  options: { idempotencyKey?: string; producer?: ProducerHeaders & { partition: number } },
): Promise<AppendOutcome[]> {
  const outcomes: AppendOutcome[] = [];
  for (let start = 0; start < records.length; start += RECORDS_PER_REQUEST_MAX) {
    const chunk = records.slice(start, start + RECORDS_PER_REQUEST_MAX);
    const chunkNumber = start / RECORDS_PER_REQUEST_MAX;
    const idempotencyKey =
      options.idempotencyKey === undefined || chunkNumber === 0
        ? options.idempotencyKey
        : `${options.idempotencyKey}#${chunkNumber}`;
    const producer = options.producer && {
      producerId: options.producer.producerId,
      producerEpoch: options.producer.producerEpoch,
      baseSequences: { [options.producer.partition]: options.producer.sequence + start },
    };
    try {
      const result = await context.engine.append({
        topic: topicName,
        records: chunk,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        ...(producer ? { producer } : {}),
      });
      for (const appended of result.records) outcomes.push({ ok: true, appended });
    } catch (error) {
      for (let index = 0; index < chunk.length; index++) outcomes.push({ ok: false, error });
    }
  }
  return outcomes;
}

export function deliveryReport(
  context: AppContext,
  topicName: string,
  prepared: PreparedRecord,
  appended: AppendedRecord,
): DeliveryReport {
  return {
    error_code: 200,
    cluster_id: context.clusterId,
    topic_name: topicName,
    partition_id: appended.partition,
    offset: appended.offset,
    timestamp: isoTimestamp(appended.timestamp),
    key: prepared.key,
    value: prepared.value,
  };
}

/** The per-record error of a multi-record answer; server-side failures are logged once per chunk. */
export function recordError(context: AppContext, error: unknown, logged: Map<unknown, ErrorBody>): ErrorBody {
  let body = logged.get(error);
  if (!body) {
    const described = describeError(error, context.logger);
    body = { error_code: described.status, message: described.message };
    logged.set(error, body);
  }
  return body;
}
