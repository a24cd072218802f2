import { keys, type StoredIndexEntry, type Topic } from "@sluice/engine";
import type { HeldLease, JobContext } from "./job-context.js";
import { compactKeys } from "./key-compaction.js";
import { type PartitionLog, readPartitionLog } from "./partition-log.js";
import { ObjectPendingError, readEntryBytes } from "./read-entries.js";
import { measurePartition } from "./retention.js";
import { deleteShadowed, replaceRun } from "./rewrite.js";
import { segmentFromBatches } from "./segment.js";

export interface CompactionOutcome {
  /** Segments written and committed. */
  segments: number;
  /** Index entries the segments replaced. */
  entriesReplaced: number;
  /** Records key compaction removed. */
  recordsRemoved: number;
  /** Shadowed or below-start entries deleted before the run began. */
  leftoversDeleted: number;
  /** The index changed under the run (another writer won); the rest waits for the next run. */
  interrupted: boolean;
}

/**
 * The compaction job on one partition (ARCHITECTURE.md, "Compaction into segments", "Key
 * compaction"): first the entries an earlier run left shadowed, then for topics whose
 * cleanup.policy has `compact` a key-compaction run, otherwise runs of small entries merged into
 * segments, each replaced by the conditioned transaction.
 */
export async function compactPartition(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
): Promise<CompactionOutcome> {
  const log = await readPartitionLog(context.metadata, topic.topicId, partition);
  const outcome: CompactionOutcome = {
    segments: 0,
    entriesReplaced: 0,
    recordsRemoved: 0,
    leftoversDeleted: await deleteShadowed(context, lease, topic.topicId, partition, [
      ...log.below,
      ...log.shadowed,
    ]),
    interrupted: false,
  };
  try {
    if (topic.settings.cleanupPolicy.compact) await compactKeys(context, lease, topic, log, outcome);
    else await mergeSegments(context, lease, topic, log, outcome);
  } catch (error) {
    // An upload still on its way (parallel commit): what is left waits for a later run.
    if (!(error instanceof ObjectPendingError)) throw error;
    outcome.interrupted = true;
  }
  await measurePartition(context, lease, topic, partition, "compaction");
  return outcome;
}

async function mergeSegments(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  log: PartitionLog,
  outcome: CompactionOutcome,
): Promise<void> {
  for (const run of planSegments(log.tiling, context)) {
    if (!context.hasTime()) {
      outcome.interrupted = true;
      return;
    }
    await lease.keepAlive();
    const content = segmentFromBatches(
      await readEntryBytes(context, run),
      context.settings.segmentPieceBytes,
    );
    if (!(await replaceRun(context, lease, topic, log, run, content))) {
      outcome.interrupted = true;
      break;
    }
    outcome.segments++;
    outcome.entriesReplaced += run.length;
  }
}

/**
 * Runs of consecutive entries to merge: entries smaller than the target accumulate until the run
 * reaches it; a shorter run is merged once its newest entry is `segmentSettleMs` old and it holds
 * at least two entries that are not segments yet (so a slow topic's tail is merged once, and every
 * byte is rewritten at most twice on its way to a full segment). A settled remainder smaller than
 * half the target joins the full run before it instead of becoming a small segment of its own,
 * so segments average at least the target.
 */
export function planSegments(
  tiling: readonly StoredIndexEntry[],
  context: Pick<JobContext, "clock" | "settings">,
): StoredIndexEntry[][] {
  return walkSegments(tiling, context).runs;
}

/**
 * When planSegments would first return a run it does not return now: the earliest time a short
 * run it holds back settles (undefined when none will without a new append). Quiet partitions
 * sleep until then.
 */
export function segmentsSettleAt(
  tiling: readonly StoredIndexEntry[],
  context: Pick<JobContext, "clock" | "settings">,
): number | undefined {
  return walkSegments(tiling, context).settleAt;
}

function walkSegments(
  tiling: readonly StoredIndexEntry[],
  context: Pick<JobContext, "clock" | "settings">,
): { runs: StoredIndexEntry[][]; settleAt: number | undefined } {
  const { segmentBytes, segmentSettleMs } = context.settings;
  const now = context.clock.now();
  const settledAt = (entries: readonly StoredIndexEntry[]) =>
    Math.max(...entries.map((entry) => keys.objectKeyTimeMs(entry.objectKey) ?? now)) + segmentSettleMs;
  const settled = (entries: readonly StoredIndexEntry[]) => settledAt(entries) <= now;
  let settleAt: number | undefined;
  const runs: StoredIndexEntry[][] = [];
  let run: StoredIndexEntry[] = [];
  let bytes = 0;
  /** The full run just closed, while nothing has come between it and `run`. */
  let lastFull: StoredIndexEntry[] | undefined;
  const closeShort = () => {
    const fresh = run.filter((entry) => !keys.isSegmentObjectKey(entry.objectKey));
    if (lastFull && bytes < segmentBytes / 2 && settled(run)) lastFull.push(...run);
    else if (fresh.length >= 2 && settled(run)) runs.push(run);
    else if ((fresh.length >= 2 || (lastFull && bytes < segmentBytes / 2)) && !settled(run))
      settleAt = Math.min(settleAt ?? Number.POSITIVE_INFINITY, settledAt(run));
    run = [];
    bytes = 0;
    lastFull = undefined;
  };
  for (const entry of tiling) {
    if (entry.length >= segmentBytes) {
      if (run.length > 0) closeShort();
      lastFull = undefined;
      continue;
    }
    run.push(entry);
    bytes += entry.length;
    if (bytes >= segmentBytes) {
      if (run.length >= 2) {
        runs.push(run);
        lastFull = run;
      } else {
        lastFull = undefined;
      }
      run = [];
      bytes = 0;
    }
  }
  if (run.length > 0) closeShort();
  return { runs, settleAt };
}

export type { PartitionLog };
