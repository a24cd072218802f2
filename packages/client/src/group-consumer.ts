import type { SluiceClient } from "./client.js";
import { type ConsumerClock, systemClock } from "./clock.js";
import type { DataType } from "./data.js";
import { decodedPage } from "./decoded-page.js";
import { isTransientError, SluiceHttpError } from "./errors.js";
import type {
  AutoOffsetReset,
  BatchPage,
  CommittedGroupOffset,
  ConsumedRecord,
  GroupAssignor,
  GroupHeartbeatResponse,
  OffsetToCommit,
  ReadResult,
  TopicPartition,
} from "./types.js";

export type PartitionsListener = (partitions: TopicPartition[]) => void | Promise<void>;

export interface GroupConsumerOptions {
  groupId: string;
  /** The topics to subscribe to. */
  topics: string[];
  /**
   * Default true: what was yielded is committed every `autoCommitIntervalMs` (between batches),
   * when a partition is revoked, and on `close()`. With false, call `commit()`.
   */
  autoCommit?: boolean;
  /** Default 5,000 ms. */
  autoCommitIntervalMs?: number;
  /** Where a partition without a committed offset starts. Default "latest" (as in Kafka). */
  autoOffsetReset?: AutoOffsetReset;
  /** The server expires the member when it has not heard from it for this long. Server default 45 s. */
  sessionTimeoutMs?: number;
  /** Static membership (`group.instance.id`): a restart under the same id keeps the assignment. */
  instanceId?: string;
  clientId?: string;
  /** Taken when the group is created. Server default "uniform" (sticky). */
  assignor?: GroupAssignor;
  /**
   * Called (and awaited) with newly assigned partitions before they are fetched; `seek` here
   * chooses where they start.
   */
  onAssigned?: PartitionsListener;
  /**
   * Called (and awaited) with partitions the member is giving up — revoked by a rebalance, or all
   * of them on `close()` — after their last batch and before they are committed (autoCommit) and
   * released. Commit here for manual commits.
   */
  onRevoked?: PartitionsListener;
  /**
   * Called with partitions the member lost without giving them up (its session ended or it was
   * fenced): they may already be another member's, so they cannot be committed. Default: onRevoked.
   */
  onLost?: PartitionsListener;
  /** Long-poll wait of each fetch (`timeout_ms`). Default 5,000 ms. */
  fetchWaitMs?: number;
  /** Passed to each fetch as `max_bytes`. */
  maxBytes?: number;
  /**
   * Most records in one batch handed to the loop (Kafka's `max.poll.records`). Default 500. A
   * fetched page holding more is handed out in parts, decoded as they go: few record objects are
   * alive at once, which keeps garbage collection cheap at high rates.
   */
  maxPollRecords?: number;
  keyType?: DataType;
  valueType?: DataType;
  /**
   * How fetches travel. "record-batch" (the default): the stored batches as bytes, decoded here
   * (`readPartitionBatches`), which costs server and client far less than JSON. "json": the JSON
   * form (`readPartition`). The records yielded are the same either way.
   */
  readFormat?: "record-batch" | "json";
  /**
   * Ends the iteration at the next batch boundary: once aborted, the next `next()` (or the one
   * waiting) closes the consumer and finishes, so a batch being handled is never cut off from
   * its commit. (`close()` instead closes at once.)
   */
  signal?: AbortSignal;
  /** Default real time. */
  clock?: ConsumerClock;
  /** Makes each incarnation's member id. Default `crypto.randomUUID()`. */
  memberIdFactory?: () => string;
}

/** Records of one partition, in offset order. */
export interface GroupConsumerBatch {
  topicName: string;
  partitionId: number;
  records: ConsumedRecord[];
  /** The partition's high watermark when the batch was read. */
  highWatermark: number;
}

type Status = "new" | "active" | "revoking";

interface OwnedPartition {
  tp: TopicPartition;
  status: Status;
  /** onAssigned was called for it (so onRevoked / onLost will be). */
  announced: boolean;
  /** The next offset to fetch; undefined until its start is known. */
  fetchOffset: number | undefined;
  /** The position the user has reached: after the last record yielded, or where it seeked. */
  position: number | undefined;
  /** The last offset committed by this member. */
  committed: number | undefined;
  /** Bumped by seek and loss, so a fetch answering for an older state is dropped. */
  generation: number;
  fetch: AbortController | undefined;
  /** A batch fetched and waiting to be yielded. */
  /** Batches fetched and waiting to be yielded (at most BATCHES_AHEAD). */
  buffered: number;
}

/** A page fetched ahead of the loop, kept as bytes until it is handed out (then decoded). */
interface ReadyPage {
  key: string;
  generation: number;
  tp: TopicPartition;
  page: BatchPage;
  /** Where its next part starts, once a part of it was handed out. */
  from?: number;
}

const MAX_POLL_RECORDS_DEFAULT = 500;

const FENCED_CODES = new Set(["UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH"]);
const RETRY_DELAY_MS = 1_000;
/** Batches per partition fetched ahead of the loop, so a round trip overlaps the handling of a batch. */
const BATCHES_AHEAD = 2;

function tpKey(tp: TopicPartition): string {
  return `${tp.topicName}\u0000${tp.partitionId}`;
}

function isFenced(error: unknown): error is SluiceHttpError {
  return error instanceof SluiceHttpError && error.code !== undefined && FENCED_CODES.has(error.code);
}

/**
 * A member of a consumer group over Sluice's client-side group protocol (ARCHITECTURE.md,
 * "Consumer groups"). Iterate it to get batches of the partitions the group assigns it:
 *
 * ```ts
 * const consumer = client.groupConsumer({ groupId: "billing", topics: ["orders"] });
 * for await (const batch of consumer) handle(batch.records);   // break or close() to leave
 * ```
 *
 * Heartbeats run in the background at the interval the server asks for, reporting the partitions
 * the member still holds. Rebalance work — `onRevoked`, committing revoked partitions, `onAssigned`
 * and resolving start offsets — happens between batches, inside the iteration, as Kafka's poll
 * does, so a callback never runs while the loop body is handling a batch. A partition being
 * revoked is not fetched again; its buffered records are dropped (the next owner starts from the
 * committed offset). An answer that the member is unknown or fenced drops every partition
 * (`onLost`) and rejoins under a new member id.
 */
export class GroupConsumer implements AsyncIterableIterator<GroupConsumerBatch> {
  readonly groupId: string;
  private readonly client: SluiceClient;
  private readonly options: GroupConsumerOptions;
  private readonly clock: ConsumerClock;
  private readonly autoCommit: boolean;
  private readonly newMemberId: () => string;

  private memberIdValue: string;
  private memberEpoch = 0;
  private heartbeatIntervalMs = 0;
  /** Until when the last heartbeat answer vouches that this member's session lasts. */
  private sessionValidUntilMs = Number.POSITIVE_INFINITY;
  private readonly owned = new Map<string, OwnedPartition>();
  /** Partitions lost since the last reconcile, announced ones only: for onLost. */
  private lost: TopicPartition[] = [];
  private ready: ReadyPage[] = [];
  private failure: { error: unknown } | undefined;
  private started: Promise<void> | undefined;
  private heartbeatLoop: Promise<void> | undefined;
  private heartbeatSleep: AbortController | undefined;
  private heartbeatRequested = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lastAutoCommitMs: number;
  /** Serialises rebalance work, commits and close, so none runs inside another. */
  private lock: Promise<unknown> = Promise.resolve();
  private iterating: Promise<IteratorResult<GroupConsumerBatch>> | undefined;

  constructor(client: SluiceClient, options: GroupConsumerOptions) {
    if (!Array.isArray(options.topics) || options.topics.length === 0) {
      throw new TypeError("a group consumer needs at least one topic");
    }
    this.client = client;
    this.options = options;
    this.groupId = options.groupId;
    this.clock = options.clock ?? systemClock;
    this.autoCommit = options.autoCommit ?? true;
    this.newMemberId = options.memberIdFactory ?? (() => globalThis.crypto.randomUUID());
    this.memberIdValue = this.newMemberId();
    this.lastAutoCommitMs = this.clock.now();
    options.signal?.addEventListener("abort", () => this.notify(), { once: true });
  }

  /** This incarnation's member id (a new one after a rejoin). */
  get memberId(): string {
    return this.memberIdValue;
  }

  /** The partitions it may fetch now (assigned, started, not being revoked), sorted. */
  assignment(): TopicPartition[] {
    return [...this.owned.values()]
      .filter((partition) => partition.status === "active")
      .map((partition) => partition.tp)
      .sort((a, b) =>
        a.topicName === b.topicName ? a.partitionId - b.partitionId : a.topicName < b.topicName ? -1 : 1,
      );
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next batch; done once the consumer is closed. */
  next(): Promise<IteratorResult<GroupConsumerBatch>> {
    // for-await never overlaps calls, but a caller might: each waits for the one before.
    const previous = this.iterating ?? Promise.resolve(undefined);
    const current = previous.then(
      () => this.nextBatch(),
      () => this.nextBatch(),
    );
    this.iterating = current;
    return current;
  }

  /** Breaking out of `for await` lands here: the consumer closes. */
  async return(): Promise<IteratorResult<GroupConsumerBatch>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /**
   * Commits offsets as this member. Without arguments: the position of every partition it owns
   * (after the last record yielded, or where it seeked), where that moved since its last commit.
   * A partition the member no longer owns fails the whole commit with 409 FENCED_MEMBER_EPOCH
   * (`error.code`); nothing is committed then.
   */
  async commit(offsets?: OffsetToCommit[]): Promise<OffsetToCommit[]> {
    return this.locked(() => this.commitNow(offsets, false));
  }

  /**
   * Sets where an owned partition continues: the next batch of it starts at `offset`, and the
   * position `commit()` commits is `offset`. Throws when the member does not own the partition.
   */
  seek(topicName: string, partitionId: number, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`invalid offset ${offset}: expected an integer >= 0`);
    }
    const partition = this.owned.get(tpKey({ topicName, partitionId }));
    if (!partition || partition.status === "revoking") {
      throw new Error(`partition ${partitionId} of ${topicName} is not assigned to this consumer`);
    }
    this.invalidate(partition);
    partition.fetchOffset = offset;
    partition.position = offset;
    this.notify();
  }

  /**
   * Leaves the group: calls onRevoked with the partitions it owns, commits them (autoCommit),
   * sends the leave heartbeat (member epoch -1) so they move at once, and ends the iteration.
   * Safe to call more than once, and from inside the loop.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  // --- the iteration ----------------------------------------------------------------------

  private async nextBatch(): Promise<IteratorResult<GroupConsumerBatch>> {
    for (;;) {
      if (this.options.signal?.aborted) await this.close();
      if (this.closed) return { done: true, value: undefined };
      this.throwFailure();
      this.started ??= this.join();
      await this.started;
      if (this.closed) return { done: true, value: undefined };
      await this.locked(() => this.reconcile());
      if (this.closed) return { done: true, value: undefined };
      this.throwFailure();
      this.loseIfSessionOver();
      this.startFetches();
      const ready = await this.takeReady();
      if (ready) return { done: false, value: ready };
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /**
   * The next fetched page of a partition this member still reads, decoded now: pages wait as
   * bytes, so a member fetching ahead holds no record objects until it hands them out.
   */
  private async takeReady(): Promise<GroupConsumerBatch | undefined> {
    while (this.ready.length > 0) {
      const entry = this.ready.shift() as ReadyPage;
      const partition = this.owned.get(entry.key);
      const current = () =>
        !this.closed &&
        this.owned.get(entry.key) === partition &&
        partition?.generation === entry.generation &&
        partition.status === "active";
      if (!partition || partition.generation !== entry.generation) continue;
      const finished = () => {
        partition.buffered = Math.max(0, partition.buffered - 1);
      };
      if (!current()) {
        finished();
        continue;
      }
      const maxRecords = this.options.maxPollRecords ?? MAX_POLL_RECORDS_DEFAULT;
      let result: ReadResult;
      try {
        result = await entry.page.decode(maxRecords, entry.from);
      } catch (error) {
        finished();
        if (!current()) continue;
        // Damaged on the way (the server checks every CRC before it sends): read it again.
        if (isTransientError(error)) this.invalidate(partition);
        else this.fail(error);
        continue;
      }
      const last = result.records[result.records.length - 1];
      if (last && result.records.length >= maxRecords && last.offset + 1 < entry.page.nextOffset) {
        // More of this page to hand out: it stays first, so the partition's records keep their order.
        entry.from = last.offset + 1;
        this.ready.unshift(entry);
      } else finished();
      // The partition may have been revoked, lost or seeked while the page was decoded.
      if (!current()) continue;
      if (!last) continue;
      partition.position = last.offset + 1;
      return {
        topicName: entry.tp.topicName,
        partitionId: entry.tp.partitionId,
        records: result.records,
        highWatermark: result.highWatermark,
      };
    }
    return undefined;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.notify();
  }

  private locked<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.catch(() => undefined);
    return run;
  }

  // --- membership -------------------------------------------------------------------------

  private async join(): Promise<void> {
    await this.heartbeat();
    this.throwFailure();
    this.heartbeatLoop = this.runHeartbeats();
  }

  private async runHeartbeats(): Promise<void> {
    while (!this.closed) {
      if (!this.heartbeatRequested) {
        const sleep = new AbortController();
        this.heartbeatSleep = sleep;
        try {
          await this.clock.sleep(this.heartbeatIntervalMs, sleep.signal);
        } catch {
          // Woken early (a revocation finished, or close): heartbeat now, or stop.
        }
      }
      this.heartbeatRequested = false;
      if (this.closed) return;
      await this.heartbeat();
      if (this.failure) return;
    }
  }

  /** Asks the heartbeat loop to send at once (a revoked partition was released). */
  private heartbeatSoon(): void {
    this.heartbeatRequested = true;
    this.heartbeatSleep?.abort();
  }

  private async heartbeat(): Promise<void> {
    const joining = this.memberEpoch === 0;
    const memberId = this.memberIdValue;
    const sentAtMs = this.clock.now();
    const sentOwned = [...this.owned.values()].map((partition) => partition.tp);
    try {
      const answer = await this.client.groupHeartbeat(this.groupId, {
        memberId,
        memberEpoch: this.memberEpoch,
        ownedPartitions: sentOwned,
        ...(joining
          ? {
              subscribedTopicNames: this.options.topics,
              ...(this.options.instanceId === undefined ? {} : { instanceId: this.options.instanceId }),
              ...(this.options.clientId === undefined ? {} : { clientId: this.options.clientId }),
              ...(this.options.sessionTimeoutMs === undefined
                ? {}
                : { sessionTimeoutMs: this.options.sessionTimeoutMs }),
              ...(this.options.assignor === undefined ? {} : { assignor: this.options.assignor }),
            }
          : {}),
      });
      // Closed (or rejoined) while the answer travelled: it no longer describes this member.
      if (this.closed || memberId !== this.memberIdValue) return;
      this.memberEpoch = answer.memberEpoch;
      this.heartbeatIntervalMs = answer.heartbeatIntervalMs;
      // Counted from the send, which came before the server's decision: never later than its deadline.
      this.sessionValidUntilMs = sentAtMs + answer.sessionRemainingMs;
      this.apply(answer);
    } catch (error) {
      if (this.closed) return;
      if (isFenced(error)) {
        this.forgetMembership();
      } else if (isTransientError(error)) {
        this.heartbeatIntervalMs = RETRY_DELAY_MS;
      } else {
        this.fail(error);
      }
    }
    this.notify();
  }

  /** The group no longer knows this incarnation: whatever it held may be another's now. */
  private forgetMembership(): void {
    for (const partition of this.owned.values()) this.drop(partition);
    this.memberIdValue = this.newMemberId();
    this.memberEpoch = 0;
    this.heartbeatIntervalMs = 0;
    this.sessionValidUntilMs = Number.POSITIVE_INFINITY;
  }

  /**
   * No heartbeat got through for as long as the server keeps a session: the partitions may be
   * another member's by now, so nothing more of them is handed out; the member rejoins.
   */
  private loseIfSessionOver(): void {
    if (this.memberEpoch <= 0 || this.clock.now() < this.sessionValidUntilMs) return;
    this.forgetMembership();
    this.heartbeatSoon();
  }

  private apply(answer: GroupHeartbeatResponse): void {
    const assigned = new Set(answer.assignment.map(tpKey));
    const revoking = new Set(answer.revoking.map(tpKey));
    for (const partition of [...this.owned.values()]) {
      const key = tpKey(partition.tp);
      if (revoking.has(key)) {
        if (partition.status === "new") {
          // Never started: nothing to commit or announce.
          this.invalidate(partition);
          this.owned.delete(key);
        } else if (partition.status === "active") {
          // Stop fetching it now; what was buffered goes to the next owner from the committed offset.
          partition.status = "revoking";
          this.invalidate(partition);
        }
      } else if (!assigned.has(key)) {
        this.drop(partition);
      }
    }
    for (const tp of answer.assignment) {
      const key = tpKey(tp);
      if (this.owned.has(key)) continue;
      this.owned.set(key, {
        tp: { topicName: tp.topicName, partitionId: tp.partitionId },
        status: "new",
        announced: false,
        fetchOffset: undefined,
        position: undefined,
        committed: undefined,
        generation: 0,
        fetch: undefined,
        buffered: 0,
      });
    }
  }

  /** Forgets a partition the member lost without giving it up. */
  private drop(partition: OwnedPartition): void {
    this.invalidate(partition);
    this.owned.delete(tpKey(partition.tp));
    if (partition.announced) this.lost.push(partition.tp);
  }

  /** Ends the partition's in-flight fetch and forgets its buffered batch. */
  private invalidate(partition: OwnedPartition): void {
    partition.generation++;
    partition.fetch?.abort();
    partition.fetch = undefined;
    partition.buffered = 0;
    partition.fetchOffset = partition.position;
  }

  // --- rebalance work, between batches ------------------------------------------------------

  private async reconcile(): Promise<void> {
    if (this.closed) return;
    if (this.lost.length > 0) {
      const lost = this.lost.splice(0);
      await (this.options.onLost ?? this.options.onRevoked)?.(lost);
    }

    const revoking = [...this.owned.values()].filter((partition) => partition.status === "revoking");
    if (revoking.length > 0) {
      await this.options.onRevoked?.(revoking.map((partition) => partition.tp));
      if (this.autoCommit) await this.commitQuietly(revoking);
      for (const partition of revoking) {
        if (this.owned.get(tpKey(partition.tp)) === partition) this.owned.delete(tpKey(partition.tp));
      }
      this.heartbeatSoon();
    }

    if (
      this.autoCommit &&
      this.clock.now() - this.lastAutoCommitMs >= (this.options.autoCommitIntervalMs ?? 5_000)
    ) {
      this.lastAutoCommitMs = this.clock.now();
      await this.commitQuietly([...this.owned.values()].filter((partition) => partition.status === "active"));
    }

    const fresh = [...this.owned.values()].filter((partition) => partition.status === "new");
    if (fresh.length > 0) {
      for (const partition of fresh) partition.announced = true;
      await this.options.onAssigned?.(fresh.map((partition) => partition.tp));
      const unplaced = fresh.filter((partition) => partition.fetchOffset === undefined);
      const committed = unplaced.length > 0 ? await this.client.getGroupOffsets(this.groupId) : [];
      for (const partition of fresh) {
        if (this.owned.get(tpKey(partition.tp)) !== partition || partition.status !== "new") continue;
        if (partition.fetchOffset === undefined) {
          const start = await this.startOffset(partition.tp, committed);
          partition.fetchOffset = start;
          partition.position = start;
          // Only what moves from here is committed: a partition nothing was read from is left
          // as the group has it.
          partition.committed = start;
        }
        partition.status = "active";
      }
    }
  }

  private async startOffset(tp: TopicPartition, committed: CommittedGroupOffset[]): Promise<number> {
    const found = findOffset(committed, tp);
    if (found) return found.offset;
    return this.resetOffset(tp, undefined);
  }

  /** auto.offset.reset: where a partition with no (valid) committed offset starts. */
  private async resetOffset(tp: TopicPartition, outOfRange: number | undefined): Promise<number> {
    const reset = this.options.autoOffsetReset ?? "latest";
    if (reset === "none") {
      throw new Error(
        outOfRange === undefined
          ? `group ${this.groupId} has no committed offset for partition ${tp.partitionId} of ${tp.topicName} and autoOffsetReset is none`
          : `offset ${outOfRange} of partition ${tp.partitionId} of ${tp.topicName} is out of range and autoOffsetReset is none`,
      );
    }
    const info = await this.client.getPartition(tp.topicName, tp.partitionId);
    return reset === "earliest" ? info.earliestOffset : info.latestOffset;
  }

  // --- commits ------------------------------------------------------------------------------

  private async commitNow(explicit: OffsetToCommit[] | undefined, quiet: boolean): Promise<OffsetToCommit[]> {
    const offsets =
      explicit ??
      [...this.owned.values()]
        .filter(
          (partition) =>
            partition.status !== "new" &&
            partition.position !== undefined &&
            partition.position !== partition.committed,
        )
        .map((partition) => ({ ...partition.tp, offset: partition.position as number }));
    if (offsets.length === 0) return [];
    const memberId = this.memberIdValue;
    try {
      await this.client.commitGroupOffsets(this.groupId, memberId, offsets);
    } catch (error) {
      // A partition lost meanwhile: the heartbeat finds out and rejoins; auto-commits shrug.
      if (quiet && (isFenced(error) || isTransientError(error))) return [];
      throw error;
    }
    if (memberId === this.memberIdValue) {
      for (const offset of offsets) {
        const partition = this.owned.get(tpKey(offset));
        if (partition) partition.committed = offset.offset;
      }
    }
    return offsets;
  }

  private commitQuietly(partitions: OwnedPartition[]): Promise<OffsetToCommit[]> {
    const offsets = partitions
      .filter((partition) => partition.position !== undefined && partition.position !== partition.committed)
      .map((partition) => ({ ...partition.tp, offset: partition.position as number }));
    return this.commitNow(offsets, true);
  }

  // --- fetching -----------------------------------------------------------------------------

  /**
   * One fetch in flight per active partition, while fewer than BATCHES_AHEAD of its batches wait
   * to be yielded: the next batch is on its way while the loop handles this one.
   */
  private startFetches(): void {
    for (const [key, partition] of this.owned) {
      if (partition.status !== "active" || partition.fetch || partition.buffered >= BATCHES_AHEAD) continue;
      if (partition.fetchOffset === undefined) continue;
      this.fetch(key, partition);
    }
  }

  private fetch(key: string, partition: OwnedPartition): void {
    const controller = new AbortController();
    partition.fetch = controller;
    const generation = partition.generation;
    const offset = partition.fetchOffset as number;
    const current = () =>
      !this.closed && this.owned.get(key) === partition && partition.generation === generation;
    const done = () => {
      if (partition.fetch === controller) partition.fetch = undefined;
      this.notify();
    };
    const options = {
      offset,
      timeoutMs: this.options.fetchWaitMs ?? 5_000,
      ...(this.options.maxBytes === undefined ? {} : { maxBytes: this.options.maxBytes }),
      ...(this.options.keyType === undefined ? {} : { keyType: this.options.keyType }),
      ...(this.options.valueType === undefined ? {} : { valueType: this.options.valueType }),
      signal: controller.signal,
    };
    const { topicName, partitionId } = partition.tp;
    const fetched: Promise<BatchPage> =
      this.options.readFormat === "json"
        ? this.client.readPartition(topicName, partitionId, options).then(decodedPage)
        : this.client.fetchPartitionBatches(topicName, partitionId, options);
    fetched.then(
      (page) => {
        if (!current()) return done();
        partition.fetchOffset = Math.max(page.nextOffset, offset);
        if (!page.empty) {
          partition.buffered++;
          this.ready.push({ key, generation, tp: partition.tp, page });
        }
        done();
      },
      async (error: unknown) => {
        if (!current()) return done();
        try {
          if (error instanceof SluiceHttpError && error.status === 416) {
            // The offset left the log (retention) or lies past its end: auto.offset.reset.
            const start = await this.resetOffset(partition.tp, offset);
            if (current()) {
              partition.fetchOffset = start;
              partition.position = start;
            }
          } else if (isTransientError(error) || (error instanceof SluiceHttpError && error.status === 404)) {
            // A blip, or a topic going away: wait, and let the next heartbeat say what we own.
            await this.clock.sleep(RETRY_DELAY_MS, controller.signal).catch(() => undefined);
          } else {
            this.fail(error);
          }
        } catch (resetError) {
          this.fail(resetError);
        }
        done();
      },
    );
  }

  // --- leaving ------------------------------------------------------------------------------

  private async shutDown(): Promise<void> {
    const errors: unknown[] = [];
    const joined = this.started;
    // Stop the iteration and the fetches at once, then let rebalance work in progress finish.
    this.closed = true;
    this.notify();
    await this.locked(async () => {
      for (const partition of this.owned.values()) this.invalidate(partition);
      this.heartbeatSleep?.abort();
      await this.heartbeatLoop;
      if (!joined) return;
      try {
        await joined;
      } catch {
        return; // never joined: nothing to leave
      }
      const held = [...this.owned.values()].filter((partition) => partition.announced);
      try {
        if (held.length > 0) await this.options.onRevoked?.(held.map((partition) => partition.tp));
      } catch (error) {
        errors.push(error);
      }
      if (this.autoCommit) {
        try {
          await this.commitQuietly(held);
        } catch (error) {
          errors.push(error);
        }
      }
      try {
        await this.client.groupHeartbeat(this.groupId, { memberId: this.memberIdValue, memberEpoch: -1 });
      } catch (error) {
        // An unknown member has nothing to leave; anything else is worth telling.
        if (!isFenced(error)) errors.push(error);
      }
      this.owned.clear();
      this.ready = [];
    });
    if (errors.length > 0) throw errors[0];
  }
}

/** A page read as JSON, already decoded. */
function findOffset(committed: CommittedGroupOffset[], tp: TopicPartition): CommittedGroupOffset | undefined {
  return committed.find(
    (offset) => offset.topicName === tp.topicName && offset.partitionId === tp.partitionId,
  );
}
