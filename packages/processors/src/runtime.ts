import { randomBytes } from "node:crypto";
import { type Clock, NotFoundError, repeatEvery, systemClock, type Timer } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import type { MetadataStore } from "@sluice/storage";
import type { HandlerInvoker } from "./handlers/invoker.js";
import { progressKey } from "./keys.js";
import { progressFromItem } from "./progress.js";
import { PartitionRunner, type ProcessorEvents, type RunOutcome } from "./runner.js";
import { ProcessorStore, type StoredProcessor } from "./store.js";
import type { Turns } from "./turns.js";

export interface ProcessorRuntimeOptions {
  engine: Engine;
  metadata: MetadataStore;
  handlers: HandlerInvoker;
  clock?: Clock;
  /** The lease owner of this runtime's runners; default random, unique per incarnation. */
  runnerId?: string;
  leaseTtlMs?: number;
  /** How long a drained runner keeps its lease for more records. Default 0. */
  lingerMs?: number;
  retryHoldMs?: number;
  definitionRefreshMs?: number;
  /** The periodic sweep of `start()`. Default 1 s. */
  sweepIntervalMs?: number;
  /** Shared by the runners: each step of each runner takes one (turns.ts). Default none. */
  turns?: Turns;
  events?: ProcessorEvents & RuntimeEvents;
}

export interface RuntimeEvents {
  /** Per processor, after every sweep: the total lag of its partitions. */
  lag?(event: { processor: string; lag: number; partitions: number }): void;
  /** Per source partition, at every sweep: high watermark − checkpoint. */
  partitionLag?(event: { processor: string; topic: string; partition: number; lag: number }): void;
  sweepError?(error: unknown): void;
}

interface Source {
  processor: StoredProcessor;
  topic: string;
}

/**
 * Runs processors (ARCHITECTURE.md, "Processors", "Triggering"): a wake-up names a source
 * partition, and the runtime runs a PartitionRunner for every processor of that topic unless
 * one runs here already (which is then told to look again). The sweep wakes every partition
 * whose checkpoint is below its high watermark. The local server drives it with the engine's
 * commit notifier and a timer (`start`); the dispatcher Lambda with DynamoDB Streams records and
 * an EventBridge schedule (`wake`, `sweep`, `settle`). The runners are the same.
 */
export class ProcessorRuntime {
  readonly runnerId: string;
  readonly store: ProcessorStore;
  private readonly clock: Clock;
  private readonly running = new Map<string, { runner: PartitionRunner; done: Promise<void> }>();
  /** Source topic id → processors reading it; refreshed by every sweep and `refresh`. */
  private byTopicId = new Map<string, Source[]>();
  private topicNames = new Map<string, string>();
  private sweepTimer: Timer | undefined;
  private stopUnsubscribe: (() => void) | undefined;
  private stopping = false;
  private deadlineMs = Number.POSITIVE_INFINITY;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly options: ProcessorRuntimeOptions) {
    this.clock = options.clock ?? systemClock;
    this.runnerId = options.runnerId ?? `runner-${randomBytes(8).toString("hex")}`;
    this.store = new ProcessorStore(options.metadata);
  }

  /** Local triggering: commits in this process wake their partitions; a sweep every interval. */
  start(): void {
    this.stopUnsubscribe = this.options.engine.onCommit((topicId, partition) =>
      this.wake(topicId, partition),
    );
    this.sweepTimer = repeatEvery(this.clock, this.options.sweepIntervalMs ?? 1_000, () => {
      void this.sweep();
    });
    void this.sweep();
  }

  /** Stops the triggers and every runner: calls in flight finish, their results are committed, leases released. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sweepTimer?.cancel();
    this.stopUnsubscribe?.();
    await this.sweeping;
    for (const { runner } of this.running.values()) runner.stop();
    await Promise.all([...this.running.values()].map((entry) => entry.done));
  }

  /** No runner of this runtime starts a batch after `deadlineMs` (a Lambda's remaining time). */
  setDeadline(deadlineMs: number): void {
    this.deadlineMs = deadlineMs;
  }

  /** Resolves once no runner of this runtime is running. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((entry) => entry.done));
  }

  /** A commit to `partition` of the topic with this id: run its processors there. */
  wake(topicId: string, partition: number): void {
    const sources = this.byTopicId.get(topicId);
    if (!sources) return;
    for (const source of sources) this.runPartition(source.processor, source.topic, partition);
  }

  /** Wakes every processor of the topic named `topic` on `partition`. */
  async wakeByName(topic: string, partition: number): Promise<void> {
    const topicId = (await this.options.engine.describeTopic(topic)).topicId;
    if (!this.byTopicId.has(topicId)) await this.refresh();
    this.wake(topicId, partition);
  }

  /** Reads the processors again (after one was created, changed, resumed or deleted). */
  async refresh(): Promise<StoredProcessor[]> {
    const processors = await this.store.list();
    const byTopicId = new Map<string, Source[]>();
    const names = new Map<string, string>();
    for (const processor of processors) {
      for (const topic of processor.spec.topics) {
        let topicId: string;
        try {
          topicId = (await this.options.engine.describeTopic(topic)).topicId;
        } catch (error) {
          if (error instanceof NotFoundError) continue;
          throw error;
        }
        names.set(topicId, topic);
        byTopicId.set(topicId, [...(byTopicId.get(topicId) ?? []), { processor, topic }]);
      }
    }
    this.byTopicId = byTopicId;
    this.topicNames = names;
    return processors;
  }

  /**
   * Wakes every partition with lag (checkpoint below the high watermark) of every running
   * processor, so no commit goes unprocessed even when its wake-up was lost; reports lag.
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    if (this.stopping) return;
    try {
      const processors = await this.refresh();
      for (const processor of processors) {
        let lag = 0;
        let partitions = 0;
        for (const topic of processor.spec.topics) {
          let count: number;
          try {
            count = (await this.options.engine.describeTopic(topic)).partitions;
          } catch (error) {
            if (error instanceof NotFoundError) continue;
            throw error;
          }
          for (let partition = 0; partition < count; partition++) {
            partitions++;
            const [item, offsets] = await Promise.all([
              this.options.metadata.get(progressKey(processor.spec.name, topic, partition)),
              this.options.engine.partitionOffsets(topic, partition),
            ]);
            const progress = progressFromItem(item);
            const started = progress.uid === processor.uid;
            const behind = offsets.highWatermark - (started ? progress.checkpoint : 0);
            if (started) {
              lag += Math.max(0, behind);
              this.options.events?.partitionLag?.({
                processor: processor.spec.name,
                topic,
                partition,
                lag: Math.max(0, behind),
              });
            }
            // Under partition ordering, nothing new since the last commit and the retry of its
            // first record later: nothing to do yet (under key ordering other keys may wait).
            const waiting =
              started &&
              processor.spec.ordering.kind === "partition" &&
              offsets.highWatermark <= progress.frontier &&
              progress.retries.size > 0 &&
              [...progress.retries.values()].every((retry) => retry.nextAttemptAtMs > this.clock.now());
            if (processor.state === "running" && (!started || behind > 0) && !waiting) {
              this.runPartition(processor, topic, partition);
            }
          }
        }
        this.options.events?.lag?.({ processor: processor.spec.name, lag, partitions });
      }
    } catch (error) {
      this.options.events?.sweepError?.(error);
    }
  }

  /** Runs (or wakes) the runner of one processor on one partition. */
  runPartition(processor: StoredProcessor, topic: string, partition: number): void {
    if (this.stopping || processor.state !== "running") return;
    const id = `${processor.spec.name}\u0000${topic}\u0000${partition}`;
    const existing = this.running.get(id);
    if (existing) {
      existing.runner.wake();
      return;
    }
    const runner = new PartitionRunner(
      {
        engine: this.options.engine,
        metadata: this.options.metadata,
        clock: this.clock,
        handlers: this.options.handlers,
        store: this.store,
        runnerId: this.runnerId,
        ...(this.options.leaseTtlMs === undefined ? {} : { leaseTtlMs: this.options.leaseTtlMs }),
        ...(this.options.lingerMs === undefined ? {} : { lingerMs: this.options.lingerMs }),
        ...(this.options.retryHoldMs === undefined ? {} : { retryHoldMs: this.options.retryHoldMs }),
        ...(this.options.definitionRefreshMs === undefined
          ? {}
          : { definitionRefreshMs: this.options.definitionRefreshMs }),
        ...(this.options.turns ? { turns: this.options.turns } : {}),
        ...(this.options.events ? { events: this.options.events } : {}),
      },
      processor,
      topic,
      partition,
    );
    const entry = { runner, done: Promise.resolve() };
    entry.done = this.runToEnd(id, entry, processor, topic, partition);
    this.running.set(id, entry);
  }

  private async runToEnd(
    id: string,
    entry: { runner: PartitionRunner },
    processor: StoredProcessor,
    topic: string,
    partition: number,
  ): Promise<void> {
    let outcome: RunOutcome | undefined;
    let fetchedTo = 0;
    try {
      ({ outcome, fetchedTo } = await entry.runner.run({ deadlineMs: this.deadlineMs }));
    } catch (error) {
      this.options.events?.runnerError?.({ processor: processor.spec.name, topic, partition, error });
    } finally {
      // Gone before deciding to run again, so a wake-up from now on starts a new runner.
      if (this.running.get(id) === entry) this.running.delete(id);
    }
    if (this.stopping || this.clock.now() >= this.deadlineMs) return;
    if (outcome === "changed") {
      const current = await this.store.get(processor.spec.name).catch(() => undefined);
      if (current) this.runPartition(current, topic, partition);
      return;
    }
    if (outcome !== "drained") return;
    // Released: a commit whose wake-up found the lease held (here or elsewhere) is seen now.
    const offsets = await this.options.engine.partitionOffsets(topic, partition).catch(() => undefined);
    if (offsets && offsets.highWatermark > fetchedTo) this.runPartition(processor, topic, partition);
  }

  /** Names of topics the runtime knows processors of, by topic id (for stream records). */
  topicNameOf(topicId: string): string | undefined {
    return this.topicNames.get(topicId);
  }
}
