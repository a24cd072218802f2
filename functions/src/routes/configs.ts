import { createRoute, z } from "@hono/zod-openapi";
import { NotFoundError } from "@sluice/core";
import { effectiveConfigs, type TopicConfigName } from "@sluice/engine";
import { jsonBody } from "../body.js";
import {
  CONFIG_NAMES,
  CONFIG_VALUE_RULES,
  configPairAlternatives,
  configValueProblem,
  isConfigName,
} from "../config-values.js";
import type { AppContext, SluiceApp } from "../context.js";
import { topicConfigResource, topicPath, urlOf } from "../resources.js";
import {
  COMMON_ERRORS,
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

/** PUT's body for one config: its value in the form the document states for that config. */
function updateConfigSchema(name: TopicConfigName) {
  return z
    .object({
      value: z
        .string()
        .superRefine((value, ctx) => {
          const problem = configValueProblem(name, value);
          if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
        })
        .openapi(CONFIG_VALUE_RULES[name].schema),
    })
    .openapi(`Update${configSchemaName(name)}Request`);
}

/** `retention.ms` → `RetentionMs`, for component names. */
function configSchemaName(name: string): string {
  return name
    .split(".")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

const AlterConfigSchema = z
  .object({
    name: z.string().openapi({ enum: CONFIG_NAMES }),
    value: z.string().optional(),
    operation: z.enum(["SET", "DELETE"]).optional().openapi({ description: "Default SET" }),
  })
  .superRefine((change, ctx) => {
    if (!isConfigName(change.name)) {
      ctx.addIssue({ code: "custom", path: ["name"], message: unknownConfig(change.name) });
      return;
    }
    if (change.operation === "DELETE") return;
    if (change.value === undefined) {
      ctx.addIssue({ code: "custom", path: ["value"], message: `SET of ${change.name} needs a value` });
      return;
    }
    const problem = configValueProblem(change.name, change.value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["value"], message: problem });
  })
  .openapi({
    description:
      "SET (the default) needs a value valid for the named config; DELETE resets it to its default and ignores a value.",
    oneOf: [
      ...configPairAlternatives({ operation: { type: "string", const: "SET" } }),
      {
        type: "object",
        properties: { operation: { type: "string", const: "DELETE" } },
        required: ["name", "operation"],
      },
    ],
  });

const AlterConfigsSchema = z.object({ data: z.array(AlterConfigSchema) }).openapi("AlterConfigsRequest");

const TAGS = ["Topic configs"];
const SUPPORTED = CONFIG_NAMES.join(", ");

function unknownConfig(name: string): string {
  return `unknown topic config: ${name} (supported: ${SUPPORTED})`;
}

function configNotFound(name: string): NotFoundError {
  return new NotFoundError(`topic config not found: ${name} (supported: ${SUPPORTED})`, {
    details: { config: name },
  });
}

/**
 * The document lists each config as its own resource (`…/configs/retention.ms`, …), because what a
 * PUT accepts depends on the name and OpenAPI cannot tie a body to a path parameter's value. The
 * URLs are Confluent's `…/configs/{name}`; any other name is 404.
 */
const CONFIGS_PATH = "/v3/clusters/{cluster_id}/topics/{topic_name}/configs";

export function registerConfigRoutes(app: SluiceApp, context: AppContext): void {
  const { engine, clusterId } = context;
  const body = jsonBody({ bytesMax: context.limits.requestBytesMax, required: true });

  const listConfigs = createRoute({
    method: "get",
    path: CONFIGS_PATH,
    tags: TAGS,
    summary: "List a topic's configs",
    description: `Every supported config (${SUPPORTED}) with its effective value.`,
    request: { params: TopicParamsSchema },
    responses: {
      200: { description: "The configs", content: { "application/json": { schema: TopicConfigListSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const alterConfigs = createRoute({
    method: "post",
    path: `${CONFIGS_PATH}:alter`,
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

  for (const name of CONFIG_NAMES) registerOneConfig(app, context, name, body);

  // Names the document does not list: Confluent's URL shape, answered 404 naming the supported ones.
  app.on(["GET", "PUT", "DELETE"], "/v3/clusters/:cluster_id/topics/:topic_name/configs/:name", async (c) => {
    if (c.req.method === "GET") await engine.describeTopic(c.req.param("topic_name"));
    throw configNotFound(c.req.param("name"));
  });

  app.openapi(alterConfigs, async (c) => {
    const { topic_name } = c.req.valid("param");
    const changes: Record<string, string | null> = {};
    for (const change of c.req.valid("json").data) {
      changes[change.name] = change.operation === "DELETE" ? null : change.value!;
    }
    await engine.updateTopicConfigs(topic_name, changes);
    return c.body(null, 204);
  });
}

function registerOneConfig(
  app: SluiceApp,
  context: AppContext,
  name: TopicConfigName,
  body: ReturnType<typeof jsonBody>,
): void {
  const { engine, clusterId } = context;
  const path = `${CONFIGS_PATH}/${name}`;
  const value = CONFIG_VALUE_RULES[name].expected;
  const getConfig = createRoute({
    method: "get",
    path,
    tags: TAGS,
    summary: `Get ${name}`,
    request: { params: TopicParamsSchema },
    responses: {
      200: { description: "The config", content: { "application/json": { schema: TopicConfigSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  const putConfig = createRoute({
    method: "put",
    path,
    tags: TAGS,
    summary: `Set ${name}`,
    description: `The value: ${value}.`,
    middleware: [body] as const,
    request: {
      params: TopicParamsSchema,
      body: { required: true, content: { "application/json": { schema: updateConfigSchema(name) } } },
    },
    responses: { 204: { description: "Set" }, ...errorResponses(...COMMON_ERRORS, 409, 413) },
  });
  const deleteConfig = createRoute({
    method: "delete",
    path,
    tags: TAGS,
    summary: `Reset ${name} to its default`,
    description:
      "As in Kafka, a topic config is never absent: deleting the override puts the default back, and the config still reads (is_default true).",
    request: { params: TopicParamsSchema },
    responses: { 204: { description: "Reset" }, ...errorResponses(...COMMON_ERRORS, 409) },
  });

  app.openapi(getConfig, async (c) => {
    const { topic_name } = c.req.valid("param");
    const topic = await engine.describeTopic(topic_name);
    const config = effectiveConfigs(topic.configs).find((candidate) => candidate.name === name)!;
    return c.json(topicConfigResource(c, clusterId, topic_name, config), 200);
  });

  app.openapi(putConfig, async (c) => {
    const { topic_name } = c.req.valid("param");
    await engine.updateTopicConfigs(topic_name, { [name]: c.req.valid("json").value });
    return c.body(null, 204);
  });

  app.openapi(deleteConfig, async (c) => {
    const { topic_name } = c.req.valid("param");
    await engine.updateTopicConfigs(topic_name, { [name]: null });
    return c.body(null, 204);
  });
}
