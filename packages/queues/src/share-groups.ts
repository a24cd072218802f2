import { randomUUID } from "node:crypto";
import { type Clock, ConflictError, InvalidArgumentError, NotFoundError, systemClock } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { validateGroupId } from "@sluice/groups";
import { cond, type MetadataStore, TransactionCanceledError } from "@sluice/storage";
import type { Metrics } from "@sluice/telemetry";
import {
  ACKNOWLEDGE_TYPES,
  type Acknowledgement,
  type AcknowledgementResult,
  acknowledgeInPartition,
  releaseAllHeld,
} from "./acknowledge.js";
import {
  type AcquiredRecord,
  type AcquireWant,
  acquireFromPartition,
  COMBINED_WANTS_MAX,
  type PartitionAcquisition,
} from "./acquire.js";
import { configDifferences, DEFAULT_SHARE_GROUP_CONFIGS, type ShareGroupConfigs } from "./configs.js";
import {
  configMismatch,
  invalidConfig,
  shareGroupNotEmpty,
  shareGroupNotFound,
  unknownShareMember,
} from "./errors.js";
import {
  memberAttributes,
  memberFromItem,
  metaAttributes,
  metaFromItem,
  type ShareGroupMeta,
  type ShareMember,
} from "./group-items.js";
import {
  MEMBER_PREFIX,
  SHARE_GROUPS_PK,
  shareGroupListKey,
  shareGroupMetaKey,
  shareGroupPk,
  shareMemberKey,
  shareTopicKey,
  TOPIC_PREFIX,
  windowStateKey,
} from "./keys.js";
import { ShareGroupMeter } from "./metrics.js";
import { loadWindow, SETTLED, type SharePartition, type Window } from "./window.js";

export interface ShareGroupsOptions {
  engine: Engine;
  metadata: MetadataStore;
  clock?: Clock;
  /** How long a member stays without a call. Default 45 s. */
  sessionTimeoutMs?: number;
  /**
   * Records a share-partition's window spans at most (end − start): past it, no fresh record is
   * handed out until the head settles. Default 10,000 — a record held long at the head (a slow or
   * dead member) stops the share-partition only after this many behind it.
   */
  maxInFlightRecords?: number;
  /** How often a waiting acquisition looks again for records released by other processes. Default 1 s. */
  recheckIntervalMs?: number;
  /**
   * How often an acquisition reads a share-partition's whole window (records given back in other
   * processes, the settled head) when it could take fresh records from the `state` item alone.
   * Default 250 ms; 0 reads it every time.
   */
  rescanIntervalMs?: number;
  /** Where the share-group series go (records acquired, acknowledged, archived, dead-lettered). Default: nowhere. */
  metrics?: Metrics;
}

export interface JoinRequest {
  groupId: string;
  /** Unique to the member (make one, e.g. a UUID); joining again under it refreshes the member. */
  memberId: string;
  topics: string[];
  /** Taken when the group is created; a join naming others than the group has is refused. */
  configs?: Partial<ShareGroupConfigs>;
  sessionTimeoutMs?: number;
  clientId?: string;
}

export interface JoinResponse {
  memberId: string;
  topics: string[];
  configs: ShareGroupConfigs;
  sessionTimeoutMs: number;
  sessionRemainingMs: number;
  /** True when this join created the group. */
  created: boolean;
}

export interface AcquireOptions {
  /** At most this many records. Default 100. */
  maxRecords?: number;
  /** About this many bytes of keys and values (at least one record). Default 1 MiB. */
  maxBytes?: number;
  /** With nothing to hand out, wait up to this long for records. Default 0. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface AcquireResult {
  records: AcquiredRecord[];
  /** The session's remaining time from this decision (a member counts it from when it asked). */
  sessionRemainingMs: number;
}

export type ShareGroupStateName = "Empty" | "Stable";

export interface SharePartitionDescription {
  topic: string;
  partition: number;
  /** False until a member first looked at the share-partition. */
  initialized: boolean;
  startOffset: number;
  endOffset: number;
  highWatermark: number;
  /** Records locked to a member now. */
  acquired: number;
  /** Records in the window that may be acquired (released, or their lock passed). */
  available: number;
  acknowledged: number;
  archived: number;
  /** Archived records whose dead letter is not written yet. */
  deadLettersDue: number;
  /** Records not settled yet: the window's unsettled ones and everything past its end. */
  lag: number;
}

export interface ShareMemberDescription {
  memberId: string;
  clientId?: string;
  topics: string[];
  joinedAtMs: number;
  sessionDeadlineMs: number;
  /** Records it holds locks on now. */
  acquired: number;
}

export interface ShareGroupDescription {
  groupId: string;
  state: ShareGroupStateName;
  createdAtMs: number;
  configs: ShareGroupConfigs;
  topics: string[];
  members: ShareMemberDescription[];
  partitions: SharePartitionDescription[];
}

export type StartOffsetResetSpec =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "offset"; offset: number }
  | { to: "datetime"; timestampMs: number };

export interface StartOffsetResetPlan {
  topic: string;
  partition: number;
  /** The window's start before; null when no member has looked at it yet. */
  previous: number | null;
  next: number;
}

export const SHARE_SESSION_TIMEOUT_MS_DEFAULT = 45_000;
export const SHARE_SESSION_TIMEOUT_MS_MIN = 1_000;
export const SHARE_SESSION_TIMEOUT_MS_MAX = 30 * 60_000;
export const MAX_IN_FLIGHT_RECORDS_DEFAULT = 10_000;
export const ACQUIRE_RECORDS_MAX = 10_000;
const ACQUIRE_RECORDS_DEFAULT = 100;
const ACQUIRE_BYTES_DEFAULT = 1024 * 1024;
const MEMBER_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const TOPICS_PER_MEMBER_MAX = 1_000;
const ATTEMPTS_MAX = 30;
/** Configs are immutable once a group exists; a process still looks again now and then. */
const META_CACHE_MS = 5_000;

/**
 * Share groups: point-to-point delivery over the log (ARCHITECTURE.md, "Queues"). One instance per
 * process; it holds caches and a queue per share-partition, never group state, so any number of
 * instances may serve one group.
 *
 * Guarantees (the scenario suite checks each against every write the store applies):
 * - A record is acquired by at most one member at a time: it is handed out only by a write
 *   conditioned on the version in which it was available or its lock had passed.
 * - An acknowledged (or archived) record is never delivered again.
 * - Every record ends acknowledged, archived or dead-lettered, after at most
 *   `delivery.count.limit` deliveries, as long as members keep acquiring.
 * - An acknowledgement, release, rejection or renewal from a member whose lock passed (on the
 *   deciding instance's clock) is refused with INVALID_RECORD_STATE and says so.
 * - The start offset never passes a record that is not settled.
 *
 * A processor (or any runner that needs no HTTP) uses it as the SDK's queue consumer does: `join`,
 * then loop on `acquire`, handle each record and `acknowledge` it (ACCEPT, RELEASE to retry on
 * another delivery, REJECT for a poison record), RENEW locks of records still being handled, and
 * `leave`.
 */
export class ShareGroups {
  private readonly engine: Engine;
  private readonly metadata: MetadataStore;
  private readonly clock: Clock;
  private readonly sessionTimeoutMs: number;
  private readonly maxInFlightRecords: number;
  private readonly recheckIntervalMs: number;
  private readonly rescanIntervalMs: number;
  private readonly meter: ShareGroupMeter;
  private readonly metaCache = new Map<string, { meta: ShareGroupMeta; readAtMs: number }>();
  /**
   * Acquisitions waiting per share-partition while one is at the store: they go next, together, as
   * one combined acquisition (ARCHITECTURE.md, "Queues"). Two at the store at once would only fail
   * each other's conditions.
   */
  private readonly acquiring = new Map<string, PendingAcquisition[]>();
  /**
   * When this process last read each share-partition's whole window, the earliest lock it saw, and
   * whether records were given back here since. Between such reads acquisitions take fresh records
   * from the `state` item alone (ARCHITECTURE.md, "Queues", Throughput).
   */
  private readonly scans = new Map<
    string,
    { atMs: number; nextLockDeadlineMs: number | undefined; released: boolean }
  >();
  /** Waiting acquisitions of this process, woken when records are released or settled here. */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(options: ShareGroupsOptions) {
    this.engine = options.engine;
    this.metadata = options.metadata;
    this.clock = options.clock ?? systemClock;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? SHARE_SESSION_TIMEOUT_MS_DEFAULT;
    this.maxInFlightRecords = options.maxInFlightRecords ?? MAX_IN_FLIGHT_RECORDS_DEFAULT;
    this.recheckIntervalMs = options.recheckIntervalMs ?? 1_000;
    this.rescanIntervalMs = options.rescanIntervalMs ?? 250;
    this.meter = new ShareGroupMeter(options.metrics);
  }

  // --- membership ---------------------------------------------------------------------------

  /**
   * Joins `memberId` to the share group on `topics`, creating the group (with `configs`) if it
   * does not exist. Joining again under the same id refreshes the member (its topics, its session).
   * Every topic must exist; so must the dead-letter topic, which may not be one of them.
   */
  async join(request: JoinRequest): Promise<JoinResponse> {
    validateGroupId(request.groupId);
    validateMemberId(request.memberId);
    const topics = [...new Set(request.topics)].sort();
    if (topics.length === 0 || topics.length > TOPICS_PER_MEMBER_MAX)
      throw new InvalidArgumentError(`a member names 1 to ${TOPICS_PER_MEMBER_MAX} topics to consume`);
    const sessionTimeoutMs = request.sessionTimeoutMs ?? this.sessionTimeoutMs;
    if (
      !Number.isInteger(sessionTimeoutMs) ||
      sessionTimeoutMs < SHARE_SESSION_TIMEOUT_MS_MIN ||
      sessionTimeoutMs > SHARE_SESSION_TIMEOUT_MS_MAX
    ) {
      throw new InvalidArgumentError(
        `invalid session timeout ${sessionTimeoutMs} ms: expected ${SHARE_SESSION_TIMEOUT_MS_MIN} to ${SHARE_SESSION_TIMEOUT_MS_MAX}`,
      );
    }
    const partitionCounts = await Promise.all(topics.map((topic) => this.engine.topics.get(topic)));
    const { meta, created } = await this.metaForJoin(request.groupId, request.configs ?? {});
    const deadLetterTopic = meta.configs.deadLetterTopic;
    if (deadLetterTopic !== null && topics.includes(deadLetterTopic)) {
      throw invalidConfig(
        `topic ${deadLetterTopic} is share group ${request.groupId}'s dead-letter topic; a member cannot consume it in the same group`,
      );
    }
    for (const topic of topics) await this.metadata.put({ ...shareTopicKey(request.groupId, topic), topic });

    for (let attempt = 1; ; attempt++) {
      const nowMs = this.clock.now();
      const existing = await this.metadata.get(shareMemberKey(request.groupId, request.memberId));
      const member: ShareMember = {
        memberId: request.memberId,
        topics,
        ...(request.clientId === undefined ? {} : { clientId: request.clientId }),
        sessionTimeoutMs,
        sessionDeadlineMs: nowMs + sessionTimeoutMs,
        joinedAtMs: existing ? Number(existing.joinedAtMs) : nowMs,
      };
      const item = { ...shareMemberKey(request.groupId, request.memberId), ...memberAttributes(member) };
      try {
        if (existing) {
          // Still counted (an expired member counts until it is removed): replace it as it was seen.
          await this.metadata.put(item, {
            condition: cond.eq("sessionDeadlineMs", Number(existing.sessionDeadlineMs)),
          });
        } else {
          await this.metadata.transactWrite([
            { kind: "put", item, condition: cond.notExists("pk") },
            {
              kind: "update",
              key: shareGroupMetaKey(request.groupId),
              changes: { add: { memberCount: 1 } },
              condition: cond.exists("pk"),
            },
          ]);
        }
      } catch (error) {
        if (error instanceof ConflictError && attempt < ATTEMPTS_MAX) continue;
        throw error;
      }
      // Windows start when the member joins, so `latest` means the records produced from now on.
      await Promise.all(
        topics.map((topic, index) =>
          this.initializeWindows(
            request.groupId,
            topic,
            partitionCounts[index]!.topicId,
            partitionCounts[index]!.partitions,
            meta.configs,
          ),
        ),
      );
      return {
        memberId: request.memberId,
        topics,
        configs: meta.configs,
        sessionTimeoutMs,
        sessionRemainingMs: sessionTimeoutMs,
        created,
      };
    }
  }

  /** Keeps the member's session alive; UNKNOWN_MEMBER_ID when it has ended. */
  async heartbeat(groupId: string, memberId: string): Promise<{ sessionRemainingMs: number }> {
    validateGroupId(groupId);
    validateMemberId(memberId);
    const member = await this.liveMember(groupId, memberId);
    return { sessionRemainingMs: Math.max(0, member.sessionDeadlineMs - this.clock.now()) };
  }

  /**
   * Leaves: the member's records are given back at once (available again, delivery counts kept),
   * and it is removed. Leaving as an unknown member does nothing.
   */
  async leave(groupId: string, memberId: string): Promise<void> {
    validateGroupId(groupId);
    validateMemberId(memberId);
    const item = await this.metadata.get(shareMemberKey(groupId, memberId));
    if (!item) return;
    const member = memberFromItem(item);
    const meta = await this.meta(groupId);
    for (const partition of await this.sharePartitions(groupId, member.topics)) {
      const released = await releaseAllHeld(this.deps(), partition, memberId, meta.configs, meta.uid);
      if (released > 0) {
        this.markReleased(partition);
        this.wake(partition);
      }
    }
    await this.removeMember(groupId, member.memberId, member.sessionDeadlineMs, true);
  }

  // --- records ------------------------------------------------------------------------------

  /**
   * Hands the member up to `maxRecords` records of its topics, each locked to it for the group's
   * `record.lock.duration.ms`: released or passed records first (lowest offsets first), then fresh
   * ones. Share-partitions are visited starting at a random one, so members spread. With nothing
   * to hand out it waits up to `timeoutMs` for records to arrive or locks to pass.
   */
  async acquire(groupId: string, memberId: string, options: AcquireOptions = {}): Promise<AcquireResult> {
    validateGroupId(groupId);
    validateMemberId(memberId);
    const maxRecords = options.maxRecords ?? ACQUIRE_RECORDS_DEFAULT;
    if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > ACQUIRE_RECORDS_MAX)
      throw new InvalidArgumentError(
        `invalid max records ${maxRecords}: expected 1 to ${ACQUIRE_RECORDS_MAX}`,
      );
    const maxBytes = options.maxBytes ?? ACQUIRE_BYTES_DEFAULT;
    const untilMs = this.clock.now() + Math.max(0, options.timeoutMs ?? 0);
    for (;;) {
      const member = await this.liveMember(groupId, memberId);
      const meta = await this.meta(groupId);
      const partitions = rotate(await this.sharePartitions(groupId, member.topics), this.clock.random());
      const records: AcquiredRecord[] = [];
      const watched: { partition: SharePartition; acquisition: PartitionAcquisition }[] = [];
      for (const partition of partitions) {
        if (records.length >= maxRecords) break;
        const { records: taken, acquisition } = await this.acquireCombined(partition, meta, {
          memberId,
          maxRecords: maxRecords - records.length,
          maxBytes,
        });
        records.push(...taken);
        watched.push({ partition, acquisition });
      }
      const nowMs = this.clock.now();
      const sessionRemainingMs = Math.max(0, member.sessionDeadlineMs - nowMs);
      if (records.length > 0 || nowMs >= untilMs || options.signal?.aborted)
        return { records, sessionRemainingMs };
      await this.waitForWork(watched, untilMs, options.signal);
    }
  }

  /**
   * Applies the member's acknowledgements, one type per offset (ARCHITECTURE.md, "Queues"). Each
   * is applied only when the member holds the record under a lock that has not passed; the
   * others are refused with INVALID_RECORD_STATE (or UNKNOWN_TOPIC_OR_PARTITION) and a message.
   * Results come back in the order given. An offset named twice is an InvalidArgumentError.
   */
  async acknowledge(
    groupId: string,
    memberId: string,
    acknowledgements: Acknowledgement[],
  ): Promise<AcknowledgementResult[]> {
    validateGroupId(groupId);
    validateMemberId(memberId);
    validateAcknowledgements(acknowledgements);
    const meta = await this.meta(groupId);
    const byPartition = new Map<string, Acknowledgement[]>();
    for (const ack of acknowledgements) {
      const key = `${ack.topic}\u0000${ack.partition}`;
      byPartition.set(key, [...(byPartition.get(key) ?? []), ack]);
    }
    const results = new Map<Acknowledgement, AcknowledgementResult>();
    await Promise.all(
      [...byPartition.values()].map(async (acks) => {
        const first = acks[0]!;
        const partition = await this.sharePartition(groupId, first.topic, first.partition);
        if (!partition) {
          for (const ack of acks) {
            results.set(ack, {
              ...ack,
              outcome: {
                ok: false,
                code: "UNKNOWN_TOPIC_OR_PARTITION",
                message: `partition ${ack.partition} of topic ${ack.topic} does not exist`,
              },
            });
          }
          return;
        }
        const done = await acknowledgeInPartition(this.deps(), {
          partition,
          memberId,
          acknowledgements: acks,
          configs: meta.configs,
          groupUid: meta.uid,
        });
        done.results.forEach((result, index) => {
          results.set(acks[index]!, result);
        });
        if (done.released) this.markReleased(partition);
        if (done.released || done.headSettled) this.wake(partition);
      }),
    );
    return acknowledgements.map((ack) => results.get(ack)!);
  }

  // --- admin --------------------------------------------------------------------------------

  async list(): Promise<{ groupId: string; state: ShareGroupStateName; members: number }[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: SHARE_GROUPS_PK, cursor });
      for (const item of page.items) ids.push(item.sk);
      cursor = page.cursor;
    } while (cursor);
    const nowMs = this.clock.now();
    return Promise.all(
      ids.map(async (groupId) => {
        const { members } = await this.groupItems(groupId);
        const live = members.filter((member) => member.sessionDeadlineMs >= nowMs).length;
        return { groupId, state: live > 0 ? ("Stable" as const) : ("Empty" as const), members: live };
      }),
    );
  }

  /** Members, configs and every share-partition's window: start, end, counts by state, lag. */
  async describe(groupId: string): Promise<ShareGroupDescription> {
    validateGroupId(groupId);
    const meta = await this.meta(groupId, true);
    const { members, topics } = await this.groupItems(groupId);
    const nowMs = this.clock.now();
    const live = members.filter((member) => member.sessionDeadlineMs >= nowMs);
    const held = new Map<string, number>();
    const partitions: SharePartitionDescription[] = [];
    for (const partition of await this.sharePartitions(groupId, topics)) {
      const window = await loadWindow(this.metadata, partition);
      const offsets = await this.engine.partitionOffsets(partition.topic, partition.partition);
      partitions.push(describeWindow(window, offsets, nowMs, meta.configs, held));
    }
    return {
      groupId,
      state: live.length > 0 ? "Stable" : "Empty",
      createdAtMs: meta.createdAtMs,
      configs: meta.configs,
      topics,
      members: live
        .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
        .map((member) => ({
          memberId: member.memberId,
          ...(member.clientId === undefined ? {} : { clientId: member.clientId }),
          topics: member.topics,
          joinedAtMs: member.joinedAtMs,
          sessionDeadlineMs: member.sessionDeadlineMs,
          acquired: held.get(member.memberId) ?? 0,
        })),
      partitions,
    };
  }

  /**
   * Moves the start offset of every share-partition of `topics` (default: every topic of the
   * group) to `spec`, clamped to each log, as an empty window: what was in flight is forgotten.
   * Only while the group has no members; with `dryRun`, only the plan.
   */
  async resetStartOffsets(
    groupId: string,
    spec: StartOffsetResetSpec,
    options: { topics?: string[]; dryRun: boolean },
  ): Promise<StartOffsetResetPlan[]> {
    validateGroupId(groupId);
    await this.meta(groupId, true);
    const { members, topics: groupTopics } = await this.groupItems(groupId);
    const nowMs = this.clock.now();
    for (const member of members) {
      if (member.sessionDeadlineMs < nowMs)
        await this.removeMember(groupId, member.memberId, member.sessionDeadlineMs, false);
    }
    const meta = await this.meta(groupId, true);
    if (meta.memberCount > 0)
      throw shareGroupNotEmpty(groupId, meta.memberCount, "reset the start offsets of");
    const topics = options.topics ?? groupTopics;
    if (topics.length === 0)
      throw new InvalidArgumentError(`share group ${groupId} has no topics; name the topics to reset`);
    const plans: StartOffsetResetPlan[] = [];
    for (const topic of topics) {
      const found = await this.engine.topics.describe(topic);
      for (let partition = 0; partition < found.partitions; partition++) {
        const share: SharePartition = { groupId, topic, topicId: found.topicId, partition };
        const window = await loadWindow(this.metadata, share);
        const offsets = await this.engine.partitionOffsets(topic, partition);
        let next: number;
        switch (spec.to) {
          case "earliest":
            next = offsets.logStartOffset;
            break;
          case "latest":
            next = offsets.highWatermark;
            break;
          case "offset":
            next = spec.offset;
            break;
          case "datetime":
            next =
              (await this.engine.offsetForTimestamp(topic, partition, spec.timestampMs)) ??
              offsets.highWatermark;
            break;
        }
        next = Math.min(Math.max(next, offsets.logStartOffset), offsets.highWatermark);
        plans.push({ topic, partition, previous: window.state?.startOffset ?? null, next });
        if (options.dryRun) continue;
        const key = windowStateKey(groupId, found.topicId, partition);
        const stamp = { writtenBy: "", writtenAtMs: nowMs };
        try {
          await this.metadata.transactWrite([
            {
              kind: "condition_check",
              key: shareGroupMetaKey(groupId),
              condition: cond.eq("memberCount", 0),
            },
            window.state
              ? {
                  kind: "update",
                  key,
                  changes: {
                    set: {
                      startOffset: next,
                      endOffset: next,
                      epoch: window.state.epoch + 1,
                      version: window.state.version + 1,
                      ...stamp,
                    },
                  },
                  condition: cond.eq("version", window.state.version),
                }
              : {
                  kind: "put",
                  item: {
                    ...key,
                    groupId,
                    topic,
                    topicId: found.topicId,
                    partition,
                    startOffset: next,
                    endOffset: next,
                    epoch: 1,
                    version: 1,
                    ...stamp,
                  },
                  condition: cond.notExists("pk"),
                },
          ]);
        } catch (error) {
          if (!(error instanceof TransactionCanceledError)) throw error;
          const current = await this.meta(groupId, true);
          if (current.memberCount > 0)
            throw shareGroupNotEmpty(groupId, current.memberCount, "reset the start offsets of");
          throw new ConflictError(
            `share-partition ${topic}/${partition} of group ${groupId} changed during the reset; try again`,
          );
        }
        // What the old window held is garbage now (an older epoch): readers ignore it; delete it.
        for (const batch of window.batches) await this.metadata.delete(batch.key).catch(() => undefined);
      }
    }
    return plans;
  }

  // --- internals ----------------------------------------------------------------------------

  private deps() {
    return {
      engine: this.engine,
      metadata: this.metadata,
      clock: this.clock,
      maxInFlightRecords: this.maxInFlightRecords,
      meter: this.meter,
    };
  }

  /** The group's meta, from a short-lived cache unless `fresh`. */
  private async meta(groupId: string, fresh = false): Promise<ShareGroupMeta> {
    const cached = this.metaCache.get(groupId);
    const nowMs = this.clock.now();
    if (!fresh && cached && nowMs - cached.readAtMs < META_CACHE_MS) return cached.meta;
    const item = await this.metadata.get(shareGroupMetaKey(groupId));
    if (!item) {
      this.metaCache.delete(groupId);
      throw shareGroupNotFound(groupId);
    }
    const meta = metaFromItem(item);
    this.metaCache.set(groupId, { meta, readAtMs: nowMs });
    return meta;
  }

  /** The group's meta for a join: created with the given configs when missing, else checked against them. */
  private async metaForJoin(
    groupId: string,
    given: Partial<ShareGroupConfigs>,
  ): Promise<{ meta: ShareGroupMeta; created: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const item = await this.metadata.get(shareGroupMetaKey(groupId));
      if (item) {
        const meta = metaFromItem(item);
        const differences = configDifferences(meta.configs, given);
        if (differences.length > 0) throw configMismatch(groupId, differences);
        this.metaCache.set(groupId, { meta, readAtMs: this.clock.now() });
        return { meta, created: false };
      }
      const configs = { ...DEFAULT_SHARE_GROUP_CONFIGS, ...given };
      if (configs.deadLetterTopic !== null) {
        await this.engine.topics.get(configs.deadLetterTopic).catch((error: unknown) => {
          if (error instanceof NotFoundError)
            throw new NotFoundError(
              `dead-letter topic not found: ${configs.deadLetterTopic} (create it before the share group)`,
              { code: "UNKNOWN_TOPIC_OR_PARTITION" },
            );
          throw error;
        });
      }
      const meta: ShareGroupMeta = {
        uid: randomUUID(),
        createdAtMs: this.clock.now(),
        memberCount: 0,
        configs,
      };
      try {
        await this.metadata.transactWrite([
          {
            kind: "put",
            item: { ...shareGroupMetaKey(groupId), ...metaAttributes(meta) },
            condition: cond.notExists("pk"),
          },
          { kind: "put", item: { ...shareGroupListKey(groupId), createdAtMs: meta.createdAtMs } },
        ]);
        this.metaCache.set(groupId, { meta, readAtMs: this.clock.now() });
        return { meta, created: true };
      } catch (error) {
        // Created by someone else meanwhile: check against theirs.
        if (error instanceof ConflictError && attempt < ATTEMPTS_MAX) continue;
        throw error;
      }
    }
  }

  /** The member, if its session has not ended; renewed once half of it has passed. */
  private async liveMember(groupId: string, memberId: string): Promise<ShareMember> {
    for (let attempt = 1; ; attempt++) {
      const item = await this.metadata.get(shareMemberKey(groupId, memberId));
      if (!item) {
        // Tell a missing group from a missing member.
        await this.meta(groupId);
        throw unknownShareMember(groupId, memberId);
      }
      const member = memberFromItem(item);
      const nowMs = this.clock.now();
      if (member.sessionDeadlineMs < nowMs) {
        await this.removeMember(groupId, memberId, member.sessionDeadlineMs, false);
        throw unknownShareMember(groupId, memberId, "missed its session timeout and is no longer a member");
      }
      if (member.sessionDeadlineMs - nowMs >= member.sessionTimeoutMs / 2) return member;
      const sessionDeadlineMs = nowMs + member.sessionTimeoutMs;
      try {
        await this.metadata.update(
          shareMemberKey(groupId, memberId),
          { set: { sessionDeadlineMs } },
          { condition: cond.eq("sessionDeadlineMs", member.sessionDeadlineMs) },
        );
        return { ...member, sessionDeadlineMs };
      } catch (error) {
        // Renewed (or removed) by a concurrent call: look again.
        if (error instanceof ConflictError && attempt < ATTEMPTS_MAX) continue;
        throw error;
      }
    }
  }

  /** Deletes a member item as it was seen and lowers the count; someone else doing it first is fine. */
  private async removeMember(
    groupId: string,
    memberId: string,
    seenDeadlineMs: number,
    leaving: boolean,
  ): Promise<void> {
    try {
      await this.metadata.transactWrite([
        {
          kind: "delete",
          key: shareMemberKey(groupId, memberId),
          condition: leaving ? cond.exists("pk") : cond.eq("sessionDeadlineMs", seenDeadlineMs),
        },
        {
          kind: "update",
          key: shareGroupMetaKey(groupId),
          changes: { add: { memberCount: -1 } },
          condition: cond.exists("pk"),
        },
      ]);
    } catch (error) {
      if (!(error instanceof TransactionCanceledError)) throw error;
    }
  }

  /** Members and topics: one query of the group's `pk`. */
  private async groupItems(groupId: string): Promise<{ members: ShareMember[]; topics: string[] }> {
    const members: ShareMember[] = [];
    const topics: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: shareGroupPk(groupId), cursor });
      for (const item of page.items) {
        if (item.sk.startsWith(MEMBER_PREFIX)) members.push(memberFromItem(item));
        else if (item.sk.startsWith(TOPIC_PREFIX)) topics.push(item.sk.slice(TOPIC_PREFIX.length));
      }
      cursor = page.cursor;
    } while (cursor);
    return { members, topics: topics.sort() };
  }

  /** The share-partitions of the topics that exist now (a deleted topic has none). */
  private async sharePartitions(groupId: string, topics: string[]): Promise<SharePartition[]> {
    const partitions: SharePartition[] = [];
    for (const topic of topics) {
      let found: Awaited<ReturnType<Engine["topics"]["get"]>>;
      try {
        found = await this.engine.topics.get(topic);
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      for (let partition = 0; partition < found.partitions; partition++)
        partitions.push({ groupId, topic, topicId: found.topicId, partition });
    }
    return partitions;
  }

  private async sharePartition(
    groupId: string,
    topic: string,
    partition: number,
  ): Promise<SharePartition | undefined> {
    try {
      let found = await this.engine.topics.get(topic);
      if (partition >= found.partitions) found = await this.engine.topics.describe(topic);
      return partition < found.partitions ? { groupId, topic, topicId: found.topicId, partition } : undefined;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** Creates the windows of a topic's share-partitions that have none, starting at `auto.offset.reset`. */
  private async initializeWindows(
    groupId: string,
    topic: string,
    topicId: string,
    partitions: number,
    configs: ShareGroupConfigs,
  ): Promise<void> {
    const nowMs = this.clock.now();
    for (let partition = 0; partition < partitions; partition++) {
      const key = windowStateKey(groupId, topicId, partition);
      if (await this.metadata.get(key)) continue;
      const offsets = await this.engine.partitionOffsets(topic, partition);
      const start = configs.autoOffsetReset === "earliest" ? offsets.logStartOffset : offsets.highWatermark;
      try {
        await this.metadata.put(
          {
            ...key,
            groupId,
            topic,
            topicId,
            partition,
            startOffset: start,
            endOffset: start,
            epoch: 1,
            version: 1,
            writtenBy: "",
            writtenAtMs: nowMs,
          },
          { condition: cond.notExists("pk") },
        );
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  /** Queues the want on its share-partition; it goes with the next combined acquisition there. */
  private acquireCombined(
    partition: SharePartition,
    meta: ShareGroupMeta,
    want: AcquireWant,
  ): Promise<{ records: AcquiredRecord[]; acquisition: PartitionAcquisition }> {
    const key = partitionKey(partition);
    return new Promise((resolve, reject) => {
      const waiting = this.acquiring.get(key);
      const pending: PendingAcquisition = { want, meta, resolve, reject };
      if (waiting) {
        waiting.push(pending);
        return;
      }
      this.acquiring.set(key, [pending]);
      void this.acquireRounds(partition, key);
    });
  }

  /** Runs combined acquisitions of a share-partition while wants wait there, one at a time. */
  private async acquireRounds(partition: SharePartition, key: string): Promise<void> {
    const waiting = this.acquiring.get(key)!;
    while (waiting.length > 0) {
      const round = waiting.splice(0, COMBINED_WANTS_MAX);
      const { meta } = round[0]!;
      const seen = this.scans.get(key);
      const nowMs = this.clock.now();
      const scan =
        seen === undefined ||
        seen.released ||
        nowMs - seen.atMs >= this.rescanIntervalMs ||
        (seen.nextLockDeadlineMs !== undefined && nowMs > seen.nextLockDeadlineMs);
      try {
        const acquisition = await acquireFromPartition(this.deps(), {
          partition,
          wants: round.map((pending) => pending.want),
          configs: meta.configs,
          groupUid: meta.uid,
          scan,
        });
        if (acquisition.scanned)
          this.scans.set(key, {
            atMs: nowMs,
            nextLockDeadlineMs: acquisition.nextLockDeadlineMs,
            released: false,
          });
        round.forEach((pending, index) => {
          const taken = acquisition.taken[index]!;
          if (taken instanceof Error) pending.reject(taken);
          else pending.resolve({ records: taken, acquisition });
        });
      } catch (error) {
        for (const pending of round) pending.reject(error);
      }
    }
    this.acquiring.delete(key);
  }

  /** Records were given back here: the next acquisition of the share-partition reads its window. */
  private markReleased(partition: SharePartition): void {
    const seen = this.scans.get(partitionKey(partition));
    if (seen) seen.released = true;
  }

  private wake(partition: SharePartition): void {
    for (const waiter of [...(this.waiters.get(partitionKey(partition)) ?? [])]) waiter();
  }

  /**
   * Waits until records may be there: new records past a window's end (when it has room), a lock
   * passing, a release in this process, the recheck interval (releases elsewhere), `untilMs`, or
   * the signal.
   */
  private async waitForWork(
    watched: { partition: SharePartition; acquisition: PartitionAcquisition }[],
    untilMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const nowMs = this.clock.now();
    let wakeAtMs = Math.min(untilMs, nowMs + this.recheckIntervalMs);
    for (const { acquisition } of watched) {
      if (acquisition.nextLockDeadlineMs !== undefined)
        wakeAtMs = Math.min(wakeAtMs, Math.max(nowMs, acquisition.nextLockDeadlineMs + 1));
    }
    const waitMs = Math.max(0, wakeAtMs - nowMs);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const unsubscribes: (() => void)[] = [];
    try {
      const woken = new Promise<void>((resolve) => {
        for (const { partition } of watched) {
          const key = partitionKey(partition);
          const set = this.waiters.get(key) ?? new Set();
          this.waiters.set(key, set);
          set.add(resolve);
          unsubscribes.push(() => {
            set.delete(resolve);
            if (set.size === 0) this.waiters.delete(key);
          });
        }
        stop.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      const waits: Promise<unknown>[] = [woken, this.clock.sleep(waitMs, stop.signal).catch(() => undefined)];
      for (const { partition, acquisition } of watched) {
        if (!acquisition.room) continue;
        waits.push(
          this.engine
            .waitForRecords(partition.topic, partition.partition, acquisition.endOffset, waitMs, stop.signal)
            .catch(() => undefined),
        );
      }
      await Promise.race(waits);
    } finally {
      stop.abort();
      signal?.removeEventListener("abort", onAbort);
      for (const unsubscribe of unsubscribes) unsubscribe();
    }
  }
}

interface PendingAcquisition {
  want: AcquireWant;
  meta: ShareGroupMeta;
  resolve: (result: { records: AcquiredRecord[]; acquisition: PartitionAcquisition }) => void;
  reject: (error: unknown) => void;
}

function partitionKey(partition: SharePartition): string {
  return `${partition.groupId}\u0000${partition.topicId}\u0000${partition.partition}`;
}

/** The list, starting at a position chosen by `random` (in [0, 1)). */
function rotate<T>(items: T[], random: number): T[] {
  if (items.length === 0) return items;
  const start = Math.floor(random * items.length) % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

function validateMemberId(memberId: unknown): asserts memberId is string {
  if (typeof memberId !== "string" || !MEMBER_ID_PATTERN.test(memberId)) {
    throw new InvalidArgumentError(
      `invalid member id ${JSON.stringify(memberId)}: 1 to 128 characters from a-z, A-Z, 0-9, '.', '_', ':' and '-'`,
    );
  }
}

function validateAcknowledgements(acknowledgements: Acknowledgement[]): void {
  const seen = new Set<string>();
  for (const ack of acknowledgements) {
    if (!ACKNOWLEDGE_TYPES.includes(ack.type))
      throw new InvalidArgumentError(
        `invalid acknowledgement type ${JSON.stringify(ack.type)}: expected ${ACKNOWLEDGE_TYPES.join(", ")}`,
      );
    if (!Number.isSafeInteger(ack.offset) || ack.offset < 0)
      throw new InvalidArgumentError(`invalid offset ${ack.offset}: expected an integer >= 0`);
    if (!Number.isInteger(ack.partition) || ack.partition < 0)
      throw new InvalidArgumentError(`invalid partition ${ack.partition}`);
    const key = `${ack.topic}\u0000${ack.partition}\u0000${ack.offset}`;
    if (seen.has(key))
      throw new InvalidArgumentError(
        `offset ${ack.offset} of ${ack.topic}/${ack.partition} is acknowledged twice in one request`,
      );
    seen.add(key);
  }
}

function describeWindow(
  window: Window,
  { highWatermark, logStartOffset }: { highWatermark: number; logStartOffset: number },
  nowMs: number,
  configs: ShareGroupConfigs,
  held: Map<string, number>,
): SharePartitionDescription {
  const counts = { acquired: 0, available: 0, acknowledged: 0, archived: 0, deadLettersDue: 0 };
  for (const batch of window.batches) {
    for (const slot of batch.slots) {
      let state = slot.state;
      if (state === "Q" && slot.deadlineMs < nowMs)
        state = slot.deliveries >= configs.deliveryCountLimit ? (configs.deadLetterTopic ? "L" : "X") : "A";
      if (state === "Q") {
        counts.acquired++;
        held.set(slot.member, (held.get(slot.member) ?? 0) + 1);
      } else if (state === "A") counts.available++;
      else if (state === "K") counts.acknowledged++;
      else if (state === "X") counts.archived++;
      else counts.deadLettersDue++;
    }
  }
  const state = window.state;
  // Not looked at yet: it will start where auto.offset.reset says.
  const initialStart = configs.autoOffsetReset === "earliest" ? logStartOffset : highWatermark;
  const startOffset = state?.startOffset ?? initialStart;
  const endOffset = state?.endOffset ?? initialStart;
  const unsettled = window.batches.reduce(
    (sum, batch) => sum + batch.slots.filter((slot) => !SETTLED.has(slot.state)).length,
    0,
  );
  return {
    topic: window.topic,
    partition: window.partition,
    initialized: state !== undefined,
    startOffset,
    endOffset,
    highWatermark,
    ...counts,
    lag: Math.max(0, highWatermark - endOffset) + unsettled,
  };
}
