import { createRoute, z } from "@hono/zod-openapi";
import { InvalidArgumentError, NotFoundError } from "@sluice/core";
import { effectiveConfigs, TOPIC_CONFIG_DEFAULTS } from "@sluice/engine";
import { jsonBody } from "../body.js";
import type { AppContext, SluiceApp } from "../context.js";
import { topicConfigResource, topicPath, urlOf } from "../resources.js";
import {
  COMMON_ERRORS,
  ConfigParamsSchema,
  errorResponses,
  ListMetadataSchema,
  ResourceMetadataSchema,
  TopicParamsSchema,
} from "../schemas.js";

const TopicConfigSchema = z
  .object({
    kind: z.literal("KafkaTopicConfig"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    topic_name: z.string(),
    name: z.string(),
    value: z.string(),
    is_default: z.boolean(),
    is_read_only: z.boolean(),
    is_sensitive: z.boolean(),
    source: z.enum(["DEFAULT_CONFIG", "DYNAMIC_TOPIC_CONFIG"]),
    synonyms: z.array(z.object({ name: z.string(), value: z.string(), source: z.string() })),
  })
  .openapi("TopicConfig");

const TopicConfigListSchema = z
  .object({
    kind: z.literal("KafkaTopicConfigList"),
    metadata: ListMetadataSchema,
    data: z.array(TopicConfigSchema),
  })
  .openapi("TopicConfigList");

const UpdateConfigSchema = z
  .object({ value: z.string().openapi({ example: "86400000" }) })
  .openapi("UpdateConfigRequest");

const AlterConfigsSchema = z
  .object({
    data: z.array(
      z.object({
        name: z.string().openapi({ enum: Object.keys(TOPIC_CONFIG_DEFAULTS) }),
        value: z.string().optional(),
        operation: z.enum(["SET", "DELETE"]).optional().openapi({ description: "Default SET" }),
      }),
    ),
  })
  .openapi("AlterConfigsRequest");

const TAGS = ["Topic configs"];
const SUPPORTED = Object.keys(TOPIC_CONFIG_DEFAULTS).join(", ");

function requireKnownConfig(name: string): void {
  if (!Object.hasOwn(TOPIC_CONFIG_DEFAULTS, name)) {
    throw new NotFoundError(`topic config not found: ${name} (supported: ${SUPPORTED})`, {
      details: { config: name },
    });
  }
}

export function registerConfigRoutes(app: SluiceApp, context: AppContext): void {
  const { engine, clusterId } = context;
  const body = jsonBody({ bytesMax: context.limits.requestBytesMax, required: true });

  const listConfigs = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/configs",
    tags: TAGS,
    summary: "List a topic's configs",
    description: `Every supported config (${SUPPORTED}) with its effective value.`,
    request: { params: TopicParamsSchema },
    responses: {
      200: { description: "The configs", content: { "application/json": { schema: TopicConfigListSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const getConfig = createRoute({
    method: "get",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/configs/{name}",
    tags: TAGS,
    summary: "Get one config of a topic",
    request: { params: ConfigParamsSchema },
    responses: {
      200: { description: "The config", content: { "application/json": { schema: TopicConfigSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const putConfig = createRoute({
    method: "put",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/configs/{name}",
    tags: TAGS,
    summary: "Set one config of a topic",
    middleware: [body] as const,
    request: {
      params: ConfigParamsSchema,
      body: { required: true, content: { "application/json": { schema: UpdateConfigSchema } } },
    },
    responses: { 204: { description: "Set" }, ...errorResponses(...COMMON_ERRORS, 409, 413) },
  });
  const deleteConfig = createRoute({
    method: "delete",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/configs/{name}",
    tags: TAGS,
    summary: "Reset one config of a topic to its default",
    request: { params: ConfigParamsSchema },
    responses: { 204: { description: "Reset" }, ...errorResponses(...COMMON_ERRORS, 409) },
  });
  const alterConfigs = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/topics/{topic_name}/configs:alter",
    tags: TAGS,
    summary: "Set and reset several configs at once",
    description: "All changes apply together or not at all. SET needs a value; DELETE resets to the default.",
    middleware: [body] as const,
    request: {
      params: TopicParamsSchema,
      body: { required: true, content: { "application/json": { schema: AlterConfigsSchema } } },
    },
    responses: { 204: { description: "Applied" }, ...errorResponses(...COMMON_ERRORS, 409, 413) },
  });

  app.openapi(listConfigs, async (c) => {
    const { topic_name } = c.req.valid("param");
    const topic = await engine.describeTopic(topic_name);
    return c.json(
      {
        kind: "KafkaTopicConfigList" as const,
        metadata: { self: urlOf(c, `${topicPath(clusterId, topic_name)}/configs`), next: null },
        data: effectiveConfigs(topic.configs).map((config) =>
          topicConfigResource(c, clusterId, topic_name, config),
        ),
      },
      200,
    );
  });

  app.openapi(getConfig, async (c) => {
    const { topic_name, name } = c.req.valid("param");
    const topic = await engine.describeTopic(topic_name);
    requireKnownConfig(name);
    const config = effectiveConfigs(topic.configs).find((candidate) => candidate.name === name)!;
    return c.json(topicConfigResource(c, clusterId, topic_name, config), 200);
  });

  app.openapi(putConfig, async (c) => {
    const { topic_name, name } = c.req.valid("param");
    requireKnownConfig(name);
    await engine.updateTopicConfigs(topic_name, { [name]: c.req.valid("json").value });
    return c.body(null, 204);
  });

  app.openapi(deleteConfig, async (c) => {
    const { topic_name, name } = c.req.valid("param");
    requireKnownConfig(name);
    await engine.updateTopicConfigs(topic_name, { [name]: null });
    return c.body(null, 204);
  });

  app.openapi(alterConfigs, async (c) => {
    const { topic_name } = c.req.valid("param");
    const changes: Record<string, string | null> = {};
    c.req.valid("json").data.forEach((change, index) => {
      const operation = change.operation ?? "SET";
      if (operation === "SET" && change.value === undefined) {
        throw new InvalidArgumentError(
          `invalid request body: data.${index}: SET of ${change.name} needs a value`,
        );
      }
      changes[change.name] = operation === "DELETE" ? null : change.value!;
    });
    await engine.updateTopicConfigs(topic_name, changes);
    return c.body(null, 204);
  });
}
