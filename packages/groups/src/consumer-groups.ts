import { type Clock, InvalidArgumentError, NotFoundError, systemClock } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { cond, type MetadataStore } from "@sluice/storage";
import type { AssignorName, TopicPartition } from "./assignors/assignor.js";
import { GroupCoordinator, type HeartbeatRequest, type HeartbeatResponse } from "./coordinator.js";
import { groupNotEmpty, groupNotFound, validateGroupId } from "./errors.js";
import { GROUPS_PK, groupListKey, groupPk, metaKey } from "./keys.js";
import { type CommittedOffset, type OffsetCommit, OffsetStore } from "./offsets.js";
import { type GroupState, loadGroupState, samePartitions, tpKey } from "./state.js";

export type GroupStateName = "Empty" | "Reconciling" | "Stable" | "Dead";

export interface MemberDescription {
  memberId: string;
  memberEpoch: number;
  instanceId?: string;
  clientId?: string;
  subscription: string[];
  /** Partitions whose lease it holds now. */
  assignment: TopicPartition[];
  /** Its share of the current target assignment. */
  target: TopicPartition[];
  sessionDeadlineMs: number;
}

export interface GroupDescription {
  groupId: string;
  state: GroupStateName;
  groupEpoch: number;
  assignor: AssignorName;
  members: MemberDescription[];
}

export interface PartitionLag extends TopicPartition {
  /** The committed offset, or null when the group has none for the partition. */
  currentOffset: number | null;
  logStartOffset: number;
  logEndOffset: number;
  /** logEnd − committed; from the log start when nothing is committed. */
  lag: number;
  /** The member owning the partition now, if any. */
  memberId: string | null;
}

export type AutoOffsetReset = "earliest" | "latest" | "none";

export type OffsetResetSpec =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "offset"; offset: number }
  | { to: "datetime"; timestampMs: number }
  | { to: "shift"; by: number };

export interface OffsetResetPlan extends TopicPartition {
  previous: number | null;
  next: number;
}

export interface ConsumerGroupsOptions {
  engine: Engine;
  metadata: MetadataStore;
  clock?: Clock;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
}

/**
 * Consumer groups over the metadata store (ARCHITECTURE.md, "Consumer groups"): the coordinator
 * for heartbeats, committed offsets, and the admin views Kafka's tools give (describe, lag,
 * reset, delete). One instance per process; it holds no group state of its own.
 */
export class ConsumerGroups {
  readonly coordinator: GroupCoordinator;
  readonly offsets: OffsetStore;
  private readonly engine: Engine;
  private readonly metadata: MetadataStore;
  private readonly clock: Clock;

  constructor(options: ConsumerGroupsOptions) {
    this.engine = options.engine;
    this.metadata = options.metadata;
    this.clock = options.clock ?? systemClock;
    this.coordinator = new GroupCoordinator({
      metadata: options.metadata,
      clock: this.clock,
      partitionCount: (topic) => this.partitionCount(topic),
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    });
    this.offsets = new OffsetStore({
      metadata: options.metadata,
      clock: this.clock,
      topicId: async (topic) => {
        try {
          return (await this.engine.topics.get(topic)).topicId;
        } catch (error) {
          if (error instanceof NotFoundError) return undefined;
          throw error;
        }
      },
    });
  }

  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.coordinator.heartbeat(request);
  }

  commit(groupId: string, memberId: string, offsets: OffsetCommit[]): Promise<void> {
    return this.offsets.commitAsMember(groupId, memberId, offsets);
  }

  committed(groupId: string): Promise<CommittedOffset[]> {
    return this.offsets.committed(groupId);
  }

  /**
   * Where a member starts reading a partition: its committed offset when that is still in the
   * log, else `reset` (earliest: the log start; latest: the high watermark; none: an error).
   */
  async startOffset(
    groupId: string,
    tp: TopicPartition,
    reset: AutoOffsetReset,
    committed?: CommittedOffset[],
  ): Promise<number> {
    const offsets = committed ?? (await this.committed(groupId));
    const found = offsets.find((offset) => offset.topic === tp.topic && offset.partition === tp.partition);
    const range = await this.engine.partitionOffsets(tp.topic, tp.partition);
    if (found && found.offset >= range.logStartOffset && found.offset <= range.highWatermark)
      return found.offset;
    switch (reset) {
      case "earliest":
        return range.logStartOffset;
      case "latest":
        return range.highWatermark;
      case "none":
        throw new InvalidArgumentError(
          found
            ? `committed offset ${found.offset} of partition ${tp.partition} of ${tp.topic} is outside the log (${range.logStartOffset} to ${range.highWatermark}) and auto.offset.reset is none`
            : `group ${groupId} has no committed offset for partition ${tp.partition} of ${tp.topic} and auto.offset.reset is none`,
          { code: "NO_OFFSET_FOR_PARTITION" },
        );
    }
  }

  async list(): Promise<{ groupId: string; state: GroupStateName; members: number }[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: GROUPS_PK, cursor });
      for (const item of page.items) ids.push(item.sk);
      cursor = page.cursor;
    } while (cursor);
    const described = await Promise.all(ids.map((groupId) => this.describe(groupId).catch(() => undefined)));
    return described
      .filter((group): group is GroupDescription => group !== undefined)
      .map((group) => ({ groupId: group.groupId, state: group.state, members: group.members.length }));
  }

  async describe(groupId: string): Promise<GroupDescription> {
    validateGroupId(groupId);
    const state = await loadGroupState(this.metadata, groupId);
    if (!state.meta) throw groupNotFound(groupId);
    return describeState(state, this.clock.now());
  }

  /** Lag per partition of every topic the group subscribes to or has offsets for. */
  async lag(groupId: string): Promise<PartitionLag[]> {
    const description = await this.describe(groupId);
    const committed = await this.committed(groupId);
    const topics = new Set<string>();
    for (const member of description.members) for (const topic of member.subscription) topics.add(topic);
    for (const offset of committed) topics.add(offset.topic);
    const owners = new Map<string, string>();
    for (const member of description.members) {
      for (const tp of member.assignment) owners.set(tpKey(tp.topic, tp.partition), member.memberId);
    }
    const byPartition = new Map(
      committed.map((offset) => [tpKey(offset.topic, offset.partition), offset.offset]),
    );
    const lags: PartitionLag[] = [];
    for (const topic of [...topics].sort()) {
      const partitions = await this.partitionCount(topic);
      const ranges = await Promise.all(
        Array.from({ length: partitions }, (_, partition) => this.engine.partitionOffsets(topic, partition)),
      );
      ranges.forEach((range, partition) => {
        const current = byPartition.get(tpKey(topic, partition)) ?? null;
        const from = current === null ? range.logStartOffset : Math.max(current, range.logStartOffset);
        lags.push({
          topic,
          partition,
          currentOffset: current,
          logStartOffset: range.logStartOffset,
          logEndOffset: range.highWatermark,
          lag: Math.max(0, range.highWatermark - from),
          memberId: owners.get(tpKey(topic, partition)) ?? null,
        });
      });
    }
    return lags;
  }

  /**
   * Moves committed offsets as `kafka-consumer-groups --reset-offsets` does: `topics` (default:
   * every topic with offsets) to `spec`, clamped to each log. With `dryRun`, only the plan.
   * Refused while the group has members.
   */
  async resetOffsets(
    groupId: string,
    spec: OffsetResetSpec,
    options: { topics?: string[]; dryRun: boolean },
  ): Promise<OffsetResetPlan[]> {
    const description = await this.describe(groupId);
    if (description.members.length > 0)
      throw groupNotEmpty(groupId, description.members.length, "reset offsets of");
    const committed = await this.committed(groupId);
    const topics = options.topics ?? [...new Set(committed.map((offset) => offset.topic))].sort();
    if (topics.length === 0) {
      throw new InvalidArgumentError(`group ${groupId} has no committed offsets; name the topics to reset`);
    }
    const plans: OffsetResetPlan[] = [];
    for (const topic of topics) {
      const partitions = await this.engine.topics.get(topic).then((found) => found.partitions);
      for (let partition = 0; partition < partitions; partition++) {
        const range = await this.engine.partitionOffsets(topic, partition);
        const previous =
          committed.find((offset) => offset.topic === topic && offset.partition === partition)?.offset ??
          null;
        let next: number;
        switch (spec.to) {
          case "earliest":
            next = range.logStartOffset;
            break;
          case "latest":
            next = range.highWatermark;
            break;
          case "offset":
            next = spec.offset;
            break;
          case "datetime":
            next =
              (await this.engine.offsetForTimestamp(topic, partition, spec.timestampMs)) ??
              range.highWatermark;
            break;
          case "shift":
            next = (previous ?? range.logStartOffset) + spec.by;
            break;
        }
        next = Math.min(Math.max(next, range.logStartOffset), range.highWatermark);
        plans.push({ topic, partition, previous, next });
      }
    }
    if (!options.dryRun) {
      await this.offsets.commitAsAdmin(
        groupId,
        plans.map((plan) => ({ topic: plan.topic, partition: plan.partition, offset: plan.next })),
      );
    }
    return plans;
  }

  /** Deletes an empty group with its offsets. The group is gone at once; its items go page by page. */
  async delete(groupId: string): Promise<void> {
    validateGroupId(groupId);
    const meta = await this.metadata.get(metaKey(groupId));
    if (!meta) throw groupNotFound(groupId);
    try {
      await this.metadata.transactWrite([
        {
          kind: "delete",
          key: metaKey(groupId),
          condition: cond.and(cond.eq("uid", meta.uid!), cond.eq("memberCount", 0)),
        },
        { kind: "delete", key: groupListKey(groupId) },
      ]);
    } catch (error) {
      const current = await this.metadata.get(metaKey(groupId));
      if (!current) throw groupNotFound(groupId);
      if (Number(current.memberCount) > 0)
        throw groupNotEmpty(groupId, Number(current.memberCount), "delete");
      throw error;
    }
    // What is left carries the old uid (or is a lease, which a new group reuses safely): purge it.
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: groupPk(groupId), cursor, limit: 100 });
      for (const item of page.items) {
        if (item.sk === "meta") continue;
        await this.metadata.delete({ pk: item.pk, sk: item.sk });
      }
      cursor = page.cursor;
    } while (cursor);
  }

  private async partitionCount(topic: string): Promise<number> {
    try {
      return (await this.engine.topics.get(topic)).partitions;
    } catch (error) {
      if (error instanceof NotFoundError) return 0;
      throw error;
    }
  }
}

export function describeState(state: GroupState, nowMs: number): GroupDescription {
  const meta = state.meta!;
  const live = [...state.members.values()].filter((member) => member.sessionDeadlineMs >= nowMs);
  const members: MemberDescription[] = live
    .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
    .map((member) => {
      const assignment = [...state.leases.values()]
        .filter((lease) => lease.owner === member.memberId && lease.expiresAtMs >= nowMs)
        .map((lease) => ({ topic: lease.topic, partition: lease.partition }));
      return {
        memberId: member.memberId,
        memberEpoch: member.memberEpoch,
        ...(member.instanceId === undefined ? {} : { instanceId: member.instanceId }),
        ...(member.clientId === undefined ? {} : { clientId: member.clientId }),
        subscription: member.subscription,
        assignment,
        target: meta.target[member.memberId] ?? [],
        sessionDeadlineMs: member.sessionDeadlineMs,
      };
    });
  const reconciled = members.every(
    (member) => member.memberEpoch === meta.groupEpoch && samePartitions(member.assignment, member.target),
  );
  const expiredStillListed = live.length !== state.members.size;
  const stateName: GroupStateName =
    members.length === 0 ? "Empty" : reconciled && !expiredStillListed ? "Stable" : "Reconciling";
  return {
    groupId: state.groupId,
    state: stateName,
    groupEpoch: meta.groupEpoch,
    assignor: meta.assignor,
    members,
  };
}
