import { randomBytes } from "node:crypto";
import {
  type Clock,
  ConflictError,
  FencedError,
  InvalidArgumentError,
  NotFoundError,
  systemClock,
} from "@sluice/core";
import { type ConsumedRecord, type Engine, OffsetOutOfRangeError } from "@sluice/engine";
import { cond, type Item, type MetadataStore } from "@sluice/storage";
import type { TopicPartition } from "./assignors/assignor.js";
import type { AutoOffsetReset, ConsumerGroups } from "./consumer-groups.js";
import { JOIN_EPOCH, LEAVE_EPOCH } from "./coordinator.js";
import { validateGroupId } from "./errors.js";
import { instanceKey, memberKey } from "./keys.js";
import type { OffsetCommit } from "./offsets.js";
import { sortPartitions } from "./state.js";

/**
 * Confluent REST Proxy v2 consumer instances, kept in the store (`instance#{name}` of the group,
 * ARCHITECTURE.md "Keys") rather than in a process, so any server or function instance can answer
 * any call. An instance is a server-side member of its group: each poll heartbeats for it (it gives
 * revoked partitions up at once), fetches its partitions from its positions and stores the new
 * positions. It lives as long as its session: `sessionTimeoutMs` after its last poll (or its
 * subscription, or its creation), and is then gone (40403) and its partitions move.
 */

export type RestConsumerFormat = "binary" | "json";

export interface RestConsumerSettings {
  format: RestConsumerFormat;
  autoOffsetReset: AutoOffsetReset;
  /** Commit at the start of each poll what the previous polls returned (Kafka's auto-commit). */
  autoCommit: boolean;
  sessionTimeoutMs: number;
  /** The wait of a poll that names none (Confluent's consumer.request.timeout.ms). */
  requestTimeoutMs: number;
}

export interface RestConsumerInstance extends RestConsumerSettings {
  groupId: string;
  name: string;
  /** The member id of its current incarnation in the group; null while it is not subscribed. */
  memberId: string | null;
  memberEpoch: number;
  subscription: string[];
  /** The partitions it owned at its last heartbeat. */
  assignment: TopicPartition[];
  /** The next offset to fetch, per assigned partition it has fetched or sought (by `partitionKey`). */
  positions: Record<string, number>;
  /** The last offset it committed (or found committed) per partition, so auto-commit skips no-ops. */
  committedPositions: Record<string, number>;
  /** Which assigned partition the next poll fetches first, so no partition is starved. */
  rotation: number;
  createdAtMs: number;
  /** When the instance (and its member's session) ends unless it polls again. */
  expiresAtMs: number;
  version: number;
}

export interface PolledRecord extends TopicPartition {
  record: ConsumedRecord;
}

export interface CreateInstanceRequest {
  /** Default: a generated name. */
  name?: string;
  format?: RestConsumerFormat;
  autoOffsetReset?: AutoOffsetReset;
  autoCommit?: boolean;
  sessionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export interface PollOptions {
  /** How long to wait when nothing is there yet. Default: the instance's requestTimeoutMs. */
  timeoutMs?: number;
  /** Keys and values of at most about this many bytes (at least one record when any is there). */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface RestConsumersOptions {
  groups: ConsumerGroups;
  engine: Engine;
  metadata: MetadataStore;
  clock?: Clock;
  /** The default session of an instance. Default REST_SESSION_TIMEOUT_MS_DEFAULT. */
  sessionTimeoutMs?: number;
}

/**
 * 60 s: twice the longest poll wait (30 s), so a client that polls in a loop and spends up to half
 * a minute on each answer keeps its instance and its partitions.
 */
export const REST_SESSION_TIMEOUT_MS_DEFAULT = 60_000;
export const REST_REQUEST_TIMEOUT_MS_DEFAULT = 1_000;
export const REST_MAX_BYTES_DEFAULT = 1024 * 1024;
/** While waiting for records, a poll heartbeats at least this often, so rebalances are not held up. */
const POLL_HEARTBEAT_MS_MAX = 1_000;
const UPDATE_ATTEMPTS_MAX = 10;
const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
/** Confluent's five-digit error codes of its v2 consumer API. */
export const REST_ERROR_CODES = {
  topicNotFound: 40401,
  partitionNotFound: 40402,
  instanceNotFound: 40403,
  instanceExists: 40902,
  illegalState: 40903,
} as const;

export function partitionKey(topic: string, partition: number): string {
  return `${topic}#${partition}`;
}

function parsePartitionKey(key: string): TopicPartition {
  const cut = key.lastIndexOf("#");
  return { topic: key.slice(0, cut), partition: Number(key.slice(cut + 1)) };
}

export function instanceNotFound(groupId: string, name: string): NotFoundError {
  return new NotFoundError(`consumer instance not found: ${name} in group ${groupId}`, {
    restErrorCode: REST_ERROR_CODES.instanceNotFound,
    details: { groupId, name },
  });
}

function illegalState(message: string, details: Record<string, unknown>): ConflictError {
  return new ConflictError(message, { restErrorCode: REST_ERROR_CODES.illegalState, details });
}

export function validateInstanceName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !INSTANCE_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `invalid consumer instance name ${JSON.stringify(name)}: use 1 to 100 characters from a-z, A-Z, 0-9, '.', '_' and '-'`,
    );
  }
}

export class RestConsumers {
  private readonly groups: ConsumerGroups;
  private readonly engine: Engine;
  private readonly metadata: MetadataStore;
  private readonly clock: Clock;
  private readonly sessionTimeoutMs: number;

  constructor(options: RestConsumersOptions) {
    this.groups = options.groups;
    this.engine = options.engine;
    this.metadata = options.metadata;
    this.clock = options.clock ?? systemClock;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? REST_SESSION_TIMEOUT_MS_DEFAULT;
  }

  /** A new instance (not yet subscribed). A name in use by a live instance is 409 (40902). */
  async create(groupId: string, request: CreateInstanceRequest = {}): Promise<RestConsumerInstance> {
    validateGroupId(groupId);
    const name = request.name ?? `rest-consumer-${randomBytes(8).toString("hex")}`;
    validateInstanceName(name);
    const now = this.clock.now();
    const sessionTimeoutMs = request.sessionTimeoutMs ?? this.sessionTimeoutMs;
    const instance: RestConsumerInstance = {
      groupId,
      name,
      format: request.format ?? "binary",
      autoOffsetReset: request.autoOffsetReset ?? "latest",
      autoCommit: request.autoCommit ?? true,
      sessionTimeoutMs,
      requestTimeoutMs: request.requestTimeoutMs ?? REST_REQUEST_TIMEOUT_MS_DEFAULT,
      memberId: null,
      memberEpoch: 0,
      subscription: [],
      assignment: [],
      positions: {},
      committedPositions: {},
      rotation: 0,
      createdAtMs: now,
      expiresAtMs: now + sessionTimeoutMs,
      version: 1,
    };
    try {
      // An expired instance of the same name is replaced: its session (and member) ended with it.
      await this.metadata.put(instanceItem(instance), {
        condition: cond.or(cond.notExists("pk"), cond.compare("expiresAtMs", "<", now)),
      });
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new ConflictError(
          `consumer instance ${name} already exists in group ${groupId}; choose another name or delete it first`,
          { restErrorCode: REST_ERROR_CODES.instanceExists, details: { groupId, name }, cause: error },
        );
      }
      throw error;
    }
    return instance;
  }

  /** The live instance, or 404 (40403) when it never existed, was deleted or expired. */
  async get(groupId: string, name: string): Promise<RestConsumerInstance> {
    validateGroupId(groupId);
    validateInstanceName(name);
    const item = await this.metadata.get(instanceKey(groupId, name));
    if (!item) throw instanceNotFound(groupId, name);
    const instance = instanceFromItem(groupId, name, item);
    if (instance.expiresAtMs < this.clock.now()) throw instanceNotFound(groupId, name);
    return instance;
  }

  /** Leaves the group (committing first with auto-commit, as Kafka's close does) and deletes the instance. */
  async delete(groupId: string, name: string): Promise<void> {
    const instance = await this.get(groupId, name);
    await this.leave(instance);
    await this.metadata.delete(instanceKey(groupId, name));
  }

  /** Replaces the subscription and joins the group (or updates its subscription there). */
  async subscribe(groupId: string, name: string, topics: string[]): Promise<RestConsumerInstance> {
    if (!Array.isArray(topics) || topics.length === 0)
      throw new InvalidArgumentError("topics: name at least one topic");
    const instance = await this.get(groupId, name);
    for (const topic of new Set(topics)) await this.requireTopic(topic);
    const subscription = [...new Set(topics)].sort();
    if (instance.memberId === null) {
      instance.memberId = newMemberId(name);
      instance.memberEpoch = JOIN_EPOCH;
    }
    instance.subscription = subscription;
    await this.heartbeat(instance, subscription);
    await this.save(instance);
    return instance;
  }

  /** Leaves the group; the instance stays, with no subscription. */
  async unsubscribe(groupId: string, name: string): Promise<void> {
    const instance = await this.get(groupId, name);
    await this.leave(instance);
    instance.memberId = null;
    instance.memberEpoch = 0;
    instance.subscription = [];
    instance.assignment = [];
    instance.positions = {};
    instance.committedPositions = {};
    instance.expiresAtMs = this.clock.now() + instance.sessionTimeoutMs;
    await this.save(instance);
  }

  /**
   * One poll: auto-commit what earlier polls returned, heartbeat, fetch the assigned partitions
   * from their positions within `maxBytes`, and when nothing is there wait (up to `timeoutMs`,
   * heartbeating at least every second) for records. The new positions are stored; a concurrent
   * request on the same instance that changed it first makes this poll a 409, and its records
   * come again (at least once).
   */
  async poll(groupId: string, name: string, options: PollOptions = {}): Promise<PolledRecord[]> {
    const instance = await this.get(groupId, name);
    if (instance.memberId === null || instance.subscription.length === 0) {
      throw illegalState(
        `consumer instance ${name} of group ${groupId} is not subscribed to any topic; subscribe first (POST …/subscription)`,
        { groupId, name },
      );
    }
    const timeoutMs = options.timeoutMs ?? instance.requestTimeoutMs;
    const maxBytes = options.maxBytes ?? REST_MAX_BYTES_DEFAULT;
    const deadline = this.clock.now() + timeoutMs;
    if (instance.autoCommit) await this.autoCommit(instance);
    let records: PolledRecord[] = [];
    for (;;) {
      const answer = await this.heartbeat(instance);
      await this.resolvePositions(instance);
      records = await this.fetchAssigned(instance, maxBytes);
      const remaining = deadline - this.clock.now();
      if (records.length > 0 || remaining <= 0 || options.signal?.aborted) break;
      const waitMs = Math.min(remaining, Math.max(1, answer.heartbeatIntervalMs), POLL_HEARTBEAT_MS_MAX);
      await this.waitForAny(instance, waitMs, options.signal);
    }
    instance.rotation = instance.rotation + 1;
    await this.save(instance);
    return records;
  }

  /**
   * Commits `offsets` (each the next offset to consume, as in Kafka) or, without them, the
   * positions of every assigned partition. Only partitions the instance owns: another is 409
   * (FENCED_MEMBER_EPOCH) and nothing is committed.
   */
  async commit(groupId: string, name: string, offsets?: OffsetCommit[]): Promise<OffsetCommit[]> {
    const instance = await this.get(groupId, name);
    const memberId = this.requireMember(instance);
    let commits: OffsetCommit[];
    if (offsets === undefined) {
      commits = instance.assignment
        .map((tp) => ({ ...tp, offset: instance.positions[partitionKey(tp.topic, tp.partition)] }))
        .filter((commit): commit is OffsetCommit => commit.offset !== undefined);
      if (commits.length === 0) return [];
    } else {
      for (const commit of offsets) await this.requirePartition(commit.topic, commit.partition);
      commits = offsets;
    }
    await this.groups.commit(groupId, memberId, commits);
    for (const commit of commits)
      instance.committedPositions[partitionKey(commit.topic, commit.partition)] = commit.offset;
    // The commit happened; a concurrent change of the instance wins over this bookkeeping.
    await this.trySave(instance);
    return commits;
  }

  /** The group's committed offsets of `partitions` (default: the assigned ones); none committed: left out. */
  async committed(
    groupId: string,
    name: string,
    partitions?: TopicPartition[],
  ): Promise<{ topic: string; partition: number; offset: number; metadata: string }[]> {
    const instance = await this.get(groupId, name);
    const wanted = partitions ?? instance.assignment;
    const committed = await this.groups.committed(groupId);
    const byKey = new Map(committed.map((offset) => [partitionKey(offset.topic, offset.partition), offset]));
    return wanted.flatMap((tp) => {
      const found = byKey.get(partitionKey(tp.topic, tp.partition));
      return found
        ? [{ topic: tp.topic, partition: tp.partition, offset: found.offset, metadata: found.metadata }]
        : [];
    });
  }

  /** The next fetch of each partition starts at its offset. Only assigned partitions. */
  async seek(groupId: string, name: string, offsets: { topic: string; partition: number; offset: number }[]) {
    await this.update(groupId, name, async (instance) => {
      this.requireAssigned(instance, offsets);
      offsets.forEach((entry, index) => {
        if (!Number.isSafeInteger(entry.offset) || entry.offset < 0)
          throw new InvalidArgumentError(`offsets.${index}.offset: a non-negative integer`);
      });
      for (const entry of offsets)
        instance.positions[partitionKey(entry.topic, entry.partition)] = entry.offset;
    });
  }

  async seekToBeginning(groupId: string, name: string, partitions: TopicPartition[]): Promise<void> {
    await this.seekToEdge(groupId, name, partitions, "beginning");
  }

  async seekToEnd(groupId: string, name: string, partitions: TopicPartition[]): Promise<void> {
    await this.seekToEdge(groupId, name, partitions, "end");
  }

  async assignments(groupId: string, name: string): Promise<TopicPartition[]> {
    return (await this.get(groupId, name)).assignment;
  }

  private async seekToEdge(
    groupId: string,
    name: string,
    partitions: TopicPartition[],
    edge: "beginning" | "end",
  ): Promise<void> {
    await this.update(groupId, name, async (instance) => {
      this.requireAssigned(instance, partitions);
      for (const tp of partitions) {
        const range = await this.engine.partitionOffsets(tp.topic, tp.partition);
        instance.positions[partitionKey(tp.topic, tp.partition)] =
          edge === "beginning" ? range.logStartOffset : range.highWatermark;
      }
    });
  }

  /** Load, change, write conditioned on the version read; a concurrent change means read again. */
  private async update(
    groupId: string,
    name: string,
    change: (instance: RestConsumerInstance) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const instance = await this.get(groupId, name);
      await change(instance);
      if (await this.trySave(instance)) return;
      if (attempt >= UPDATE_ATTEMPTS_MAX) return this.save(instance);
    }
  }

  /** Writes the instance conditioned on the version it was read at; false when it changed meanwhile. */
  private async trySave(instance: RestConsumerInstance): Promise<boolean> {
    const read = instance.version;
    try {
      await this.metadata.put(instanceItem({ ...instance, version: read + 1 }), {
        condition: cond.eq("version", read),
      });
    } catch (error) {
      if (error instanceof ConflictError) return false;
      throw error;
    }
    instance.version = read + 1;
    return true;
  }

  /** trySave, or a 409 (40403 when the instance went meanwhile) naming the concurrent request. */
  private async save(instance: RestConsumerInstance): Promise<void> {
    if (await this.trySave(instance)) return;
    const current = await this.metadata.get(instanceKey(instance.groupId, instance.name));
    if (!current || Number(current.expiresAtMs) < this.clock.now())
      throw instanceNotFound(instance.groupId, instance.name);
    throw new ConflictError(
      `consumer instance ${instance.name} of group ${instance.groupId} was changed by a concurrent request; what this request would have changed was not kept, try again`,
      { code: "CONCURRENT_INSTANCE_REQUEST" },
    );
  }

  private requireMember(instance: RestConsumerInstance): string {
    if (instance.memberId === null) {
      throw illegalState(
        `consumer instance ${instance.name} of group ${instance.groupId} is not subscribed to any topic, so it owns no partition; subscribe first`,
        { groupId: instance.groupId, name: instance.name },
      );
    }
    return instance.memberId;
  }

  private requireAssigned(instance: RestConsumerInstance, partitions: TopicPartition[]): void {
    const assigned = new Set(instance.assignment.map((tp) => partitionKey(tp.topic, tp.partition)));
    for (const tp of partitions) {
      if (!assigned.has(partitionKey(tp.topic, tp.partition))) {
        throw illegalState(
          `partition ${tp.partition} of topic ${tp.topic} is not assigned to consumer instance ${instance.name} of group ${instance.groupId}; it owns ${describePartitions(instance.assignment)}`,
          { groupId: instance.groupId, name: instance.name, topic: tp.topic, partition: tp.partition },
        );
      }
    }
  }

  private async requireTopic(topic: string): Promise<number> {
    try {
      return (await this.engine.topics.get(topic)).partitions;
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new NotFoundError(`topic not found: ${topic}`, {
          code: "UNKNOWN_TOPIC_OR_PARTITION",
          restErrorCode: REST_ERROR_CODES.topicNotFound,
          cause: error,
        });
      }
      throw error;
    }
  }

  private async requirePartition(topic: string, partition: number): Promise<void> {
    const partitions = await this.requireTopic(topic);
    if (Number.isInteger(partition) && partition >= 0 && partition < partitions) return;
    throw new NotFoundError(
      `partition ${partition} not found: topic ${topic} has ${partitions} partitions (0 to ${partitions - 1})`,
      { code: "UNKNOWN_TOPIC_OR_PARTITION", restErrorCode: REST_ERROR_CODES.partitionNotFound },
    );
  }

  /**
   * A heartbeat for the instance's member, with no owned partitions (a server-side consumer gives
   * revoked ones up at once). A member the group no longer knows (its session ended or it was
   * fenced) joins again under a new member id and starts its partitions from their committed offsets.
   */
  private async heartbeat(instance: RestConsumerInstance, subscription?: string[]) {
    const request = (memberId: string, memberEpoch: number) => ({
      groupId: instance.groupId,
      memberId,
      memberEpoch,
      sessionTimeoutMs: instance.sessionTimeoutMs,
      clientId: `rest-v2:${instance.name}`,
      ...(memberEpoch === JOIN_EPOCH
        ? { subscription: subscription ?? instance.subscription }
        : subscription
          ? { subscription }
          : {}),
    });
    let answer: Awaited<ReturnType<ConsumerGroups["heartbeat"]>>;
    try {
      answer = await this.groups.heartbeat(request(instance.memberId!, instance.memberEpoch));
    } catch (error) {
      if (
        !(error instanceof FencedError) ||
        (error.code !== "UNKNOWN_MEMBER_ID" && error.code !== "FENCED_MEMBER_EPOCH")
      )
        throw error;
      instance.memberId = newMemberId(instance.name);
      instance.positions = {};
      instance.committedPositions = {};
      answer = await this.groups.heartbeat(request(instance.memberId, JOIN_EPOCH));
    }
    instance.memberEpoch = answer.memberEpoch;
    instance.assignment = sortPartitions([...answer.assignment]);
    const assigned = new Set(instance.assignment.map((tp) => partitionKey(tp.topic, tp.partition)));
    // A partition given up starts again from its committed offset if it comes back (as in Kafka).
    for (const key of Object.keys(instance.positions)) if (!assigned.has(key)) delete instance.positions[key];
    for (const key of Object.keys(instance.committedPositions))
      if (!assigned.has(key)) delete instance.committedPositions[key];
    // The instance ends with its member's session, which the coordinator renews on its own schedule.
    const member = await this.metadata.get(memberKey(instance.groupId, instance.memberId!));
    instance.expiresAtMs = member
      ? Number(member.sessionDeadlineMs)
      : this.clock.now() + instance.sessionTimeoutMs;
    return answer;
  }

  /** Leaves the group, committing the positions first with auto-commit. Idempotent. */
  private async leave(instance: RestConsumerInstance): Promise<void> {
    if (instance.memberId === null) return;
    if (instance.autoCommit) await this.autoCommit(instance);
    await this.groups.heartbeat({
      groupId: instance.groupId,
      memberId: instance.memberId,
      memberEpoch: LEAVE_EPOCH,
    });
  }

  /**
   * Commits the positions that moved since the last commit. A partition the member lost meanwhile
   * is skipped (its records come again to its new owner: at least once); a member the group no
   * longer knows commits nothing.
   */
  private async autoCommit(instance: RestConsumerInstance): Promise<void> {
    const memberId = instance.memberId;
    if (memberId === null) return;
    let commits: OffsetCommit[] = [];
    for (const [key, offset] of Object.entries(instance.positions)) {
      if (instance.committedPositions[key] === offset) continue;
      const tp = parsePartitionKey(key);
      if (!(await this.topicExists(tp.topic))) continue;
      commits.push({ ...tp, offset });
    }
    while (commits.length > 0) {
      try {
        await this.groups.commit(instance.groupId, memberId, commits);
        for (const commit of commits)
          instance.committedPositions[partitionKey(commit.topic, commit.partition)] = commit.offset;
        return;
      } catch (error) {
        if (!(error instanceof FencedError)) throw error;
        if (error.code === "UNKNOWN_MEMBER_ID") return;
        const { topic, partition } = error.details as { topic?: string; partition?: number };
        const before = commits.length;
        commits = commits.filter((commit) => commit.topic !== topic || commit.partition !== partition);
        if (commits.length === before) throw error;
      }
    }
  }

  private async topicExists(topic: string): Promise<boolean> {
    try {
      await this.engine.topics.get(topic);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  /** Assigned partitions with no position start at their committed offset, else at auto.offset.reset. */
  private async resolvePositions(instance: RestConsumerInstance): Promise<void> {
    const missing = instance.assignment.filter(
      (tp) => instance.positions[partitionKey(tp.topic, tp.partition)] === undefined,
    );
    if (missing.length === 0) return;
    const committed = await this.groups.committed(instance.groupId);
    for (const tp of missing) {
      const key = partitionKey(tp.topic, tp.partition);
      try {
        instance.positions[key] = await this.groups.startOffset(
          instance.groupId,
          tp,
          instance.autoOffsetReset,
          committed,
        );
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw asStateError(error);
      }
      const found = committed.find(
        (offset) => offset.topic === tp.topic && offset.partition === tp.partition,
      );
      if (found) instance.committedPositions[key] = found.offset;
    }
  }

  /**
   * Fetches the assigned partitions in turn, starting with a different one each poll, until
   * `maxBytes` of keys and values (Confluent's measure) is reached; at least one record when any
   * is there. Positions move past what is returned.
   */
  private async fetchAssigned(instance: RestConsumerInstance, maxBytes: number): Promise<PolledRecord[]> {
    const partitions = instance.assignment.filter(
      (tp) => instance.positions[partitionKey(tp.topic, tp.partition)] !== undefined,
    );
    const records: PolledRecord[] = [];
    let bytes = 0;
    for (let step = 0; step < partitions.length && bytes < maxBytes; step++) {
      const tp = partitions[(instance.rotation + step) % partitions.length]!;
      const key = partitionKey(tp.topic, tp.partition);
      let position = instance.positions[key]!;
      let result: Awaited<ReturnType<Engine["fetch"]>>;
      try {
        result = await this.engine.fetch({
          ...tp,
          offset: position,
          maxBytes: Math.max(1, maxBytes - bytes),
        });
      } catch (error) {
        if (error instanceof NotFoundError) continue; // deleted meanwhile: the next heartbeat drops it
        if (!(error instanceof OffsetOutOfRangeError)) throw error;
        // A position outside the log (a seek past the end): auto.offset.reset decides, as in Kafka.
        position = await this.resetPosition(instance, tp);
        instance.positions[key] = position;
        result = await this.engine.fetch({
          ...tp,
          offset: position,
          maxBytes: Math.max(1, maxBytes - bytes),
        });
      }
      let next = position;
      for (const record of result.records) {
        const size = (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
        if (records.length > 0 && bytes + size > maxBytes) {
          bytes = maxBytes;
          break;
        }
        records.push({ ...tp, record });
        bytes += size;
        next = record.offset + 1;
      }
      if (result.records.length === 0) next = Math.max(position, result.nextOffset);
      instance.positions[key] = next;
    }
    return records;
  }

  private async resetPosition(instance: RestConsumerInstance, tp: TopicPartition): Promise<number> {
    const range = await this.engine.partitionOffsets(tp.topic, tp.partition);
    switch (instance.autoOffsetReset) {
      case "earliest":
        return range.logStartOffset;
      case "latest":
        return range.highWatermark;
      case "none":
        throw new ConflictError(
          `position ${instance.positions[partitionKey(tp.topic, tp.partition)]} of partition ${tp.partition} of ${tp.topic} is outside the log (${range.logStartOffset} to ${range.highWatermark}) and auto.offset.reset is none; seek first`,
          { code: "OFFSET_OUT_OF_RANGE", restErrorCode: REST_ERROR_CODES.illegalState },
        );
    }
  }

  /** Waits until any assigned partition has a record at its position, `waitMs` passes or `signal` aborts. */
  private async waitForAny(instance: RestConsumerInstance, waitMs: number, signal?: AbortSignal) {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const waits: Promise<unknown>[] = instance.assignment
        .filter((tp) => instance.positions[partitionKey(tp.topic, tp.partition)] !== undefined)
        .map((tp) =>
          this.engine
            .waitForRecords(
              tp.topic,
              tp.partition,
              instance.positions[partitionKey(tp.topic, tp.partition)]!,
              waitMs,
              stop.signal,
            )
            .catch(() => undefined),
        );
      // No partition yet (all pending, or more members than partitions): wait, then ask again.
      if (waits.length === 0) waits.push(this.clock.sleep(waitMs, stop.signal).catch(() => undefined));
      await Promise.race(waits);
    } finally {
      stop.abort();
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** auto.offset.reset none with nothing committed is the group's state, not a bad request: 409. */
function asStateError(error: unknown): unknown {
  if (error instanceof InvalidArgumentError && error.code === "NO_OFFSET_FOR_PARTITION") {
    return new ConflictError(`${error.message}; commit or seek first`, {
      code: error.code,
      restErrorCode: REST_ERROR_CODES.illegalState,
      cause: error,
    });
  }
  return error;
}

function newMemberId(name: string): string {
  return `${name}:${randomBytes(8).toString("hex")}`;
}

function describePartitions(partitions: TopicPartition[]): string {
  if (partitions.length === 0) return "none";
  return partitions.map((tp) => `${tp.topic}-${tp.partition}`).join(", ");
}

function instanceItem(instance: RestConsumerInstance): Item {
  return {
    ...instanceKey(instance.groupId, instance.name),
    name: instance.name,
    format: instance.format,
    autoOffsetReset: instance.autoOffsetReset,
    autoCommit: instance.autoCommit,
    sessionTimeoutMs: instance.sessionTimeoutMs,
    requestTimeoutMs: instance.requestTimeoutMs,
    memberId: instance.memberId,
    memberEpoch: instance.memberEpoch,
    subscription: instance.subscription,
    assignment: instance.assignment.map((tp) => partitionKey(tp.topic, tp.partition)),
    positions: instance.positions,
    committedPositions: instance.committedPositions,
    rotation: instance.rotation,
    createdAtMs: instance.createdAtMs,
    expiresAtMs: instance.expiresAtMs,
    // DynamoDB's TTL (seconds) removes instances nobody deleted; readers judge expiry themselves.
    expiresAt: Math.ceil(instance.expiresAtMs / 1000) + 60,
    version: instance.version,
  };
}

function numbers(value: unknown): Record<string, number> {
  if (!value || typeof value !== "object" || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([key, offset]) => [key, Number(offset)]));
}

function instanceFromItem(groupId: string, name: string, item: Item): RestConsumerInstance {
  return {
    groupId,
    name,
    format: item.format === "json" ? "json" : "binary",
    autoOffsetReset: String(item.autoOffsetReset) as AutoOffsetReset,
    autoCommit: item.autoCommit === true,
    sessionTimeoutMs: Number(item.sessionTimeoutMs),
    requestTimeoutMs: Number(item.requestTimeoutMs),
    memberId: typeof item.memberId === "string" ? item.memberId : null,
    memberEpoch: Number(item.memberEpoch),
    subscription: Array.isArray(item.subscription) ? item.subscription.map(String) : [],
    assignment: Array.isArray(item.assignment)
      ? item.assignment.map((key) => parsePartitionKey(String(key)))
      : [],
    positions: numbers(item.positions),
    committedPositions: numbers(item.committedPositions),
    rotation: Number(item.rotation ?? 0),
    createdAtMs: Number(item.createdAtMs),
    expiresAtMs: Number(item.expiresAtMs),
    version: Number(item.version),
  };
}
