import { createRoute, z } from "@hono/zod-openapi";
import { ConflictError, InvalidArgumentError } from "@sluice/core";
import { TopicActivitySchema } from "../activity.js";
import { jsonBody } from "../body.js";
import { CONFIG_NAMES, configPairAlternatives, configValueProblem, isConfigName } from "../config-values.js";
import type { AppContext, SluiceApp } from "../context.js";
import { clusterPath, topicResource, urlOf } from "../resources.js";
import {
  ClusterParamsSchema,
  COMMON_ERRORS,
  errorResponses,
  ListMetadataSchema,
  RelatedSchema,
  ResourceMetadataSchema,
  TOPIC_NAME_PATTERN,
  TopicParamsSchema,
} from "../schemas.js";
import { TopicStorageSchema, topicStorageResource } from "../topic-storage.js";

export const TopicSchema = z
  .object({
    kind: z.literal("KafkaTopic"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    topic_name: z.string(),
    is_internal: z.boolean(),
    replication_factor: z.number().int().openapi({
      description:
        "Reported, not configured: S3 and DynamoDB replicate every write across three availability zones",
    }),
    partitions_count: z.number().int(),
    partitions: RelatedSchema,
    configs: RelatedSchema,
    partition_reassignments: RelatedSchema,
    authorized_operations: z.array(z.string()),
    activity: TopicActivitySchema,
  })
  .openapi("Topic");

/** A single topic's resource also says where its data stands (docs/http-api.md, "Topic storage"). */
const TopicWithStorageSchema = TopicSchema.extend({ storage: TopicStorageSchema }).openapi(
  "TopicWithStorage",
);

const TopicListSchema = z
  .object({ kind: z.literal("KafkaTopicList"), metadata: ListMetadataSchema, data: z.array(TopicSchema) })
  .openapi("TopicList");

const CreateTopicSchema = z
  .object({
    topic_name: z
      .string()
      .openapi({ example: "orders", pattern: TOPIC_NAME_PATTERN, minLength: 1, maxLength: 249 }),
    partitions_count: z
      .number()
      .int()
      .optional()
      .openapi({ description: "Default 1", example: 3, minimum: 1, maximum: 10_000 }),
    replication_factor: z.number().int().min(-1).max(32_767).optional().openapi({
      description:
        "Accepted for compatibility and ignored: storage is replicated by S3 and DynamoDB. Kafka's range: -1 (the default) to 32767",
    }),
    configs: z
      .array(
        z
          .object({ name: z.string().openapi({ enum: CONFIG_NAMES }), value: z.string() })
          .superRefine((config, ctx) => {
            if (!isConfigName(config.name)) {
              ctx.addIssue({
                code: "custom",
                path: ["name"],
                message: `unknown topic config: ${config.name} (supported: ${CONFIG_NAMES.join(", ")})`,
              });
              return;
            }
            const problem = configValueProblem(config.name, config.value);
            if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["value"], message: problem });
          })
          .openapi({ oneOf: configPairAlternatives() }),
      )
      .optional()
      .openapi({ example: [{ name: "retention.ms", value: "86400000" }] }),
  })
  .openapi("CreateTopicRequest");

const UpdateTopicSchema = z
  .object({
    partitions_count: z
      .number()
      .int()
      .openapi({ description: "Can only grow", example: 6, minimum: 1, maximum: 10_000 }),
  })
  .openapi("UpdateTopicRequest");

const TAGS = ["Topics"];

const listTopics = createRoute({
  method: "get",
  path: "/v3/clusters/{cluster_id}/topics",
  tags: TAGS,
  summary: "List topics",
  request: { params: ClusterParamsSchema },
  responses: {
    200: {
      description: "Every topic, by name",
      content: { "application/json": { schema: TopicListSchema } },
    },
    ...errorResponses(...COMMON_ERRORS),
  },
});

export function registerTopicRoutes(app: SluiceApp, context: AppContext): void {
  const { engine } = context;
  const createTopic = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/topics",
    tags: TAGS,
    summary: "Create a topic",
    middleware: [jsonBody({ bytesMax: context.limits.requestBytesMax, required: true })] as const,
    request: {
      params: ClusterParamsSchema,
      body: { required: true, content: { "application/json": { schema: CreateTopicSchema } } },
    },
    responses: {
      201: { description: "The topic, created", content: { "application/json": { schema: TopicSchema } } },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  const getTopic = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}",
    tags: TAGS,
    summary: "Get a topic",
    request: { params: TopicParamsSchema },
    responses: {
      200: {
        description:
          "The topic, with its storage: sizes, object count, log start offsets, last maintenance runs",
        content: { "application/json": { schema: TopicWithStorageSchema } },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const updateTopic = createRoute({
    method: "patch",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}",
    tags: TAGS,
    summary: "Increase a topic's partition count",
    description:
      "Partitions can be added, never removed: a count below the topic's current one is 409 (it conflicts with the topic's state; the same count is a no-op). Keyed records map to partitions by murmur2 modulo the count, so adding partitions moves keys, as in Kafka.",
    middleware: [jsonBody({ bytesMax: context.limits.requestBytesMax, required: true })] as const,
    request: {
      params: TopicParamsSchema,
      body: { required: true, content: { "application/json": { schema: UpdateTopicSchema } } },
    },
    responses: {
      200: { description: "The topic, updated", content: { "application/json": { schema: TopicSchema } } },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  const deleteTopic = createRoute({
    method: "delete",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}",
    tags: TAGS,
    summary: "Delete a topic and its records",
    request: { params: TopicParamsSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERRORS) },
  });

  /**
   * The engine refuses a shrink as an invalid argument; over HTTP the same count is valid for one
   * topic and not another, so it is a conflict with the topic's state (409), not a malformed request.
   */
  async function increasePartitions(topicName: string, partitions: number) {
    try {
      return await engine.increasePartitions(topicName, partitions);
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      const current = await engine.describeTopic(topicName);
      if (current.partitions <= partitions) throw error;
      throw new ConflictError(error.message, {
        cause: error,
        code: "INVALID_PARTITIONS",
        details: { topic: topicName, partitions },
      });
    }
  }

  app.openapi(listTopics, async (c) => {
    const topics = await engine.listTopics();
    const { cluster_id } = c.req.valid("param");
    return c.json(
      {
        kind: "KafkaTopicList" as const,
        metadata: { self: urlOf(c, `${clusterPath(cluster_id)}/topics`), next: null },
        data: topics.map((topic) => topicResource(c, context, topic)),
      },
      200,
    );
  });

  app.openapi(createTopic, async (c) => {
    const body = c.req.valid("json");
    const configs = Object.fromEntries((body.configs ?? []).map(({ name, value }) => [name, value]));
    const topic = await engine.createTopic({
      name: body.topic_name,
      partitions: body.partitions_count ?? 1,
      configs,
    });
    const resource = topicResource(c, context, topic);
    c.header("Location", resource.metadata.self);
    return c.json(resource, 201);
  });

  app.openapi(getTopic, async (c) => {
    const { topic_name } = c.req.valid("param");
    const [topic, storage] = await Promise.all([
      engine.describeTopic(topic_name),
      engine.topicStorage(topic_name),
    ]);
    return c.json({ ...topicResource(c, context, topic), storage: topicStorageResource(storage) }, 200);
  });

  app.openapi(updateTopic, async (c) => {
    const { topic_name } = c.req.valid("param");
    const { partitions_count } = c.req.valid("json");
    return c.json(topicResource(c, context, await increasePartitions(topic_name, partitions_count)), 200);
  });

  app.openapi(deleteTopic, async (c) => {
    const { topic_name } = c.req.valid("param");
    await engine.deleteTopic(topic_name);
    return c.body(null, 204);
  });
}
