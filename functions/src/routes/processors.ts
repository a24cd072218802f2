import { createRoute, z } from "@hono/zod-openapi";
import { InvalidArgumentError, NotFoundError } from "@sluice/core";
import type {
  PartitionDescription,
  ProcessorDescription,
  ProcessorDetails,
  ResetTarget,
} from "@sluice/processors";
import type { Context } from "hono";
import { jsonBody } from "../body.js";
import type { AppContext, SluiceApp } from "../context.js";
import { EPOCH_MILLIS_PATTERN, ISO_DATE_TIME_PATTERN } from "../patterns.js";
import { clusterPath, urlOf } from "../resources.js";
import {
  ClusterParamsSchema,
  COMMON_ERRORS,
  errorResponses,
  ListMetadataSchema,
  ResourceMetadataSchema,
  TOPIC_NAME_PATTERN,
} from "../schemas.js";
import { isoTimestamp, parseTimestamp } from "../timestamps.js";

/** Processor names: safe in paths and keys, as topic names are. */
export const PROCESSOR_NAME_PATTERN = "^(?!\\.\\.?$)[a-zA-Z0-9._-]{1,249}$";
const LAMBDA_FUNCTION_PATTERN =
  "^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[a-zA-Z0-9_-]{1,64}(:(\\$LATEST|[a-zA-Z0-9_-]{1,128}))?$";
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$";
const VALUE_PATH_PATTERN = "^[^.]{1,256}(\\.[^.]{1,256})*$";

const topicName = z.string().regex(new RegExp(TOPIC_NAME_PATTERN), {
  message: "must be a topic name: 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const processorName = z.string().regex(new RegExp(PROCESSOR_NAME_PATTERN), {
  message: "must be 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const MatchSchema = z
  .union([
    Scalar,
    z.strictObject({ prefix: z.string() }),
    z.strictObject({ exists: z.boolean() }),
    z.strictObject({ any_of: z.array(Scalar).min(1).max(100) }),
  ])
  .openapi("ProcessorFilterCondition", {
    description:
      'A value to equal, or {"prefix": text}, {"exists": true|false}, {"any_of": [values]}. Keys and header values compare as UTF-8 text.',
  });

const FilterSchema = z
  .strictObject({
    key: MatchSchema.optional(),
    headers: z.record(z.string().regex(new RegExp(HEADER_NAME_PATTERN)), MatchSchema).optional(),
    value: z
      .record(z.string().regex(new RegExp(VALUE_PATH_PATTERN)), MatchSchema)
      .optional()
      .openapi({ description: "Conditions on fields of the JSON value, by dot path (customer.tier)" }),
  })
  .openapi("ProcessorFilter", {
    description: "Only records meeting every condition reach the handler; the others are done without a call",
  });

const RetrySchema = z
  .strictObject({
    max_attempts: int(1, 10_000)
      .optional()
      .openapi({ description: "Handler calls per record, the first included. Default 3" }),
    backoff_ms: int(0, 3_600_000)
      .optional()
      .openapi({ description: "Wait before the second attempt, doubled after each. Default 1000" }),
    max_backoff_ms: int(0, 86_400_000)
      .optional()
      .openapi({ description: "Longest wait between attempts, at least backoff_ms. Default 60000" }),
    max_record_age_ms: int(1_000, 31_536_000_000).nullable().optional().openapi({
      description: "A record failing when older than this is dead-lettered at once. Default none",
    }),
    timeout_ms: int(1, 900_000)
      .optional()
      .openapi({ description: "A handler call running longer fails. Default 30000" }),
  })
  .openapi("ProcessorRetryPolicy");

const definitionFields = {
  name: processorName.openapi({ example: "enrich-orders" }),
  topics: z
    .array(topicName)
    .min(1)
    .max(10)
    .openapi({ description: "Source topics", example: ["orders"] }),
  batch_size: int(1, 10_000)
    .optional()
    .openapi({ description: "Most records per handler call. Default 100" }),
  batch_max_bytes: int(1_024, 16 * 1024 * 1024)
    .optional()
    .openapi({
      description: "Most bytes per call (keys, values, headers; at most 4 MiB for Lambda). Default 1 MiB",
    }),
  batch_window_ms: int(0, 300_000)
    .optional()
    .openapi({ description: "How long a short batch waits for more records. Default 0" }),
  starting_position: z
    .enum(["EARLIEST", "LATEST", "AT_TIMESTAMP"])
    .optional()
    .openapi({ description: "Where each partition starts, as of creation. Default LATEST" }),
  starting_timestamp: z
    .union(
      [
        int(0, Number.MAX_SAFE_INTEGER),
        z.string().regex(new RegExp(ISO_DATE_TIME_PATTERN)),
        z.string().regex(new RegExp(EPOCH_MILLIS_PATTERN)),
      ],
      {
        message:
          "must be milliseconds since the epoch or an ISO-8601 date-time with a zone, e.g. 2024-05-01T12:00:00Z",
      },
    )
    .optional()
    .openapi({ description: "With AT_TIMESTAMP (only): epoch milliseconds or an ISO-8601 date-time" }),
  filter: FilterSchema.nullable().optional(),
  retry: RetrySchema.optional(),
  bisect_on_error: z.boolean().optional().openapi({
    description: "Halve a failing batch until the failing record is alone (no attempts spent). Default false",
  }),
  dead_letter_topic: topicName.nullable().optional().openapi({
    description: "Where records go once their retries are spent, with sluice-* headers naming them",
  }),
  output_topics: z
    .array(topicName)
    .max(10)
    .optional()
    .openapi({ description: "Topics the handler's outputs may go to" }),
  ordering: z.enum(["PARTITION", "KEY", "SHARED"]).optional().openapi({
    description:
      "PARTITION (default): a partition in offset order. KEY: each key in order, several keys at once. SHARED: no order; the processor's own share group hands records to parallelism batches at once per runtime, past the partition count (outputs at least once)",
  }),
  parallelism: int(1, 100).optional().openapi({
    description:
      "KEY: keys' batches in flight at once per partition. SHARED: batches in flight at once per runtime. Default 4",
  }),
};

const ApiHandlerSchema = z
  .discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("lambda"),
      function_name: z.string().regex(new RegExp(LAMBDA_FUNCTION_PATTERN)).openapi({
        description: "A function name or ARN, optionally with :alias or :version; invoked synchronously",
      }),
    }),
    z.strictObject({
      type: z.literal("webhook"),
      url: z
        .string()
        .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/)
        .max(2_048)
        .openapi({
          description:
            "The batch is POSTed here as JSON; a 2xx answer (optionally {outputs, failures}) succeeds",
        }),
      headers: z
        .record(
          z.string().regex(new RegExp(HEADER_NAME_PATTERN)),
          z
            .string()
            .max(8_192)
            .regex(/^[^\r\n\0]*$/),
        )
        .optional()
        .openapi({ description: "Sent with every call (Authorization, …)" }),
    }),
  ])
  .openapi("ProcessorHandler", {
    description:
      "A Lambda function or a webhook. Module handlers are declared in the local server's config file",
  });

const CreateBodySchema = z
  .strictObject({ ...definitionFields, handler: ApiHandlerSchema })
  .openapi("ProcessorDefinition");

const DefinitionSchema = z
  .object({
    ...definitionFields,
    handler: z.object({ type: z.enum(["module", "lambda", "webhook"]) }).passthrough(),
  })
  .openapi("ProcessorDefinitionAsStored", { description: "The definition with every default filled in" });

const ProcessorSchema = z
  .object({
    kind: z.literal("SluiceProcessor"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    processor_name: z.string(),
    uid: z
      .string()
      .openapi({ description: "Random per incarnation: a processor created again starts afresh" }),
    state: z.enum(["RUNNING", "PAUSED"]),
    definition: DefinitionSchema,
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Processor");

const PartitionProgressSchema = z
  .object({
    topic_name: z.string(),
    partition_id: z.number().int(),
    checkpoint: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "Every offset below it is done; null before its first run" }),
    high_watermark: z.number().int(),
    lag: z.number().int().openapi({ description: "high_watermark − checkpoint" }),
    pending: z
      .number()
      .int()
      .openapi({ description: "Records above the checkpoint not done yet (KEY ordering)" }),
    blocked_keys: z
      .array(
        z.object({
          offset: z.number().int().openapi({ description: "The blocked key's first record not done" }),
          attempts: z.number().int(),
          first_failed_at: z.string(),
          next_attempt_at: z.string(),
          error: z.string(),
        }),
      )
      .openapi({ description: "Keys (the partition, under PARTITION ordering) waiting for a retry" }),
    last_error: z.object({ message: z.string(), offset: z.number().int(), at: z.string() }).nullable(),
    owner: z.string().nullable().openapi({ description: "The runner holding the partition's lease now" }),
    processed: z.number().int(),
    dead_lettered: z.number().int(),
    filtered: z.number().int(),
  })
  .openapi("ProcessorPartitionProgress");

const SharedPartitionSchema = z
  .object({
    topic_name: z.string(),
    partition_id: z.number().int(),
    start_offset: z.number().int().openapi({
      description: "Every record below it is settled: accepted with its outputs, or dead-lettered",
    }),
    end_offset: z.number().int().openapi({ description: "Records from here on were never handed out" }),
    high_watermark: z.number().int(),
    in_flight: z.number().int().openapi({
      description: "Records locked to a runtime now (in a handler call, or waiting for a retry)",
    }),
    available: z.number().int().openapi({ description: "Records given back, waiting for another delivery" }),
    lag: z.number().int().openapi({ description: "Records not settled" }),
  })
  .openapi("ProcessorSharePartition");

const ProcessorDetailsSchema = ProcessorSchema.extend({
  lag: z.number().int().openapi({ description: "The sum of the partitions' lag" }),
  partitions: z
    .array(PartitionProgressSchema)
    .openapi({ description: "Per source partition; empty for a SHARED processor (see shared)" }),
  shared: z
    .object({
      share_group_id: z.string().openapi({ description: "The processor's own share group" }),
      members: z.number().int().openapi({ description: "Runtimes taking records now" }),
      partitions: z.array(SharedPartitionSchema),
    })
    .optional()
    .openapi({ description: "A SHARED processor's share group" }),
}).openapi("ProcessorDetails");

const ResetBodySchema = z
  .discriminatedUnion("to", [
    z.strictObject({ to: z.literal("earliest") }),
    z.strictObject({ to: z.literal("latest") }),
    z.strictObject({
      to: z.literal("datetime"),
      datetime: z
        .string()
        .regex(new RegExp(ISO_DATE_TIME_PATTERN), {
          message: "must be an ISO-8601 date-time with a zone, e.g. 2024-05-01T12:00:00Z",
        })
        .openapi({ example: "2024-05-01T12:00:00Z" }),
    }),
    z.strictObject({
      to: z.literal("offsets"),
      offsets: z
        .array(
          z.strictObject({
            topic_name: topicName,
            partition_id: int(0, 2_147_483_647),
            offset: int(0, Number.MAX_SAFE_INTEGER),
          }),
        )
        .min(1)
        .max(10_000),
    }),
  ])
  .openapi("ProcessorResetRequest");

const ProcessorParamsSchema = ClusterParamsSchema.extend({
  processor_name: processorName.openapi({
    param: { name: "processor_name", in: "path" },
    example: "enrich-orders",
  }),
});

function processorPath(clusterId: string, name: string): string {
  return `${clusterPath(clusterId)}/processors/${encodeURIComponent(name)}`;
}

function processorResource(c: Context, clusterId: string, processor: ProcessorDescription) {
  return {
    kind: "SluiceProcessor" as const,
    metadata: {
      self: urlOf(c, processorPath(clusterId, processor.name)),
      resource_name: `crn:///kafka=${clusterId}/processor=${processor.name}`,
    },
    cluster_id: clusterId,
    processor_name: processor.name,
    uid: processor.uid,
    state: processor.state === "paused" ? ("PAUSED" as const) : ("RUNNING" as const),
    definition: processor.definition as unknown as z.infer<typeof DefinitionSchema>,
    created_at: isoTimestamp(processor.createdAtMs),
    updated_at: isoTimestamp(processor.updatedAtMs),
  };
}

function partitionJson(partition: PartitionDescription) {
  return {
    topic_name: partition.topic,
    partition_id: partition.partition,
    checkpoint: partition.checkpoint,
    high_watermark: partition.highWatermark,
    lag: partition.lag,
    pending: partition.pending,
    blocked_keys: partition.retries.map((retry) => ({
      offset: retry.offset,
      attempts: retry.attempts,
      first_failed_at: new Date(retry.firstFailedAtMs).toISOString(),
      next_attempt_at: new Date(retry.nextAttemptAtMs).toISOString(),
      error: retry.error,
    })),
    last_error: partition.lastError
      ? {
          message: partition.lastError.message,
          offset: partition.lastError.offset,
          at: new Date(partition.lastError.atMs).toISOString(),
        }
      : null,
    owner: partition.owner,
    processed: partition.processed,
    dead_lettered: partition.deadLettered,
    filtered: partition.filtered,
  };
}

function detailsResource(c: Context, clusterId: string, details: ProcessorDetails) {
  return {
    ...processorResource(c, clusterId, details),
    lag: details.lag,
    partitions: details.partitions.map(partitionJson),
    ...(details.shared
      ? {
          shared: {
            share_group_id: details.shared.groupId,
            members: details.shared.members,
            partitions: details.shared.partitions.map((partition) => ({
              topic_name: partition.topic,
              partition_id: partition.partition,
              start_offset: partition.startOffset,
              end_offset: partition.endOffset,
              high_watermark: partition.highWatermark,
              in_flight: partition.inFlight,
              available: partition.available,
              lag: partition.lag,
            })),
          },
        }
      : {}),
  };
}

/**
 * Processors over HTTP (docs/processors.md): create, list, describe with each partition's
 * checkpoint, lag and last error, pause, resume, reset and delete. The definitions live in the
 * store; runners (the local server's runtime, the dispatcher Lambda) pick changes up by themselves.
 */
export function registerProcessorRoutes(app: SluiceApp, context: AppContext): void {
  const { processors, clusterId, limits } = context;
  const body = (required: boolean) => jsonBody({ bytesMax: limits.requestBytesMax, required });
  const base = "/v3/clusters/{cluster_id}/processors";
  const tags = ["Processors"];
  const changed = (name: string) => context.processorsChanged?.(name);

  const create = createRoute({
    method: "post",
    path: base,
    tags,
    summary: "Create a processor: a function run on every new batch of its source topics",
    description: [
      "Every setting is checked before anything is written. A topic the definition names must exist, and settings",
      "must fit together (parallelism with KEY ordering only, max_backoff_ms ≥ backoff_ms, starting_timestamp with",
      "AT_TIMESTAMP only, no source topic among the outputs); otherwise 400 naming the field. Each partition starts",
      "at the starting position as of now.",
    ].join(" "),
    middleware: [body(true)] as const,
    request: {
      params: ClusterParamsSchema,
      body: { required: true, content: { "application/json": { schema: CreateBodySchema } } },
    },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: ProcessorSchema } } },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(create, async (c) => {
    const definition = c.req.valid("json");
    const json =
      definition.starting_timestamp === undefined
        ? definition
        : {
            ...definition,
            starting_timestamp: parseTimestamp(definition.starting_timestamp, "starting_timestamp"),
          };
    const created = await processors.create(json);
    changed(created.name);
    c.header("Location", urlOf(c, processorPath(clusterId, created.name)));
    return c.json(processorResource(c, clusterId, created), 201);
  });

  const replace = createRoute({
    method: "put",
    path: `${base}/{processor_name}`,
    tags,
    summary: "Create a processor, or bring an existing one to this definition keeping its progress",
    description: [
      "The same checks as creating. An existing processor keeps its checkpoints, blocked keys and state;",
      "partitions of a new source topic start at the starting position as of now. Its runners pick the new",
      "definition up within a second. 201 when created, 200 otherwise.",
    ].join(" "),
    middleware: [body(true)] as const,
    request: {
      params: ProcessorParamsSchema,
      body: { required: true, content: { "application/json": { schema: CreateBodySchema } } },
    },
    responses: {
      200: {
        description: "Changed, or already so",
        content: { "application/json": { schema: ProcessorSchema } },
      },
      201: { description: "Created", content: { "application/json": { schema: ProcessorSchema } } },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(replace, async (c) => {
    const { processor_name } = c.req.valid("param");
    const definition = c.req.valid("json");
    if (definition.name !== processor_name) {
      throw new InvalidArgumentError(
        `name: must be the processor named in the path (${processor_name}), got ${definition.name}`,
        {
          details: { field: "name" },
        },
      );
    }
    const json =
      definition.starting_timestamp === undefined
        ? definition
        : {
            ...definition,
            starting_timestamp: parseTimestamp(definition.starting_timestamp, "starting_timestamp"),
          };
    const outcome = await processors.apply(json);
    changed(processor_name);
    const [processor] = (await processors.list()).filter((candidate) => candidate.name === processor_name);
    if (!processor) throw new NotFoundError(`processor not found: ${processor_name} (deleted meanwhile)`);
    return c.json(processorResource(c, clusterId, processor), outcome === "created" ? 201 : 200);
  });

  const list = createRoute({
    method: "get",
    path: base,
    tags,
    summary: "List processors",
    request: { params: ClusterParamsSchema },
    responses: {
      200: {
        description: "Every processor, by name",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("SluiceProcessorList"),
                metadata: ListMetadataSchema,
                data: z.array(ProcessorSchema),
              })
              .openapi("ProcessorList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(list, async (c) => {
    const listed = await processors.list();
    return c.json(
      {
        kind: "SluiceProcessorList" as const,
        metadata: { self: urlOf(c, `${clusterPath(clusterId)}/processors`), next: null },
        data: listed.map((processor) => processorResource(c, clusterId, processor)),
      },
      200,
    );
  });

  const describe = createRoute({
    method: "get",
    path: `${base}/{processor_name}`,
    tags,
    summary: "Describe a processor with each partition's checkpoint, lag, blocked keys and last error",
    request: { params: ProcessorParamsSchema },
    responses: {
      200: {
        description: "The processor",
        content: { "application/json": { schema: ProcessorDetailsSchema } },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(describe, async (c) => {
    const { processor_name } = c.req.valid("param");
    return c.json(detailsResource(c, clusterId, await processors.describe(processor_name)), 200);
  });

  for (const action of ["pause", "resume"] as const) {
    const route = createRoute({
      method: "post",
      path: `${base}/{processor_name}/${action}`,
      tags,
      summary:
        action === "pause"
          ? "Pause a processor: its runners finish the batches in flight, commit them and stop"
          : "Resume a paused processor where it stopped",
      request: { params: ProcessorParamsSchema },
      responses: {
        200: { description: "The processor", content: { "application/json": { schema: ProcessorSchema } } },
        ...errorResponses(...COMMON_ERRORS),
      },
    });
    app.openapi(route, async (c) => {
      const { processor_name } = c.req.valid("param");
      const processor = await processors[action](processor_name);
      changed(processor_name);
      return c.json(processorResource(c, clusterId, processor), 200);
    });
  }

  const reset = createRoute({
    method: "post",
    path: `${base}/{processor_name}/reset`,
    tags,
    summary: "Move a paused processor's checkpoints (earliest, latest, a date-time, or offsets)",
    description:
      "Only while paused and once no runner holds a partition (409 otherwise): blocked keys and pending records are dropped, and a runner that kept going unseen can no longer commit.",
    middleware: [body(true)] as const,
    request: {
      params: ProcessorParamsSchema,
      body: { required: true, content: { "application/json": { schema: ResetBodySchema } } },
    },
    responses: {
      200: {
        description: "The processor as it is now",
        content: { "application/json": { schema: ProcessorDetailsSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(reset, async (c) => {
    const { processor_name } = c.req.valid("param");
    const request = c.req.valid("json");
    const target: ResetTarget =
      request.to === "earliest" || request.to === "latest"
        ? { to: request.to }
        : request.to === "datetime"
          ? { to: "timestamp", timestampMs: parseTimestamp(request.datetime, "datetime") }
          : {
              to: "offsets",
              offsets: request.offsets.map((entry) => ({
                topic: entry.topic_name,
                partition: entry.partition_id,
                offset: entry.offset,
              })),
            };
    await processors.reset(processor_name, target);
    return c.json(detailsResource(c, clusterId, await processors.describe(processor_name)), 200);
  });

  const remove = createRoute({
    method: "delete",
    path: `${base}/{processor_name}`,
    tags,
    summary: "Delete a processor and its progress",
    request: { params: ProcessorParamsSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERRORS) },
  });
  app.openapi(remove, async (c) => {
    const { processor_name } = c.req.valid("param");
    await processors.delete(processor_name);
    changed(processor_name);
    return c.body(null, 204);
  });
}
