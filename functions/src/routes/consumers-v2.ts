import { createRoute, z } from "@hono/zod-openapi";
import { ConflictError } from "@sluice/core";
import { type PolledRecord, REST_ERROR_CODES } from "@sluice/groups";
import type { Context, MiddlewareHandler } from "hono";
import { jsonBody } from "../body.js";
import { type AppContext, type SluiceApp, waitSignal } from "../context.js";
import { decodeData, encodeBase64 } from "../data-encoding.js";
import { urlOf } from "../resources.js";
import { errorResponses, integerText, TOPIC_NAME_PATTERN } from "../schemas.js";
import { GROUP_ID_PATTERN } from "./consumer-groups.js";

/** Confluent's v2 media types: requests and answers, and records in each embedded format. */
export const V2_JSON = "application/vnd.kafka.v2+json";
const RECORD_MEDIA_TYPES = {
  binary: "application/vnd.kafka.binary.v2+json",
  json: "application/vnd.kafka.json.v2+json",
} as const;
const INSTANCE_NAME_PATTERN = "^[A-Za-z0-9._-]{1,100}$";
const INT32_MAX = 2_147_483_647;
const OFFSET_METADATA_CHARS_MAX = 1_024;
const V2_ERRORS = [400, 404, 409, 413, 500, 503] as const;

const topicText = z.string().regex(new RegExp(TOPIC_NAME_PATTERN), {
  message: "must be a topic name: 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const partitionNumber = z.number().int().min(0).max(INT32_MAX);
const offsetNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const GroupNameParams = z.object({
  group_name: z
    .string()
    .regex(new RegExp(GROUP_ID_PATTERN), {
      message: "must be 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
    })
    .openapi({ param: { name: "group_name", in: "path" }, example: "orders-app" }),
});

const InstanceParams = GroupNameParams.extend({
  instance: z
    .string()
    .regex(new RegExp(INSTANCE_NAME_PATTERN), {
      message: "must be 1 to 100 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
    })
    .openapi({ param: { name: "instance", in: "path" }, example: "consumer-1" }),
});

const CreateInstanceSchema = z
  .strictObject({
    name: z
      .string()
      .regex(new RegExp(INSTANCE_NAME_PATTERN), {
        message: "must be 1 to 100 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
      })
      .optional()
      .openapi({ description: "Default: a generated name", example: "consumer-1" }),
    format: z.enum(["binary", "json"]).optional().openapi({
      description: "How keys and values are embedded in records: base64 (binary, the default) or JSON",
    }),
    "auto.offset.reset": z.enum(["earliest", "latest", "none"]).optional().openapi({
      description: "Where a partition with no committed offset starts. Default latest",
    }),
    "auto.commit.enable": z.enum(["true", "false"]).optional().openapi({
      description: "Default true: each poll first commits what the previous polls returned (at least once)",
    }),
    "consumer.request.timeout.ms": z.number().int().min(0).max(30_000).optional().openapi({
      description: "How long a poll without `timeout` waits for records. Default 1000",
    }),
    "session.timeout.ms": z.number().int().min(1_000).max(1_800_000).optional().openapi({
      description:
        "A Sluice extension: the instance ends (and its partitions move) this long after its last poll. Default 60000",
    }),
  })
  .openapi("ConsumerInstanceRequest");

const CreatedInstanceSchema = z
  .object({ instance_id: z.string(), base_uri: z.string() })
  .openapi("ConsumerInstance");

const SubscriptionSchema = z
  .strictObject({
    topics: z.array(topicText).min(1).max(1_000),
    // Refused with its own message rather than as an unknown field; `not: {}` tells generators so.
    topic_pattern: z
      .unknown()
      .refine((value) => value === undefined, {
        message: "topic_pattern subscriptions are not supported yet; name the topics in `topics`",
      })
      .optional()
      .openapi({ not: {}, description: "Not supported yet: refused with a 400" }),
  })
  .openapi("ConsumerSubscription");

const PartitionSchema = z.strictObject({ topic: topicText, partition: partitionNumber });

const PartitionsSchema = z
  .strictObject({ partitions: z.array(PartitionSchema).min(1).max(10_000) })
  .openapi("ConsumerPartitions");

const ManualAssignmentSchema = z
  .strictObject({ partitions: z.array(PartitionSchema).max(10_000).optional() })
  .openapi("ConsumerManualAssignment");

const SeekSchema = z
  .strictObject({
    offsets: z
      .array(z.strictObject({ topic: topicText, partition: partitionNumber, offset: offsetNumber }))
      .min(1)
      .max(10_000),
  })
  .openapi("ConsumerSeek");

const CommitSchema = z
  .strictObject({
    offsets: z
      .array(
        z.strictObject({
          topic: topicText,
          partition: partitionNumber,
          offset: offsetNumber.openapi({ description: "The next offset to consume (last processed + 1)" }),
          metadata: z.string().max(OFFSET_METADATA_CHARS_MAX).optional(),
        }),
      )
      .min(1)
      .max(10_000)
      .optional(),
  })
  .openapi("ConsumerOffsetCommit");

const OffsetsSchema = z
  .object({
    offsets: z.array(
      z.object({
        topic: z.string(),
        partition: z.number().int(),
        offset: z.number().int(),
        metadata: z.string(),
      }),
    ),
  })
  .openapi("ConsumerOffsets");

const V2RecordSchema = z
  .object({
    topic: z.string(),
    key: z
      .unknown()
      .openapi({ description: "base64 (binary format), or the JSON value (json format); null for none" }),
    value: z.unknown(),
    partition: z.number().int(),
    offset: z.number().int(),
  })
  .openapi("ConsumerRecord");

const v2Body = <T extends z.ZodType>(schema: T) => ({
  [V2_JSON]: { schema },
  "application/json": { schema },
});

const v2Answer = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { [V2_JSON]: { schema } },
});

/**
 * Confluent's v2 request types are JSON, but the validators' JSON pattern has no digits in a
 * vendor type (`vnd.kafka.v2`), so such a body is handed on as application/json.
 */
const KAFKA_V2_TYPE = /^application\/vnd\.kafka\.(?:[a-z]+\.)?v2\+json\s*(?:;|$)/i;
const acceptV2Types: MiddlewareHandler = async (c, next) => {
  if (KAFKA_V2_TYPE.test(c.req.header("content-type") ?? "")) {
    try {
      c.req.raw.headers.set("content-type", "application/json");
    } catch {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      c.req.raw = new Request(c.req.raw, { headers, duplex: "half" } as RequestInit);
    }
  }
  await next();
};

/** A JSON answer in Confluent's v2 media type. */
function v2Json(c: Context, body: unknown, status: 200 = 200): never {
  return c.json(body, status, { "Content-Type": V2_JSON }) as never;
}

function recordJson(polled: PolledRecord, format: "binary" | "json") {
  const embed = (bytes: Uint8Array | null) => {
    if (bytes === null) return null;
    if (format === "binary") return encodeBase64(bytes);
    // JSON text comes back parsed; anything else as its text (or base64 when not UTF-8), never an error.
    return decodeData(bytes, "JSON")?.data ?? null;
  };
  return {
    topic: polled.topic,
    key: embed(polled.record.key),
    value: embed(polled.record.value),
    partition: polled.partition,
    offset: polled.record.offset,
  };
}

/**
 * Confluent REST Proxy v2 consumer instances (packages/groups, RestConsumers): the state of each
 * lives in the store, so any server or Lambda answers any call of any instance.
 */
export function registerConsumerV2Routes(app: SluiceApp, context: AppContext): void {
  const { restConsumers, limits } = context;
  const body = (required: boolean): MiddlewareHandler[] => [
    acceptV2Types,
    jsonBody({ bytesMax: limits.requestBytesMax, required }),
  ];
  const tags = ["Consumers (v2)"];
  const instancePath = "/consumers/{group_name}/instances/{instance}";

  const create = createRoute({
    method: "post",
    path: "/consumers/{group_name}",
    tags,
    summary: "Create a consumer instance in a group",
    description:
      "The instance joins the group when it subscribes. A name in use by a live instance is 409 with error_code 40902.",
    middleware: body(false),
    request: { params: GroupNameParams, body: { required: false, content: v2Body(CreateInstanceSchema) } },
    responses: {
      200: v2Answer("The instance's id and the URL of its routes", CreatedInstanceSchema),
      ...errorResponses(...V2_ERRORS),
    },
  });
  app.openapi(create, async (c) => {
    const { group_name } = c.req.valid("param");
    const request = c.req.valid("json");
    const autoCommit = request["auto.commit.enable"];
    const instance = await restConsumers.create(group_name, {
      ...(request.name === undefined ? {} : { name: request.name }),
      ...(request.format === undefined ? {} : { format: request.format }),
      ...(request["auto.offset.reset"] === undefined
        ? {}
        : { autoOffsetReset: request["auto.offset.reset"] }),
      ...(autoCommit === undefined ? {} : { autoCommit: autoCommit === "true" }),
      ...(request["consumer.request.timeout.ms"] === undefined
        ? {}
        : { requestTimeoutMs: request["consumer.request.timeout.ms"] }),
      ...(request["session.timeout.ms"] === undefined
        ? {}
        : { sessionTimeoutMs: request["session.timeout.ms"] }),
    });
    const path = `/consumers/${encodeURIComponent(group_name)}/instances/${encodeURIComponent(instance.name)}`;
    return v2Json(c, { instance_id: instance.name, base_uri: urlOf(c, path) });
  });

  const remove = createRoute({
    method: "delete",
    path: instancePath,
    tags,
    summary: "Delete a consumer instance: it commits (with auto-commit) and leaves the group",
    request: { params: InstanceParams },
    responses: { 204: { description: "Deleted" }, ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(remove, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    await restConsumers.delete(group_name, instance);
    return c.body(null, 204);
  });

  const subscribe = createRoute({
    method: "post",
    path: `${instancePath}/subscription`,
    tags,
    summary: "Subscribe to topics (replacing the subscription) and join the group",
    description:
      "Every topic must exist (404, error_code 40401). `topic_pattern` is not supported yet (400).",
    middleware: body(true),
    request: { params: InstanceParams, body: { required: true, content: v2Body(SubscriptionSchema) } },
    responses: { 204: { description: "Subscribed" }, ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(subscribe, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    await restConsumers.subscribe(group_name, instance, c.req.valid("json").topics);
    return c.body(null, 204);
  });

  const getSubscription = createRoute({
    method: "get",
    path: `${instancePath}/subscription`,
    tags,
    summary: "The topics the instance subscribes to",
    request: { params: InstanceParams },
    responses: {
      200: v2Answer("Its topics", z.object({ topics: z.array(z.string()) }).openapi("ConsumerTopics")),
      ...errorResponses(...V2_ERRORS),
    },
  });
  app.openapi(getSubscription, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    return v2Json(c, { topics: (await restConsumers.get(group_name, instance)).subscription });
  });

  const unsubscribe = createRoute({
    method: "delete",
    path: `${instancePath}/subscription`,
    tags,
    summary: "Unsubscribe: the instance leaves the group and stays, with no subscription",
    request: { params: InstanceParams },
    responses: { 204: { description: "Unsubscribed" }, ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(unsubscribe, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    await restConsumers.unsubscribe(group_name, instance);
    return c.body(null, 204);
  });

  const records = createRoute({
    method: "get",
    path: `${instancePath}/records`,
    tags,
    summary: "Poll: the next records of the instance's partitions",
    description: [
      "Heartbeats for the instance, commits first what earlier polls returned (auto.commit.enable), then returns",
      "records of its partitions from its positions, up to about max_bytes of keys and values (at least one record",
      "when any is there). With nothing there yet it waits up to `timeout` ms. Not subscribed: 409 (40903). An Accept",
      "header naming the other embedded format is 406 (40601).",
    ].join(" "),
    request: {
      params: InstanceParams,
      query: z.object({
        timeout: integerText(0, limits.readTimeoutMsMax).optional().openapi({
          description:
            "ms to wait when nothing is there yet; default the instance's consumer.request.timeout.ms",
        }),
        max_bytes: integerText(1, limits.readBytesMax)
          .optional()
          .openapi({ description: "Bytes of keys and values, about; default 1 MiB" }),
      }),
    },
    responses: {
      200: {
        description: "Records, oldest first per partition",
        content: {
          [RECORD_MEDIA_TYPES.binary]: { schema: z.array(V2RecordSchema) },
          [RECORD_MEDIA_TYPES.json]: { schema: z.array(V2RecordSchema) },
          "application/json": { schema: z.array(V2RecordSchema) },
        },
      },
      ...errorResponses(...V2_ERRORS, 406),
    },
  });
  app.openapi(records, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    const query = c.req.valid("query");
    const state = await restConsumers.get(group_name, instance);
    const mediaType = answerMediaType(c.req.header("accept"), state.format);
    if (mediaType.refused !== undefined)
      return c.json({ error_code: 40601, message: mediaType.refused }, 406) as never;
    const polled = await restConsumers.poll(group_name, instance, {
      ...(query.timeout === undefined ? {} : { timeoutMs: query.timeout }),
      ...(query.max_bytes === undefined ? {} : { maxBytes: query.max_bytes }),
      signal: waitSignal(c.req.raw, context),
    });
    return c.json(
      polled.map((record) => recordJson(record, state.format)),
      200,
      { "Content-Type": mediaType.type },
    ) as never;
  });

  const commit = createRoute({
    method: "post",
    path: `${instancePath}/offsets`,
    tags,
    summary: "Commit offsets: the ones named, or with no body every position consumed so far",
    description:
      "Each offset is the next one to consume (last processed + 1), as in Kafka and as GET …/offsets answers. Only the instance's own partitions: another is 409 (FENCED_MEMBER_EPOCH) and nothing is committed.",
    middleware: body(false),
    request: { params: InstanceParams, body: { required: false, content: v2Body(CommitSchema) } },
    responses: { 200: v2Answer("What was committed", OffsetsSchema), ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(commit, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    const request = c.req.valid("json");
    const committed = await restConsumers.commit(
      group_name,
      instance,
      request.offsets?.map((offset) => ({
        topic: offset.topic,
        partition: offset.partition,
        offset: offset.offset,
        ...(offset.metadata === undefined ? {} : { metadata: offset.metadata }),
      })),
    );
    return v2Json(c, {
      offsets: committed.map((offset) => ({
        topic: offset.topic,
        partition: offset.partition,
        offset: offset.offset,
        metadata: offset.metadata ?? "",
      })),
    });
  });

  const getOffsets = createRoute({
    method: "get",
    path: `${instancePath}/offsets`,
    tags,
    summary: "The committed offsets of the instance's assigned partitions",
    description:
      "Partitions with no committed offset are left out. (Confluent names the partitions in a GET body, which HTTP stacks drop; Sluice answers for the assigned ones.)",
    request: { params: InstanceParams },
    responses: { 200: v2Answer("Committed offsets", OffsetsSchema), ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(getOffsets, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    return v2Json(c, { offsets: await restConsumers.committed(group_name, instance) });
  });

  const seek = createRoute({
    method: "post",
    path: `${instancePath}/positions`,
    tags,
    summary: "Seek: the next poll of each partition starts at its offset",
    description:
      "Only assigned partitions (409, 40903). An offset outside the log is resolved by auto.offset.reset at the next poll, as in Kafka.",
    middleware: body(true),
    request: { params: InstanceParams, body: { required: true, content: v2Body(SeekSchema) } },
    responses: { 204: { description: "Done" }, ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(seek, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    await restConsumers.seek(group_name, instance, c.req.valid("json").offsets);
    return c.body(null, 204);
  });

  for (const edge of ["beginning", "end"] as const) {
    const route = createRoute({
      method: "post",
      path: `${instancePath}/positions/${edge}`,
      tags,
      summary: `Seek to the ${edge === "beginning" ? "log start" : "end (the high watermark)"} of partitions`,
      description: "Only assigned partitions (409, 40903).",
      middleware: body(true),
      request: { params: InstanceParams, body: { required: true, content: v2Body(PartitionsSchema) } },
      responses: { 204: { description: "Done" }, ...errorResponses(...V2_ERRORS) },
    });
    app.openapi(route, async (c) => {
      const { group_name, instance } = c.req.valid("param");
      const partitions = c.req.valid("json").partitions;
      if (edge === "beginning") await restConsumers.seekToBeginning(group_name, instance, partitions);
      else await restConsumers.seekToEnd(group_name, instance, partitions);
      return c.body(null, 204);
    });
  }

  const assignments = createRoute({
    method: "get",
    path: `${instancePath}/assignments`,
    tags,
    summary: "The partitions the group gave the instance at its last poll",
    request: { params: InstanceParams },
    responses: {
      200: v2Answer(
        "Its partitions",
        z
          .object({ partitions: z.array(z.object({ topic: z.string(), partition: z.number().int() })) })
          .openapi("ConsumerAssignments"),
      ),
      ...errorResponses(...V2_ERRORS),
    },
  });
  app.openapi(assignments, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    return v2Json(c, { partitions: await restConsumers.assignments(group_name, instance) });
  });

  const assign = createRoute({
    method: "post",
    path: `${instancePath}/assignments`,
    tags,
    summary: "Manual assignment: not supported yet (409)",
    description:
      "Sluice's instances always take their partitions from the group: subscribe instead. The answer is 409 with error_code 40903.",
    middleware: body(false),
    // Any partition list (or none) gets the same 409: the body is read only to be well-formed JSON.
    request: { params: InstanceParams, body: { required: false, content: v2Body(ManualAssignmentSchema) } },
    responses: { ...errorResponses(...V2_ERRORS) },
  });
  app.openapi(assign, async (c) => {
    const { group_name, instance } = c.req.valid("param");
    await restConsumers.get(group_name, instance);
    throw new ConflictError(
      `manual partition assignment is not supported yet: consumer instance ${instance} takes its partitions from group ${group_name}; subscribe instead (POST …/subscription)`,
      { restErrorCode: REST_ERROR_CODES.illegalState },
    );
  });
}

/**
 * The records' media type: the instance's format, unless the client asks only for plain JSON.
 * Asking for the other embedded format is Confluent's 406 (40601).
 */
function answerMediaType(
  accept: string | undefined,
  format: "binary" | "json",
): { type: string; refused?: undefined } | { type?: undefined; refused: string } {
  const wanted = RECORD_MEDIA_TYPES[format];
  if (!accept) return { type: wanted };
  const types = accept.split(",").map((part) => part.split(";")[0]!.trim().toLowerCase());
  if (types.some((type) => type === wanted || type === "*/*" || type === "application/*"))
    return { type: wanted };
  if (types.includes("application/json") || types.includes(V2_JSON)) return { type: "application/json" };
  const other = format === "binary" ? RECORD_MEDIA_TYPES.json : RECORD_MEDIA_TYPES.binary;
  if (types.includes(other)) {
    return {
      refused: `consumer instance is of format ${format}, but the request accepts only ${other}: ask for ${wanted} (or application/json)`,
    };
  }
  return { type: wanted };
}
