import { createRoute, z } from "@hono/zod-openapi";
import { NotFoundError } from "@sluice/core";
import type {
  GroupDescription,
  GroupStateName,
  MemberDescription,
  OffsetResetSpec,
  PartitionLag,
} from "@sluice/groups";
import type { Context } from "hono";
import { jsonBody } from "../body.js";
import type { AppContext, SluiceApp } from "../context.js";
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

/** Group ids as the groups package accepts them: they are safe in paths and keys. */
export const GROUP_ID_PATTERN = "^[a-zA-Z0-9._-]{1,249}$";
const MEMBER_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$";
const INT32_MAX = 2_147_483_647;
const SESSION_TIMEOUT_MS_MIN = 1_000;
const SESSION_TIMEOUT_MS_MAX = 30 * 60_000;
/** UTF-8 takes at most four bytes a character: 1,024 characters always fit the 4 KiB of metadata. */
const OFFSET_METADATA_CHARS_MAX = 1_024;

const groupIdText = z.string().regex(new RegExp(GROUP_ID_PATTERN), {
  message: "must be 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const memberIdText = z.string().regex(new RegExp(MEMBER_ID_PATTERN), {
  message: "must be 1 to 128 characters from a-z, A-Z, 0-9, '.', '_', ':' and '-'",
});
const topicNameText = z.string().regex(new RegExp(TOPIC_NAME_PATTERN), {
  message: "must be a topic name: 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'",
});
const partitionIdNumber = z.number().int().min(0).max(INT32_MAX);
const offsetNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const GroupParamsSchema = ClusterParamsSchema.extend({
  group_id: groupIdText.openapi({ param: { name: "group_id", in: "path" }, example: "orders-app" }),
});

const ConsumerParamsSchema = GroupParamsSchema.extend({
  consumer_id: memberIdText.openapi({ param: { name: "consumer_id", in: "path" }, example: "worker-1" }),
});

const STATE_NAMES: Record<GroupStateName, "EMPTY" | "RECONCILING" | "STABLE" | "DEAD"> = {
  Empty: "EMPTY",
  Reconciling: "RECONCILING",
  Stable: "STABLE",
  Dead: "DEAD",
};

const TopicPartitionSchema = z
  .object({ topic_name: z.string(), partition_id: z.number().int() })
  .openapi("GroupTopicPartition");

const ConsumerGroupSchema = z
  .object({
    kind: z.literal("KafkaConsumerGroup"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    consumer_group_id: z.string(),
    is_simple: z.boolean(),
    partition_assignor: z.enum(["uniform", "range"]),
    state: z.enum(["EMPTY", "RECONCILING", "STABLE", "DEAD"]).openapi({
      description:
        "EMPTY: no members; RECONCILING: partitions are moving; STABLE: every member owns its target",
    }),
    type: z.literal("CONSUMER"),
    group_epoch: z
      .number()
      .int()
      .openapi({ description: "Grows with every membership or subscription change" }),
    consumers: RelatedSchema,
    lag_summary: RelatedSchema,
    lags: RelatedSchema,
    offsets: RelatedSchema,
  })
  .openapi("ConsumerGroup");

const ConsumerSchema = z
  .object({
    kind: z.literal("KafkaConsumer"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    consumer_group_id: z.string(),
    consumer_id: z.string(),
    instance_id: z.string().nullable().openapi({ description: "Static membership (group.instance.id)" }),
    client_id: z.string().nullable(),
    member_epoch: z.number().int(),
    subscribed_topic_names: z.array(z.string()),
    assigned_partitions: z.array(TopicPartitionSchema).openapi({ description: "The partitions it owns now" }),
    assignments: RelatedSchema,
  })
  .openapi("Consumer");

const AssignmentSchema = z
  .object({
    kind: z.literal("KafkaConsumerAssignment"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    consumer_group_id: z.string(),
    consumer_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    partition: RelatedSchema,
  })
  .openapi("ConsumerAssignment");

const LagSchema = z
  .object({
    kind: z.literal("KafkaConsumerLag"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    consumer_group_id: z.string(),
    topic_name: z.string(),
    partition_id: z.number().int(),
    current_offset: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The committed offset; null when none" }),
    log_end_offset: z.number().int(),
    lag: z.number().int().openapi({
      description: "log_end_offset − current_offset (from the log start when nothing is committed)",
    }),
    consumer_id: z.string().nullable().openapi({ description: "The member owning the partition now" }),
    instance_id: z.string().nullable(),
    client_id: z.string().nullable(),
  })
  .openapi("ConsumerLag");

const LagSummarySchema = z
  .object({
    kind: z.literal("KafkaConsumerGroupLagSummary"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    consumer_group_id: z.string(),
    max_lag: z.number().int(),
    total_lag: z.number().int(),
    max_lag_topic_name: z.string().nullable(),
    max_lag_partition_id: z.number().int().nullable(),
    max_lag_consumer_id: z.string().nullable(),
    max_lag_instance_id: z.string().nullable(),
    max_lag_client_id: z.string().nullable(),
  })
  .openapi("ConsumerGroupLagSummary");

const PartitionRefSchema = z.strictObject({
  topic_name: topicNameText,
  partition_id: partitionIdNumber,
});

const HeartbeatBodySchema = z
  .strictObject({
    member_id: memberIdText.openapi({
      description: "Unique to this incarnation of the member (make one, e.g. a UUID, at start)",
      example: "worker-1-5f0c",
    }),
    member_epoch: z.number().int().min(-2).max(INT32_MAX).openapi({
      description:
        "0 to join (subscribed_topic_names required), -1 to leave, -2 for a static member's temporary leave, else the epoch of the last answer",
      example: 0,
    }),
    subscribed_topic_names: z.array(topicNameText).min(1).max(1_000).optional().openapi({
      description: "The topics it subscribes to; required to join, otherwise unchanged when left out",
    }),
    owned_partitions: z.array(PartitionRefSchema).max(10_000).optional().openapi({
      description:
        "The partitions it still holds; revoked partitions are released once they are no longer reported",
    }),
    instance_id: z.string().min(1).max(249).optional().openapi({
      description:
        "Static membership: a new incarnation under the same id takes over the old one's partitions",
    }),
    client_id: z.string().min(1).max(249).optional(),
    session_timeout_ms: z
      .number()
      .int()
      .min(SESSION_TIMEOUT_MS_MIN)
      .max(SESSION_TIMEOUT_MS_MAX)
      .optional()
      .openapi({ description: "Default 45000" }),
    assignor: z.enum(["uniform", "range"]).optional().openapi({
      description: "The group's assignor, taken when the group is created (default uniform)",
    }),
  })
  .superRefine((body, context) => {
    if (body.member_epoch === 0 && body.subscribed_topic_names === undefined) {
      context.addIssue({
        code: "custom",
        path: ["subscribed_topic_names"],
        message: "required to join (member_epoch 0): the topics the member subscribes to",
      });
    }
  })
  // The rule above, for generators and clients reading the document.
  .openapi("HeartbeatRequest", {
    anyOf: [
      { properties: { member_epoch: { type: "integer", minimum: 1 } } },
      { properties: { member_epoch: { type: "integer", maximum: -1 } } },
      { required: ["subscribed_topic_names"] },
    ],
  });

const HeartbeatResponseSchema = z
  .object({
    member_id: z.string(),
    member_epoch: z.number().int(),
    group_epoch: z.number().int(),
    heartbeat_interval_ms: z.number().int(),
    session_remaining_ms: z.number().int().min(0).openapi({
      description:
        "How long the session lasts without another heartbeat, from when the server decided: a member counts it from when it sent the request and stops handing out records once it has passed, as its partitions may be another's by then",
    }),
    assignment: z.array(TopicPartitionSchema).openapi({ description: "Owned now: fetch and commit these" }),
    revoking: z
      .array(TopicPartitionSchema)
      .openapi({ description: "Now another member's: stop, commit, then stop reporting them" }),
    pending: z
      .array(TopicPartitionSchema)
      .openapi({ description: "Yours once their previous owner lets go; they come in a later answer" }),
  })
  .openapi("HeartbeatResponse");

const CommitBodySchema = z
  .strictObject({
    member_id: memberIdText,
    offsets: z
      .array(
        z.strictObject({
          topic_name: topicNameText,
          partition_id: partitionIdNumber,
          offset: offsetNumber.openapi({ description: "The next offset to consume (last processed + 1)" }),
          metadata: z.string().max(OFFSET_METADATA_CHARS_MAX).optional(),
        }),
      )
      .min(1)
      .max(10_000),
  })
  .openapi("GroupOffsetCommit");

const CommittedOffsetSchema = z
  .object({
    topic_name: z.string(),
    partition_id: z.number().int(),
    offset: z.number().int(),
    metadata: z.string(),
    committed_at: z.string().nullable().openapi({ description: "ISO-8601; null in the answer to a commit" }),
  })
  .openapi("GroupCommittedOffset");

const OffsetsResponseSchema = z.object({ data: z.array(CommittedOffsetSchema) }).openapi("GroupOffsets");

const resetCommon = {
  topic_names: z.array(topicNameText).min(1).max(1_000).optional().openapi({
    description: "Default: every topic the group has committed offsets for",
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
    z.strictObject({
      to: z.literal("shift-by"),
      shift_by: z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
      ...resetCommon,
    }),
  ])
  .openapi("OffsetResetRequest");

const ResetResponseSchema = z
  .object({
    dry_run: z.boolean(),
    data: z.array(
      z.object({
        topic_name: z.string(),
        partition_id: z.number().int(),
        previous_offset: z.number().int().nullable().openapi({ description: "null: nothing was committed" }),
        new_offset: z.number().int(),
      }),
    ),
  })
  .openapi("OffsetResetResponse");

function groupPath(clusterId: string, groupId: string): string {
  return `${clusterPath(clusterId)}/consumer-groups/${encodeURIComponent(groupId)}`;
}

function groupResource(c: Context, clusterId: string, group: GroupDescription) {
  const self = urlOf(c, groupPath(clusterId, group.groupId));
  return {
    kind: "KafkaConsumerGroup" as const,
    metadata: { self, resource_name: `crn:///kafka=${clusterId}/consumer-group=${group.groupId}` },
    cluster_id: clusterId,
    consumer_group_id: group.groupId,
    is_simple: false,
    partition_assignor: group.assignor,
    state: STATE_NAMES[group.state],
    type: "CONSUMER" as const,
    group_epoch: group.groupEpoch,
    consumers: { related: `${self}/consumers` },
    lag_summary: { related: `${self}/lag-summary` },
    lags: { related: `${self}/lags` },
    offsets: { related: `${self}/offsets` },
  };
}

function consumerResource(c: Context, clusterId: string, groupId: string, member: MemberDescription) {
  const self = urlOf(c, `${groupPath(clusterId, groupId)}/consumers/${encodeURIComponent(member.memberId)}`);
  return {
    kind: "KafkaConsumer" as const,
    metadata: {
      self,
      resource_name: `crn:///kafka=${clusterId}/consumer-group=${groupId}/consumer=${member.memberId}`,
    },
    cluster_id: clusterId,
    consumer_group_id: groupId,
    consumer_id: member.memberId,
    instance_id: member.instanceId ?? null,
    client_id: member.clientId ?? null,
    member_epoch: member.memberEpoch,
    subscribed_topic_names: member.subscription,
    assigned_partitions: member.assignment.map(partitionJson),
    assignments: { related: `${self}/assignments` },
  };
}

const partitionJson = (tp: { topic: string; partition: number }) => ({
  topic_name: tp.topic,
  partition_id: tp.partition,
});

function lagResource(c: Context, clusterId: string, group: GroupDescription, lag: PartitionLag) {
  const owner = group.members.find((member) => member.memberId === lag.memberId);
  return {
    kind: "KafkaConsumerLag" as const,
    metadata: {
      self: urlOf(
        c,
        `${groupPath(clusterId, group.groupId)}/lags/${encodeURIComponent(lag.topic)}/partitions/${lag.partition}`,
      ),
      resource_name: `crn:///kafka=${clusterId}/consumer-group=${group.groupId}/lag=${lag.topic}/partition=${lag.partition}`,
    },
    cluster_id: clusterId,
    consumer_group_id: group.groupId,
    topic_name: lag.topic,
    partition_id: lag.partition,
    current_offset: lag.currentOffset,
    log_end_offset: lag.logEndOffset,
    lag: lag.lag,
    consumer_id: lag.memberId,
    instance_id: owner?.instanceId ?? null,
    client_id: owner?.clientId ?? null,
  };
}

function memberOf(group: GroupDescription, consumerId: string): MemberDescription {
  const member = group.members.find((candidate) => candidate.memberId === consumerId);
  if (!member) {
    throw new NotFoundError(`consumer not found: ${consumerId} is not a member of group ${group.groupId}`, {
      code: "UNKNOWN_MEMBER_ID",
    });
  }
  return member;
}

function resetSpec(body: z.infer<typeof ResetBodySchema>): OffsetResetSpec {
  switch (body.to) {
    case "earliest":
    case "latest":
      return { to: body.to };
    case "offset":
      return { to: "offset", offset: body.offset };
    case "datetime":
      return { to: "datetime", timestampMs: parseTimestamp(body.datetime, "datetime") };
    case "shift-by":
      return { to: "shift", by: body.shift_by };
  }
}

/**
 * Consumer groups over HTTP: Confluent's v3 admin shapes (list, describe, consumers, lags, lag
 * summary, delete, offset reset) and Sluice's client-side group protocol for the SDK (heartbeat,
 * commit and read committed offsets), all answered from the store by whichever instance gets them.
 */
export function registerConsumerGroupRoutes(app: SluiceApp, context: AppContext): void {
  const { groups, clusterId, limits } = context;
  const body = (required: boolean) => jsonBody({ bytesMax: limits.requestBytesMax, required });
  const base = "/v3/clusters/{cluster_id}/consumer-groups";
  const tags = ["Consumer groups"];

  const listGroups = createRoute({
    method: "get",
    path: base,
    tags,
    summary: "List consumer groups",
    request: { params: ClusterParamsSchema },
    responses: {
      200: {
        description: "Every group, by id",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaConsumerGroupList"),
                metadata: ListMetadataSchema,
                data: z.array(ConsumerGroupSchema),
              })
              .openapi("ConsumerGroupList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listGroups, async (c) => {
    const listed = await groups.list();
    const described = await mapLimited(listed, 16, (group) =>
      groups.describe(group.groupId).catch((error: unknown) => {
        // Deleted between the list and its description.
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }),
    );
    const data = described
      .filter((group): group is GroupDescription => group !== undefined)
      .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0))
      .map((group) => groupResource(c, clusterId, group));
    return c.json(
      {
        kind: "KafkaConsumerGroupList" as const,
        metadata: { self: urlOf(c, `${clusterPath(clusterId)}/consumer-groups`), next: null },
        data,
      },
      200,
    );
  });

  const getGroup = createRoute({
    method: "get",
    path: `${base}/{group_id}`,
    tags,
    summary: "Describe a consumer group",
    request: { params: GroupParamsSchema },
    responses: {
      200: { description: "The group", content: { "application/json": { schema: ConsumerGroupSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(getGroup, async (c) => {
    const { group_id } = c.req.valid("param");
    return c.json(groupResource(c, clusterId, await groups.describe(group_id)), 200);
  });

  const deleteGroup = createRoute({
    method: "delete",
    path: `${base}/{group_id}`,
    tags,
    summary: "Delete an empty consumer group with its committed offsets",
    description:
      "Only a group without members: while any member is active the answer is 409 with code NON_EMPTY_GROUP and nothing changes.",
    request: { params: GroupParamsSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERRORS, 409) },
  });
  app.openapi(deleteGroup, async (c) => {
    const { group_id } = c.req.valid("param");
    await groups.delete(group_id);
    return c.body(null, 204);
  });

  const listConsumers = createRoute({
    method: "get",
    path: `${base}/{group_id}/consumers`,
    tags,
    summary: "List the members of a consumer group",
    request: { params: GroupParamsSchema },
    responses: {
      200: {
        description: "The live members, by id",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaConsumerList"),
                metadata: ListMetadataSchema,
                data: z.array(ConsumerSchema),
              })
              .openapi("ConsumerList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listConsumers, async (c) => {
    const { group_id } = c.req.valid("param");
    const group = await groups.describe(group_id);
    return c.json(
      {
        kind: "KafkaConsumerList" as const,
        metadata: { self: urlOf(c, `${groupPath(clusterId, group_id)}/consumers`), next: null },
        data: group.members.map((member) => consumerResource(c, clusterId, group_id, member)),
      },
      200,
    );
  });

  const getConsumer = createRoute({
    method: "get",
    path: `${base}/{group_id}/consumers/{consumer_id}`,
    tags,
    summary: "Describe one member of a consumer group, with the partitions it owns",
    request: { params: ConsumerParamsSchema },
    responses: {
      200: { description: "The member", content: { "application/json": { schema: ConsumerSchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(getConsumer, async (c) => {
    const { group_id, consumer_id } = c.req.valid("param");
    const group = await groups.describe(group_id);
    return c.json(consumerResource(c, clusterId, group_id, memberOf(group, consumer_id)), 200);
  });

  const listAssignments = createRoute({
    method: "get",
    path: `${base}/{group_id}/consumers/{consumer_id}/assignments`,
    tags,
    summary: "The partitions one member owns",
    request: { params: ConsumerParamsSchema },
    responses: {
      200: {
        description: "Its partitions",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaConsumerAssignmentList"),
                metadata: ListMetadataSchema,
                data: z.array(AssignmentSchema),
              })
              .openapi("ConsumerAssignmentList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listAssignments, async (c) => {
    const { group_id, consumer_id } = c.req.valid("param");
    const member = memberOf(await groups.describe(group_id), consumer_id);
    const self = `${groupPath(clusterId, group_id)}/consumers/${encodeURIComponent(consumer_id)}/assignments`;
    return c.json(
      {
        kind: "KafkaConsumerAssignmentList" as const,
        metadata: { self: urlOf(c, self), next: null },
        data: member.assignment.map((tp) => ({
          kind: "KafkaConsumerAssignment" as const,
          metadata: {
            self: urlOf(c, `${self}/${encodeURIComponent(tp.topic)}/partitions/${tp.partition}`),
            resource_name: `crn:///kafka=${clusterId}/consumer-group=${group_id}/consumer=${consumer_id}/assignment=${tp.topic}/partition=${tp.partition}`,
          },
          cluster_id: clusterId,
          consumer_group_id: group_id,
          consumer_id,
          topic_name: tp.topic,
          partition_id: tp.partition,
          partition: { related: urlOf(c, `${topicPath(clusterId, tp.topic)}/partitions/${tp.partition}`) },
        })),
      },
      200,
    );
  });

  const listLags = createRoute({
    method: "get",
    path: `${base}/{group_id}/lags`,
    tags,
    summary: "Lag per partition of every topic the group subscribes to or has offsets for",
    request: { params: GroupParamsSchema },
    responses: {
      200: {
        description: "Per partition, by topic and partition",
        content: {
          "application/json": {
            schema: z
              .object({
                kind: z.literal("KafkaConsumerLagList"),
                metadata: ListMetadataSchema,
                data: z.array(LagSchema),
              })
              .openapi("ConsumerLagList"),
          },
        },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(listLags, async (c) => {
    const { group_id } = c.req.valid("param");
    const group = await groups.describe(group_id);
    const lags = await groups.lag(group_id);
    return c.json(
      {
        kind: "KafkaConsumerLagList" as const,
        metadata: { self: urlOf(c, `${groupPath(clusterId, group_id)}/lags`), next: null },
        data: lags.map((lag) => lagResource(c, clusterId, group, lag)),
      },
      200,
    );
  });

  const lagSummary = createRoute({
    method: "get",
    path: `${base}/{group_id}/lag-summary`,
    tags,
    summary: "The group's largest and total lag",
    request: { params: GroupParamsSchema },
    responses: {
      200: { description: "The summary", content: { "application/json": { schema: LagSummarySchema } } },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(lagSummary, async (c) => {
    const { group_id } = c.req.valid("param");
    const group = await groups.describe(group_id);
    const lags = await groups.lag(group_id);
    let max: PartitionLag | undefined;
    let total = 0;
    for (const lag of lags) {
      total += lag.lag;
      if (!max || lag.lag > max.lag) max = lag;
    }
    const owner = max && group.members.find((member) => member.memberId === max.memberId);
    return c.json(
      {
        kind: "KafkaConsumerGroupLagSummary" as const,
        metadata: {
          self: urlOf(c, `${groupPath(clusterId, group_id)}/lag-summary`),
          resource_name: `crn:///kafka=${clusterId}/consumer-group=${group_id}/lag-summary`,
        },
        cluster_id: clusterId,
        consumer_group_id: group_id,
        max_lag: max?.lag ?? 0,
        total_lag: total,
        max_lag_topic_name: max?.topic ?? null,
        max_lag_partition_id: max?.partition ?? null,
        max_lag_consumer_id: max?.memberId ?? null,
        max_lag_instance_id: owner?.instanceId ?? null,
        max_lag_client_id: owner?.clientId ?? null,
      },
      200,
    );
  });

  const resetOffsets = createRoute({
    method: "post",
    path: `${base}/{group_id}/offsets:reset`,
    tags,
    summary: "Reset committed offsets of an empty group (dry run by default)",
    description: [
      "As kafka-consumer-groups --reset-offsets: every partition of `topic_names` (default: the topics with committed",
      "offsets) to the earliest or latest offset, an offset, the first offset at or after a date-time, or shifted by",
      "`shift_by`, each clamped to its log. `dry_run` (default true) only answers the plan. While the group has active",
      "members the answer is 409 with code NON_EMPTY_GROUP and nothing changes.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: GroupParamsSchema,
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
  app.openapi(resetOffsets, async (c) => {
    const { group_id } = c.req.valid("param");
    const request = c.req.valid("json");
    const dryRun = request.dry_run ?? true;
    if (request.topic_names === undefined) {
      // Nothing committed and no topics named: nothing to reset (kafka-consumer-groups --all-topics agrees).
      const description = await groups.describe(group_id);
      if (description.members.length === 0 && (await groups.committed(group_id)).length === 0) {
        return c.json({ dry_run: dryRun, data: [] }, 200);
      }
    }
    const plans = await groups.resetOffsets(group_id, resetSpec(request), {
      dryRun,
      ...(request.topic_names === undefined ? {} : { topics: [...new Set(request.topic_names)] }),
    });
    return c.json(
      {
        dry_run: dryRun,
        data: plans.map((plan) => ({
          topic_name: plan.topic,
          partition_id: plan.partition,
          previous_offset: plan.previous,
          new_offset: plan.next,
        })),
      },
      200,
    );
  });

  const heartbeat = createRoute({
    method: "post",
    path: `${base}/{group_id}/heartbeat`,
    tags,
    summary: "Join, heartbeat or leave as a group member (Sluice's client-side group protocol)",
    description: [
      "Kafka's next-generation consumer heartbeat: member_epoch 0 joins with subscribed_topic_names, -1 leaves, and",
      "otherwise the member sends the epoch of its last answer and the partitions it still owns. The answer's",
      "`assignment` may be fetched and committed; `revoking` must be stopped, committed and then left out of",
      "owned_partitions; `pending` arrive in a later answer. Heartbeat again within heartbeat_interval_ms. An unknown",
      "or expired member is 409 with code UNKNOWN_MEMBER_ID, a stale epoch 409 with FENCED_MEMBER_EPOCH: join again",
      "with a new member id. The group is created by its first member.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: GroupParamsSchema,
      body: { required: true, content: { "application/json": { schema: HeartbeatBodySchema } } },
    },
    responses: {
      200: {
        description: "The member's assignment",
        content: { "application/json": { schema: HeartbeatResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(heartbeat, async (c) => {
    const { group_id } = c.req.valid("param");
    const request = c.req.valid("json");
    const answer = await groups.heartbeat({
      groupId: group_id,
      memberId: request.member_id,
      memberEpoch: request.member_epoch,
      ...(request.subscribed_topic_names === undefined
        ? {}
        : { subscription: request.subscribed_topic_names }),
      ...(request.owned_partitions === undefined
        ? {}
        : {
            ownedPartitions: request.owned_partitions.map((tp) => ({
              topic: tp.topic_name,
              partition: tp.partition_id,
            })),
          }),
      ...(request.instance_id === undefined ? {} : { instanceId: request.instance_id }),
      ...(request.client_id === undefined ? {} : { clientId: request.client_id }),
      ...(request.session_timeout_ms === undefined ? {} : { sessionTimeoutMs: request.session_timeout_ms }),
      ...(request.assignor === undefined ? {} : { assignor: request.assignor }),
    });
    return c.json(
      {
        member_id: answer.memberId,
        member_epoch: answer.memberEpoch,
        group_epoch: answer.groupEpoch,
        heartbeat_interval_ms: answer.heartbeatIntervalMs,
        session_remaining_ms: answer.sessionRemainingMs,
        assignment: answer.assignment.map(partitionJson),
        revoking: answer.revoking.map(partitionJson),
        pending: answer.pending.map(partitionJson),
      },
      200,
    );
  });

  const commitOffsets = createRoute({
    method: "post",
    path: `${base}/{group_id}/offsets`,
    tags,
    summary: "Commit offsets as a member (only partitions it owns)",
    description: [
      "Each offset is the next one to consume (last processed + 1), as in Kafka. All are written in one",
      "transaction (49 partitions per transaction beyond that) under the condition that the member owns each",
      "partition: otherwise 409 with code FENCED_MEMBER_EPOCH (not its partition) or UNKNOWN_MEMBER_ID (not a",
      "member), and nothing is written. An unknown topic or partition is 404.",
    ].join(" "),
    middleware: body(true),
    request: {
      params: GroupParamsSchema,
      body: { required: true, content: { "application/json": { schema: CommitBodySchema } } },
    },
    responses: {
      200: {
        description: "The committed offsets",
        content: { "application/json": { schema: OffsetsResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 409, 413),
    },
  });
  app.openapi(commitOffsets, async (c) => {
    const { group_id } = c.req.valid("param");
    const request = c.req.valid("json");
    await groups.describe(group_id);
    for (const topic of new Set(request.offsets.map((offset) => offset.topic_name))) {
      const partitions = await context.engine.topics.get(topic).then((found) => found.partitions);
      const missing = request.offsets.find(
        (offset) => offset.topic_name === topic && offset.partition_id >= partitions,
      );
      if (missing) {
        throw new NotFoundError(
          `partition ${missing.partition_id} not found: topic ${topic} has ${partitions} partitions`,
          { code: "UNKNOWN_TOPIC_OR_PARTITION" },
        );
      }
    }
    const commits = request.offsets.map((offset) => ({
      topic: offset.topic_name,
      partition: offset.partition_id,
      offset: offset.offset,
      ...(offset.metadata === undefined ? {} : { metadata: offset.metadata }),
    }));
    await groups.commit(group_id, request.member_id, commits);
    return c.json(
      {
        data: commits.map((commit) => ({
          topic_name: commit.topic,
          partition_id: commit.partition,
          offset: commit.offset,
          metadata: commit.metadata ?? "",
          committed_at: null,
        })),
      },
      200,
    );
  });

  const getOffsets = createRoute({
    method: "get",
    path: `${base}/{group_id}/offsets`,
    tags,
    summary: "The group's committed offsets",
    request: { params: GroupParamsSchema },
    responses: {
      200: {
        description: "By topic and partition",
        content: { "application/json": { schema: OffsetsResponseSchema } },
      },
      ...errorResponses(...COMMON_ERRORS),
    },
  });
  app.openapi(getOffsets, async (c) => {
    const { group_id } = c.req.valid("param");
    await groups.describe(group_id);
    const committed = await groups.committed(group_id);
    committed.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    return c.json(
      {
        data: committed.map((offset) => ({
          topic_name: offset.topic,
          partition_id: offset.partition,
          offset: offset.offset,
          metadata: offset.metadata,
          committed_at: isoTimestamp(offset.committedAtMs),
        })),
      },
      200,
    );
  });
}
