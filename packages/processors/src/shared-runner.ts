import {
  type Clock,
  ConflictError,
  FencedError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@sluice/core";
import type { Engine, ProduceRecord, Topic } from "@sluice/engine";
import type { ProcessorBatch } from "@sluice/processor-sdk";
import type { Acknowledgement, AcknowledgeType, AcquiredRecord, ShareGroups } from "@sluice/queues";
import { deadLetter } from "./dead-letter.js";
import { compileFilter } from "./filter.js";
import type { HandlerInvoker } from "./handlers/invoker.js";
import type { HandlerResult } from "./handlers/result.js";
import { type RoutedOutput, routeOutput } from "./outputs.js";
import { isSpent, retryDelayMs } from "./retry.js";
import type { ProcessorEvents, RunOutcome } from "./runner.js";
import { sharedDeadLetterKey, sharedGroupId, sharedOutputKey } from "./shared-group.js";
import type { ProcessorStore, StoredProcessor } from "./store.js";
import type { Turns } from "./turns.js";

export interface SharedRunnerOptions {
  engine: Engine;
  clock: Clock;
  handlers: HandlerInvoker;
  store: ProcessorStore;
  shareGroups: ShareGroups;
  /** This runtime's member id in every shared processor's group. */
  memberId: string;
  /** How long an idle worker waits for records before it ends. Default 0. */
  lingerMs?: number;
  /** How often the runner reads its definition again (pause, delete). Default 1 s. */
  definitionRefreshMs?: number;
  /** Shared with the other runners: each acquisition waits for one (turns.ts). Default none. */
  turns?: Turns;
  events?: ProcessorEvents;
}

/** Tries of a store call that answered "unavailable" before a worker gives its records up. */
const STORE_TRIES_MAX = 5;
/** A lock held through a backoff is renewed this long before it would pass. */
const RENEW_MARGIN_MS = 5_000;

type Outcome = { ok: true; result: HandlerResult } | { ok: false; error: string };

/** What one handler call's records come to: each record settles one way. */
interface Settlement {
  accept: AcquiredRecord[];
  reject: AcquiredRecord[];
  /** Failed, with attempts left: given back when their backoff has passed. */
  retry: { record: AcquiredRecord; atMs: number }[];
}

/**
 * Runs one shared processor in this runtime (ARCHITECTURE.md, "Shared processors"): up to
 * `parallelism` workers, each acquiring a batch from the processor's share group, calling the
 * handler per source partition, appending outputs and dead letters, then acknowledging — ACCEPT
 * once a record's outputs (or its dead letter) landed, RELEASE after its backoff to retry it on
 * another delivery, REJECT when spent with no dead-letter topic. Records are not ordered; any
 * number of runtimes run the same processor at once.
 */
export class SharedRunner {
  private readonly clock: Clock;
  private readonly groupId: string;
  private readonly label: { processor: string };
  private definition: StoredProcessor;
  private filter: ReturnType<typeof compileFilter>;
  private definitionReadAtMs: number;
  private readonly topics = new Map<string, Topic | undefined>();
  private topicsReadAtMs = Number.NEGATIVE_INFINITY;

  private workers = 0;
  private readonly working = new Set<Promise<void>>();
  private readonly holds = new Set<Promise<void>>();
  private readonly stopController = new AbortController();
  private outcome: RunOutcome | undefined;
  private deadlineMs = Number.POSITIVE_INFINITY;
  private joined = false;
  private allDone: (() => void) | undefined;

  constructor(
    private readonly options: SharedRunnerOptions,
    definition: StoredProcessor,
  ) {
    this.clock = options.clock;
    this.definition = definition;
    this.filter = compileFilter(definition.spec.filter);
    this.definitionReadAtMs = options.clock.now();
    this.groupId = sharedGroupId(definition.uid);
    this.label = { processor: definition.spec.name };
  }

  /** Workers running now (tests, describe). */
  get activeWorkers(): number {
    return this.workers;
  }

  /** Records may be there (a commit to a source partition, a sweep): make sure a worker looks. */
  wake(): void {
    if (this.outcome === undefined && this.workers === 0) this.spawn();
  }

  /** Finish the calls in flight, acknowledge them, give back records waiting for a retry, leave. */
  stop(): void {
    this.end("stopped");
  }

  /**
   * Runs until no worker finds records (and no record waits for its retry here), the processor is
   * paused or deleted, or `deadlineMs` comes. Stopping, pausing and deleting leave the group.
   */
  async run(options: { deadlineMs?: number } = {}): Promise<RunOutcome> {
    this.deadlineMs = options.deadlineMs ?? Number.POSITIVE_INFINITY;
    const finished = new Promise<void>((resolve) => {
      this.allDone = resolve;
    });
    if (this.definition.state === "paused") this.end("paused");
    else this.spawn();
    this.maybeFinished();
    await finished;
    const outcome = this.outcome ?? "drained";
    // Leaving an unknown member does nothing: leave even if this instance never joined, since an
    // earlier runner of this runtime (same member id) may have.
    if (outcome !== "drained") {
      await this.options.shareGroups.leave(this.groupId, this.options.memberId).catch(() => undefined);
    }
    return outcome;
  }

  private end(outcome: RunOutcome): void {
    this.outcome ??= outcome;
    this.stopController.abort();
  }

  private spawn(): void {
    if (this.workers >= this.parallelism()) return;
    this.workers++;
    const work = this.work()
      .catch((error: unknown) => {
        this.options.events?.runnerError?.({ ...this.label, topic: "", partition: -1, error });
        // A worker that failed gives up for now: the sweep starts the runner again.
      })
      .finally(() => {
        this.workers--;
        this.working.delete(work);
        this.maybeFinished();
      });
    this.working.add(work);
  }

  private maybeFinished(): void {
    if (this.workers === 0 && this.holds.size === 0) this.allDone?.();
  }

  private parallelism(): number {
    const ordering = this.definition.spec.ordering;
    return ordering.kind === "shared" ? ordering.parallelism : 1;
  }

  private stopping(): boolean {
    return this.stopController.signal.aborted || this.clock.now() >= this.deadlineMs;
  }

  private async work(): Promise<void> {
    let failures = 0;
    while (!this.stopping()) {
      // In a process with fast stores, a worker's steps would otherwise all run in microtasks.
      await this.options.turns?.take();
      if (!(await this.refreshDefinition())) return;
      const spec = this.definition.spec;
      let records: AcquiredRecord[];
      try {
        await this.ensureJoined();
        if (!this.joined) return;
        const waitMs = Math.max(0, Math.min(this.options.lingerMs ?? 0, this.deadlineMs - this.clock.now()));
        ({ records } = await this.options.shareGroups.acquire(this.groupId, this.options.memberId, {
          maxRecords: spec.batchRecords,
          maxBytes: spec.batchBytes,
          timeoutMs: waitMs,
          signal: this.stopController.signal,
        }));
        failures = 0;
      } catch (error) {
        if (error instanceof FencedError) {
          // Our session ended (a long pause, a crash of the store's answers): join again.
          this.joined = false;
          continue;
        }
        if (error instanceof NotFoundError) {
          // The group is gone: the processor was deleted (or its topics were).
          this.end("deleted");
          return;
        }
        if (error instanceof UnavailableError && ++failures < STORE_TRIES_MAX) continue;
        throw error;
      }
      if (records.length === 0) return;
      // Records came: let the other workers of the parallelism look too.
      while (this.workers < this.parallelism() && !this.stopping()) this.spawn();
      await this.handle(records);
    }
  }

  private async ensureJoined(): Promise<void> {
    if (this.joined) return;
    // A join creates a group that does not exist, and deleting the processor deletes its group
    // after its definition: read the definition again first, so a runner that read it before the
    // deletion does not bring the group back (only one that reads it in the instant between the
    // two can leave a group behind, which nothing uses again: the name is the incarnation's).
    this.definitionReadAtMs = Number.NEGATIVE_INFINITY;
    if (!(await this.refreshDefinition())) return;
    await this.options.shareGroups.join({
      groupId: this.groupId,
      memberId: this.options.memberId,
      topics: this.definition.spec.topics,
      clientId: `processor ${this.definition.spec.name}`,
    });
    this.joined = true;
  }

  /** False when the processor is paused, deleted or was recreated: the runner ends. */
  private async refreshDefinition(): Promise<boolean> {
    const nowMs = this.clock.now();
    if (nowMs - this.definitionReadAtMs < (this.options.definitionRefreshMs ?? 1_000)) return true;
    this.definitionReadAtMs = nowMs;
    const current = await this.options.store.get(this.definition.spec.name);
    if (!current || current.uid !== this.definition.uid) {
      this.end("deleted");
      return false;
    }
    if (current.state === "paused") {
      this.end("paused");
      return false;
    }
    this.definition = current;
    this.filter = compileFilter(current.spec.filter);
    return true;
  }

  private async topic(name: string): Promise<Topic | undefined> {
    if (this.clock.now() - this.topicsReadAtMs > (this.options.definitionRefreshMs ?? 1_000)) {
      this.topics.clear();
      this.topicsReadAtMs = this.clock.now();
    }
    if (!this.topics.has(name)) {
      try {
        this.topics.set(name, await this.options.engine.describeTopic(name));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        this.topics.set(name, undefined);
      }
    }
    return this.topics.get(name);
  }

  /** One acquisition: a handler call per source partition, concurrently. */
  private async handle(records: AcquiredRecord[]): Promise<void> {
    const byPartition = new Map<string, AcquiredRecord[]>();
    for (const record of records) {
      const id = `${record.topic}\u0000${record.partition}`;
      byPartition.set(id, [...(byPartition.get(id) ?? []), record]);
    }
    await Promise.all(
      [...byPartition.values()].map((batch) => this.handleBatch(batch.sort((a, b) => a.offset - b.offset))),
    );
  }

  private async handleBatch(acquired: AcquiredRecord[]): Promise<void> {
    const spec = this.definition.spec;
    const { topic: topicName, partition } = acquired[0]!;
    const source = await this.topic(topicName);
    if (!source) return; // Gone: its share-partitions went with it.
    const settlement: Settlement = { accept: [], reject: [], retry: [] };
    const deadLetters: { record: AcquiredRecord; attempts: number; error: string }[] = [];
    const toCall: AcquiredRecord[] = [];
    let filtered = 0;
    for (const record of acquired) {
      if (record.deliveryCount > spec.retry.maxAttempts) {
        // Its last attempt got no answer before the lock passed (the holder died): spent.
        deadLetters.push({
          record,
          attempts: record.deliveryCount - 1,
          error: `no answer on delivery ${record.deliveryCount - 1}: its holder stopped before acknowledging`,
        });
      } else if (!this.filter(record.record)) {
        settlement.accept.push(record);
        filtered++;
      } else toCall.push(record);
    }

    let outputs: RoutedOutput[] = [];
    let processed = 0;
    if (toCall.length > 0) {
      const outcome = await this.call(source, toCall);
      const interpreted = await this.interpret(toCall, outcome, partition);
      const done = toCall.filter((record) => !interpreted.failed.has(record.offset));
      outputs = interpreted.outputs;
      if (done.length > 0) {
        const appended = await this.appendOutputs(source, partition, done, outputs);
        if (appended.ok) {
          settlement.accept.push(...done);
          processed = done.length;
        } else {
          outputs = [];
          for (const record of done) interpreted.failed.set(record.offset, appended.error);
        }
      }
      const nowMs = this.clock.now();
      for (const record of toCall) {
        const error = interpreted.failed.get(record.offset);
        if (error === undefined) continue;
        const attempts = record.deliveryCount;
        const spent = isSpent(spec.retry, attempts, record.record.timestamp, nowMs);
        this.options.events?.recordFailed?.({
          ...this.label,
          topic: topicName,
          partition,
          offset: record.offset,
          attempts,
          error,
          spent,
        });
        if (spent) deadLetters.push({ record, attempts, error });
        else settlement.retry.push({ record, atMs: nowMs + retryDelayMs(spec.retry, attempts) });
      }
    }

    let deadLettered = 0;
    for (const letter of deadLetters) {
      const written = await this.writeDeadLetter(source, letter.record, letter.attempts, letter.error);
      if (written === "written") {
        settlement.accept.push(letter.record);
        deadLettered++;
      } else if (written === "no-topic") {
        // Only counted, as ordered processors do without a dead-letter topic.
        settlement.reject.push(letter.record);
        deadLettered++;
      } else {
        // The dead-letter topic is gone: try again later, on another delivery.
        settlement.retry.push({ record: letter.record, atMs: this.clock.now() + spec.retry.maxBackoffMs });
      }
    }

    await this.acknowledge([
      ...settlement.accept.map((record) => ack(record, "ACCEPT")),
      ...settlement.reject.map((record) => ack(record, "REJECT")),
      ...settlement.retry
        .filter((retry) => retry.atMs <= this.clock.now())
        .map((retry) => ack(retry.record, "RELEASE")),
    ]);
    const later = settlement.retry.filter((retry) => retry.atMs > this.clock.now());
    if (later.length > 0) this.hold(later);
    this.options.events?.committed?.({
      ...this.label,
      topic: topicName,
      partition,
      processed,
      deadLettered,
      filtered,
      outputs: outputs.length,
      checkpoint: -1, // No checkpoint: the share group's start offset is its counterpart.
      doneTimestamps: settlement.accept.map((record) => record.record.timestamp),
    });
  }

  private async call(source: Topic, records: AcquiredRecord[]): Promise<Outcome> {
    const spec = this.definition.spec;
    const controller = new AbortController();
    const timer = this.clock.setTimer(spec.retry.timeoutMs, () =>
      controller.abort(new Error(`the handler did not answer within ${spec.retry.timeoutMs} ms`)),
    );
    const first = records[0]!;
    const batch: ProcessorBatch = {
      processor: spec.name,
      topic: first.topic,
      partition: first.partition,
      attempt: Math.max(...records.map((record) => record.deliveryCount)),
      records: records.map((record) => record.record),
    };
    const prefix = `${this.definition.uid}:${source.topicId}:${first.partition}:`;
    const calledAtMs = this.clock.now();
    const invoked = this.options.handlers.invoke({
      handler: spec.handler,
      batch,
      idempotencyKey: (offset) => `${prefix}${offset}`,
      signal: controller.signal,
    });
    invoked.catch(() => undefined);
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
    const outcome = await Promise.race([invoked, aborted]).then(
      (result): Outcome => ({ ok: true, result }),
      (error: unknown): Outcome => ({ ok: false, error: errorMessage(error) }),
    );
    timer.cancel();
    this.options.events?.handlerCalled?.({
      ...this.label,
      topic: first.topic,
      partition: first.partition,
      records: records.length,
      durationMs: this.clock.now() - calledAtMs,
      failed: !outcome.ok,
      namedFailures: outcome.ok ? outcome.result.failures.length : 0,
      iteratorAgeMs: Math.max(0, calledAtMs - records[records.length - 1]!.record.timestamp),
    });
    return outcome;
  }

  /**
   * The handler's answer: outputs routed, and failed records with why. Without order there is no
   * "first failure": only the records named (or every record, when the whole call failed) failed.
   */
  private async interpret(
    records: AcquiredRecord[],
    outcome: Outcome,
    partition: number,
  ): Promise<{ outputs: RoutedOutput[]; failed: Map<number, string> }> {
    const spec = this.definition.spec;
    const failed = new Map<number, string>();
    const all = (error: string) => {
      for (const record of records) failed.set(record.offset, error);
      return { outputs: [], failed };
    };
    if (!outcome.ok) return all(outcome.error);
    const offsets = new Set(records.map((record) => record.offset));
    for (const failure of outcome.result.failures) {
      if (!offsets.has(failure))
        return all(`the handler named offset ${failure} as failed, which is not in the batch`);
      failed.set(
        failure,
        outcome.result.errors.get(failure) ?? `the handler reported offset ${failure} as failed`,
      );
    }
    if (failed.size > 0 && outcome.result.outputs.some((output) => output.sourceOffset === undefined)) {
      return all(
        "the result names failures, so every output must say which record it comes from (sourceOffset)",
      );
    }
    const topics = new Map<string, Topic | undefined>();
    for (const name of spec.outputTopics) topics.set(name, await this.topic(name));
    const routed: RoutedOutput[] = [];
    for (const [index, output] of outcome.result.outputs.entries()) {
      if (output.sourceOffset !== undefined && !offsets.has(output.sourceOffset))
        return all(`outputs[${index}].sourceOffset ${output.sourceOffset} is not an offset of the batch`);
      const routing = routeOutput(output, index, spec.outputTopics, topics, partition);
      if (typeof routing !== "string") routed.push(routing);
      else if (output.sourceOffset !== undefined) failed.set(output.sourceOffset, routing);
      else return all(routing);
    }
    // Outputs of failed records come again with their retry.
    return {
      outputs: routed.filter(
        (output) => output.sourceOffset === undefined || !failed.has(output.sourceOffset),
      ),
      failed,
    };
  }

  /** The done records' outputs, one append per output topic, keyed by this delivery. */
  private async appendOutputs(
    source: Topic,
    partition: number,
    done: AcquiredRecord[],
    outputs: RoutedOutput[],
  ): Promise<{ ok: true } | { ok: false; error: string }> {
    const byTopic = new Map<string, ProduceRecord[]>();
    for (const output of outputs)
      byTopic.set(output.topic, [...(byTopic.get(output.topic) ?? []), output.record]);
    for (const [topic, records] of byTopic) {
      const idempotencyKey = sharedOutputKey(this.definition, source.topicId, partition, done, topic);
      try {
        await this.withRetries(async () => {
          // Each chunk has its outcome; one that failed fails the append (retried under the same
          // key, which answers the chunks that did land with their first offsets).
          const outcomes = await this.options.engine.appendInChunks({ topic, records, idempotencyKey });
          const failed = outcomes.find((outcome) => !outcome.ok);
          if (failed && !failed.ok) throw failed.error;
        });
      } catch (error) {
        if (error instanceof InvalidArgumentError || error instanceof NotFoundError)
          return { ok: false, error: `outputs to ${topic}: ${errorMessage(error)}` };
        throw error;
      }
    }
    return { ok: true };
  }

  private async writeDeadLetter(
    source: Topic,
    record: AcquiredRecord,
    attempts: number,
    error: string,
  ): Promise<"written" | "no-topic" | "missing"> {
    const name = this.definition.spec.deadLetterTopic;
    if (name === null) return "no-topic";
    const topic = await this.topic(name);
    if (!topic) return "missing";
    const letter = deadLetter(
      { ...this.label, topic: record.topic, partition: record.partition },
      record.record,
      attempts,
      error,
      topic.partitions,
    );
    const idempotencyKey = sharedDeadLetterKey(
      this.definition,
      source.topicId,
      record.partition,
      record.offset,
    );
    try {
      await this.withRetries(() =>
        this.options.engine.append({ topic: name, records: [letter], idempotencyKey }),
      );
    } catch (caught) {
      if (caught instanceof NotFoundError) return "missing";
      // The key names this record: an earlier delivery wrote its dead letter (with that
      // delivery's error text, so not the same request). It has one; it gets no second.
      if (caught instanceof ConflictError && /already used for a different request/.test(caught.message))
        return "written";
      throw caught;
    }
    return "written";
  }

  /**
   * Keeps failed records locked to this member until their backoff has passed (renewing the lock
   * when the backoff outlasts it), then releases them for another delivery. A runtime that stops
   * first gives them back at once.
   */
  private hold(retries: { record: AcquiredRecord; atMs: number }[]): void {
    const holding = (async () => {
      let lockDeadlineMs = Math.min(...retries.map((retry) => retry.record.lockDeadlineMs));
      let waiting = retries;
      while (waiting.length > 0) {
        const untilMs = Math.min(
          ...waiting.map((retry) => retry.atMs),
          lockDeadlineMs - RENEW_MARGIN_MS,
          this.deadlineMs,
        );
        await this.clock
          .sleep(Math.max(0, untilMs - this.clock.now()), this.stopController.signal)
          .catch(() => undefined);
        const nowMs = this.clock.now();
        const due = this.stopping() ? waiting : waiting.filter((retry) => retry.atMs <= nowMs);
        waiting = waiting.filter((retry) => !due.includes(retry));
        if (due.length > 0) {
          await this.acknowledge(due.map((retry) => ack(retry.record, "RELEASE")));
          // Given back: a worker takes them again (this runtime's or another's).
          if (!this.stopping()) this.wake();
        }
        if (waiting.length > 0 && nowMs >= lockDeadlineMs - RENEW_MARGIN_MS) {
          const renewed = await this.acknowledge(waiting.map((retry) => ack(retry.record, "RENEW")));
          // A lock that could not be renewed has passed: the record is someone else's to deliver.
          waiting = waiting.filter((_, index) => renewed[index] !== undefined);
          lockDeadlineMs = Math.min(...renewed.filter((deadline) => deadline !== undefined));
        }
      }
    })()
      .catch((error: unknown) => {
        this.options.events?.runnerError?.({ ...this.label, topic: "", partition: -1, error });
      })
      .finally(() => {
        this.holds.delete(holding);
        this.maybeFinished();
      });
    this.holds.add(holding);
  }

  /**
   * Acknowledges, retrying a store that was unavailable (an ACCEPT that landed is accepted again).
   * A refusal — the lock passed, another member holds the record — is not an error: the record
   * is someone else's now. Returns each RENEW's new deadline (undefined when refused).
   */
  private async acknowledge(acknowledgements: Acknowledgement[]): Promise<(number | undefined)[]> {
    if (acknowledgements.length === 0) return [];
    const results = await this.withRetries(() =>
      this.options.shareGroups.acknowledge(this.groupId, this.options.memberId, acknowledgements),
    );
    return results.map((result) => (result.outcome.ok ? (result.outcome.lockDeadlineMs ?? 0) : undefined));
  }

  private async withRetries<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof UnavailableError) || attempt >= STORE_TRIES_MAX) throw error;
      }
    }
  }
}

function ack(record: AcquiredRecord, type: AcknowledgeType): Acknowledgement {
  return { topic: record.topic, partition: record.partition, offset: record.offset, type };
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
