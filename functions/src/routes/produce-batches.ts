import { createRoute, z } from "@hono/zod-openapi";
import { IDEMPOTENCY_KEY_PATTERN } from "@sluice/engine";
import { readBodyBytes } from "../body.js";
import type { AppContext, SluiceApp } from "../context.js";
import { httpError } from "../http-errors.js";
import { nodeIncoming } from "../node-bindings.js";
import { COMMON_ERRORS, errorResponses, TopicParamsSchema } from "../schemas.js";
import { isoTimestamp } from "../timestamps.js";

/** The body of a binary produce: Kafka RecordBatch v2 batches, concatenated (as reads answer them). */
export const RECORD_BATCH_MEDIA_TYPE = "application/vnd.kafka.record-batch.v2";

const PARTITIONS_PATTERN = /^\d{1,10}(,\d{1,10})*$/;
const PRODUCER_HEADERS = ["sluice-producer-id", "sluice-producer-epoch", "sluice-producer-sequence"];

const HeadersSchema = z.object({
  "sluice-partitions": z
    .string()
    .regex(PARTITIONS_PATTERN, { message: "must be partition ids separated by commas, one per batch: 0,3,5" })
    .openapi({
      description:
        "The partition of each batch in the body, in order, separated by commas; a partition at most once",
      example: "0,3",
    }),
  "idempotency-key": z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, { message: "must be 1 to 255 printable ASCII characters without spaces" })
    .optional()
    .openapi({
      description:
        "A retry with the same key, partitions and bytes (within 24 hours) returns the original answer and writes nothing",
    }),
});

const AppendedBatchSchema = z
  .object({
    partition_id: z.number().int(),
    base_offset: z.number().int().openapi({ description: "The offset of the batch's first record" }),
    record_count: z.number().int(),
    duplicate: z.boolean().openapi({
      description:
        "True when an earlier request had written this batch (same producer sequence): nothing new was written",
    }),
    log_append_time: z.string().optional().openapi({
      description:
        "On a topic with message.timestamp.type=LogAppendTime: the time every record of the batch got (ISO-8601)",
    }),
  })
  .openapi("AppendedBatch");

const ProduceBatchesResponseSchema = z
  .object({
    cluster_id: z.string(),
    topic_name: z.string(),
    batches: z.array(AppendedBatchSchema).openapi({ description: "One entry per batch, in body order" }),
  })
  .openapi("ProduceRecordBatchesResponse");

/**
 * `POST …/topics/{topic_name}/record-batches`: the binary produce path. The body is Kafka
 * RecordBatch v2 batches as any Kafka client encodes them (any codec), one per partition named in
 * `Sluice-Partitions`; they are checked and stored as sent (engine.appendBatches).
 */
export function registerProduceBatchRoutes(app: SluiceApp, context: AppContext): void {
  const route = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/record-batches",
    tags: ["Produce"],
    summary: "Produce Kafka RecordBatch v2 batches, stored as sent (a Sluice extension)",
    description: [
      `The body is Kafka RecordBatch v2 batches (magic 2), concatenated, as a Kafka client encodes them, with \`Content-Type: ${RECORD_BATCH_MEDIA_TYPE}\`;`,
      "Sluice-Partitions names the partition of each. Every batch is checked — magic, lengths, CRC-32C, record count,",
      "each record against the topic's max.message.bytes (compressed batches are decompressed to check them) — and",
      "the request is written whole (one object, one commit) or, on any bad batch, not at all. The bytes are stored",
      "as sent. An idempotent producer's id, epoch and base sequence come from each batch's header (ids from",
      "POST /producers): a batch written before is answered with its original offsets.",
    ].join(" "),
    request: {
      params: TopicParamsSchema,
      headers: HeadersSchema,
      body: {
        required: true,
        content: {
          [RECORD_BATCH_MEDIA_TYPE]: {
            schema: { type: "string", format: "binary", description: "RecordBatch v2 batches, concatenated" },
          },
        },
      },
    },
    responses: {
      200: {
        description: "Where each batch was written",
        content: { "application/json": { schema: ProduceBatchesResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413, 415),
    },
  });

  app.openapi(route, async (c) => {
    const { topic_name } = c.req.valid("param");
    const headers = c.req.valid("header");
    const mediaType = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (mediaType !== RECORD_BATCH_MEDIA_TYPE) {
      throw httpError(
        415,
        `unsupported Content-Type ${mediaType === undefined ? "(none)" : JSON.stringify(mediaType)}: send ${RECORD_BATCH_MEDIA_TYPE}, Kafka RecordBatch v2 batches`,
      );
    }
    const producerHeader = PRODUCER_HEADERS.find((name) => c.req.header(name) !== undefined);
    if (producerHeader !== undefined) {
      throw httpError(
        400,
        `header ${producerHeader} does not apply here: a record batch carries its producer id, epoch and sequence in its own header`,
      );
    }
    await context.engine.topics.get(topic_name);
    const batches = await readBodyBytes(c.req.raw, context.limits.requestBytesMax, nodeIncoming(c));
    const result = await context.engine.appendBatches({
      topic: topic_name,
      batches,
      partitions: headers["sluice-partitions"].split(",").map(Number),
      ...(headers["idempotency-key"] === undefined ? {} : { idempotencyKey: headers["idempotency-key"] }),
    });
    return c.json(
      {
        cluster_id: context.clusterId,
        topic_name: result.topic,
        batches: result.batches.map((batch) => ({
          partition_id: batch.partition,
          base_offset: batch.baseOffset,
          record_count: batch.recordCount,
          duplicate: batch.duplicate,
          ...(batch.logAppendTime === undefined
            ? {}
            : { log_append_time: isoTimestamp(batch.logAppendTime) }),
        })),
      },
      200,
    );
  });
}
