import { randomBytes } from "node:crypto";
import { type Clock, NotFoundError, systemClock } from "@sluice/core";
import { Engine, keys, type Topic } from "@sluice/engine";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import { type Metrics, noopMetrics, secondsSince, series } from "@sluice/telemetry";
import { type CompactionOutcome, compactPartition } from "./compaction.js";
import { collectGarbage, type GarbageOutcome } from "./garbage-collection.js";
import { type HeldLease, type JobContext, tryAcquire } from "./job-context.js";
import { listDeletionJobs, type PurgeOutcome, purgeTopic } from "./purge.js";
import { isQuiet, markQuietIfIdle } from "./quiet.js";
import { applyRetention, type RetentionOutcome } from "./retention.js";
import { type MaintenanceSettings, maintenanceSettings } from "./settings.js";
import { buildTimeIndex, type TimeIndexOutcome } from "./time-index.js";

export interface MaintenanceRunnerOptions {
  objects: ObjectStore;
  metadata: MetadataStore;
  clock?: Clock;
  settings?: Partial<MaintenanceSettings>;
  /** This runner's id in its leases; default a random one (unique per incarnation). */
  owner?: string;
  /** Where each job's runs, duration, reclaimed bytes and removed records go; default none. */
  metrics?: Metrics;
}

export interface RunOptions {
  /** Stop starting new work once this much time has passed (a Lambda's remaining time). */
  budgetMs?: number;
  /** Only these topics (default all), and no purges of deleted topics unless `purges` says so. */
  topics?: readonly string[];
  /** Run pending purges of deleted topics. Default true when `topics` is not given. */
  purges?: boolean;
}

export interface JobFailure {
  job: string;
  topic: string;
  partition?: number;
  error: unknown;
}

/** What one run did, summed over topics and partitions. */
export interface RunReport {
  topics: number;
  partitions: number;
  /** Partitions skipped for two reads: nothing changed and nothing fell due since a pass left them idle. */
  partitionsQuiet: number;
  /** Jobs skipped because another runner held their lease. */
  leasesHeld: number;
  retention: { entriesDeleted: number };
  compaction: { segments: number; entriesReplaced: number; recordsRemoved: number };
  timeIndex: { itemsWritten: number };
  garbage: { marked: number; deleted: number };
  purges: { finished: number; objectsDeleted: number };
  failures: JobFailure[];
  /** The budget ran out before every topic was visited. */
  stoppedEarly: boolean;
}

export type PartitionJobName = "retention" | "compaction" | "time-index";
export const PARTITION_JOBS: readonly PartitionJobName[] = ["retention", "compaction", "time-index"];

/**
 * Runs the maintenance jobs (ARCHITECTURE.md, "Runners, schedule and what describe shows"): per
 * partition retention, compaction and the time index, then garbage collection per topic, then
 * pending purges — each under its lease, skipping what another runner holds, so any number of
 * runners may run at once. A failing job is reported and the run goes on with the rest.
 */
export class MaintenanceRunner {
  readonly context: JobContext;
  private readonly engine: Engine;
  private readonly meter: MaintenanceMeter;

  constructor(options: MaintenanceRunnerOptions) {
    const clock = options.clock ?? systemClock;
    this.context = {
      objects: options.objects,
      metadata: options.metadata,
      clock,
      settings: maintenanceSettings(options.settings),
      owner: options.owner ?? `maintenance-${randomBytes(8).toString("hex")}`,
      hasTime: () => true,
    };
    this.engine = new Engine({ objects: options.objects, metadata: options.metadata, clock });
    this.meter = new MaintenanceMeter(options.metrics ?? noopMetrics);
  }

  async runOnce(options: RunOptions = {}): Promise<RunReport> {
    const { clock } = this.context;
    const startedAt = clock.now();
    const hasTime = () => options.budgetMs === undefined || clock.now() - startedAt < options.budgetMs;
    this.context.hasTime = hasTime;
    const report = emptyReport();
    const all = await this.engine.listTopics();
    const wanted = options.topics ? all.filter((topic) => options.topics!.includes(topic.name)) : all;
    for (const name of options.topics ?? []) {
      if (!all.some((topic) => topic.name === name))
        report.failures.push({
          job: "run",
          topic: name,
          error: new NotFoundError(`topic not found: ${name}`),
        });
    }
    // Concurrent runners start at different topics, so they spread instead of queueing.
    const first = wanted.length === 0 ? 0 : Math.floor(clock.random() * wanted.length);
    const topics = [...wanted.slice(first), ...wanted.slice(0, first)];
    for (const topic of topics) {
      if (!hasTime()) {
        report.stoppedEarly = true;
        break;
      }
      report.topics++;
      for (let partition = 0; partition < topic.partitions; partition++) {
        if (!hasTime()) {
          report.stoppedEarly = true;
          break;
        }
        report.partitions++;
        await this.runPartition(topic, partition, report);
      }
      if (hasTime()) await this.runTopicGarbage(topic, report);
    }
    if ((options.purges ?? options.topics === undefined) && hasTime()) await this.runPurges(report, hasTime);
    this.context.hasTime = () => true;
    return report;
  }

  /**
   * Every partition job on one partition, each under its own lease. With every job (the default),
   * a quiet partition is skipped, and a pass that leaves the partition with nothing to do marks it
   * quiet.
   */
  async runPartition(
    topic: Topic,
    partition: number,
    report: RunReport = emptyReport(),
    jobs: readonly PartitionJobName[] = PARTITION_JOBS,
  ): Promise<RunReport> {
    const everyJob = PARTITION_JOBS.every((job) => jobs.includes(job));
    if (everyJob && (await isQuiet(this.context, topic, partition).catch(() => false))) {
      report.partitionsQuiet++;
      return report;
    }
    const failures = report.failures.length;
    const held = report.leasesHeld;
    for (const job of jobs) {
      const key = keys.partitionJobLeaseKey(topic.topicId, partition, job);
      // Compaction of a compacted topic is key compaction, and is measured as such.
      const measured = job === "compaction" && topic.settings.cleanupPolicy.compact ? "key-compaction" : job;
      await this.underLease(report, measured, topic, partition, key, async (lease) => {
        switch (job) {
          case "retention": {
            const outcome = await applyRetention(this.context, lease, topic, partition);
            addRetention(report, outcome);
            this.meter.recordsRemoved(measured, topic, outcome.recordsDeleted);
            return;
          }
          case "compaction": {
            const outcome = await compactPartition(this.context, lease, topic, partition);
            addCompaction(report, outcome);
            this.meter.recordsRemoved(measured, topic, outcome.recordsRemoved);
            return;
          }
          case "time-index":
            addTimeIndex(report, await buildTimeIndex(this.context, lease, topic, partition));
            return;
        }
      });
    }
    if (
      everyJob &&
      report.failures.length === failures &&
      report.leasesHeld === held &&
      this.context.hasTime()
    ) {
      try {
        await markQuietIfIdle(this.context, topic, partition);
      } catch (error) {
        report.failures.push({ job: "quiet", topic: topic.name, partition, error });
      }
    }
    return report;
  }

  async runTopicGarbage(topic: Topic, report: RunReport = emptyReport()): Promise<RunReport> {
    const key = keys.topicJobLeaseKey(topic.topicId, "gc");
    await this.underLease(report, "gc", topic, undefined, key, async (lease) => {
      const outcome = await collectGarbage(this.context, lease, topic);
      addGarbage(report, outcome);
      this.meter.bytesReclaimed("gc", topic.name, outcome.bytesDeleted);
    });
    return report;
  }

  async runPurges(
    report: RunReport = emptyReport(),
    hasTime: () => boolean = () => true,
  ): Promise<RunReport> {
    for (const job of await listDeletionJobs(this.context)) {
      if (!hasTime()) {
        report.stoppedEarly = true;
        break;
      }
      let lease: HeldLease | undefined;
      try {
        lease = await tryAcquire(this.context, keys.deletionKey(job.topicId));
      } catch (error) {
        // Like any job's failure: reported, and the run goes on with the rest.
        report.failures.push({ job: "purge", topic: job.name, error });
        this.meter.run("purge", "error");
        continue;
      }
      if (!lease) {
        report.leasesHeld++;
        this.meter.run("purge", "skipped");
        continue;
      }
      const started = performance.now();
      try {
        const outcome = await purgeTopic(this.context, lease, job, hasTime);
        addPurge(report, outcome);
        this.meter.bytesReclaimed("purge", job.name, outcome.bytesDeleted);
        this.meter.run("purge", "ok", started);
      } catch (error) {
        report.failures.push({ job: "purge", topic: job.name, error });
        this.meter.run("purge", "error", started);
      } finally {
        // A finished purge deleted its lease with its job item.
        await lease.release().catch(() => undefined);
      }
    }
    return report;
  }

  private async underLease(
    report: RunReport,
    job: string,
    topic: Topic,
    partition: number | undefined,
    key: ReturnType<typeof keys.topicJobLeaseKey>,
    work: (lease: HeldLease) => Promise<void>,
  ): Promise<void> {
    let lease: HeldLease | undefined;
    const started = performance.now();
    try {
      lease = await tryAcquire(this.context, key, topic);
      if (!lease) {
        report.leasesHeld++;
        this.meter.run(job, "skipped");
        return;
      }
      await work(lease);
      this.meter.run(job, "ok", started);
    } catch (error) {
      this.meter.run(job, "error", started);
      report.failures.push({
        job,
        topic: topic.name,
        ...(partition === undefined ? {} : { partition }),
        error,
      });
    } finally {
      await lease?.release().catch(() => undefined);
    }
  }
}

/** The catalogue's maintenance series (docs/operations.md), as the runner records them. */
class MaintenanceMeter {
  private readonly runs;
  private readonly duration;
  private readonly reclaimed;
  private readonly removed;

  constructor(metrics: Metrics) {
    this.runs = metrics.counter(series.maintenanceRuns);
    this.duration = metrics.histogram(series.maintenanceRunDuration);
    this.reclaimed = metrics.counter(series.maintenanceBytesReclaimed);
    this.removed = metrics.counter(series.maintenanceRecordsRemoved);
  }

  /** A job run with its result; its duration when it ran (a skipped job did nothing). */
  run(job: string, result: "ok" | "skipped" | "error", startedAt?: number): void {
    this.runs.add(1, { job, result });
    if (startedAt !== undefined) this.duration.record(secondsSince(startedAt), { job });
  }

  bytesReclaimed(job: string, topic: string, bytes: number): void {
    if (bytes > 0) this.reclaimed.add(bytes, { job, topic });
  }

  recordsRemoved(job: string, topic: Topic, records: number): void {
    if (records > 0) this.removed.add(records, { job, topic: topic.name });
  }
}

export function emptyReport(): RunReport {
  return {
    topics: 0,
    partitions: 0,
    partitionsQuiet: 0,
    leasesHeld: 0,
    retention: { entriesDeleted: 0 },
    compaction: { segments: 0, entriesReplaced: 0, recordsRemoved: 0 },
    timeIndex: { itemsWritten: 0 },
    garbage: { marked: 0, deleted: 0 },
    purges: { finished: 0, objectsDeleted: 0 },
    failures: [],
    stoppedEarly: false,
  };
}

function addRetention(report: RunReport, outcome: RetentionOutcome): void {
  report.retention.entriesDeleted += outcome.entriesDeleted;
}

function addCompaction(report: RunReport, outcome: CompactionOutcome): void {
  report.compaction.segments += outcome.segments;
  report.compaction.entriesReplaced += outcome.entriesReplaced;
  report.compaction.recordsRemoved += outcome.recordsRemoved;
}

function addTimeIndex(report: RunReport, outcome: TimeIndexOutcome): void {
  report.timeIndex.itemsWritten += outcome.itemsWritten;
}

function addGarbage(report: RunReport, outcome: GarbageOutcome): void {
  report.garbage.marked += outcome.marked;
  report.garbage.deleted += outcome.deleted;
}

function addPurge(report: RunReport, outcome: PurgeOutcome): void {
  if (outcome.finished) report.purges.finished++;
  report.purges.objectsDeleted += outcome.objectsDeleted;
}
