import { type DecodedBatch, type DecodedRecord, decodeRecordBatches, encodeRecordBatch } from "@sluice/core";
import { entryEnd, keys, type StoredIndexEntry, type Topic } from "@sluice/engine";
import { cond, TransactionCanceledError } from "@sluice/storage";
import type { CompactionOutcome } from "./compaction.js";
import type { HeldLease, JobContext } from "./job-context.js";
import type { PartitionLog } from "./partition-log.js";
import { readEntryBytes } from "./read-entries.js";
import { replaceRun } from "./rewrite.js";
import { segmentFromBatches } from "./segment.js";

/** Entries decoded at a time while building the key map, so memory stays bounded. */
const MAP_READ_ENTRIES = 64;

/**
 * One key-compaction run (ARCHITECTURE.md, "Key compaction"): map the dirty part's keys to their
 * last offsets, rewrite every run of entries that holds a superseded record, an expired tombstone
 * or dirty records, then record how far the log is clean. Offsets are kept: survivors keep their
 * offset deltas, and a batch left empty gives its offsets to the next surviving batch.
 */
export async function compactKeys(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  log: PartitionLog,
  outcome: CompactionOutcome,
): Promise<CompactionOutcome> {
  const { clock, settings } = context;
  const { deleteRetentionMs, minCompactionLagMs } = topic.settings;
  const now = clock.now();
  const tiling = log.tiling;
  // Records within the lag are never compacted: the cleanable part ends at the first entry holding one.
  let cleanable = tiling.findIndex((entry) => entry.maxTimestamp > now - minCompactionLagMs);
  if (cleanable < 0) cleanable = tiling.length;
  const dirtyStart = Math.max(log.state.cleanedTo, log.logStartOffset);
  let dirtyFrom = tiling.findIndex((entry) => entryEnd(entry) > dirtyStart);
  if (dirtyFrom < 0 || dirtyFrom > cleanable) dirtyFrom = cleanable;

  const expiredTombstones = tiling
    .slice(0, dirtyFrom)
    .some((entry) => entry.deleteHorizonMs !== undefined && entry.deleteHorizonMs <= now);
  if (dirtyFrom >= cleanable && !expiredTombstones) return outcome;

  // The key map: each key's last offset in the dirty part, up to keyMapMax keys and
  // keyCompactionBytesMax bytes, so one run's work stays bounded and cleanedTo always moves.
  let dirtyBytes = 0;
  let dirtyEnd = dirtyFrom;
  while (
    dirtyEnd < cleanable &&
    (dirtyEnd === dirtyFrom || dirtyBytes + tiling[dirtyEnd]!.length <= settings.keyCompactionBytesMax)
  ) {
    dirtyBytes += tiling[dirtyEnd]!.length;
    dirtyEnd++;
  }
  const latest = new Map<string, number>();
  let mapEnd = dirtyFrom;
  mapping: for (let start = dirtyFrom; start < dirtyEnd; start += MAP_READ_ENTRIES) {
    const chunk = tiling.slice(start, Math.min(dirtyEnd, start + MAP_READ_ENTRIES));
    const bytes = await readEntryBytes(context, chunk);
    for (let index = 0; index < chunk.length; index++) {
      const entry = chunk[index]!;
      const batches = await decodeRecordBatches(bytes[index]!, { baseOffsetOverride: entry.baseOffset });
      const fresh = new Set<string>();
      for (const batch of batches) {
        for (const record of batch.records)
          if (record.key && !latest.has(keyOf(record.key))) fresh.add(keyOf(record.key));
      }
      if (latest.size + fresh.size > settings.keyMapMax && start + index > dirtyFrom) break mapping;
      for (const batch of batches) {
        for (const record of batch.records) if (record.key) latest.set(keyOf(record.key), record.offset);
      }
      mapEnd = start + index + 1;
    }
    await lease.keepAlive();
  }

  // Runs never mix the clean part and the dirty part: their tombstones' horizons differ.
  const runs = [
    ...runsOf(tiling.slice(0, dirtyFrom), settings.segmentBytes).map((run) => ({ run, dirty: false })),
    ...runsOf(tiling.slice(dirtyFrom, mapEnd), settings.segmentBytes).map((run) => ({ run, dirty: true })),
  ];
  for (const { run, dirty } of runs) {
    if (!context.hasTime()) {
      outcome.interrupted = true;
      return outcome;
    }
    await lease.keepAlive();
    const rewritten = await rewriteRun(context, run, dirty, latest, now, deleteRetentionMs);
    if (!rewritten) continue;
    if (!(await replaceRun(context, lease, topic, log, run, rewritten.content, rewritten.horizon))) {
      outcome.interrupted = true;
      return outcome;
    }
    outcome.segments++;
    outcome.entriesReplaced += run.length;
    outcome.recordsRemoved += rewritten.removed;
  }

  const cleanedTo = mapEnd > 0 ? entryEnd(tiling[mapEnd - 1]!) : log.state.cleanedTo;
  if (cleanedTo > log.state.cleanedTo) {
    try {
      await context.metadata.transactWrite([
        lease.guard(),
        {
          kind: "update",
          key: keys.maintenanceStateKey(topic.topicId, log.partition),
          changes: { set: { cleanedTo } },
          condition:
            log.state.layoutVersion === 0
              ? cond.or(cond.notExists("layoutVersion"), cond.eq("layoutVersion", 0))
              : cond.eq("layoutVersion", log.state.layoutVersion),
        },
      ]);
      log.state.cleanedTo = cleanedTo;
    } catch (error) {
      if (!(error instanceof TransactionCanceledError)) throw error;
      outcome.interrupted = true;
    }
  }
  return outcome;
}

/** Consecutive entries up to about `segmentBytes` of input each. */
function runsOf(entries: readonly StoredIndexEntry[], segmentBytes: number): StoredIndexEntry[][] {
  const runs: StoredIndexEntry[][] = [];
  let run: StoredIndexEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (run.length > 0 && bytes + entry.length > segmentBytes) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(entry);
    bytes += entry.length;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

interface Rewritten {
  content: ReturnType<typeof segmentFromBatches>;
  horizon: { deleteHorizonMs?: number };
  removed: number;
}

/**
 * The run's batches with superseded records and expired tombstones removed, or undefined when
 * there is nothing to gain (a clean run with nothing to remove; a lone dirty entry with nothing
 * to remove and no tombstone to give a horizon).
 */
async function rewriteRun(
  context: JobContext,
  run: readonly StoredIndexEntry[],
  dirty: boolean,
  latest: ReadonlyMap<string, number>,
  now: number,
  deleteRetentionMs: number,
): Promise<Rewritten | undefined> {
  const bytes = await readEntryBytes(context, run);
  const sources: { batch: DecodedBatch; raw: Uint8Array; survivors: DecodedRecord[] }[] = [];
  let removed = 0;
  let tombstones = 0;
  for (let index = 0; index < run.length; index++) {
    const entry = run[index]!;
    const expired = !dirty && entry.deleteHorizonMs !== undefined && entry.deleteHorizonMs <= now;
    const entryBytes = bytes[index]!;
    const batches = await decodeRecordBatches(entryBytes, { baseOffsetOverride: entry.baseOffset });
    let position = 0;
    for (const batch of batches) {
      const survivors = batch.records.filter((record) => {
        if (record.key === null) return true;
        const last = latest.get(keyOf(record.key));
        if (last !== undefined && last > record.offset) return false;
        return !(record.value === null && expired);
      });
      removed += batch.records.length - survivors.length;
      for (const record of survivors) if (record.value === null) tombstones++;
      sources.push({ batch, raw: entryBytes.subarray(position, position + batch.byteLength), survivors });
      position += batch.byteLength;
    }
  }
  if (removed === 0 && !(dirty && (run.length > 1 || tombstones > 0))) return undefined;

  const groupStart = run[0]!.baseOffset;
  const groupEnd = entryEnd(run[run.length - 1]!);
  const kept = sources.filter((source) => source.survivors.length > 0);
  const chunks: Uint8Array[] = [];
  if (kept.length === 0) {
    // Nothing survives: one empty batch keeps the offsets accounted for.
    const maxTimestamp = Math.max(...sources.map((source) => source.batch.maxTimestamp));
    chunks.push(
      await encodeRecordBatch([], {
        compression: "none",
        lastOffsetDelta: groupEnd - groupStart - 1,
        timestamp: maxTimestamp,
      }),
    );
  }
  for (let index = 0; index < kept.length; index++) {
    const { batch, raw, survivors } = kept[index]!;
    // The surviving batches tile the run: each runs to the next one's base (taking in the offsets
    // of emptied batches after it), the first from the run's start.
    const spanStart = index === 0 ? groupStart : batch.baseOffset;
    const spanEnd = kept[index + 1]?.batch.baseOffset ?? groupEnd;
    if (
      survivors.length === batch.records.length &&
      spanStart === batch.baseOffset &&
      spanEnd === batch.lastOffset + 1
    ) {
      chunks.push(raw);
      continue;
    }
    const logAppend = batch.timestampType === "log_append";
    chunks.push(
      await encodeRecordBatch(survivors, {
        compression: batch.compression,
        timestampType: batch.timestampType,
        ...(logAppend ? { timestamp: batch.maxTimestamp } : {}),
        producerId: batch.producerId,
        producerEpoch: batch.producerEpoch,
        baseSequence: spanStart === batch.baseOffset ? batch.baseSequence : -1,
        offsetDeltas: survivors.map((record) => record.offset - spanStart),
        lastOffsetDelta: spanEnd - spanStart - 1,
      }),
    );
  }
  const content = segmentFromBatches(chunks, context.settings.segmentPieceBytes);
  let deleteHorizonMs: number | undefined;
  if (tombstones > 0) {
    deleteHorizonMs = dirty
      ? now + deleteRetentionMs
      : Math.max(...run.map((entry) => entry.deleteHorizonMs ?? now + deleteRetentionMs));
  }
  return { content, horizon: deleteHorizonMs === undefined ? {} : { deleteHorizonMs }, removed };
}

function keyOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}
