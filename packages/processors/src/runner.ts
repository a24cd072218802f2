import {
  type Clock,
  ConflictError,
  FencedError,
  NotFoundError,
  partitionForKey,
  type Timer,
  UnavailableError,
} from "@sluice/core";
import {
  type ConsumedRecord,
  type Engine,
  OffsetOutOfRangeError,
  type ProduceRecord,
  type Topic,
  TransactionTooLargeError,
} from "@sluice/engine";
import { LEASE_EPOCH, LEASE_OWNER, type Lease, LeaseHeldError, Leases } from "@sluice/leases";
import type { ProcessorBatch } from "@sluice/processor-sdk";
import { type ItemKey, type MetadataStore, TRANSACTION_OPERATIONS_MAX } from "@sluice/storage";
import { deadLetter } from "./dead-letter.js";
import { compileFilter } from "./filter.js";
import type { HandlerInvoker } from "./handlers/invoker.js";
import type { HandlerResult } from "./handlers/result.js";
import { progressKey } from "./keys.js";
import { OffsetSet } from "./offset-set.js";
import { type RoutedOutput, routeOutput } from "./outputs.js";
import {
  type LastError,
  newCommitId,
  type Progress,
  type ProgressChange,
  progressFromItem,
  progressUpdate,
  type RetryState,
} from "./progress.js";
import { isSpent, retryDelayMs } from "./retry.js";
import type { ProcessorStore, StoredProcessor } from "./store.js";
import type { Turns } from "./turns.js";

export interface RunnerOptions {
  engine: Engine;
  metadata: MetadataStore;
  clock: Clock;
  handlers: HandlerInvoker;
  store: ProcessorStore;
  /** Unique to this process incarnation: the lease owner. */
  runnerId: string;
  /** Default 30 s. */
  leaseTtlMs?: number;
  /** How long a drained runner keeps its lease waiting for more records. Default 0. */
  lingerMs?: number;
  /** Longest wait for a due retry while holding the lease; later ones are left to the sweep. Default 60 s. */
  retryHoldMs?: number;
  /** How often a runner reads its definition again (pause, delete, changes). Default 1 s. */
  definitionRefreshMs?: number;
  /**
   * Records above the checkpoint a runner keeps in hand at most. Default twice a batch per lane,
   * within 1,000 and LOOKAHEAD_RECORDS_MAX.
   */
  lookaheadRecords?: number;
  /** Taken before each step of the loop, so a process's other work is not starved (turns.ts). */
  turns?: Turns;
  events?: ProcessorEvents;
}

/** What a runner tells whoever watches (metrics, logs); libraries log nothing themselves. */
export interface ProcessorEvents {
  committed?(event: CommittedEvent): void;
  recordFailed?(event: RecordFailedEvent): void;
  handlerCalled?(event: HandlerCalledEvent): void;
  runnerError?(event: { processor: string; topic: string; partition: number; error: unknown }): void;
}

export interface CommittedEvent {
  processor: string;
  topic: string;
  partition: number;
  processed: number;
  deadLettered: number;
  filtered: number;
  outputs: number;
  /** The partition's new checkpoint; -1 from a shared processor, which has none. */
  checkpoint: number;
  /** The source records' timestamps: produce-to-output latency for benchmarks. */
  doneTimestamps: number[];
}

export interface HandlerCalledEvent {
  processor: string;
  topic: string;
  partition: number;
  records: number;
  durationMs: number;
  /** The whole batch failed, or this many of its records were named as failed. */
  failed: boolean;
  namedFailures: number;
  /** The batch's last record's age when it was handed over (Lambda's IteratorAge). */
  iteratorAgeMs: number;
}

export interface RecordFailedEvent {
  processor: string;
  topic: string;
  partition: number;
  offset: number;
  attempts: number;
  error: string;
  /** Dead-lettered now. */
  spent: boolean;
}

export type RunOutcome =
  /** Another runner holds the lease. */
  | "held"
  /** No lag left. */
  | "drained"
  /** Nothing to do but retries due later than the runner waits for them: the sweep comes back. */
  | "waiting"
  /** Asked to stop, or its deadline came. */
  | "stopped"
  | "paused"
  | "deleted"
  /** Its definition changed: run again with the new one. */
  | "changed"
  /** The lease was taken; someone else carries on. */
  | "fenced"
  /** The source topic does not exist. */
  | "no-topic"
  /** The store kept failing; the lease is left to expire. */
  | "failed";

export interface RunResult {
  outcome: RunOutcome;
  /** The next offset the runner would have fetched: a wake-up above it means more work. */
  fetchedTo: number;
}

/** Records above the checkpoint a runner keeps in hand; bounds `pending` in the progress item. */
export const LOOKAHEAD_RECORDS_MAX = 20_000;
const LOOKAHEAD_RECORDS_MIN = 1_000;
const FETCH_RECORDS_MAX = 10_000;
const STORE_FAILURES_MAX = 5;

interface Blocked {
  lane: number;
  /** The key's first not-done record. */
  head: number;
  /** Failures of `head` so far; 0 for a key being narrowed down after a whole batch failed. */
  attempts: number;
  firstFailedAtMs: number;
  nextAttemptAtMs: number;
  error: string;
  /** Records in its next batch (halved by bisection). */
  limit: number;
  /** Its batches go alone until its head passes this offset. */
  suspectEnd: number;
}

interface Lane {
  /**
   * Records waiting to be handed to the handler, ascending by offset. The lanes hold the records
   * in hand themselves: no per-offset map to insert into when fetched and delete from when done.
   */
  queue: ConsumedRecord[];
  busy: boolean;
}

interface Batch {
  lane: number;
  records: ConsumedRecord[];
  /** The key whose retry (or narrowing down) this batch is, when it holds that key alone. */
  solo: string | undefined;
  attempt: number;
}

/** A lane's result, waiting to be committed. */
interface LaneResult {
  done: number[];
  doneTimestamps: number[];
  outputs: RoutedOutput[];
  deadLetters: ProduceRecord[];
  /** Retry state to store (by head offset), or null to remove. */
  retryChanges: Map<number, RetryState | null>;
  processed: number;
  deadLettered: number;
  lastError: LastError | undefined;
  /** The partitions its outputs and dead letters go to, by topic. */
  touched: Map<string, Set<number>>;
}

type Outcome = { ok: true; result: HandlerResult } | { ok: false; error: string };

/**
 * Runs one processor on one source partition while it holds the partition's lease
 * (ARCHITECTURE.md, "Processors", "The runner"): fetch from the checkpoint, hand batches to the
 * handler in lanes, commit outputs, dead letters and progress in one transaction each, retry and
 * dead-letter failures, until no lag is left. The same code runs in the dispatcher Lambda and in
 * the local server; only what wakes it differs.
 */
export class PartitionRunner {
  private readonly clock: Clock;
  private readonly leaseTtlMs: number;
  private readonly lingerMs: number;
  private readonly retryHoldMs: number;
  private readonly definitionRefreshMs: number;
  private readonly key: ItemKey;
  private readonly leases: Leases;
  private readonly label: { processor: string; topic: string; partition: number };

  private definition: StoredProcessor;
  private filter: ReturnType<typeof compileFilter>;
  private lease: Lease | undefined;
  private source: Topic | undefined;
  private outputTopics = new Map<string, Topic | undefined>();
  private deadLetterTopic: Topic | undefined;
  private definitionReadAtMs = 0;

  // What the store says (as of the last commit this runner made, or its last read).
  private persisted!: Progress;
  /** Done in the store before this runner's first commit: below `loadedFrontier` and not pending. */
  private loadedFrontier = 0;
  private loadedPending = new Set<number>();

  // In hand.
  private generation = 0;
  private fetchCursor = 0;
  private highWatermark = 0;
  private fetchWanted = true;
  /** Not done in the store: fetched and waiting, in flight, or handled but not yet committed. */
  private readonly outstanding = new OffsetSet();
  /** The highest offset done (committed, or filtered) in this run: the frontier needs go no further. */
  private highestDone = -1;
  private readonly queuedAtMs = new Map<number, number>();
  private lanes: Lane[] = [];
  private readonly blocked = new Map<string, Blocked>();
  /** Blocked keys whose retry is in flight: beside the lanes, so a failing key never takes a lane. */
  private readonly retrying = new Set<string>();
  private filteredUncommitted = 0;
  private readonly results: LaneResult[] = [];
  private readonly calls = new Map<number, { controller: AbortController; done: Promise<void> }>();
  private callCounter = 0;
  private committing: Promise<void> | undefined;
  private commitFailure: unknown;
  private storeFailures = 0;

  // The loop's wake-ups.
  private kick: (() => void) | undefined;
  private parkedWaiters: (() => void)[] = [];
  private ended = false;
  private kicked = false;
  private stopRequested = false;
  private deadlineMs = Number.POSITIVE_INFINITY;

  constructor(
    private readonly options: RunnerOptions,
    definition: StoredProcessor,
    private readonly topicName: string,
    private readonly partition: number,
  ) {
    this.clock = options.clock;
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.lingerMs = options.lingerMs ?? 0;
    this.retryHoldMs = options.retryHoldMs ?? 60_000;
    this.definitionRefreshMs = options.definitionRefreshMs ?? 1_000;
    this.definition = definition;
    this.filter = compileFilter(definition.spec.filter);
    this.key = progressKey(definition.spec.name, topicName, partition);
    this.leases = new Leases(options.metadata, options.clock);
    this.label = { processor: definition.spec.name, topic: topicName, partition };
  }

  /** New records may be there: fetch again (a commit to the source partition, a sweep). */
  wake(): void {
    this.fetchWanted = true;
    this.signal();
  }

  /** Finish what is in flight, commit it, release the lease and return. */
  stop(): void {
    this.stopRequested = true;
    this.signal();
  }

  async run(options: { deadlineMs?: number } = {}): Promise<RunResult> {
    this.deadlineMs = options.deadlineMs ?? Number.POSITIVE_INFINITY;
    const early = await this.beforeAcquiring().catch((error: unknown) => {
      this.ended = true;
      this.parked();
      throw error;
    });
    if (early) {
      this.ended = true;
      this.parked();
      return { outcome: early, fetchedTo: 0 };
    }
    let outcome: RunOutcome;
    try {
      outcome = await this.start();
      if (outcome === "drained") outcome = await this.loop();
    } catch (error) {
      this.options.events?.runnerError?.({ ...this.label, error });
      outcome = error instanceof FencedError ? "fenced" : "failed";
    } finally {
      await this.abortCalls();
    }
    // Released even after a failure (best effort): the next runner need not wait for its expiry.
    if (outcome !== "fenced" && this.lease) await this.leases.release(this.lease).catch(() => undefined);
    this.ended = true;
    this.parked();
    return { outcome, fetchedTo: this.fetchCursor };
  }

  /** The definition as it is now, then the lease; an outcome when the run ends before it starts. */
  private async beforeAcquiring(): Promise<RunOutcome | undefined> {
    const current = await this.options.store.get(this.definition.spec.name);
    if (!current || current.uid !== this.definition.uid) return "deleted";
    if (current.state === "paused") return "paused";
    if (current.version !== this.definition.version) return "changed";
    try {
      this.lease = await this.leases.acquire(this.key, this.options.runnerId, this.leaseTtlMs);
    } catch (error) {
      if (error instanceof LeaseHeldError) return "held";
      throw error;
    }
    return undefined;
  }

  // ---- start: the source topic, the stored progress, its first commit if it has none ----

  private async start(): Promise<RunOutcome> {
    try {
      this.source = await this.options.engine.describeTopic(this.topicName);
    } catch (error) {
      if (error instanceof NotFoundError) return "no-topic";
      throw error;
    }
    if (this.partition >= this.source.partitions) return "no-topic";
    await this.refreshTopics();
    await this.load();
    if (this.persisted.uid !== this.definition.uid || this.persisted.topicId !== this.source.topicId) {
      await this.initialise();
    }
    this.definitionReadAtMs = this.clock.now();
    return "drained";
  }

  private async load(): Promise<void> {
    const item = await this.options.metadata.get(this.key);
    if (!item || item[LEASE_OWNER] !== this.lease!.owner || Number(item[LEASE_EPOCH]) !== this.lease!.epoch) {
      throw new FencedError(`lease of ${this.key.pk}/${this.key.sk} was taken`);
    }
    this.persisted = progressFromItem(item);
    this.rebuild();
  }

  /** Everything in hand is dropped and rebuilt from `persisted`. */
  private rebuild(): void {
    this.generation++;
    this.loadedFrontier = this.persisted.frontier;
    this.loadedPending = new Set(this.persisted.pending);
    this.fetchCursor = this.persisted.checkpoint;
    this.fetchWanted = true;
    this.outstanding.clear();
    for (const offset of this.persisted.pending) this.outstanding.add(offset);
    this.highestDone = this.persisted.frontier - 1;
    this.queuedAtMs.clear();
    this.lanes = Array.from({ length: this.laneCount() }, () => ({ queue: [], busy: false }));
    this.blocked.clear();
    this.retrying.clear();
    this.filteredUncommitted = 0;
    this.results.length = 0;
  }

  private laneCount(): number {
    const ordering = this.definition.spec.ordering;
    return ordering.kind === "key" ? ordering.parallelism : 1;
  }

  /** Where a processor starts on a partition that has no progress of this incarnation yet. */
  private async initialise(): Promise<void> {
    const engine = this.options.engine;
    const offsets = await engine.partitionOffsets(this.topicName, this.partition);
    const spec = this.definition.spec;
    const createdWith = this.definition.partitionCounts[this.topicName];
    let start: number;
    const recreatedTopic =
      this.persisted.uid === this.definition.uid && this.persisted.topicId !== this.source!.topicId;
    if (recreatedTopic || (createdWith !== undefined && this.partition >= createdWith)) {
      // A partition (or topic) that appeared after the processor was created: all of it is new.
      start = offsets.logStartOffset;
    } else if (spec.startingPosition.kind === "earliest") {
      start = offsets.logStartOffset;
    } else if (spec.startingPosition.kind === "latest") {
      start = offsets.highWatermark;
    } else {
      start =
        (await engine.offsetForTimestamp(
          this.topicName,
          this.partition,
          spec.startingPosition.timestampMs,
        )) ?? offsets.highWatermark;
    }
    await this.commitNow(
      [],
      {
        uid: this.definition.uid,
        topicId: this.source!.topicId,
        checkpoint: start,
        frontier: start,
        pending: [],
        retries: new Map(),
        processed: 0,
        deadLettered: 0,
        filtered: 0,
        lastError: undefined,
      },
      true,
    );
    this.rebuild();
  }

  // ---- the loop ----

  private async loop(): Promise<RunOutcome> {
    let lingered = false;
    for (;;) {
      await this.options.turns?.take();
      if (this.commitFailure !== undefined) {
        const failure = this.commitFailure;
        this.commitFailure = undefined;
        const outcome = await this.recover(failure);
        if (outcome) return outcome;
      }
      const stopping = this.stopRequested || this.clock.now() >= this.deadlineMs;
      const change = stopping ? undefined : await this.refreshDefinition();
      if (stopping || change) {
        const outcome = await this.drain();
        return outcome ?? (stopping ? "stopped" : change!);
      }
      await this.renewIfDue();
      try {
        await this.fetchMore();
      } catch (error) {
        const outcome = await this.recover(error);
        if (outcome) return outcome;
        continue;
      }
      this.dispatch();
      this.startCommit();
      if (this.isIdle()) {
        if (this.hasProgressToCommit()) {
          this.startCommit(true);
          continue;
        }
        const due = this.nextRetryDueMs();
        const now = this.clock.now();
        if (due !== undefined && due - now <= this.retryHoldMs && due < this.deadlineMs) {
          await this.waitForSignal(due - now);
          continue;
        }
        if (!lingered && this.lingerMs > 0 && now + this.lingerMs < this.deadlineMs) {
          lingered = true;
          await this.waitForSignal(this.lingerMs);
          continue;
        }
        // Only retries due later than it waits: the sweep comes back for them.
        return due === undefined ? "drained" : "waiting";
      }
      lingered = false;
      await this.waitForSignal(this.nextTimerMs());
    }
  }

  /** Stops handing out batches, lets calls in flight finish, commits what they did. */
  private async drain(): Promise<RunOutcome | undefined> {
    if (this.clock.now() >= this.deadlineMs) await this.abortCalls();
    while (this.calls.size > 0 || this.committing || this.results.length > 0) {
      if (this.commitFailure !== undefined) return this.recoverFinal();
      this.startCommit();
      await this.waitForSignal(this.nextTimerMs());
    }
    if (this.commitFailure !== undefined) return this.recoverFinal();
    if (this.hasProgressToCommit()) {
      this.startCommit(true);
      while (this.committing) await this.waitForSignal(this.nextTimerMs());
      if (this.commitFailure !== undefined) return this.recoverFinal();
    }
    return undefined;
  }

  private async recoverFinal(): Promise<RunOutcome | undefined> {
    const failure = this.commitFailure;
    this.commitFailure = undefined;
    return (await this.recover(failure)) ?? "stopped";
  }

  /**
   * A commit or read failed: drop everything in hand and start again from what the store says,
   * which also tells whether a commit whose answer was lost did land. A lost lease ends the run.
   */
  private async recover(error: unknown): Promise<RunOutcome | undefined> {
    if (error instanceof FencedError) return "fenced";
    await this.abortCalls();
    // A commit in flight settles first: whatever it did, the store says so afterwards.
    await this.committing;
    this.commitFailure = undefined;
    if (error instanceof NotFoundError && typeof error.details.topic === "string") {
      // An output or dead-letter topic is gone: outputs to it fail from now on, like any bad output.
      await this.refreshTopics();
    }
    if (!(error instanceof UnavailableError)) this.options.events?.runnerError?.({ ...this.label, error });
    if (++this.storeFailures > STORE_FAILURES_MAX) return "failed";
    await this.clock.sleep(Math.min(5_000, 100 * 2 ** this.storeFailures));
    try {
      await this.load();
    } catch (loadError) {
      if (loadError instanceof FencedError) return "fenced";
      if (loadError instanceof UnavailableError) return this.recover(loadError);
      throw loadError;
    }
    return undefined;
  }

  private isIdle(): boolean {
    if (this.calls.size > 0 || this.committing || this.results.length > 0) return false;
    if (this.canFetch()) return false;
    return this.dueRetry() === undefined && !this.lanes.some((_, lane) => this.canDispatch(lane));
  }

  /** More records may be fetched now: some are known or said to be there, and there is room for them. */
  private canFetch(): boolean {
    if (this.fetchCursor >= this.highWatermark && !this.fetchWanted) return false;
    let queued = 0;
    for (const lane of this.lanes) queued += lane.queue.length;
    return this.lookaheadRoom() > 0 && queued < 2 * this.definition.spec.batchRecords * this.lanes.length;
  }

  private hasProgressToCommit(): boolean {
    return this.filteredUncommitted > 0 || this.checkpointInHand() > this.persisted.checkpoint;
  }

  private checkpointInHand(): number {
    return Math.min(
      this.outstanding.min() ?? Number.POSITIVE_INFINITY,
      Math.max(this.fetchCursor, this.loadedFrontier),
    );
  }

  private lookaheadRoom(): number {
    const spec = this.definition.spec;
    const lookahead =
      this.options.lookaheadRecords ??
      Math.min(
        LOOKAHEAD_RECORDS_MAX,
        Math.max(LOOKAHEAD_RECORDS_MIN, 2 * spec.batchRecords * this.lanes.length),
      );
    return lookahead - (this.fetchCursor - this.checkpointInHand());
  }

  /** When the next retry that could start is due. */
  private nextRetryDueMs(): number | undefined {
    if (this.retrying.size >= this.lanes.length) return undefined;
    let due: number | undefined;
    for (const [key, blocked] of this.blocked) {
      if (this.retrying.has(key) || !queued(this.lanes[blocked.lane]!, blocked.head)) continue;
      if (due === undefined || blocked.nextAttemptAtMs < due) due = blocked.nextAttemptAtMs;
    }
    return due;
  }

  /** Until the next thing the loop must do by itself: a retry, a batching window, the lease renewal, a definition read. */
  private nextTimerMs(): number {
    const now = this.clock.now();
    const candidates = [this.definitionReadAtMs + this.definitionRefreshMs, this.deadlineMs];
    // Renewal waits while a commit (which renews too) is in flight.
    if (!this.committing) candidates.push(this.lease!.expiresAtMs - this.leaseTtlMs / 2);
    const due = this.nextRetryDueMs();
    if (due !== undefined) candidates.push(due);
    const windowMs = this.definition.spec.batchWindowMs;
    if (windowMs > 0) {
      for (const lane of this.lanes) {
        const first = lane.queue[0];
        if (first !== undefined && !lane.busy)
          candidates.push((this.queuedAtMs.get(first.offset) ?? now) + windowMs);
      }
    }
    // At least a millisecond: a timer due now that nothing can act on must not fire again at once.
    return Math.max(1, Math.min(...candidates) - now);
  }

  private signal(): void {
    this.kicked = true;
    const kick = this.kick;
    this.kick = undefined;
    kick?.();
  }

  /**
   * Resolves once the runner waits for nothing but the clock or a wake-up (no commit, read or
   * other store call in flight), or has ended: a test on a simulated clock moves time on then,
   * so that time never runs ahead of real I/O.
   */
  whenParked(): Promise<void> {
    if (this.ended || (this.kick !== undefined && !this.committing)) return Promise.resolve();
    return new Promise((resolve) => this.parkedWaiters.push(resolve));
  }

  private parked(): void {
    for (const resolve of this.parkedWaiters.splice(0)) resolve();
  }

  private async waitForSignal(ms: number): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return;
    }
    let timer: Timer | undefined;
    await new Promise<void>((resolve) => {
      this.kick = resolve;
      if (Number.isFinite(ms)) timer = this.clock.setTimer(ms, () => this.signal());
      if (!this.committing) this.parked();
    });
    timer?.cancel();
    this.kicked = false;
  }

  private async renewIfDue(): Promise<void> {
    if (this.committing || this.clock.now() < this.lease!.expiresAtMs - this.leaseTtlMs / 2) return;
    this.lease = await this.leases.renew(this.lease!, this.leaseTtlMs);
  }

  /** The definition again, every `definitionRefreshMs`: paused, deleted or changed ends the run. */
  private async refreshDefinition(): Promise<"paused" | "deleted" | "changed" | undefined> {
    if (this.clock.now() < this.definitionReadAtMs + this.definitionRefreshMs) return undefined;
    const current = await this.options.store.get(this.definition.spec.name);
    this.definitionReadAtMs = this.clock.now();
    if (!current || current.uid !== this.definition.uid) return "deleted";
    if (current.state === "paused") return "paused";
    if (current.version !== this.definition.version) return "changed";
    await this.refreshTopics();
    return undefined;
  }

  private async refreshTopics(): Promise<void> {
    const spec = this.definition.spec;
    const describe = (name: string) =>
      this.options.engine.describeTopic(name).catch((error: unknown) => {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      });
    const names = [...spec.outputTopics];
    const described = await Promise.all(names.map(describe));
    this.outputTopics = new Map(names.map((name, index) => [name, described[index]]));
    this.deadLetterTopic = spec.deadLetterTopic === null ? undefined : await describe(spec.deadLetterTopic);
  }

  // ---- fetching ----

  private async fetchMore(): Promise<void> {
    const spec = this.definition.spec;
    if (!this.canFetch()) return;
    const room = this.lookaheadRoom();
    this.fetchWanted = false;
    const generation = this.generation;
    let result: Awaited<ReturnType<Engine["fetch"]>>;
    try {
      result = await this.options.engine.fetch({
        topic: this.topicName,
        partition: this.partition,
        offset: this.fetchCursor,
        maxRecords: Math.min(room, FETCH_RECORDS_MAX),
        maxBytes: Math.max(spec.batchBytes * 2, 1024 * 1024),
      });
    } catch (error) {
      if (error instanceof OffsetOutOfRangeError) {
        // Retention removed records below the checkpoint: start at the log's start.
        const start = Number(error.details.logStartOffset ?? this.fetchCursor);
        if (start > this.fetchCursor) {
          this.skipTo(start);
          return;
        }
      }
      throw error;
    }
    if (generation !== this.generation) return;
    this.storeFailures = 0;
    this.highWatermark = result.highWatermark;
    const now = this.clock.now();
    const hash = this.definition.spec.ordering.kind === "key";
    const windowed = spec.batchWindowMs > 0;
    const retries = this.persisted.retries.size > 0;
    for (const record of result.records) {
      const offset = record.offset;
      if (offset < this.loadedFrontier && !this.loadedPending.has(offset)) continue;
      if (!this.filter(record)) {
        this.outstanding.delete(offset);
        this.filteredUncommitted++;
        this.highestDone = Math.max(this.highestDone, offset);
        continue;
      }
      this.outstanding.add(offset);
      // Only a batching window needs to know since when a record waits.
      if (windowed) this.queuedAtMs.set(offset, now);
      const lane = hash ? laneOf(record.key, this.lanes.length) : 0;
      this.lanes[lane]!.queue.push(record);
      const retry = retries ? this.persisted.retries.get(offset) : undefined;
      if (retry) {
        this.blocked.set(this.keyOf(record), {
          lane,
          head: offset,
          attempts: retry.attempts,
          firstFailedAtMs: retry.firstFailedAtMs,
          nextAttemptAtMs: retry.nextAttemptAtMs,
          error: retry.error,
          limit: spec.batchRecords,
          suspectEnd: offset + 1,
        });
      }
    }
    // A read that passed offsets without records (key compaction's, or a failed parallel
    // commit's gap) moved on too: those offsets are done as they are, and reading goes on.
    const moved = result.records.length > 0 || result.nextOffset > this.fetchCursor;
    if (result.nextOffset > this.fetchCursor)
      this.highestDone = Math.max(this.highestDone, result.nextOffset - 1);
    this.fetchCursor = result.nextOffset;
    if (moved && this.fetchCursor < this.highWatermark) this.fetchWanted = true;
  }

  private skipTo(offset: number): void {
    for (const pending of this.outstanding.below(offset)) this.outstanding.delete(pending);
    this.highestDone = Math.max(this.highestDone, offset - 1);
    this.fetchCursor = offset;
    this.loadedFrontier = Math.max(this.loadedFrontier, offset);
    this.fetchWanted = true;
  }

  private keyOf(record: ConsumedRecord): string {
    if (this.definition.spec.ordering.kind === "partition") return "";
    return record.key === null
      ? "\u0000"
      : `k${Buffer.from(record.key.buffer, record.key.byteOffset, record.key.byteLength).toString("latin1")}`;
  }

  // ---- dispatching ----

  private dispatch(): void {
    // Retries of blocked keys first, each alone, at most one per lane in flight beside the lanes.
    for (let retry = this.dueRetry(); retry; retry = this.dueRetry()) {
      const [key, blocked] = retry;
      const lane = this.lanes[blocked.lane]!;
      const limit = Math.min(blocked.limit, this.definition.spec.batchRecords);
      const records = this.take(lane, (record) => this.keyOf(record) === key, limit);
      this.call({ lane: blocked.lane, records, solo: key, attempt: blocked.attempts + 1 });
    }
    for (let lane = 0; lane < this.lanes.length; lane++) {
      const batch = this.formBatch(lane);
      if (batch) this.call(batch);
    }
  }

  /** The blocked key whose retry is due first and may start now. */
  private dueRetry(): [string, Blocked] | undefined {
    if (this.retrying.size >= this.lanes.length) return undefined;
    const now = this.clock.now();
    let due: [string, Blocked] | undefined;
    for (const entry of this.blocked) {
      const [key, blocked] = entry;
      if (blocked.nextAttemptAtMs > now || this.retrying.has(key)) continue;
      if (!queued(this.lanes[blocked.lane]!, blocked.head)) continue;
      if (!due || blocked.nextAttemptAtMs < due[1].nextAttemptAtMs) due = entry;
    }
    return due;
  }

  private canDispatch(lane: number): boolean {
    const state = this.lanes[lane]!;
    if (state.busy || state.queue.length === 0) return false;
    if (this.blocked.size === 0) return true;
    return state.queue.some((record) => !this.blocked.has(this.keyOf(record)));
  }

  private formBatch(laneIndex: number): Batch | undefined {
    const lane = this.lanes[laneIndex]!;
    if (lane.busy || lane.queue.length === 0) return undefined;
    const spec = this.definition.spec;
    const now = this.clock.now();
    const open = (record: ConsumedRecord) => !this.blocked.has(this.keyOf(record));
    const first = this.blocked.size === 0 ? lane.queue[0] : lane.queue.find(open);
    if (first === undefined) return undefined;
    if (spec.batchWindowMs > 0 && now - (this.queuedAtMs.get(first.offset) ?? now) < spec.batchWindowMs) {
      // A short batch waits for its window, unless it is full already.
      let count = 0;
      let bytes = 0;
      for (const record of lane.queue) {
        if (!open(record)) continue;
        count++;
        bytes += recordBytes(record);
      }
      if (count < spec.batchRecords && bytes < spec.batchBytes) return undefined;
    }
    const records = this.take(lane, this.blocked.size === 0 ? undefined : open, spec.batchRecords);
    return records.length === 0 ? undefined : { lane: laneIndex, records, solo: undefined, attempt: 1 };
  }

  /**
   * Takes records `pick` accepts from the lane's queue, in order, within the batch limits. The
   * first accepted record that does not fit ends the batch: taking a smaller one after it would
   * hand the handler its partition's (or key's) records out of order.
   */
  private take(
    lane: Lane,
    pick: ((record: ConsumedRecord) => boolean) | undefined,
    limit: number,
  ): ConsumedRecord[] {
    const spec = this.definition.spec;
    if (pick === undefined) {
      // Every record may go (no key is blocked): the batch is the head of the queue.
      let count = 0;
      let bytes = 0;
      for (const record of lane.queue) {
        const size = recordBytes(record);
        if (count >= limit || (count > 0 && bytes + size > spec.batchBytes)) break;
        bytes += size;
        count++;
      }
      const taken = lane.queue.slice(0, count);
      lane.queue = lane.queue.slice(count);
      return taken;
    }
    const taken: ConsumedRecord[] = [];
    const kept: ConsumedRecord[] = [];
    let bytes = 0;
    let full = false;
    for (const record of lane.queue) {
      if (full || !pick(record)) {
        kept.push(record);
        continue;
      }
      const size = recordBytes(record);
      if (taken.length < limit && (taken.length === 0 || bytes + size <= spec.batchBytes)) {
        taken.push(record);
        bytes += size;
      } else {
        full = true;
        kept.push(record);
      }
    }
    lane.queue = kept;
    return taken;
  }

  private call(batch: Batch): void {
    const lane = this.lanes[batch.lane]!;
    if (batch.solo === undefined) lane.busy = true;
    else this.retrying.add(batch.solo);
    const generation = this.generation;
    const id = ++this.callCounter;
    const spec = this.definition.spec;
    const controller = new AbortController();
    const timer = this.clock.setTimer(spec.retry.timeoutMs, () =>
      controller.abort(new Error(`the handler did not answer within ${spec.retry.timeoutMs} ms`)),
    );
    const handlerBatch: ProcessorBatch = {
      processor: spec.name,
      topic: this.topicName,
      partition: this.partition,
      attempt: batch.attempt,
      records: batch.records,
    };
    const prefix = `${this.definition.uid}:${this.source!.topicId}:${this.partition}:`;
    const invoked = this.options.handlers.invoke({
      handler: spec.handler,
      batch: handlerBatch,
      idempotencyKey: (offset) => `${prefix}${offset}`,
      signal: controller.signal,
    });
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason);
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
    const calledAtMs = this.clock.now();
    const iteratorAgeMs = Math.max(0, calledAtMs - batch.records[batch.records.length - 1]!.timestamp);
    const done = Promise.race([invoked, aborted])
      .then(
        (result): Outcome => ({ ok: true, result }),
        (error: unknown): Outcome => ({ ok: false, error: errorMessage(error) }),
      )
      .then((outcome) => {
        timer.cancel();
        this.calls.delete(id);
        if (generation !== this.generation || this.stoppedCall(controller)) return;
        this.options.events?.handlerCalled?.({
          ...this.label,
          records: batch.records.length,
          durationMs: this.clock.now() - calledAtMs,
          failed: !outcome.ok,
          namedFailures: outcome.ok ? outcome.result.failures.length : 0,
          iteratorAgeMs,
        });
        if (batch.solo === undefined) lane.busy = false;
        else this.retrying.delete(batch.solo);
        this.interpret(batch, outcome);
        this.signal();
      });
    // A handler that never settles is given up at its timeout; its promise is left behind.
    invoked.catch(() => undefined);
    this.calls.set(id, { controller, done });
  }

  /** A call aborted because the runner is stopping (not a timeout): its outcome is no failure. */
  private stoppedCall(controller: AbortController): boolean {
    return controller.signal.aborted && controller.signal.reason instanceof RunnerStopped;
  }

  private async abortCalls(): Promise<void> {
    this.generation++;
    const pending = [...this.calls.values()];
    for (const { controller } of pending) controller.abort(new RunnerStopped());
    await Promise.all(pending.map((call) => call.done));
    for (const lane of this.lanes) lane.busy = false;
    this.retrying.clear();
  }

  // ---- results ----

  private interpret(batch: Batch, outcome: Outcome): void {
    const spec = this.definition.spec;
    // Only failures and outputs naming their source need it: built when first asked.
    let batchOffsets: Set<number> | undefined;
    const offsets = () => {
      batchOffsets ??= new Set(batch.records.map((record) => record.offset));
      return batchOffsets;
    };
    const result: LaneResult = {
      done: [],
      doneTimestamps: [],
      outputs: [],
      deadLetters: [],
      retryChanges: new Map(),
      processed: 0,
      deadLettered: 0,
      lastError: undefined,
      touched: new Map(),
    };
    let wholeError: string | undefined;
    let forceBisect = false;
    const named = new Map<number, string>();
    const routed: RoutedOutput[] = [];
    if (!outcome.ok) {
      wholeError = outcome.error;
    } else {
      for (const failure of outcome.result.failures) {
        if (!offsets().has(failure)) {
          wholeError = `the handler named offset ${failure} as failed, which is not in the batch`;
          break;
        }
        named.set(
          failure,
          outcome.result.errors.get(failure) ?? `the handler reported offset ${failure} as failed`,
        );
      }
      outcome.result.outputs.forEach((output, index) => {
        if (wholeError) return;
        if (output.sourceOffset !== undefined && !offsets().has(output.sourceOffset)) {
          wholeError = `outputs[${index}].sourceOffset ${output.sourceOffset} is not an offset of the batch`;
          return;
        }
        const routing = routeOutput(output, index, spec.outputTopics, this.outputTopics, this.partition);
        if (typeof routing !== "string") routed.push(routing);
        else if (output.sourceOffset !== undefined) named.set(output.sourceOffset, routing);
        else wholeError = routing;
      });
      if (
        !wholeError &&
        named.size > 0 &&
        outcome.result.outputs.some((output) => output.sourceOffset === undefined)
      ) {
        wholeError =
          "the result names failures, so every output must say which record it comes from (sourceOffset)";
      }
      const touched = new Map<string, Set<number>>();
      touchOutputs(touched, routed);
      const operations = operationsOf(touched);
      if (!wholeError && operations > TRANSACTION_OPERATIONS_MAX - 1 - DEAD_LETTER_OPERATIONS) {
        wholeError = `the outputs of ${batch.records.length} record${batch.records.length === 1 ? "" : "s"} span ${operations} metadata operations; one transaction holds ${TRANSACTION_OPERATIONS_MAX}`;
        forceBisect = true;
      }
    }

    if (wholeError !== undefined) {
      this.wholeBatchFailed(batch, wholeError, forceBisect, result);
    } else {
      this.batchAnswered(batch, named, routed, result);
    }
    touchOutputs(result.touched, result.outputs);
    for (const record of result.deadLetters) touch(result.touched, spec.deadLetterTopic!, record.partition!);
    this.results.push(result);
  }

  /** The handler answered: records before their key's first failure are done. */
  private batchAnswered(
    batch: Batch,
    named: Map<number, string>,
    routed: RoutedOutput[],
    result: LaneResult,
  ): void {
    if (named.size === 0) {
      // Every record is done: no key to narrow down, no output to leave out.
      result.outputs = routed;
      for (const record of batch.records) this.markDone(record, result, false);
      result.processed += batch.records.length;
      if (this.blocked.size > 0) {
        const keys = new Set(batch.records.map((record) => this.keyOf(record)));
        for (const key of keys) this.keySucceeded(key, result);
      }
      return;
    }
    const firstFailure = new Map<string, number>();
    for (const record of batch.records) {
      if (!named.has(record.offset)) continue;
      const key = this.keyOf(record);
      if (!firstFailure.has(key)) firstFailure.set(key, record.offset);
    }
    const done = new Set<number>();
    for (const record of batch.records) {
      const failed = firstFailure.get(this.keyOf(record));
      if (failed === undefined || record.offset < failed) done.add(record.offset);
    }
    for (const output of routed) {
      if (named.size === 0 || done.has(output.sourceOffset!)) result.outputs.push(output);
    }
    for (const record of batch.records) {
      if (done.has(record.offset)) this.markDone(record, result, false);
      else this.requeue(batch.lane, record);
    }
    result.processed += done.size;
    for (const [key, head] of firstFailure) {
      const previous = this.blocked.get(key);
      const attempts = previous && previous.head === head ? previous.attempts + 1 : 1;
      const failedRecords = [batch.records.find((record) => record.offset === head)!];
      this.recordFailed(batch, key, head, attempts, named.get(head)!, failedRecords, result);
    }
    // Keys of the batch that succeeded move on; a key narrowed down stays alone until past its suspects.
    const keys = new Set(batch.records.map((record) => this.keyOf(record)));
    for (const key of keys) if (!firstFailure.has(key)) this.keySucceeded(key, result);
  }

  /** A thrown error, a timeout or a malformed answer: nothing of the batch is done. */
  private wholeBatchFailed(batch: Batch, error: string, forceBisect: boolean, result: LaneResult): void {
    const spec = this.definition.spec;
    for (const record of batch.records) this.requeue(batch.lane, record);
    const keys = [...new Set(batch.records.map((record) => this.keyOf(record)))];
    const now = this.clock.now();
    const last = batch.records[batch.records.length - 1]!.offset;
    if (keys.length > 1) {
      // Several keys: try each alone at once, so only the failing key waits. No attempt counts.
      for (const key of keys) {
        const head = batch.records.find((record) => this.keyOf(record) === key)!.offset;
        this.blocked.set(key, {
          lane: batch.lane,
          head,
          attempts: 0,
          firstFailedAtMs: now,
          nextAttemptAtMs: now,
          error,
          limit: spec.batchRecords,
          suspectEnd: last + 1,
        });
      }
      result.lastError = { message: error, offset: batch.records[0]!.offset, atMs: now };
      return;
    }
    const key = keys[0]!;
    const head = batch.records[0]!.offset;
    const previous = this.blocked.get(key);
    const sameHead = previous !== undefined && previous.head === head;
    if ((spec.bisectOnError || forceBisect) && batch.records.length > 1) {
      // Halve until the failing record is alone; no attempt counts while narrowing down.
      this.blocked.set(key, {
        lane: batch.lane,
        head,
        attempts: sameHead ? previous.attempts : 0,
        firstFailedAtMs: sameHead ? previous.firstFailedAtMs : now,
        nextAttemptAtMs: now,
        error,
        limit: Math.ceil(batch.records.length / 2),
        suspectEnd: Math.max(previous?.suspectEnd ?? 0, last + 1),
      });
      result.lastError = { message: error, offset: head, atMs: now };
      return;
    }
    const attempts = sameHead ? previous.attempts + 1 : 1;
    this.recordFailed(batch, key, head, attempts, error, batch.records, result);
  }

  /**
   * `head`, the first not-done record of `key`, failed for the `attempts`th time: the key waits for
   * its retry, or — the policy spent — `failedRecords` are dead-lettered and the key moves on.
   */
  private recordFailed(
    batch: Batch,
    key: string,
    head: number,
    attempts: number,
    error: string,
    failedRecords: ConsumedRecord[],
    result: LaneResult,
  ): void {
    const spec = this.definition.spec;
    const now = this.clock.now();
    const previous = this.blocked.get(key);
    const headRecord = batch.records.find((record) => record.offset === head)!;
    const spent = isSpent(spec.retry, attempts, headRecord.timestamp, now);
    result.lastError = { message: error, offset: head, atMs: now };
    if (previous && previous.head !== head && previous.attempts > 0)
      result.retryChanges.set(previous.head, null);
    const deadLetterTopic = this.deadLetterTopic;
    const canDeadLetter = spent && (spec.deadLetterTopic === null || deadLetterTopic !== undefined);
    this.options.events?.recordFailed?.({
      ...this.label,
      offset: head,
      attempts,
      error,
      spent: canDeadLetter,
    });
    if (canDeadLetter) {
      for (const record of failedRecords) {
        this.dequeue(batch.lane, record.offset);
        if (deadLetterTopic) {
          result.deadLetters.push(
            deadLetter(this.label, record, attempts, error, deadLetterTopic.partitions),
          );
        }
        this.markDone(record, result, true);
      }
      result.deadLettered += failedRecords.length;
      if (previous?.attempts) result.retryChanges.set(previous.head, null);
      this.keySucceeded(key, result, previous);
      return;
    }
    const state: RetryState = {
      attempts,
      firstFailedAtMs: previous && previous.head === head ? previous.firstFailedAtMs : now,
      nextAttemptAtMs: now + (spent ? spec.retry.maxBackoffMs : retryDelayMs(spec.retry, attempts)),
      error: spent ? `dead-letter topic ${spec.deadLetterTopic} does not exist; ${error}` : error,
    };
    this.blocked.set(key, {
      lane: batch.lane,
      head,
      ...state,
      limit: previous?.limit ?? spec.batchRecords,
      suspectEnd: Math.max(previous?.suspectEnd ?? 0, head + 1),
    });
    result.retryChanges.set(head, state);
    if (spent) result.lastError = { message: state.error, offset: head, atMs: now };
  }

  /** The key's batch went through (or its failing records were dead-lettered): it moves on. */
  private keySucceeded(key: string, result: LaneResult, known?: Blocked): void {
    const blocked = known ?? this.blocked.get(key);
    if (!blocked) return;
    if (blocked.attempts > 0 && !result.retryChanges.has(blocked.head))
      result.retryChanges.set(blocked.head, null);
    const lane = this.lanes[blocked.lane]!;
    const next = lane.queue.find((record) => this.keyOf(record) === key)?.offset;
    if (next !== undefined && next < blocked.suspectEnd) {
      // Still narrowing down: its next records go alone, at once, with no attempt counted yet.
      this.blocked.set(key, { ...blocked, head: next, attempts: 0, nextAttemptAtMs: this.clock.now() });
    } else {
      this.blocked.delete(key);
    }
  }

  private markDone(record: ConsumedRecord, result: LaneResult, deadLettered: boolean): void {
    result.done.push(record.offset);
    if (!deadLettered) result.doneTimestamps.push(record.timestamp);
  }

  private requeue(laneIndex: number, record: ConsumedRecord): void {
    const lane = this.lanes[laneIndex]!;
    const offset = record.offset;
    if (queued(lane, offset)) return;
    const position = lane.queue.findIndex((queued) => queued.offset > offset);
    if (position < 0) lane.queue.push(record);
    else lane.queue.splice(position, 0, record);
  }

  private dequeue(laneIndex: number, offset: number): void {
    const lane = this.lanes[laneIndex]!;
    const position = lane.queue.findIndex((record) => record.offset === offset);
    if (position >= 0) lane.queue.splice(position, 1);
  }

  // ---- committing ----

  /** Commits waiting results, as many as fit one transaction, oldest first. */
  private startCommit(progressOnly = false): void {
    if (this.committing || this.commitFailure !== undefined) return;
    if (this.results.length === 0 && !progressOnly) return;
    const deadLetterTopic = this.definition.spec.deadLetterTopic;
    // As many results as fit one transaction, oldest first (always at least one).
    const taken: LaneResult[] = [];
    const touched = new Map<string, Set<number>>();
    for (const result of this.results) {
      const merged = new Map([...touched].map(([topic, partitions]) => [topic, new Set(partitions)]));
      for (const [topic, partitions] of result.touched) {
        const set = merged.get(topic) ?? new Set<number>();
        for (const partition of partitions) set.add(partition);
        merged.set(topic, set);
      }
      if (taken.length > 0 && 1 + operationsOf(merged) > TRANSACTION_OPERATIONS_MAX) break;
      taken.push(result);
      touched.clear();
      for (const [topic, partitions] of merged) touched.set(topic, partitions);
    }
    // Ascending lists rather than a set: no hashing per offset, and the outstanding offsets below
    // the frontier are told from the done ones in one merged walk.
    const done = ascendingDone(taken);
    const highestDone = Math.max(this.highestDone, done[done.length - 1] ?? -1);
    // Everything done lies below the frontier; what is in hand above it need not be listed.
    const frontier = Math.max(this.persisted.frontier, highestDone + 1);
    const remaining = this.outstanding.belowExcept(frontier, done);
    const checkpoint = remaining[0] ?? frontier;
    const retries = new Map(this.persisted.retries);
    let lastError = this.persisted.lastError;
    for (const result of taken) {
      for (const [offset, state] of result.retryChanges) {
        if (state === null) retries.delete(offset);
        else retries.set(offset, state);
      }
      if (result.lastError) lastError = result.lastError;
    }
    for (const offset of [...retries.keys()])
      if (offset < checkpoint || includesSorted(done, offset)) retries.delete(offset);
    const filtered = this.filteredUncommitted;
    const change: ProgressChange = {
      uid: this.definition.uid,
      topicId: this.source!.topicId,
      checkpoint,
      frontier,
      pending: remaining,
      retries,
      processed: taken.reduce((sum, result) => sum + result.processed, 0),
      deadLettered: taken.reduce((sum, result) => sum + result.deadLettered, 0),
      filtered,
      lastError,
    };
    const appends = new Map<string, ProduceRecord[]>();
    let outputCount = 0;
    for (const result of taken) {
      // Outputs mostly come in runs to one topic: its list is looked up once per run.
      let topic: string | undefined;
      let list: ProduceRecord[] = [];
      for (const output of result.outputs) {
        if (output.topic !== topic) {
          topic = output.topic;
          list = listOf(appends, topic);
        }
        list.push(output.record);
      }
      outputCount += result.outputs.length;
      if (result.deadLetters.length > 0) {
        const list = listOf(appends, deadLetterTopic!);
        for (const record of result.deadLetters) list.push(record);
      }
    }
    const generation = this.generation;
    this.committing = this.commitNow(
      [...appends].map(([topic, records]) => ({ topic, records })),
      change,
      false,
    )
      .then(
        () => {
          if (generation !== this.generation) return;
          const windowed = this.definition.spec.batchWindowMs > 0;
          this.results.splice(0, taken.length);
          for (const offset of done) {
            this.outstanding.delete(offset);
            if (windowed) this.queuedAtMs.delete(offset);
          }
          this.filteredUncommitted -= filtered;
          this.highestDone = Math.max(this.highestDone, highestDone);
          this.storeFailures = 0;
          this.options.events?.committed?.({
            ...this.label,
            processed: change.processed,
            deadLettered: change.deadLettered,
            filtered,
            outputs: outputCount,
            checkpoint,
            doneTimestamps:
              taken.length === 1
                ? taken[0]!.doneTimestamps
                : taken.flatMap((result) => result.doneTimestamps),
          });
        },
        (error: unknown) => {
          if (generation === this.generation) this.commitFailure = error;
        },
      )
      .finally(() => {
        this.committing = undefined;
        this.signal();
      });
  }

  /**
   * One transaction: the appends and the progress item's update, conditioned on the lease and on
   * the version read (ARCHITECTURE.md, "The exactly-once commit"). Updates `persisted` on success.
   */
  private async commitNow(
    appends: { topic: string; records: ProduceRecord[] }[],
    change: ProgressChange,
    initial: boolean,
  ): Promise<void> {
    const lease = this.lease!;
    const commitId = newCommitId();
    const expiresAtMs = this.clock.now() + this.leaseTtlMs;
    const operation = progressUpdate(
      this.key,
      lease,
      this.persisted.version,
      change,
      commitId,
      expiresAtMs,
      initial,
    );
    try {
      await this.options.engine.appendTransactional({
        appends,
        operations: [operation],
        judge: (failures) => {
          const current = failures[0]?.current;
          if (current?.commitId === commitId) return "committed";
          if (current?.[LEASE_OWNER] !== lease.owner || Number(current?.[LEASE_EPOCH]) !== lease.epoch) {
            return new FencedError(
              `processor ${this.label.processor} lost the lease of ${this.topicName}/${this.partition} (epoch ${lease.epoch})`,
            );
          }
          return new ConflictError(
            `the progress of ${this.label.processor} on ${this.topicName}/${this.partition} moved to version ${String(current?.version)} under its lease holder`,
          );
        },
      });
    } catch (error) {
      if (error instanceof TransactionTooLargeError) {
        throw new ConflictError(`a commit did not fit one transaction: ${error.message}`, { cause: error });
      }
      throw error;
    }
    this.lease = { ...lease, expiresAtMs };
    this.persisted = {
      uid: change.uid,
      topicId: change.topicId,
      checkpoint: change.checkpoint,
      frontier: change.frontier,
      pending: [...change.pending],
      retries: new Map(change.retries),
      version: this.persisted.version + 1,
      commitId,
      processed: (initial ? 0 : this.persisted.processed) + change.processed,
      deadLettered: (initial ? 0 : this.persisted.deadLettered) + change.deadLettered,
      filtered: (initial ? 0 : this.persisted.filtered) + change.filtered,
      lastError: change.lastError,
    };
  }
}

/** The offsets the results did, ascending (each result lists its own mostly in order). */
function ascendingDone(results: readonly LaneResult[]): number[] {
  const done = results.length === 1 ? results[0]!.done : results.flatMap((result) => result.done);
  for (let index = 1; index < done.length; index++) {
    if (done[index - 1]! > done[index]!) return [...done].sort((a, b) => a - b);
  }
  return done;
}

/** Binary search in an ascending list. */
function includesSorted(sorted: readonly number[], value: number): boolean {
  let low = 0;
  let high = sorted.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const found = sorted[middle]!;
    if (found === value) return true;
    if (found < value) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

/** `touch` for each output; outputs mostly come in runs to one partition, each run looked up once. */
function touchOutputs(touched: Map<string, Set<number>>, outputs: readonly RoutedOutput[]): void {
  let topic: string | undefined;
  let partition = -1;
  for (const output of outputs) {
    if (output.topic === topic && output.record.partition === partition) continue;
    topic = output.topic;
    partition = output.record.partition;
    touch(touched, topic, partition);
  }
}

function touch(touched: Map<string, Set<number>>, topic: string, partition: number): void {
  let partitions = touched.get(topic);
  if (!partitions) {
    partitions = new Set();
    touched.set(topic, partitions);
  }
  partitions.add(partition);
}

function listOf<T>(lists: Map<string, T[]>, key: string): T[] {
  let list = lists.get(key);
  if (!list) {
    list = [];
    lists.set(key, list);
  }
  return list;
}

/** Operations of the engine's part of a transaction: per topic 1, per partition 2. */
function operationsOf(touched: Map<string, Set<number>>): number {
  let operations = 0;
  for (const partitions of touched.values()) operations += 1 + 2 * partitions.size;
  return operations;
}

/** Dead letters of one result go to one topic: at most one topic check and one partition. */
const DEAD_LETTER_OPERATIONS = 3;

class RunnerStopped extends Error {
  override readonly name = "RunnerStopped";
  constructor() {
    super("the runner is stopping");
  }
}

/** Whether the record at `offset` waits in the lane's queue. */
function queued(lane: Lane, offset: number): boolean {
  return lane.queue.some((record) => record.offset === offset);
}

function laneOf(key: Uint8Array | null, lanes: number): number {
  return key === null || lanes === 1 ? 0 : partitionForKey(key, lanes);
}

function recordBytes(record: ConsumedRecord): number {
  let size = (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0) + 16;
  for (const header of record.headers) size += header.key.length + (header.value?.byteLength ?? 0);
  return size;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
