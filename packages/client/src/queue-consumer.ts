import type { SluiceClient } from "./client.js";
import { type ConsumerClock, systemClock } from "./clock.js";
import type { Data, DataType, Header } from "./data.js";
import { isTransientError, SluiceHttpError } from "./errors.js";
import type {
  AcknowledgementResult,
  AcknowledgeType,
  AcquiredRecord,
  ShareGroupConfigs,
} from "./queue-types.js";
import type { ConsumedRecord } from "./types.js";

export interface QueueConsumerOptions {
  /** The share group; created (with `configs`) by its first member. */
  groupId: string;
  topics: string[];
  /**
   * Records asked for per acquisition, and at most this many wait in the consumer, locked to it,
   * while the handler works. Default 10: small batches spread records evenly over many members.
   */
  maxRecords?: number;
  /**
   * "implicit" (the default): asking for the next record accepts the previous one, unless it was
   * acknowledged already. "explicit": each record must be acknowledged (accept, release or reject),
   * so records may be handled concurrently; until then its lock is renewed.
   */
  acknowledgement?: "implicit" | "explicit";
  /** The group's settings when this member creates it (otherwise they must match the group's). */
  configs?: ShareGroupConfigs;
  /** Server default 45 s. */
  sessionTimeoutMs?: number;
  clientId?: string;
  /** Default: a new UUID. */
  memberId?: string;
  /**
   * Long-poll wait of each acquisition. Default 5,000 ms. One that carries acknowledgements waits
   * at most `ackLingerMs`, so their answers are not held by an empty topic.
   */
  pollWaitMs?: number;
  /** Renew the locks of records it holds (waiting or being handled) at half their length. Default true. */
  renewLocks?: boolean;
  /**
   * Acknowledgements are sent together: with the next acquisition (due once half of the records
   * held are handled), or on their own after this long. Default 250 ms with implicit acceptance
   * (nobody awaits it), 5 ms with explicit acknowledgement (a handler may await `accept()`, and
   * would wait out the linger on every record). `flush()` sends them now.
   */
  ackLingerMs?: number;
  maxBytes?: number;
  keyType?: DataType;
  valueType?: DataType;
  /** Ends the iteration at the next record boundary (then the consumer closes). */
  signal?: AbortSignal;
  /** Default real time. */
  clock?: ConsumerClock;
  /** Told of acknowledgements the server refused or that could not be sent, when nobody awaits them (implicit ones). */
  onAcknowledgementError?: (record: QueueRecord, error: Error) => void;
}

/** An acknowledgement the server refused (`code` INVALID_RECORD_STATE: the lock passed, or the record was settled). */
export class QueueAcknowledgementError extends Error {
  override readonly name = "QueueAcknowledgementError";

  constructor(
    message: string,
    readonly code: string,
    readonly type: AcknowledgeType,
  ) {
    super(message);
  }
}

type RecordStatus = "waiting" | "handling" | "acknowledging" | "done" | "lost";

/**
 * A record handed to this member alone, under a lock: acknowledge it with `accept()` (processed),
 * `release()` (deliver it again, to any member) or `reject()` (archive it; with a dead-letter
 * topic, it is copied there). Each returns once the server answered; a refusal (the lock passed)
 * rejects with QueueAcknowledgementError.
 */
export class QueueRecord implements ConsumedRecord {
  readonly topicName: string;
  readonly partitionId: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Data | null;
  readonly value: Data | null;
  readonly headers: Header[];
  /** 1 the first time; raised by every delivery. */
  readonly deliveryCount: number;
  /** When the lock passes, on this consumer's clock (counted from when it asked for the record). */
  lockExpiresAt: number;
  /** @internal */ status: RecordStatus = "waiting";
  /** @internal */ renewing = false;
  /** @internal */ implicit = false;

  constructor(
    private readonly consumer: QueueConsumer,
    acquired: AcquiredRecord,
    askedAtMs: number,
  ) {
    this.topicName = acquired.topicName;
    this.partitionId = acquired.partitionId;
    this.offset = acquired.offset;
    this.timestamp = acquired.timestamp;
    this.key = acquired.key;
    this.value = acquired.value;
    this.headers = acquired.headers;
    this.deliveryCount = acquired.deliveryCount;
    this.lockExpiresAt = askedAtMs + acquired.lockRemainingMs;
  }

  accept(): Promise<void> {
    return this.consumer.settle(this, "ACCEPT");
  }

  release(): Promise<void> {
    return this.consumer.settle(this, "RELEASE");
  }

  reject(): Promise<void> {
    return this.consumer.settle(this, "REJECT");
  }

  /** Whether it was acknowledged (or given up) already. */
  get acknowledged(): boolean {
    return this.status === "acknowledging" || this.status === "done" || this.status === "lost";
  }
}

interface PendingAck {
  record: QueueRecord;
  type: AcknowledgeType;
  resolve: () => void;
  reject: (error: Error) => void;
}

const RETRY_DELAY_MS = 1_000;
const IDLE_POLL_MS = 100;
/**
 * How long an acknowledgement waits for company. A consumer asks for records again once half of
 * those it holds are handled — about when half as many acknowledgements are due — so they
 * usually travel together in one request; the linger only bounds the wait when none is due.
 */
const ACK_LINGER_MS_IMPLICIT = 250;
const ACK_LINGER_MS_EXPLICIT = 5;
const ACK_ATTEMPTS_MAX = 5;
const ACKS_PER_REQUEST_MAX = 1_000;

function isUnknownMember(error: unknown): boolean {
  return error instanceof SluiceHttpError && error.code === "UNKNOWN_MEMBER_ID";
}

/**
 * A member of a share group (ARCHITECTURE.md, "Queues"): iterate it to get records, each handed to
 * this member alone, under a lock.
 *
 * ```ts
 * const queue = client.queueConsumer({ groupId: "billing", topics: ["invoices"] });
 * for await (const record of queue) await handle(record);   // implicitly accepted at the next one
 * ```
 *
 * In the background it asks for the next records while the handler works (at most `maxRecords`
 * wait), renews the locks of the records it holds at half their length, keeps its session alive,
 * and sends acknowledgements together — with its next acquisition when one is due. A record whose
 * lock passed before it was handed out is dropped (it goes to another member); a handler that
 * throws ends the iteration, and `close()` then releases what it held, so nothing is lost.
 * Breaking out of the loop (or `close()`) leaves the group: records not acknowledged are released.
 */
export class QueueConsumer implements AsyncIterableIterator<QueueRecord> {
  readonly groupId: string;
  readonly memberId: string;
  private readonly client: SluiceClient;
  private readonly options: QueueConsumerOptions;
  private readonly clock: ConsumerClock;
  private readonly maxRecords: number;
  private readonly pollWaitMs: number;
  private readonly ackLingerMs: number;
  /**
   * No more than this many records waiting: ask for more. Drawn anew for each acquisition, between
   * a quarter and three quarters of `maxRecords`, so consumers handed records at the same moment
   * do not all ask again at the same moment (their requests would queue behind each other).
   */
  private lowWater: number;
  private readonly explicit: boolean;
  private readonly waiting: QueueRecord[] = [];
  private readonly handed = new Set<QueueRecord>();
  private pending: PendingAck[] = [];
  private readonly sending = new Set<Promise<void>>();
  /** The linger of the oldest acknowledgement waiting; stopped when they leave with a poll. */
  private flushTimer: AbortController | undefined;
  /** A linger ran out while no poll was in flight: the next poll goes now, whatever waits. */
  private pollNow = false;
  private started: Promise<void> | undefined;
  private loops: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** While closing, acknowledgements made before still go out. */
  private draining = false;
  private readonly stop = new AbortController();
  private wakeIteration: (() => void) | undefined;
  private wakeFetch: (() => void) | undefined;
  /** The group's lock duration (from the join). */
  private lockDurationMs = 30_000;
  private sessionTimeoutMs = 45_000;
  /** When the session wants renewing (half of it passed since the server last renewed it). */
  private sessionRenewAtMs = Number.POSITIVE_INFINITY;

  constructor(client: SluiceClient, options: QueueConsumerOptions) {
    if (!Array.isArray(options.topics) || options.topics.length === 0)
      throw new TypeError("a queue consumer needs at least one topic");
    this.client = client;
    this.options = options;
    this.groupId = options.groupId;
    this.memberId = options.memberId ?? globalThis.crypto.randomUUID();
    this.clock = options.clock ?? systemClock;
    this.maxRecords = options.maxRecords ?? 10;
    this.lowWater = this.drawLowWater();
    this.explicit = options.acknowledgement === "explicit";
    this.pollWaitMs = options.pollWaitMs ?? 5_000;
    this.ackLingerMs =
      options.ackLingerMs ?? (this.explicit ? ACK_LINGER_MS_EXPLICIT : ACK_LINGER_MS_IMPLICIT);
    options.signal?.addEventListener("abort", () => this.notify(), { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<QueueRecord>> {
    if (!this.explicit) {
      // Asking for the next record is done with the last one (implicit acknowledgement).
      for (const record of this.handed) {
        if (record.status !== "handling") continue;
        record.implicit = true;
        this.settle(record, "ACCEPT").catch(() => undefined);
      }
    }
    for (;;) {
      if (this.options.signal?.aborted) await this.close();
      if (this.closed) return { done: true, value: undefined };
      if (this.failure) throw this.failure.error;
      this.started ??= this.start();
      await this.started;
      const record = this.takeWaiting();
      if (record) return { done: false, value: record };
      // Closed or failed while this call was on its way here: nobody would wake it.
      if (this.closed || this.failure || this.options.signal?.aborted) continue;
      await new Promise<void>((resolve) => {
        this.wakeIteration = resolve;
      });
    }
  }

  /** Breaking out of `for await` lands here: the consumer closes. */
  async return(): Promise<IteratorResult<QueueRecord>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /**
   * Sends the acknowledgements still queued, then leaves the group, which releases every record
   * this member holds and has not acknowledged (they go to other members, delivery counts kept).
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** Sends the acknowledgements waiting to be sent now, and resolves once they were answered. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) await this.send(this.takePending());
    await Promise.allSettled([...this.sending]);
  }

  /** @internal Queues an acknowledgement of `record`; resolves when the server applied it. */
  settle(record: QueueRecord, type: AcknowledgeType): Promise<void> {
    if (type !== "RENEW") {
      if (record.status === "lost")
        return Promise.reject(
          new QueueAcknowledgementError(
            `record ${record.offset} of ${record.topicName}/${record.partitionId}: its lock passed before it was acknowledged`,
            "INVALID_RECORD_STATE",
            type,
          ),
        );
      if (record.status === "acknowledging" || record.status === "done")
        return Promise.reject(
          new Error(
            `record ${record.offset} of ${record.topicName}/${record.partitionId} was acknowledged already`,
          ),
        );
      if (this.closing && !this.draining)
        return Promise.reject(new Error("the queue consumer is closed; its records were released"));
      record.status = "acknowledging";
      this.handed.delete(record);
      const index = this.waiting.indexOf(record);
      if (index >= 0) this.waiting.splice(index, 1);
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, type, resolve, reject });
      // Usually they ride with the next acquisition, due once half of the records are handled;
      // else they go after the linger, or at once when as many are due as records are held.
      if (this.pending.length >= this.maxRecords) this.wakeFetch?.();
      this.scheduleFlush();
    });
  }

  // --- the iteration --------------------------------------------------------------------------

  private takeWaiting(): QueueRecord | undefined {
    while (this.waiting.length > 0) {
      const record = this.waiting.shift() as QueueRecord;
      this.wakeFetch?.();
      if (record.status !== "waiting") continue;
      // Its lock passed while it waited: it may be another member's by now; never hand it out.
      if (this.clock.now() >= record.lockExpiresAt) {
        record.status = "lost";
        continue;
      }
      record.status = "handling";
      this.handed.add(record);
      return record;
    }
    return undefined;
  }

  private notify(): void {
    const wake = this.wakeIteration;
    this.wakeIteration = undefined;
    wake?.();
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.notify();
  }

  private async start(): Promise<void> {
    await this.join();
    this.loops = [this.fetchLoop(), this.maintenanceLoop()];
  }

  private async join(): Promise<void> {
    const askedAtMs = this.clock.now();
    const joined = await this.client.joinShareGroup(this.groupId, {
      memberId: this.memberId,
      topics: this.options.topics,
      ...(this.options.configs === undefined ? {} : { configs: this.options.configs }),
      ...(this.options.sessionTimeoutMs === undefined
        ? {}
        : { sessionTimeoutMs: this.options.sessionTimeoutMs }),
      ...(this.options.clientId === undefined ? {} : { clientId: this.options.clientId }),
    });
    this.sessionTimeoutMs = joined.sessionTimeoutMs;
    this.sessionRenewAtMs = askedAtMs + joined.sessionRemainingMs / 2;
    const lock = Number(joined.configs["record.lock.duration.ms"]);
    if (Number.isFinite(lock) && lock > 0) this.lockDurationMs = lock;
  }

  // --- fetching -------------------------------------------------------------------------------

  /** Keeps up to `maxRecords` records waiting: asks for more once they fall to `lowWater`. */
  private async fetchLoop(): Promise<void> {
    while (!this.closed) {
      if (this.waiting.length > this.lowWater && !this.pollNow) {
        // Enough records wait, yet acknowledgements piled up (the handler settles records it
        // had earlier): they go on their own.
        if (this.pending.length >= this.maxRecords) void this.send(this.takePending());
        let onAbort = () => {};
        await new Promise<void>((resolve) => {
          this.wakeFetch = resolve;
          onAbort = () => resolve();
          this.stop.signal.addEventListener("abort", onAbort, { once: true });
        });
        // The signal lives as long as the consumer: a listener left on it per wait piles up, and
        // adding one walks them all.
        this.stop.signal.removeEventListener("abort", onAbort);
        this.wakeFetch = undefined;
        continue;
      }
      this.pollNow = false;
      this.lowWater = this.drawLowWater();
      const acks = this.takePending();
      // They leave now: the linger started for the oldest of them has nothing left to wait for,
      // and the next acknowledgement starts a linger of its own (else it would go out alone
      // well before the next poll, about one request per poll).
      if (this.pending.length === 0) this.stopFlushTimer();
      const askedAtMs = this.clock.now();
      // Each request gets a signal of its own, tied to the consumer's for as long as it runs:
      // fetch leaves its listeners on the signal it is given until that is collected.
      const request = new AbortController();
      const onStop = () => request.abort();
      this.stop.signal.addEventListener("abort", onStop, { once: true });
      try {
        const answer = await this.client.acquireRecords(this.groupId, this.memberId, {
          maxRecords: this.maxRecords - this.waiting.length,
          // Acknowledgements riding along are answered with the records: a poll carrying them
          // waits no longer than they would have lingered, else an empty topic holds their
          // answers for the whole long-poll. The next poll, without them, waits in full.
          timeoutMs: acks.length > 0 ? Math.min(this.pollWaitMs, this.ackLingerMs) : this.pollWaitMs,
          acknowledgements: acks.map((ack) => ({
            topicName: ack.record.topicName,
            partitionId: ack.record.partitionId,
            offset: ack.record.offset,
            type: ack.type,
          })),
          ...(this.options.maxBytes === undefined ? {} : { maxBytes: this.options.maxBytes }),
          ...(this.options.keyType === undefined ? {} : { keyType: this.options.keyType }),
          ...(this.options.valueType === undefined ? {} : { valueType: this.options.valueType }),
          signal: request.signal,
        });
        this.stop.signal.removeEventListener("abort", onStop);
        this.applyResults(acks, answer.acknowledgements, askedAtMs);
        this.sessionRenewAtMs = askedAtMs + answer.sessionRemainingMs / 2;
        for (const acquired of answer.records) this.waiting.push(new QueueRecord(this, acquired, askedAtMs));
        if (this.closed) return;
        this.notify();
        // Without a long-poll an empty answer comes at once: do not ask again at once.
        if (answer.records.length === 0 && this.pollWaitMs === 0)
          await this.clock.sleep(IDLE_POLL_MS, this.stop.signal);
      } catch (error) {
        this.stop.signal.removeEventListener("abort", onStop);
        // Acknowledgements that rode along go out on their own (they may have been applied: a
        // repeated ACCEPT or REJECT is accepted again while the window holds the record).
        this.requeue(acks);
        if (this.closed) return;
        if (isUnknownMember(error)) {
          try {
            await this.join();
          } catch (joinError) {
            if (!isTransientError(joinError)) return this.fail(joinError);
            await this.clock.sleep(RETRY_DELAY_MS, this.stop.signal);
          }
        } else if (isTransientError(error)) {
          await this.clock.sleep(RETRY_DELAY_MS, this.stop.signal);
        } else {
          return this.fail(error);
        }
      }
    }
  }

  private drawLowWater(): number {
    const quarter = this.maxRecords / 4;
    return Math.floor(quarter + (this.clock.random?.() ?? Math.random()) * 2 * quarter);
  }

  // --- acknowledgements -----------------------------------------------------------------------

  private takePending(): PendingAck[] {
    const taken = this.pending.splice(0, ACKS_PER_REQUEST_MAX);
    // A record being settled needs no renewal (and may be named once per request).
    const settling = new Set(taken.filter((ack) => ack.type !== "RENEW").map((ack) => ack.record));
    return taken.filter((ack) => {
      if (ack.type !== "RENEW" || !settling.has(ack.record)) return true;
      ack.record.renewing = false;
      ack.resolve();
      return false;
    });
  }

  private requeue(acks: PendingAck[]): void {
    if (acks.length === 0) return;
    this.pending.unshift(...acks);
    this.scheduleFlush();
  }

  private stopFlushTimer(): void {
    this.flushTimer?.abort();
    this.flushTimer = undefined;
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    const timer = new AbortController();
    this.flushTimer = timer;
    void (async () => {
      await this.clock.sleep(this.ackLingerMs, timer.signal).catch(() => undefined);
      // Stopped: what it waited for left with a poll.
      if (this.flushTimer !== timer) return;
      this.flushTimer = undefined;
      if (this.pending.length === 0) return;
      if (this.wakeFetch && this.waiting.length < this.maxRecords) {
        // No poll in flight and room for records: poll now, early, and the acknowledgements
        // ride it (a request that also tops up the records, instead of one for them alone).
        this.pollNow = true;
        this.wakeFetch();
        return;
      }
      // What waited out the linger goes, once: acknowledgements made while it travels wait for
      // the next acquisition or a linger of their own, rather than chasing it one round trip
      // after another (which sent most of them alone).
      await this.send(this.takePending());
      if (this.pending.length > 0) this.scheduleFlush();
    })();
  }

  private send(acks: PendingAck[]): Promise<void> {
    const sending = this.sendNow(acks).finally(() => this.sending.delete(sending));
    this.sending.add(sending);
    return sending;
  }

  private async sendNow(acks: PendingAck[]): Promise<void> {
    const wire = acks.map((ack) => ({
      topicName: ack.record.topicName,
      partitionId: ack.record.partitionId,
      offset: ack.record.offset,
      type: ack.type,
    }));
    for (let attempt = 1; ; attempt++) {
      const sentAtMs = this.clock.now();
      try {
        const results = await this.client.acknowledgeRecords(this.groupId, this.memberId, wire);
        this.applyResults(acks, results, sentAtMs);
        return;
      } catch (error) {
        if (isTransientError(error) && attempt < ACK_ATTEMPTS_MAX) {
          await this.clock.sleep(RETRY_DELAY_MS);
          continue;
        }
        for (const ack of acks) this.finish(ack, error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
  }

  private applyResults(acks: PendingAck[], results: AcknowledgementResult[], sentAtMs: number): void {
    acks.forEach((ack, index) => {
      const result = results[index];
      if (!result) {
        this.finish(ack, new Error("the server answered fewer acknowledgement results than were sent"));
        return;
      }
      if (result.acknowledged) {
        if (ack.type === "RENEW" && result.lockRemainingMs !== null)
          ack.record.lockExpiresAt = sentAtMs + result.lockRemainingMs;
        this.finish(ack);
        return;
      }
      this.finish(
        ack,
        new QueueAcknowledgementError(
          result.message ?? "acknowledgement refused",
          result.code ?? "",
          ack.type,
        ),
      );
    });
  }

  private finish(ack: PendingAck, error?: Error): void {
    const { record } = ack;
    if (ack.type === "RENEW") {
      record.renewing = false;
      if (error instanceof QueueAcknowledgementError && record.status !== "done") {
        // The lock is gone: a waiting record is never handed out, a handled one cannot be acknowledged.
        if (record.status === "waiting" || record.status === "handling") record.status = "lost";
        this.handed.delete(record);
      }
      if (error) ack.reject(error);
      else ack.resolve();
      return;
    }
    record.status = error ? "lost" : "done";
    if (!error) {
      ack.resolve();
      return;
    }
    if (record.implicit) this.options.onAcknowledgementError?.(record, error);
    ack.reject(error);
  }

  // --- locks and the session ------------------------------------------------------------------

  /** Renews locks past half their length and keeps the session alive while the handler works. */
  private async maintenanceLoop(): Promise<void> {
    // A failed consumer renews nothing: its records go to others when their locks pass.
    while (!this.closed && !this.failure) {
      const intervalMs = Math.max(50, Math.min(this.lockDurationMs / 4, this.sessionTimeoutMs / 6, 1_000));
      await this.clock.sleep(intervalMs, this.stop.signal);
      if (this.closed) return;
      const nowMs = this.clock.now();
      if (this.options.renewLocks ?? true) {
        for (const record of [...this.waiting, ...this.handed]) {
          if (record.renewing || (record.status !== "waiting" && record.status !== "handling")) continue;
          if (record.lockExpiresAt - nowMs > this.lockDurationMs / 2) continue;
          record.renewing = true;
          this.settle(record, "RENEW").catch(() => undefined);
        }
      }
      if (nowMs >= this.sessionRenewAtMs) {
        try {
          const answer = await this.client.shareGroupHeartbeat(this.groupId, this.memberId);
          this.sessionRenewAtMs = nowMs + answer.sessionRemainingMs / 2;
        } catch (error) {
          if (isUnknownMember(error)) await this.join().catch(() => undefined);
          else if (!isTransientError(error)) this.fail(error);
        }
      }
    }
  }

  // --- leaving --------------------------------------------------------------------------------

  private async shutDown(): Promise<void> {
    const started = this.started;
    this.closed = true;
    this.stop.abort();
    this.notify();
    this.wakeFetch?.();
    await Promise.allSettled(this.loops);
    if (!started) return;
    try {
      await started;
    } catch {
      return; // never joined: nothing to leave
    }
    // Acknowledgements already made go out before the member leaves (leaving releases the rest).
    this.draining = true;
    // Not waiting out the linger: what is pending goes now, and the timer then finds nothing.
    while (this.pending.length > 0 || this.sending.size > 0) {
      if (this.pending.length > 0) await this.send(this.takePending());
      await Promise.allSettled([...this.sending]);
    }
    this.draining = false;
    for (const record of [...this.waiting, ...this.handed]) record.status = "lost";
    this.waiting.length = 0;
    this.handed.clear();
    try {
      await this.client.leaveShareGroup(this.groupId, this.memberId);
    } catch (error) {
      // Unreachable: the locks pass on their own and the records go to other members then.
      if (!isTransientError(error)) throw error;
    }
  }
}
