import { ConflictError } from "@sluice/core";
import { keys, type Topic } from "@sluice/engine";
import { cond, type Item } from "@sluice/storage";
import { planSegments, segmentsSettleAt } from "./compaction.js";
import type { JobContext } from "./job-context.js";
import { readPartitionLog } from "./partition-log.js";
import { expiredPrefix } from "./retention.js";
import { timeIndexHasWork } from "./time-index.js";

/**
 * Quiet partitions (ARCHITECTURE.md, "Runners"): after a pass of every job left a partition with
 * nothing to do, the runner records what the partition looked like (high watermark, log start,
 * layout version, configs) and the earliest time something could become due without a new append
 * (a batch expiring, a short run settling, records passing min.compaction.lag.ms, a tombstone's
 * horizon). Until then, a run that finds the partition as recorded skips it for two reads.
 */
export async function isQuiet(context: JobContext, topic: Topic, partition: number): Promise<boolean> {
  const [head, item] = await Promise.all([
    context.metadata.get(keys.headKey(topic.topicId, partition)),
    context.metadata.get(keys.maintenanceStateKey(topic.topicId, partition)),
  ]);
  if (item?.quietUntil === undefined) return false;
  return (
    Number(item.quietHighWatermark) === Number(head?.nextOffset ?? 0) &&
    Number(item.quietLogStart) === Number(head?.logStartOffset ?? 0) &&
    Number(item.quietLayoutVersion) === Number(item.layoutVersion ?? 0) &&
    item.quietConfigs === configsOf(topic, context) &&
    context.clock.now() < Number(item.quietUntil)
  );
}

/** Records the partition as quiet when no job has anything to do on it now; otherwise nothing. */
export async function markQuietIfIdle(
  context: JobContext,
  topic: Topic,
  partition: number,
): Promise<boolean> {
  const { clock } = context;
  const now = clock.now();
  const log = await readPartitionLog(context.metadata, topic.topicId, partition);
  const { cleanupPolicy, retentionMs, minCompactionLagMs } = topic.settings;
  if (log.shadowed.length > 0 || log.below.length > 0) return false;
  if (expiredPrefix(log, topic, now) > 0) return false;
  if (
    await timeIndexHasWork(
      context,
      topic.topicId,
      partition,
      log.state,
      log.logStartOffset,
      log.highWatermark,
    )
  )
    return false;
  const due: number[] = [];
  if (cleanupPolicy.delete && retentionMs >= 0 && log.tiling[0])
    due.push(log.tiling[0].maxTimestamp + retentionMs + 1);
  if (cleanupPolicy.compact) {
    const cleanable = log.tiling.findIndex((entry) => entry.maxTimestamp > now - minCompactionLagMs);
    const cleanableEnd = cleanable < 0 ? log.highWatermark : log.tiling[cleanable]!.baseOffset;
    if (Math.max(log.state.cleanedTo, log.logStartOffset) < cleanableEnd) return false;
    if (cleanable >= 0) due.push(log.tiling[cleanable]!.maxTimestamp + minCompactionLagMs + 1);
    for (const entry of log.tiling) {
      if (entry.deleteHorizonMs === undefined) continue;
      if (entry.deleteHorizonMs <= now) return false;
      due.push(entry.deleteHorizonMs);
    }
  } else {
    if (planSegments(log.tiling, context).length > 0) return false;
    const settleAt = segmentsSettleAt(log.tiling, context);
    if (settleAt !== undefined) due.push(settleAt);
  }
  const state = log.state;
  const quiet: Item = {
    ...keys.maintenanceStateKey(topic.topicId, partition),
    quietHighWatermark: log.highWatermark,
    quietLogStart: log.logStartOffset,
    quietLayoutVersion: state.layoutVersion,
    quietConfigs: configsOf(topic, context),
    quietUntil: due.length === 0 ? Number.MAX_SAFE_INTEGER : Math.min(...due),
  };
  const { pk: _pk, sk: _sk, ...set } = quiet;
  try {
    // Only as the partition still is: the head and the layout the decision was made on.
    await context.metadata.transactWrite([
      {
        kind: "condition_check",
        key: keys.headKey(topic.topicId, partition),
        condition: cond.and(
          log.highWatermark === 0
            ? cond.or(cond.notExists("nextOffset"), cond.eq("nextOffset", 0))
            : cond.eq("nextOffset", log.highWatermark),
          log.logStartOffset === 0
            ? cond.or(cond.notExists("logStartOffset"), cond.eq("logStartOffset", 0))
            : cond.eq("logStartOffset", log.logStartOffset),
        ),
      },
      {
        kind: "update",
        key: keys.maintenanceStateKey(topic.topicId, partition),
        changes: { set },
        condition:
          state.layoutVersion === 0
            ? cond.and(
                cond.exists("pk"),
                cond.or(cond.notExists("layoutVersion"), cond.eq("layoutVersion", 0)),
              )
            : cond.eq("layoutVersion", state.layoutVersion),
      },
    ]);
  } catch (error) {
    if (error instanceof ConflictError) return false;
    throw error;
  }
  return true;
}

/** What a quiet decision rests on besides the log: the topic's configs and the runner's settings. */
function configsOf(topic: Topic, context: JobContext): string {
  const configs = topic.configs as Record<string, string>;
  const { segmentBytes, segmentSettleMs } = context.settings;
  return JSON.stringify([
    Object.keys(configs)
      .sort()
      .map((name) => [name, configs[name]]),
    segmentBytes,
    segmentSettleMs,
  ]);
}
