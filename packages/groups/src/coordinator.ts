import { randomUUID } from "node:crypto";
import { backoffMs, type Clock, InvalidArgumentError } from "@sluice/core";
import {
  acquireOperation,
  isAvailable,
  type LeaseState,
  releaseOperation,
  renewOperation,
  transferOperation,
} from "@sluice/leases";
import {
  cond,
  type MetadataStore,
  TRANSACTION_OPERATIONS_MAX,
  TransactionCanceledError,
  type TransactOperation,
} from "@sluice/storage";
import type { AssignorName, TopicPartition } from "./assignors/assignor.js";
import { assignorByName, DEFAULT_ASSIGNOR } from "./assignors/index.js";
import { fencedMemberEpoch, unknownMember, validateGroupId } from "./errors.js";
import { groupListKey, memberKey, metaKey, partitionLeaseKey } from "./keys.js";
import {
  type GroupMeta,
  type GroupState,
  loadGroupState,
  type MemberRecord,
  memberAttributes,
  metaAttributes,
  samePartitions,
  sortPartitions,
  tpKey,
} from "./state.js";

/** Member epochs with a meaning of their own, as in Kafka's ConsumerGroupHeartbeat. */
export const JOIN_EPOCH = 0;
export const LEAVE_EPOCH = -1;
/** A static member going away briefly: it keeps its assignment until its session ends. */
export const STATIC_LEAVE_EPOCH = -2;

export interface HeartbeatRequest {
  groupId: string;
  /** Unique to this incarnation of the member (the client makes one, e.g. a UUID, at start). */
  memberId: string;
  /** 0 to join, -1 to leave, -2 for a static member's temporary leave, else its current epoch. */
  memberEpoch: number;
  /** Topic names; required to join, otherwise unchanged when omitted. */
  subscription?: string[];
  /**
   * The partitions the member still holds. Omitted: the member gives up revoked partitions at
   * once (a consumer the server runs itself, like a REST v2 instance).
   */
  ownedPartitions?: TopicPartition[];
  /** Static membership (`group.instance.id`): a new incarnation takes over the old one's partitions. */
  instanceId?: string;
  clientId?: string;
  sessionTimeoutMs?: number;
  /** The group's assignor, taken when the group is created. Default "uniform". */
  assignor?: AssignorName;
}

export interface HeartbeatResponse {
  memberId: string;
  memberEpoch: number;
  groupEpoch: number;
  /** When to heartbeat next: sooner while partitions are moving. */
  heartbeatIntervalMs: number;
  /** The partitions the member owns now: it may fetch them and commit their offsets. */
  assignment: TopicPartition[];
  /** Partitions it still holds that are now another member's: stop, commit, and stop reporting them. */
  revoking: TopicPartition[];
  /** Partitions of its target still held by their previous owner; they come in a later heartbeat. */
  pending: TopicPartition[];
  /**
   * How long the member's session lasts from when the coordinator decided, without another
   * heartbeat. A member that measures it from when it sent the request knows, without trusting
   * any clock but its own, when its partitions may be another's: it must stop handing out
   * records by then.
   */
  sessionRemainingMs: number;
}

export interface CoordinatorOptions {
  metadata: MetadataStore;
  clock: Clock;
  /** The partition count of a topic, 0 when it does not exist. */
  partitionCount: (topic: string) => Promise<number>;
  /** Default 45 s (Kafka's group.consumer.session.timeout.ms). */
  sessionTimeoutMs?: number;
  /**
   * Default 500 ms, so that a rebalance reaches every member within a second; a stable member's
   * heartbeat is one read. While partitions move, members are asked back after 50 ms.
   */
  heartbeatIntervalMs?: number;
}

export const SESSION_TIMEOUT_MS_DEFAULT = 45_000;
export const HEARTBEAT_INTERVAL_MS_DEFAULT = 500;
export const SESSION_TIMEOUT_MS_MIN = 1_000;
export const SESSION_TIMEOUT_MS_MAX = 30 * 60_000;
const MOVING_HEARTBEAT_MS = 50;
const ATTEMPTS_MAX = 30;
const MEMBER_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The group coordinator, run by whichever function instance receives a heartbeat (ARCHITECTURE.md,
 * "Consumer groups"): read the group's items, decide, write the decision in one transaction
 * conditioned on what was read, and on a conflict read again. It keeps no state between calls.
 */
export class GroupCoordinator {
  private readonly sessionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;

  constructor(private readonly options: CoordinatorOptions) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? SESSION_TIMEOUT_MS_DEFAULT;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT;
  }

  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    validateHeartbeat(request);
    for (let attempt = 1; ; attempt++) {
      const state = await loadGroupState(this.options.metadata, request.groupId);
      const counts = await this.partitionCounts(state, request);
      const decision = decide(state, request, this.options.clock.now(), counts, {
        sessionTimeoutMs: this.sessionTimeoutMs,
        heartbeatIntervalMs: this.heartbeatIntervalMs,
      });
      try {
        await this.write(decision.operations);
      } catch (error) {
        // Another instance changed the group between our read and our write: decide again.
        if (!(error instanceof TransactionCanceledError) || attempt >= ATTEMPTS_MAX) throw error;
        await this.options.clock.sleep(backoffMs(this.options.clock, Math.min(attempt, 6), 5, 200));
        continue;
      }
      if (decision.error) throw decision.error;
      return decision.response;
    }
  }

  private async partitionCounts(
    state: GroupState,
    request: HeartbeatRequest,
  ): Promise<Record<string, number>> {
    const topics = new Set<string>(request.subscription ?? []);
    for (const member of state.members.values()) for (const topic of member.subscription) topics.add(topic);
    const names = [...topics].sort();
    const counts = await Promise.all(names.map((topic) => this.options.partitionCount(topic)));
    return Object.fromEntries(names.map((topic, index) => [topic, counts[index]!]));
  }

  /** One transaction when it fits; lease renewals that do not fit follow, each safe on its own. */
  private async write(operations: {
    core: TransactOperation[];
    renewals: TransactOperation[];
  }): Promise<void> {
    const room = TRANSACTION_OPERATIONS_MAX - operations.core.length;
    const first = [...operations.core, ...operations.renewals.slice(0, Math.max(0, room))];
    if (first.length > 0) await this.options.metadata.transactWrite(first);
    for (
      let start = Math.max(0, room);
      start < operations.renewals.length;
      start += TRANSACTION_OPERATIONS_MAX
    ) {
      try {
        await this.options.metadata.transactWrite(
          operations.renewals.slice(start, start + TRANSACTION_OPERATIONS_MAX),
        );
      } catch (error) {
        // A renewal that fails means that lease was lost; the next heartbeat sees it.
        if (!(error instanceof TransactionCanceledError)) throw error;
      }
    }
  }
}

interface Decision {
  operations: { core: TransactOperation[]; renewals: TransactOperation[] };
  response: HeartbeatResponse;
  /** Thrown after the operations are written (the member was expired: it is removed, then told). */
  error?: Error;
}

interface DecideSettings {
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
}

/**
 * The coordinator's decision for one heartbeat, from the stored state alone: a pure function, so
 * every instance deciding from the same state decides the same.
 */
export function decide(
  state: GroupState,
  request: HeartbeatRequest,
  nowMs: number,
  partitionCounts: Record<string, number>,
  settings: DecideSettings,
): Decision {
  const { groupId } = request;
  const core: TransactOperation[] = [];
  const renewals: TransactOperation[] = [];
  const previousMeta = state.meta;
  const meta: GroupMeta = previousMeta
    ? { ...previousMeta, target: { ...previousMeta.target } }
    : {
        uid: randomUUID(),
        groupEpoch: 0,
        version: 0,
        memberCount: 0,
        assignor: request.assignor ?? DEFAULT_ASSIGNOR,
        createdAtMs: nowMs,
        target: {},
        partitionCounts: {},
      };
  const members = new Map(state.members);
  let structural = false;
  let recomputed = false;
  let metaChanged = !previousMeta;

  // Members whose session ended are removed by whoever sees it first; their leases have expired
  // with their sessions, so they need no write of their own.
  for (const member of state.members.values()) {
    if (member.sessionDeadlineMs >= nowMs) continue;
    members.delete(member.memberId);
    structural = true;
    // The requester rejoining under the same id: its item is replaced below, not deleted.
    if (member.memberId === request.memberId && request.memberEpoch === JOIN_EPOCH) continue;
    core.push({
      kind: "delete",
      key: memberKey(groupId, member.memberId),
      condition: cond.eq("sessionDeadlineMs", member.sessionDeadlineMs),
    });
  }

  const existing = state.members.get(request.memberId);
  const expired = existing !== undefined && !members.has(request.memberId);
  const emptyResponse = (memberEpoch: number): HeartbeatResponse => ({
    memberId: request.memberId,
    memberEpoch,
    groupEpoch: meta.groupEpoch,
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    assignment: [],
    revoking: [],
    pending: [],
    sessionRemainingMs: 0,
  });

  // Leaving: delete the member and give its partitions back at once.
  if (request.memberEpoch === LEAVE_EPOCH || request.memberEpoch === STATIC_LEAVE_EPOCH) {
    if (!existing || expired) {
      return finish(emptyResponse(request.memberEpoch));
    }
    if (request.memberEpoch === STATIC_LEAVE_EPOCH && existing.instanceId !== undefined) {
      // Kept until its session ends, so the next incarnation takes its partitions without a rebalance.
      return finish(emptyResponse(STATIC_LEAVE_EPOCH));
    }
    members.delete(existing.memberId);
    core.push({
      kind: "delete",
      key: memberKey(groupId, existing.memberId),
      condition: cond.eq("memberEpoch", existing.memberEpoch),
    });
    for (const lease of state.leases.values()) {
      if (lease.owner === existing.memberId)
        core.push(releaseOperation(lease as LeaseState & { owner: string }));
    }
    structural = true;
    return finish(emptyResponse(LEAVE_EPOCH));
  }

  if (request.memberEpoch !== JOIN_EPOCH) {
    if (!existing)
      return finish(emptyResponse(request.memberEpoch), unknownMember(groupId, request.memberId));
    if (expired) {
      return finish(
        emptyResponse(request.memberEpoch),
        unknownMember(groupId, request.memberId, "missed its session timeout and is no longer a member"),
      );
    }
    if (request.memberEpoch !== existing.memberEpoch && request.memberEpoch !== existing.previousEpoch) {
      return finish(
        emptyResponse(request.memberEpoch),
        fencedMemberEpoch(groupId, request.memberId, request.memberEpoch, existing.memberEpoch),
      );
    }
  }

  const sessionTimeoutMs =
    request.sessionTimeoutMs ?? existing?.sessionTimeoutMs ?? settings.sessionTimeoutMs;
  const joining = !existing || expired;
  let member: MemberRecord;
  if (joining) {
    if (!request.subscription) {
      throw new InvalidArgumentError(
        `member ${request.memberId} must name the topics it subscribes to when it joins`,
      );
    }
    member = {
      memberId: request.memberId,
      memberEpoch: 0,
      previousEpoch: 0,
      ...(request.instanceId === undefined ? {} : { instanceId: request.instanceId }),
      ...(request.clientId === undefined ? {} : { clientId: request.clientId }),
      subscription: [...new Set(request.subscription)].sort(),
      sessionTimeoutMs,
      sessionDeadlineMs: nowMs + sessionTimeoutMs,
      joinedAtMs: nowMs,
    };
  } else {
    member = { ...existing! };
    if (request.subscription) {
      const subscription = [...new Set(request.subscription)].sort();
      if (subscription.join("\u0000") !== member.subscription.join("\u0000")) {
        member.subscription = subscription;
        structural = true;
      }
    }
    member.sessionTimeoutMs = sessionTimeoutMs;
  }

  // Static membership: a new incarnation under the same instance id replaces the old one and
  // takes over its target and its leases, without a rebalance.
  const predecessor =
    joining && request.instanceId !== undefined
      ? [...members.values()].find(
          (other) => other.instanceId === request.instanceId && other.memberId !== member.memberId,
        )
      : undefined;
  const transfers = new Map<string, LeaseState & { owner: string }>();
  if (predecessor) {
    members.delete(predecessor.memberId);
    core.push({
      kind: "delete",
      key: memberKey(groupId, predecessor.memberId),
      condition: cond.eq("memberEpoch", predecessor.memberEpoch),
    });
    meta.target[member.memberId] = meta.target[predecessor.memberId] ?? [];
    delete meta.target[predecessor.memberId];
    for (const [key, lease] of state.leases) {
      if (lease.owner === predecessor.memberId) transfers.set(key, lease as LeaseState & { owner: string });
    }
    if (member.subscription.join("\u0000") !== predecessor.subscription.join("\u0000")) structural = true;
    metaChanged = true;
  } else if (joining) {
    structural = true;
  }
  members.set(member.memberId, member);

  // A subscribed topic that grew (or appeared, or went) changes the target too.
  const subscribed = new Set<string>();
  for (const other of members.values()) for (const topic of other.subscription) subscribed.add(topic);
  const counts: Record<string, number> = {};
  for (const topic of [...subscribed].sort()) counts[topic] = partitionCounts[topic] ?? 0;
  if (!sameCounts(counts, meta.partitionCounts)) structural = true;
  if (structural) recompute();
  meta.memberCount = members.size;

  // Reconcile this member alone: revoke before assign.
  const target = meta.target[member.memberId] ?? [];
  const targetKeys = new Set(target.map((tp) => tpKey(tp.topic, tp.partition)));
  const held = [...state.leases.entries()].filter(([, lease]) => lease.owner === member.memberId);
  const reported = request.ownedPartitions
    ? new Set(request.ownedPartitions.map((tp) => tpKey(tp.topic, tp.partition)))
    : undefined;
  const kept: (LeaseState & TopicPartition)[] = [];
  const releases: TransactOperation[] = [];
  for (const [key, lease] of held) {
    // Not reported but in its target: it keeps it (and starts it again from its committed offset).
    const stillHeld = targetKeys.has(key) || (reported?.has(key) ?? false);
    if (stillHeld) kept.push(lease);
    else releases.push(releaseOperation(lease as LeaseState & { owner: string }));
  }
  const keptKeys = new Set(kept.map((lease) => tpKey(lease.topic, lease.partition)));
  const assignment: TopicPartition[] = [];
  const revoking: TopicPartition[] = [];
  for (const lease of kept) {
    const tp = { topic: lease.topic, partition: lease.partition };
    if (targetKeys.has(tpKey(tp.topic, tp.partition))) assignment.push(tp);
    else revoking.push(tp);
  }
  const deadlineMs = nowMs + member.sessionTimeoutMs;
  const acquisitions: TransactOperation[] = [];
  const pending: TopicPartition[] = [];
  for (const tp of target) {
    const key = tpKey(tp.topic, tp.partition);
    if (keptKeys.has(key)) continue;
    const transfer = transfers.get(key);
    if (transfer) {
      acquisitions.push(transferOperation(transfer, member.memberId, deadlineMs).operation);
      assignment.push(tp);
      continue;
    }
    const lease = state.leases.get(key);
    // A lease of a member removed above has expired with its session, so it is available here.
    if (isAvailable(lease, member.memberId, nowMs)) {
      acquisitions.push(
        acquireOperation(
          partitionLeaseKey(groupId, tp.topic, tp.partition),
          lease,
          member.memberId,
          deadlineMs,
          nowMs,
        ).operation,
      );
      assignment.push(tp);
    } else {
      pending.push(tp);
    }
  }
  // The predecessor's partitions outside its successor's target are given back.
  for (const [key, transfer] of transfers)
    if (!targetKeys.has(key)) releases.push(releaseOperation(transfer));
  // Acquisitions beyond one transaction wait for the next heartbeat (asked for soon, below).
  const room = TRANSACTION_OPERATIONS_MAX - core.length - releases.length - 3;
  const deferred = acquisitions.length > room ? acquisitions.splice(Math.max(0, room)) : [];
  if (deferred.length > 0) {
    const taken = assignment.splice(assignment.length - deferred.length, deferred.length);
    pending.push(...taken);
  }

  const reconciled = pending.length === 0 && revoking.length === 0 && samePartitions(assignment, target);
  let memberChanged = joining || structural || releases.length > 0 || acquisitions.length > 0;
  if (reconciled && member.memberEpoch !== meta.groupEpoch) {
    member.previousEpoch = member.memberEpoch;
    member.memberEpoch = meta.groupEpoch;
    memberChanged = true;
  } else if (joining) {
    member.memberEpoch = meta.groupEpoch;
    member.previousEpoch = meta.groupEpoch;
  }
  // Sessions (and the leases riding on them) are renewed once half of the session has gone, so a
  // quiet, stable member's heartbeat is a read and nothing more.
  const renewDue = member.sessionDeadlineMs - nowMs < member.sessionTimeoutMs / 2;
  if (memberChanged || renewDue) {
    member.sessionDeadlineMs = deadlineMs;
    core.push({
      kind: "put",
      item: { ...memberKey(groupId, member.memberId), ...memberAttributes(member) },
      condition:
        joining && !predecessor
          ? cond.or(cond.notExists("pk"), cond.compare("sessionDeadlineMs", "<", nowMs))
          : joining
            ? cond.notExists("pk")
            : cond.and(
                cond.eq("memberEpoch", existing!.memberEpoch),
                cond.eq("sessionDeadlineMs", existing!.sessionDeadlineMs),
              ),
    });
    for (const lease of kept) {
      renewals.push(renewOperation({ ...lease, owner: member.memberId }, deadlineMs).operation);
    }
  }
  core.push(...releases, ...acquisitions);
  const response: HeartbeatResponse = {
    memberId: member.memberId,
    memberEpoch: member.memberEpoch,
    groupEpoch: meta.groupEpoch,
    heartbeatIntervalMs:
      pending.length > 0 || revoking.length > 0 || !reconciled
        ? Math.min(MOVING_HEARTBEAT_MS, settings.heartbeatIntervalMs)
        : settings.heartbeatIntervalMs,
    assignment: sortPartitions(assignment),
    revoking: sortPartitions(revoking),
    pending: sortPartitions(pending),
    sessionRemainingMs: Math.max(0, member.sessionDeadlineMs - nowMs),
  };
  return finish(response);

  function finish(response: HeartbeatResponse, error?: Error): Decision {
    meta.memberCount = members.size;
    // A leave or an expiry changes the target even when no member is reconciled here.
    if (structural && !recomputed) {
      recompute();
      response.groupEpoch = meta.groupEpoch;
    }
    const metaItem = { ...metaKey(groupId), ...metaAttributes({ ...meta, version: meta.version + 1 }) };
    if (!previousMeta) {
      if (core.length === 0 && !structural)
        return { operations: { core, renewals }, response, ...(error ? { error } : {}) };
      core.unshift({ kind: "put", item: metaItem, condition: cond.notExists("pk") });
      core.push({ kind: "put", item: { ...groupListKey(groupId), createdAtMs: meta.createdAtMs } });
    } else if (metaChanged || structural) {
      core.unshift({ kind: "put", item: metaItem, condition: cond.eq("version", previousMeta.version) });
    } else if (core.length > 0) {
      core.unshift({
        kind: "condition_check",
        key: metaKey(groupId),
        condition: cond.eq("version", previousMeta.version),
      });
    }
    return { operations: { core, renewals }, response, ...(error ? { error } : {}) };
  }

  function recompute(): void {
    recomputed = true;
    const assignor = assignorByName(meta.assignor);
    const subscribedTopics = new Set<string>();
    for (const other of members.values()) for (const topic of other.subscription) subscribedTopics.add(topic);
    const counts: Record<string, number> = {};
    for (const topic of [...subscribedTopics].sort()) counts[topic] = partitionCounts[topic] ?? 0;
    const previous: Record<string, TopicPartition[]> = {};
    for (const id of members.keys()) previous[id] = meta.target[id] ?? [];
    meta.target = assignor.assign({
      members: [...members.values()].map((other) => ({
        memberId: other.memberId,
        topics: other.subscription,
        ...(other.instanceId === undefined ? {} : { instanceId: other.instanceId }),
      })),
      partitionCounts: counts,
      previous,
    });
    meta.partitionCounts = counts;
    meta.groupEpoch += 1;
  }
}

/** Stored maps come back in any key order (DynamoDB's do): compare entries, not JSON. */
function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((topic) => b[topic] === a[topic]);
}

function validateHeartbeat(request: HeartbeatRequest): void {
  validateGroupId(request.groupId);
  if (typeof request.memberId !== "string" || !MEMBER_ID_PATTERN.test(request.memberId)) {
    throw new InvalidArgumentError(
      `invalid member id ${JSON.stringify(request.memberId)}: 1 to 128 characters from a-z, A-Z, 0-9, '.', '_', ':' and '-'`,
    );
  }
  if (!Number.isInteger(request.memberEpoch) || request.memberEpoch < STATIC_LEAVE_EPOCH) {
    throw new InvalidArgumentError(`invalid member epoch ${request.memberEpoch}`);
  }
  if (request.subscription !== undefined) {
    if (
      !Array.isArray(request.subscription) ||
      request.subscription.some((topic) => typeof topic !== "string")
    ) {
      throw new InvalidArgumentError("a subscription is a list of topic names");
    }
  }
  if (
    request.sessionTimeoutMs !== undefined &&
    (!Number.isInteger(request.sessionTimeoutMs) ||
      request.sessionTimeoutMs < SESSION_TIMEOUT_MS_MIN ||
      request.sessionTimeoutMs > SESSION_TIMEOUT_MS_MAX)
  ) {
    throw new InvalidArgumentError(
      `invalid session timeout ${request.sessionTimeoutMs} ms: expected ${SESSION_TIMEOUT_MS_MIN} to ${SESSION_TIMEOUT_MS_MAX}`,
    );
  }
  if (request.assignor !== undefined) assignorByName(request.assignor);
}
