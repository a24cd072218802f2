import { z } from "@hono/zod-openapi";
import { InvalidArgumentError } from "@sluice/core";
import {
  type AppendedRecord,
  type ProduceRecord,
  type RecordOutcome,
  type Topic,
  validateRecord,
} from "@sluice/engine";
import { AppendCoalescer } from "./append-coalescer.js";
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
  const key = fields.key ? encodeData(fields.key, `${label}: key`) : null;
  const value = fields.value ? encodeData(fields.value, `${label}: value`) : null;
  const headers = (fields.headers ?? []).map((header, index) => {
    encodeUtf8(header.name, `${label}: headers.${index}.name`); // refuses names that are not well-formed text
    return {
      key: header.name,
      value:
        header.value === null || header.value === undefined
          ? null
          : decodeBase64(header.value, `${label}: headers.${index}.value`),
    };
  });
  const timestamp =
    fields.timestamp === undefined ? undefined : parseTimestamp(fields.timestamp, `${label}: timestamp`);
  const record: ProduceRecord = {
    key,
    value,
    headers,
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(fields.partition_id === undefined ? {} : { partition: fields.partition_id }),
  };
  validateRecord(record, topic, { label, partitionField: "partition_id" });
  return {
    record,
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

export type AppendOutcome = RecordOutcome;

/**
 * Appends the records through the engine, which splits them into appends of 10,000 at most. A
 * few records without an idempotency key or producer fields may go together with other requests'
 * (append-coalescer.ts).
 */
export function appendInChunks(
  context: AppContext,
  topicName: string,
  records: ProduceRecord[],
  options: { idempotencyKey?: string; producer?: ProducerHeaders & { partition: number } },
): Promise<AppendOutcome[]> {
  if (options.idempotencyKey === undefined && !options.producer && AppendCoalescer.joins(records)) {
    return context.appendCoalescer.appendRecords(topicName, records);
  }
  const producer = options.producer && {
    producerId: options.producer.producerId,
    producerEpoch: options.producer.producerEpoch,
    baseSequences: { [options.producer.partition]: options.producer.sequence },
  };
  return context.engine.appendInChunks({
    topic: topicName,
    records,
    ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    ...(producer ? { producer } : {}),
  });
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

/**
 * The per-record error of a multi-record answer; server-side failures are logged once per chunk.
 * Each is counted as an error answered for `topic`.
 */
export function recordError(
  context: AppContext,
  error: unknown,
  logged: Map<unknown, ErrorBody>,
  topic = "",
): ErrorBody {
  let body = logged.get(error);
  if (!body) {
    const described = describeError(error, context.logger);
    body = { error_code: described.errorCode ?? described.status, message: described.message };
    if (described.code !== undefined) body.code = described.code;
    logged.set(error, body);
  }
  context.meter.errorAnswered(
    body.error_code >= 1000 ? Math.floor(body.error_code / 100) : body.error_code,
    body.code ?? String(body.error_code),
    topic,
  );
  return body;
}
