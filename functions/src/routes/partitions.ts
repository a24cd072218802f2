import { createRoute, z } from "@hono/zod-openapi";
import { PartitionActivitySchema } from "../activity.js";
import type { AppContext, SluiceApp } from "../context.js";
import { TIMESTAMP_DESCRIPTION, TIMESTAMP_TEXT_FORMS } from "../patterns.js";
import { mapLimited, partitionResource, topicPath, urlOf } from "../resources.js";
import {
  COMMON_ERRORS,
  errorResponses,
  integerText,
  ListMetadataSchema,
  PartitionParamsSchema,
  ResourceMetadataSchema,
  TopicParamsSchema,
} from "../schemas.js";
import { parseTimestamp } from "../timestamps.js";

const PartitionSchema = z
  .object({
    kind: z.literal("KafkaPartition"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    leader: z.null().openapi({ description: "No brokers, so no leader" }),
    earliest_offset: z.number().int().openapi({ description: "The log start offset (a Sluice extension)" }),
    latest_offset: z
      .number()
      .int()
      .openapi({ description: "The high watermark: the next offset to be written" }),
    activity: PartitionActivitySchema,
  })
  .openapi("Partition");

const PartitionListSchema = z
  .object({
    kind: z.literal("KafkaPartitionList"),
    metadata: ListMetadataSchema,
    data: z.array(PartitionSchema),
  })
  .openapi("PartitionList");

const OffsetsByTimestampSchema = z
  .object({
    data: z.array(
      z.object({
        partition_id: z.number().int(),
        offset: z.number().int().nullable().openapi({
          description: "The first offset whose timestamp is at or after the one asked; null when none is yet",
        }),
      }),
    ),
  })
  .openapi("OffsetsByTimestamp");

const TAGS = ["Partitions"];
/** Head reads in flight when listing a topic's partitions. */
const PARTITION_READS_IN_FLIGHT = 16;
/**
 * Partitions per page of the list: about 340 bytes each, so a page stays near 340 KB and costs at
 * most this many head reads, however many partitions the topic has (up to 10,000).
 */
const PAGE_SIZE_MAX = 1_000;

export function registerPartitionRoutes(app: SluiceApp, context: AppContext): void {
  const { engine, clusterId } = context;

  const listPartitions = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions",
    tags: TAGS,
    summary: "List a topic's partitions with their earliest and latest offsets",
    description: `In pages of \`page_size\` partitions (default and most ${PAGE_SIZE_MAX}); \`metadata.next\` links to the next page, null on the last.`,
    request: {
      params: TopicParamsSchema,
      query: z.object({
        page_size: integerText(1, PAGE_SIZE_MAX)
          .optional()
          .openapi({ description: `Partitions per page (1 to ${PAGE_SIZE_MAX}, default ${PAGE_SIZE_MAX})` }),
        page_token: integerText(0, 2_147_483_647)
          .optional()
          .openapi({ description: "From the previous page's metadata.next; where this page starts" }),
      }),
    },
    responses: {
      200: {
        description: "The partitions",
        content: { "application/json": { schema: PartitionListSchema } },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const getPartition = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}",
    tags: TAGS,
    summary: "Get a partition with its earliest and latest offsets",
    request: { params: PartitionParamsSchema },
    responses: {
      200: { description: "The partition", content: { "application/json": { schema: PartitionSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const offsetsByTimestamp = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/offsets",
    tags: TAGS,
    summary: "Find each partition's first offset at or after a timestamp (a Sluice extension)",
    request: {
      params: TopicParamsSchema,
      query: z.object({
        timestamp: z.string().openapi({
          description: TIMESTAMP_DESCRIPTION,
          example: "2024-05-01T12:00:00Z",
          oneOf: TIMESTAMP_TEXT_FORMS,
        }),
      }),
    },
    responses: {
      200: {
        description: "One offset per partition",
        content: { "application/json": { schema: OffsetsByTimestampSchema } },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });

  app.openapi(listPartitions, async (c) => {
    const { topic_name } = c.req.valid("param");
    const query = c.req.valid("query");
    const pageSize = query.page_size ?? PAGE_SIZE_MAX;
    const first = query.page_token ?? 0;
    const topic = await engine.describeTopic(topic_name);
    const end = Math.min(topic.partitions, first + pageSize);
    const partitions = Array.from({ length: Math.max(0, end - first) }, (_, index) => first + index);
    const path = `${topicPath(clusterId, topic_name)}/partitions`;
    const next =
      end < topic.partitions
        ? urlOf(
            c,
            `${path}?${query.page_size === undefined ? "" : `page_size=${pageSize}&`}page_token=${end}`,
          )
        : null;
    const activity = engine.activity.topic(topic_name);
    const data = await mapLimited(partitions, PARTITION_READS_IN_FLIGHT, async (partition) =>
      partitionResource(
        c,
        clusterId,
        topic_name,
        partition,
        await engine.partitionOffsets(topic_name, partition),
        activity,
      ),
    );
    return c.json(
      {
        kind: "KafkaPartitionList" as const,
        metadata: { self: urlOf(c, `${path}${new URL(c.req.url).search}`), next },
        data,
      },
      200,
    );
  });

  app.openapi(getPartition, async (c) => {
    const { topic_name, partition_id } = c.req.valid("param");
    const offsets = await engine.partitionOffsets(topic_name, partition_id);
    const activity = engine.activity.topic(topic_name);
    return c.json(partitionResource(c, clusterId, topic_name, partition_id, offsets, activity), 200);
  });

  app.openapi(offsetsByTimestamp, async (c) => {
    const { topic_name } = c.req.valid("param");
    const timestamp = parseTimestamp(c.req.valid("query").timestamp, "query parameter timestamp");
    const topic = await engine.describeTopic(topic_name);
    const partitions = Array.from({ length: topic.partitions }, (_, partition) => partition);
    const data = await mapLimited(partitions, PARTITION_READS_IN_FLIGHT, async (partition) => ({
      partition_id: partition,
      offset: await engine.offsetForTimestamp(topic_name, partition, timestamp),
    }));
    return c.json({ data }, 200);
  });
}
