import { createRoute, z } from "@hono/zod-openapi";
import { NotFoundError } from "@sluice/core";
import { refuseProcessorGroup } from "@sluice/processors";
import {
  ACQUIRE_RECORDS_MAX,
  type AcknowledgementResult,
  type AcquiredRecord,
  AUTO_OFFSET_RESET,
  configEntries,
  DEAD_LETTER_TOPIC,
  DELIVERY_COUNT_LIMIT,
  DELIVERY_COUNT_LIMIT_MAX,
  LOCK_DURATION_MS_MAX,
  LOCK_DURATION_MS_MIN,
  parseShareGroupConfigs,
  RECORD_LOCK_DURATION_MS,
  SHARE_GROUP_CONFIG_NAMES,
  SHARE_SESSION_TIMEOUT_MS_MAX,
  SHARE_SESSION_TIMEOUT_MS_MIN,
  type ShareGroupDescription,
  type ShareGroupStateName,
  type StartOffsetResetSpec,
} from "@sluice/queues";
import type { Context } from "hono";
import { jsonBody } from "../body.js";
import { type AppContext, type SluiceApp, waitSignal } from "../context.js";
import { DATA_TYPES, type DataType, decodeData, encodeBase64 } from "../data-encoding.js";
import { ISO_DATE_TIME_PATTERN } from "../patterns.js";
import { clusterPath, mapLimited, topicPath, urlOf } from "../resources.js";
import {
  ClusterParamsSchema,
  COMMON_ERRORS,
  errorResponses,
  ListMetadataSchema,
  RelatedSchema,
  ResourceMetadataSchema,
  TOPIC_NAME_PATTERN,
} from "../schemas.js";
import { isoTimestamp, parseTimestamp } from "../timestamps.js";
import { GROUP_ID_PATTERN } from "./consumer-groups.js";

/**
 * Share groups (queues) over HTTP. Confluent's REST Proxy has no share-group API, so these routes
 * are Sluice's own, in the style of its v3 routes (docs/http-api.md, "Queues (share groups)"):
 * admin resources under `/v3/clusters/{cluster_id}/share-groups/{group_id}` (describe, members,
 * partitions, start-offset reset), and a member's own routes under `…/members/{member_id}` (join,
 * heartbeat, acquire, acknowledge, leave). Acquire is a POST: it changes state (it locks records),
 * and it may carry acknowledgements of earlier records, as Kafka's ShareFetch does.
 */

const MEMBER_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$";
const INT32_MAX = 2_147_483_647;
const ACKNOWLEDGEMENTS_MAX = 10_000;

const groupIdText = z.string().regex(new RegExp(GROUP_ID_PATTERN), {
  message: "must be 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const memberIdText = z.string().regex(new RegExp(MEMBER_ID_PATTERN), {
  message: "must be 1 to 128 characters from a-z, A-Z, 0-9, '.', '_', ':' and '-'",
});
const topicNameText = z.string().regex(new RegExp(TOPIC_NAME_PATTERN), {
  message: "must be a topic name: 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const offsetNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const ShareGroupParamsSchema = ClusterParamsSchema.extend({
  group_id: groupIdText.openapi({ param: { name: "group_id", in: "path" }, example: "orders-queue" }),
});

const ShareMemberParamsSchema = ShareGroupParamsSchema.extend({
  member_id: memberIdText.openapi({ param: { name: "member_id", in: "path" }, example: "worker-1" }),
});

const STATE_NAMES: Record<ShareGroupStateName, "EMPTY" | "STABLE"> = { Empty: "EMPTY", Stable: "STABLE" };

const ConfigSchema = z.object({ name: z.string(), value: z.string() }).openapi("ShareGroupConfig");

const ShareGroupSchema = z
  .object({
    kind: z.literal("KafkaShareGroup"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    share_group_id: z.string(),
    state: z.enum(["EMPTY", "STABLE"]).openapi({ description: "EMPTY: no members; STABLE: members" }),
    member_count: z.number().int(),
    created_at: z.string().openapi({ description: "ISO-8601" }),
    topic_names: z.array(z.string()).openapi({ description: "Every topic a member has joined on" }),
    configs: z.array(ConfigSchema),
    members: RelatedSchema,
    partitions: RelatedSchema,
  })
  .openapi("ShareGroup");

const ShareMemberSchema = z
  .object({
    kind: z.literal("KafkaShareGroupMember"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    share_group_id: z.string(),
    member_id: z.string(),
    client_id: z.string().nullable(),
    topic_names: z.array(z.string()),
    joined_at: z.string(),
    session_expires_at: z.string().openapi({ description: "ISO-8601, on the server's clock" }),
    acquired_records: z.number().int().openapi({ description: "Records it holds locks on now" }),
  })
  .openapi("ShareGroupMember");

const SharePartitionSchema = z
  .object({
    kind: z.literal("KafkaSharePartition"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    share_group_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    initialized: z
      .boolean()
      .openapi({ description: "False until a member joined on the topic (the window starts then)" }),
    start_offset: z.number().int().openapi({ description: "Every record before it is settled" }),
    end_offset: z.number().int().openapi({ description: "No record from here on has been handed out" }),
    high_watermark: z.number().int(),
    acquired_records: z.number().int().openapi({ description: "Locked to a member now" }),
    available_records: z
      .number()
      .int()
      .openapi({ description: "In the window and free: released, or their lock passed" }),
    acknowledged_records: z.number().int().openapi({ description: "Acknowledged, in the window" }),
    archived_records: z.number().int().openapi({ description: "Archived, in the window" }),
    dead_letters_due: z
      .number()
      .int()
      .openapi({ description: "Archived records whose dead letter is not written yet" }),
    lag: z.number().int().openapi({
      description: "Records not settled yet: the window's unsettled ones plus high_watermark − end_offset",
    }),
  })
  .openapi("SharePartition");

/** Each config with the values it takes, so a schema-valid config is one the group accepts. */
const ConfigEntrySchema = z.discriminatedUnion("name", [
  z.strictObject({
    name: z.literal(DELIVERY_COUNT_LIMIT),
    value: z.string().regex(/^([1-9]|[1-9][0-9]|100)$/, {
      message: `must be an integer from 1 to ${DELIVERY_COUNT_LIMIT_MAX}`,
    }),
  }),
  z.strictObject({
    name: z.literal(RECORD_LOCK_DURATION_MS),
    value: z.string().regex(/^([1-9][0-9]{3,5}|[12][0-9]{6}|3[0-5][0-9]{5}|3600000)$/, {
      message: `must be an integer from ${LOCK_DURATION_MS_MIN} to ${LOCK_DURATION_MS_MAX}`,
    }),
  }),
  z.strictObject({ name: z.literal(AUTO_OFFSET_RESET), value: z.enum(["earliest", "latest"]) }),
  z.strictObject({
    name: z.literal(DEAD_LETTER_TOPIC),
    value: z.string().regex(new RegExp(`${TOPIC_NAME_PATTERN}|^$`), {
      message: "must be a topic name, or empty for none",
    }),
  }),
]);

const JoinBodySchema = z
  .strictObject({
    member_id: memberIdText.optional().openapi({
      description: "Unique to the member; default: a new UUID. Joining again under an id refreshes it",
      example: "worker-1",
    }),
    topic_names: z
      .array(topicNameText)
      .min(1)
      .max(1_000)
      .openapi({ example: ["jobs"] }),
    configs: z
      .array(ConfigEntrySchema)
      .max(SHARE_GROUP_CONFIG_NAMES.length)
      .optional()
      .openapi({
        description: [
          `Taken when this join creates the group; otherwise they must match the group's (409 INVALID_CONFIG).`,
          `${DELIVERY_COUNT_LIMIT} (1 to ${DELIVERY_COUNT_LIMIT_MAX}, default 5),`,
          `${RECORD_LOCK_DURATION_MS} (${LOCK_DURATION_MS_MIN} to ${LOCK_DURATION_MS_MAX}, default 30000),`,
          `${AUTO_OFFSET_RESET} (earliest or latest, default latest), ${DEAD_LETTER_TOPIC} (an existing topic; default none)`,
        ].join(" "),
        example: [{ name: DELIVERY_COUNT_LIMIT, value: "3" }],
      }),
    session_timeout_ms: z
      .number()
      .int()
      .min(SHARE_SESSION_TIMEOUT_MS_MIN)
      .max(SHARE_SESSION_TIMEOUT_MS_MAX)
      .optional()
      .openapi({ description: "Default 45000: the member is removed this long after its last call" }),
    client_id: z.string().min(1).max(249).optional(),
  })
  .openapi("ShareGroupJoinRequest");

const JoinResponseSchema = z
  .object({
    share_group_id: z.string(),
    member_id: z.string(),
    topic_names: z.array(z.string()),
    session_timeout_ms: z.number().int(),
    session_remaining_ms: z.number().int(),
    group_created: z.boolean(),
    configs: z.array(ConfigSchema),
  })
  .openapi("ShareGroupJoinResponse");

const AcknowledgeTypeSchema = z.enum(["ACCEPT", "RELEASE", "REJECT", "RENEW"]).openapi({
  description:
    "ACCEPT: processed. RELEASE: deliver again (to any member). REJECT: archive (and dead-letter). RENEW: extend the lock",
});

const AcknowledgementSchema = z.strictObject({
  topic_name: topicNameText,
  partition_id: z.number().int().min(0).max(INT32_MAX),
  offsets: z
    .array(offsetNumber)
    .min(1)
    .max(ACKNOWLEDGEMENTS_MAX)
    .refine((offsets) => new Set(offsets).size === offsets.length, { message: "offsets must be unique" })
    .openapi({ uniqueItems: true }),
  type: AcknowledgeTypeSchema,
});

const AcknowledgementsSchema = z
  .array(AcknowledgementSchema)
  .min(1)
  .max(ACKNOWLEDGEMENTS_MAX)
  .superRefine((entries, context) => {
    const total = entries.reduce((sum, entry) => sum + entry.offsets.length, 0);
    if (total > ACKNOWLEDGEMENTS_MAX)
      context.addIssue({
        code: "custom",
        message: `at most ${ACKNOWLEDGEMENTS_MAX} offsets per request, got ${total}`,
      });
  })
  .openapi({ description: "Offsets with one type each; an offset may appear once per request" });

const AcknowledgementResultSchema = z
  .object({
    topic_name: z.string(),
    partition_id: z.number().int(),
    offset: z.number().int(),
    type: AcknowledgeTypeSchema,
    acknowledged: z.boolean().openapi({ description: "True when applied" }),
    code: z.string().nullable().openapi({
      description:
        "Why it was refused: INVALID_RECORD_STATE (the lock passed, another member holds it, already settled) or UNKNOWN_TOPIC_OR_PARTITION",
    }),
    message: z.string().nullable(),
    lock_remaining_ms: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "RENEW: how long the renewed lock lasts from when the server answered" }),
  })
  .openapi("ShareAcknowledgementResult");

const AcknowledgeBodySchema = z
  .strictObject({ acknowledgements: AcknowledgementsSchema })
  .openapi("ShareAcknowledgeRequest");

const AcknowledgeResponseSchema = z
  .object({ data: z.array(AcknowledgementResultSchema) })
  .openapi("ShareAcknowledgeResponse");

const DataOutSchema = z.object({ type: z.enum(DATA_TYPES), data: z.unknown() });

const AcquiredRecordSchema = z
  .object({
    topic_name: z.string(),
    partition_id: z.number().int(),
    offset: z.number().int(),
    delivery_count: z.number().int().openapi({ description: "1 the first time; raised by every delivery" }),
    lock_remaining_ms: z.number().int().openapi({
      description:
        "How long the lock lasts from when the server answered: count it from when the request was sent, and acknowledge or renew before then",
    }),
    timestamp: z.string().openapi({ description: "ISO-8601" }),
    timestamp_ms: z.number().int(),
    key: DataOutSchema.nullable(),
    value: DataOutSchema.nullable(),
    headers: z.array(
      z.object({ name: z.string(), value: z.string().nullable().openapi({ description: "Base64" }) }),
    ),
  })
  .openapi("ShareAcquiredRecord");

/** The acquire body; its limits are the deployment's read limits. */
function acquireBodySchema(limits: { readTimeoutMsMax: number; readBytesMax: number }) {
  return z
    .strictObject({
      max_records: z
        .number()
        .int()
        .min(1)
        .max(ACQUIRE_RECORDS_MAX)
        .optional()
        .openapi({ description: "Default 100" }),
      max_bytes: z.number().int().min(1).max(limits.readBytesMax).optional().openapi({
        description: "About this many bytes of keys and values (at least one record); default 1 MiB",
      }),
      timeout_ms: z.number().int().min(0).max(limits.readTimeoutMsMax).optional().openapi({
        description: "With nothing to hand out, wait up to this long (long-poll); default 0",
      }),
      key_type: z.enum(DATA_TYPES).optional().openapi({ description: "As on partition reads; default JSON" }),
      value_type: z
        .enum(DATA_TYPES)
        .optional()
        .openapi({ description: "As on partition reads; default JSON" }),
      acknowledgements: AcknowledgementsSchema.optional().openapi({
        description: "Applied before records are acquired, as on …/records:acknowledge",
      }),
    })
    .openapi("ShareAcquireRequest");
}

const AcquireResponseSchema = z
  .object({
    records: z.array(AcquiredRecordSchema),
    session_remaining_ms: z.number().int(),
    acknowledgements: z
      .array(AcknowledgementResultSchema)
      .openapi({ description: "The results of the acknowledgements sent with this request" }),
  })
  .openapi("ShareAcquireResponse");

const resetCommon = {
  topic_names: z.array(topicNameText).min(1).max(1_000).optional().openapi({
    description: "Default: every topic the group has",
  }),
  dry_run: z.boolean().optional().openapi({ description: "Default true: only say what would change" }),
};

const ResetBodySchema = z
  .discriminatedUnion("to", [
    z.strictObject({ to: z.literal("earliest"), ...resetCommon }),
    z.strictObject({ to: z.literal("latest"), ...resetCommon }),
    z.strictObject({ to: z.literal("offset"), offset: offsetNumber, ...resetCommon }),
    z.strictObject({
      to: z.literal("datetime"),
      datetime: z
        .string()
        .regex(new RegExp(ISO_DATE_TIME_PATTERN), {
          message: "must be an ISO-8601 date-time with a zone, e.g. 2024-05-01T12:00:00Z",
        })
        .openapi({ example: "2024-05-01T12:00:00Z" }),
      ...resetCommon,
    }),
  ])
  .openapi("ShareStartOffsetResetRequest");

const ResetResponseSchema = z
  .object({
    dry_run: z.boolean(),
    data: z.array(
      z.object({
        topic_name: z.string(),
        partition_id: z.number().int(),
        previous_start_offset: z
          .number()
          .int()
          .nullable()
          .openapi({ description: "null: the window had not started" }),
        new_start_offset: z.number().int(),
      }),
    ),
  })
  .openapi("ShareStartOffsetResetResponse");

function groupPath(clusterId: string, groupId: string): string {
  return `${clusterPath(clusterId)}/share-groups/${encodeURIComponent(groupId)}`;
}

function groupResource(c: Context, clusterId: string, group: ShareGroupDescription) {
  const self = urlOf(c, groupPath(clusterId, group.groupId));
  return {
    kind: "KafkaShareGroup" as const,
    metadata: { self, resource_name: `crn:///kafka=${clusterId}/share-group=${group.groupId}` },
    cluster_id: clusterId,
    share_group_id: group.groupId,
    state: STATE_NAMES[group.state],
    member_count: group.members.length,
    created_at: isoTimestamp(group.createdAtMs),
    topic_names: group.topics,
    configs: configList(group.configs),
    members: { related: `${self}/members` },
    partitions: { related: `${self}/partitions` },
  };
}

function configList(configs: ShareGroupDescription["configs"]) {
  return Object.entries(configEntries(configs)).map(([name, value]) => ({ name, value }));
}

function recordJson(acquired: AcquiredRecord, nowMs: number, keyType: DataType, valueType: DataType) {
  const { record } = acquired;
  return {
    topic_name: acquired.topic,
    partition_id: acquired.partition,
    offset: acquired.offset,
    delivery_count: acquired.deliveryCount,
    lock_remaining_ms: Math.max(0, acquired.lockDeadlineMs - nowMs),
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

function resultJson(result: AcknowledgementResult, nowMs: number) {
  const { outcome } = result;
  return {
    topic_name: result.topic,
    partition_id: result.partition,
    offset: result.offset,
    type: result.type,
    acknowledged: outcome.ok,
    code: outcome.ok ? null : outcome.code,
    message: outcome.ok ? null : outcome.message,
    lock_remaining_ms:
      outcome.ok && outcome.lockDeadlineMs !== undefined ? Math.max(0, outcome.lockDeadlineMs - nowMs) : null,
  };
}

type AcknowledgementsBody = z.infer<typeof AcknowledgementsSchema>;

function flatten(entries: AcknowledgementsBody) {
  return entries.flatMap((entry) =>
    entry.offsets.map((offset) => ({
      topic: entry.topic_name,
      partition: entry.partition_id,
      offset,
      type: entry.type,
    })),
  );
}

function resetSpec(body: z.infer<typeof ResetBodySchema>): StartOffsetResetSpec {
  switch (body.to) {
    case "earliest":
    case "latest":
      return { to: body.to };
    case "offset":
      return { to: "offset", offset: body.offset };
    case "datetime":
      return { to: "datetime", timestampMs: parseTimestamp(body.datetime, "datetime") };
  }
}

/** Registers the share-group routes (see the module comment). */
export function registerShareGroupRoutes(app: SluiceApp, context: AppContext): void {
  const { shareGroups: queues, clusterId, limits, engine } = context;
  const body = (required: boolean) => jsonBody({ bytesMax: limits.requestBytesMax, required });
  const base = "/v3/clusters/{cluster_id}/share-groups";
  const memberBase = `${base}/{group_id}/members/{member_id}`;
  const tags = ["Share groups (queues)"];
  const now = () => engine.clock.now();
  const AcquireBodySchema = acquireBodySchema(limits);

  const listGroups = createRoute({
    method: "get",
    path: base,
    tags,
    summary: "List share groups",
    request: { params: ClusterParamsSchema },
    responses: {
      200: {
        description: "Every share group, by id",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaShareGroupList"),
                metadata: ListMetadataSchema,
                data: z.array(ShareGroupSchema),
              })
              .openapi("ShareGroupList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listGroups, async (c) => {
    const listed = await queues.list();
    const described = await mapLimited(listed, 8, (group) =>
      queues.describe(group.groupId).catch((error: unknown) => {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }),
    );
    return c.json(
      {
        kind: "KafkaShareGroupList" as const,
        metadata: { self: urlOf(c, `${clusterPath(clusterId)}/share-groups`), next: null },
        data: described
          .filter((group): group is ShareGroupDescription => group !== undefined)
          .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0))
          .map((group) => groupResource(c, clusterId, group)),
      },
      200,
    );
  });

  const getGroup = createRoute({
    method: "get",
    path: `${base}/{group_id}`,
    tags,
    summary: "Describe a share group: state, member count, topics and configs",
    request: { params: ShareGroupParamsSchema },
    responses: {
      200: { description: "The share group", content: { "application/json": { schema: ShareGroupSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(getGroup, async (c) => {
    const { group_id } = c.req.valid("param");
    return c.json(groupResource(c, clusterId, await queues.describe(group_id)), 200);
  });

  const listMembers = createRoute({
    method: "get",
    path: `${base}/{group_id}/members`,
    tags,
    summary: "The members of a share group, with the records each holds",
    request: { params: ShareGroupParamsSchema },
    responses: {
      200: {
        description: "Members whose sessions last, by id",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaShareGroupMemberList"),
                metadata: ListMetadataSchema,
                data: z.array(ShareMemberSchema),
              })
              .openapi("ShareGroupMemberList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listMembers, async (c) => {
    const { group_id } = c.req.valid("param");
    const group = await queues.describe(group_id);
    const self = `${groupPath(clusterId, group_id)}/members`;
    return c.json(
      {
        kind: "KafkaShareGroupMemberList" as const,
        metadata: { self: urlOf(c, self), next: null },
        data: group.members.map((member) => ({
          kind: "KafkaShareGroupMember" as const,
          metadata: {
            self: urlOf(c, `${self}/${encodeURIComponent(member.memberId)}`),
            resource_name: `crn:///kafka=${clusterId}/share-group=${group_id}/member=${member.memberId}`,
          },
          cluster_id: clusterId,
          share_group_id: group_id,
          member_id: member.memberId,
          client_id: member.clientId ?? null,
          topic_names: member.topics,
          joined_at: isoTimestamp(member.joinedAtMs),
          session_expires_at: isoTimestamp(member.sessionDeadlineMs),
          acquired_records: member.acquired,
        })),
      },
      200,
    );
  });

  const listPartitions = createRoute({
    method: "get",
    path: `${base}/{group_id}/partitions`,
    tags,
    summary: "Each share-partition's window: start and end offsets, records by state, lag",
    request: { params: ShareGroupParamsSchema },
    responses: {
      200: {
        description: "By topic and partition",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaSharePartitionList"),
                metadata: ListMetadataSchema,
                data: z.array(SharePartitionSchema),
              })
              .openapi("SharePartitionList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listPartitions, async (c) => {
    const { group_id } = c.req.valid("param");
    const group = await queues.describe(group_id);
    const self = `${groupPath(clusterId, group_id)}/partitions`;
    return c.json(
      {
        kind: "KafkaSharePartitionList" as const,
        metadata: { self: urlOf(c, self), next: null },
        data: group.partitions.map((partition) => ({
          kind: "KafkaSharePartition" as const,
          metadata: {
            self: urlOf(c, `${topicPath(clusterId, partition.topic)}/partitions/${partition.partition}`),
            resource_name: `crn:///kafka=${clusterId}/share-group=${group_id}/topic=${partition.topic}/partition=${partition.partition}`,
          },
          cluster_id: clusterId,
          share_group_id: group_id,
          topic_name: partition.topic,
          partition_id: partition.partition,
          initialized: partition.initialized,
          start_offset: partition.startOffset,
          end_offset: partition.endOffset,
          high_watermark: partition.highWatermark,
          acquired_records: partition.acquired,
          available_records: partition.available,
          acknowledged_records: partition.acknowledged,
          archived_records: partition.archived,
          dead_letters_due: partition.deadLettersDue,
          lag: partition.lag,
        })),
      },
      200,
    );
  });

  const resetStartOffsets = createRoute({
    method: "post",
    path: `${base}/{group_id}/start-offsets:reset`,
    tags,
    summary: "Move the start offset of an empty share group (dry run by default)",
    description: [
      "Every share-partition of `topic_names` (default: the group's topics) starts again, as an empty window, at the",
      "earliest or latest offset, an offset, or the first offset at or after a date-time, clamped to its log. Records",
      "in flight are forgotten; delivery counts start over. `dry_run` (default true) only answers the plan. While the",
      "group has members the answer is 409 with code NON_EMPTY_GROUP and nothing changes.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: ShareGroupParamsSchema,
      body: { required: true, content: { "application/json": { schema: ResetBodySchema } } },
    },
    responses: {
      200: {
        description: "The plan, and whether it was applied",
        content: { "application/json": { schema: ResetResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(resetStartOffsets, async (c) => {
    const { group_id } = c.req.valid("param");
    refuseProcessorGroup(group_id, "reset the start offsets of");
    const request = c.req.valid("json");
    const dryRun = request.dry_run ?? true;
    const plans = await queues.resetStartOffsets(group_id, resetSpec(request), {
      dryRun,
      ...(request.topic_names === undefined ? {} : { topics: [...new Set(request.topic_names)] }),
    });
    return c.json(
      {
        dry_run: dryRun,
        data: plans.map((plan) => ({
          topic_name: plan.topic,
          partition_id: plan.partition,
          previous_start_offset: plan.previous,
          new_start_offset: plan.next,
        })),
      },
      200,
    );
  });

  const join = createRoute({
    method: "post",
    path: `${base}/{group_id}/members`,
    tags,
    summary: "Join a share group on topics (creating the group with its configs if it does not exist)",
    description: [
      "Every topic must exist (404). The member then acquires records of any partition of its topics; each record",
      "goes to one member at a time. A member that makes no call for session_timeout_ms is removed (its records'",
      "locks pass on their own). Configs given to an existing group must match its own (409 INVALID_CONFIG); unknown",
      "or malformed configs are 400.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: ShareGroupParamsSchema,
      body: { required: true, content: { "application/json": { schema: JoinBodySchema } } },
    },
    responses: {
      200: { description: "The member", content: { "application/json": { schema: JoinResponseSchema } } },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(join, async (c) => {
    const { group_id } = c.req.valid("param");
    refuseProcessorGroup(group_id, "join");
    const request = c.req.valid("json");
    const configs = request.configs
      ? parseShareGroupConfigs(
          Object.fromEntries(request.configs.map((config) => [config.name, config.value])),
        )
      : {};
    const joined = await queues.join({
      groupId: group_id,
      memberId: request.member_id ?? crypto.randomUUID(),
      topics: request.topic_names,
      configs,
      ...(request.session_timeout_ms === undefined ? {} : { sessionTimeoutMs: request.session_timeout_ms }),
      ...(request.client_id === undefined ? {} : { clientId: request.client_id }),
    });
    return c.json(
      {
        share_group_id: group_id,
        member_id: joined.memberId,
        topic_names: joined.topics,
        session_timeout_ms: joined.sessionTimeoutMs,
        session_remaining_ms: joined.sessionRemainingMs,
        group_created: joined.created,
        configs: configList(joined.configs),
      },
      200,
    );
  });

  const heartbeat = createRoute({
    method: "post",
    path: `${memberBase}/heartbeat`,
    tags,
    summary: "Keep a member's session alive while it acquires nothing",
    description:
      "Acquisitions keep the session alive too. An unknown or expired member is 409 with code UNKNOWN_MEMBER_ID: join again (the same member id may be used).",
    request: { params: ShareMemberParamsSchema },
    responses: {
      200: {
        description: "How long the session lasts from now",
        content: {
          "application/json": {
            schema: z.object({ session_remaining_ms: z.number().int() }).openapi("ShareHeartbeatResponse"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS, 409),
    },
  });
  app.openapi(heartbeat, async (c) => {
    const { group_id, member_id } = c.req.valid("param");
    const answer = await queues.heartbeat(group_id, member_id);
    return c.json({ session_remaining_ms: answer.sessionRemainingMs }, 200);
  });

  const leave = createRoute({
    method: "delete",
    path: memberBase,
    tags,
    summary: "Leave: the member's records are released at once (delivery counts kept) and it is removed",
    request: { params: ShareMemberParamsSchema },
    responses: {
      204: { description: "Gone (also when it was not a member)" },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(leave, async (c) => {
    const { group_id, member_id } = c.req.valid("param");
    await queues.leave(group_id, member_id);
    return c.body(null, 204);
  });

  const acquire = createRoute({
    method: "post",
    path: `${memberBase}/records:acquire`,
    tags,
    summary: "Poll: acquire records, each locked to this member (long-poll with timeout_ms)",
    description: [
      "Applies `acknowledgements` first (as …/records:acknowledge), then hands out up to max_records records of the",
      "member's topics — released ones and those whose lock passed first, lowest offsets first, then new ones — each",
      "locked to this member for the group's record.lock.duration.ms (lock_remaining_ms). With nothing to hand out it",
      `waits up to timeout_ms (at most ${limits.readTimeoutMsMax}) for records. A record comes back with its`,
      "delivery_count; after delivery.count.limit deliveries it is archived (and copied to the dead-letter topic when",
      "one is set) instead of being delivered again. An unknown or expired member is 409 UNKNOWN_MEMBER_ID.",
    ].join(" "),
    middleware: body(false),
    request: {
      params: ShareMemberParamsSchema,
      body: { required: false, content: { "application/json": { schema: AcquireBodySchema } } },
    },
    responses: {
      200: {
        description: "Records (possibly none), oldest first per partition",
        content: { "application/json": { schema: AcquireResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(acquire, async (c) => {
    const { group_id, member_id } = c.req.valid("param");
    const request = (c.req.valid("json") ?? {}) as z.infer<typeof AcquireBodySchema>;
    const acknowledged = request.acknowledgements
      ? await queues.acknowledge(group_id, member_id, flatten(request.acknowledgements))
      : [];
    const acquired = await queues.acquire(group_id, member_id, {
      ...(request.max_records === undefined ? {} : { maxRecords: request.max_records }),
      ...(request.max_bytes === undefined ? {} : { maxBytes: request.max_bytes }),
      ...(request.timeout_ms === undefined ? {} : { timeoutMs: request.timeout_ms }),
      signal: waitSignal(c.req.raw, context),
    });
    const nowMs = now();
    const keyType = request.key_type ?? "JSON";
    const valueType = request.value_type ?? "JSON";
    return c.json(
      {
        records: acquired.records.map((record) => recordJson(record, nowMs, keyType, valueType)),
        session_remaining_ms: acquired.sessionRemainingMs,
        acknowledgements: acknowledged.map((result) => resultJson(result, nowMs)),
      },
      200,
    );
  });

  const acknowledge = createRoute({
    method: "post",
    path: `${memberBase}/records:acknowledge`,
    tags,
    summary: "Acknowledge records: ACCEPT, RELEASE, REJECT or RENEW, one type per offset",
    description: [
      "Each offset is applied only if this member holds its record under a lock that has not passed; the others are",
      "answered `acknowledged: false` with code INVALID_RECORD_STATE (the lock passed, another member holds it, or it",
      "is settled) or UNKNOWN_TOPIC_OR_PARTITION, and a message — the rest of the request still applies. A repeated",
      "ACCEPT or REJECT of a record this member already settled is answered acknowledged again (a retry) while the",
      "window still holds the record; once the start has moved past it, the repeat is refused as already settled.",
      "An offset named twice in one request is 400.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: ShareMemberParamsSchema,
      body: { required: true, content: { "application/json": { schema: AcknowledgeBodySchema } } },
    },
    responses: {
      200: {
        description: "One result per offset, in the order sent",
        content: { "application/json": { schema: AcknowledgeResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 413),
    },
  });
  app.openapi(acknowledge, async (c) => {
    const { group_id, member_id } = c.req.valid("param");
    const request = c.req.valid("json");
    const results = await queues.acknowledge(group_id, member_id, flatten(request.acknowledgements));
    const nowMs = now();
    return c.json({ data: results.map((result) => resultJson(result, nowMs)) }, 200);
  });
}
