import { ConflictError } from "@sluice/core";
import { entryEnd, keys, lastRunAttribute, type Topic } from "@sluice/engine";
import { cond, type TransactOperation } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";
import { type PartitionLog, readPartitionLog, sizeOf } from "./partition-log.js";
import { deleteEntry } from "./rewrite.js";

export interface RetentionOutcome {
  /** Entries deleted from the start of the log. */
  entriesDeleted: number;
  /** Records in them. */
  recordsDeleted: number;
  /** The log start offset after the run. */
  logStartOffset: number;
  /** Another writer moved the log start or replaced an entry first; the next run goes on. */
  interrupted: boolean;
  /** The live log after the run: stored bytes, entries, records. */
  sizeBytes: number;
  indexEntries: number;
  records: number;
}

/**
 * The retention job on one partition (ARCHITECTURE.md, "Retention"): Kafka's rules over whole
 * entries from the start of the log — an entry goes while it is older than retention.ms or the
 * log without it is still at least retention.bytes — in transactions that each delete a prefix
 * of entries and move the log start past them, conditioned on the log start and the entries
 * being those read. Then the partition's size is recorded, for every cleanup policy.
 */
export async function applyRetention(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
): Promise<RetentionOutcome> {
  const log = await readPartitionLog(context.metadata, topic.topicId, partition);
  const expired = topic.settings.cleanupPolicy.delete ? expiredPrefix(log, topic, context.clock.now()) : 0;
  let logStartOffset = log.logStartOffset;
  let deleted = 0;
  let interrupted = false;
  const perTransaction = context.settings.itemsPerTransaction;
  for (let start = 0; start < expired; start += perTransaction) {
    await lease.keepAlive();
    const chunk = log.tiling.slice(start, Math.min(expired, start + perTransaction));
    const next = entryEnd(chunk[chunk.length - 1]!);
    const operations: TransactOperation[] = [
      lease.guard(),
      {
        kind: "update",
        key: keys.headKey(topic.topicId, partition),
        changes: { set: { logStartOffset: next } },
        condition:
          logStartOffset === 0
            ? cond.and(
                cond.exists("pk"),
                cond.or(cond.notExists("logStartOffset"), cond.eq("logStartOffset", 0)),
              )
            : cond.eq("logStartOffset", logStartOffset),
      },
      ...chunk.map((entry) => deleteEntry(topic.topicId, partition, entry)),
    ];
    try {
      await context.metadata.transactWrite(operations);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      interrupted = true;
      break;
    }
    logStartOffset = next;
    deleted += chunk.length;
  }
  // Entries below the log start are unreachable: shadowed ones inside deleted entries, leftovers.
  const left = [...log.below, ...log.shadowed.filter((entry) => entry.baseOffset < logStartOffset)];
  for (let start = 0; start < left.length && !interrupted; start += perTransaction) {
    const chunk = left.slice(start, start + perTransaction);
    try {
      await context.metadata.transactWrite([
        lease.guard(),
        ...chunk.map((entry) => deleteEntry(topic.topicId, partition, entry)),
      ]);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      interrupted = true;
    }
  }
  const live = log.tiling.slice(deleted);
  const outcome: RetentionOutcome = {
    entriesDeleted: deleted,
    recordsDeleted: log.tiling.slice(0, deleted).reduce((sum, entry) => sum + entry.recordCount, 0),
    logStartOffset,
    interrupted,
    sizeBytes: sizeOf(live),
    indexEntries: live.length,
    records: live.reduce((sum, entry) => sum + entry.recordCount, 0),
  };
  await recordStats(context, lease, topic, partition, outcome);
  return outcome;
}

/**
 * How many entries from the start of the log retention removes: Kafka deletes whole segments
 * while `now − largestTimestamp > retention.ms`, then while the log minus the segment is still at
 * least retention.bytes (−1 turns either rule off).
 */
export function expiredPrefix(log: PartitionLog, topic: Pick<Topic, "settings">, nowMs: number): number {
  const { retentionMs, retentionBytes } = topic.settings;
  let remaining = sizeOf(log.tiling);
  let count = 0;
  for (const entry of log.tiling) {
    const byTime = retentionMs >= 0 && nowMs - entry.maxTimestamp > retentionMs;
    const bySize = retentionBytes >= 0 && remaining - entry.length >= retentionBytes;
    if (!byTime && !bySize) break;
    remaining -= entry.length;
    count++;
  }
  return count;
}

/**
 * Measures the partition's live log again and records it (after compaction changed it), with when
 * `job` last ran.
 */
export async function measurePartition(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
  job: "compaction",
): Promise<void> {
  const log = await readPartitionLog(context.metadata, topic.topicId, partition);
  await recordStats(
    context,
    lease,
    topic,
    partition,
    {
      sizeBytes: sizeOf(log.tiling),
      indexEntries: log.tiling.length,
      records: log.tiling.reduce((sum, entry) => sum + entry.recordCount, 0),
    },
    job,
  );
}

/** The partition's size and when `job` last ran, on its `maintenance` item (under the lease). */
async function recordStats(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
  outcome: Pick<RetentionOutcome, "sizeBytes" | "indexEntries" | "records">,
  job: "retention" | "compaction" = "retention",
): Promise<void> {
  try {
    await context.metadata.transactWrite([
      lease.guard(),
      {
        kind: "update",
        key: keys.maintenanceStateKey(topic.topicId, partition),
        changes: {
          set: {
            sizeBytes: outcome.sizeBytes,
            indexEntries: outcome.indexEntries,
            records: outcome.records,
            statsAt: context.clock.now(),
            [lastRunAttribute(job)]: context.clock.now(),
          },
        },
      },
    ]);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
  }
}
