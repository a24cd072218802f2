import { backoffMs, type Clock, UnavailableError } from "@sluice/core";
import type { ConsumedRecord, Engine } from "@sluice/engine";
import {
  cond,
  type MetadataStore,
  TRANSACTION_OPERATIONS_MAX,
  TransactionCanceledError,
  type TransactOperation,
} from "@sluice/storage";
import { deadLetterNow } from "./acknowledge.js";
import type { ShareGroupConfigs } from "./configs.js";
import { writeDueDeadLetters } from "./dead-letters.js";
import { unknownShareMember } from "./errors.js";
import { shareMemberKey } from "./keys.js";
import type { ShareGroupMeter } from "./metrics.js";
import {
  type ArchivePolicy,
  type Batch,
  loadBatchesFor,
  loadWindow,
  newBatch,
  resolvePassedLocks,
  type SharePartition,
  tidy,
  type Window,
} from "./window.js";
import { batchDelete, batchPut, batchUpdate, stateWrite, type WriteStamp } from "./writes.js";

/** A record handed to a member under a lock. */
export interface AcquiredRecord {
  topic: string;
  partition: number;
  offset: number;
  /** How many times it has been acquired, this time included. */
  deliveryCount: number;
  /** When its lock passes, on the deciding instance's clock. */
  lockDeadlineMs: number;
  record: ConsumedRecord;
}

export interface PartitionAcquisition {
  records: AcquiredRecord[];
  /** Whether the whole window was read (else only fresh records were taken, from the state item). */
  scanned: boolean;
  /** What a waiting poll watches: the window's end, whether fresh records would fit, the next lock to pass. */
  endOffset: number;
  room: boolean;
  nextLockDeadlineMs: number | undefined;
}

export interface AcquireDeps {
  engine: Engine;
  metadata: MetadataStore;
  clock: Clock;
  maxInFlightRecords: number;
  meter?: ShareGroupMeter;
}

export interface PartitionAcquireRequest {
  partition: SharePartition;
  memberId: string;
  maxRecords: number;
  maxBytes: number;
  configs: ShareGroupConfigs;
  groupUid: string;
  /**
   * Read the whole window: hand out records given back (released, or whose lock passed) first,
   * write due dead letters, drop the settled head. Without it only fresh records are taken, from
   * the `state` item alone — unless there are none, when the window is read anyway.
   */
  scan: boolean;
}

/** Records of one fresh batch at most: bounds a batch item (runs of up to this many records). */
export const FRESH_BATCH_RECORDS_MAX = 500;
/** Existing batches one acquisition writes at most, leaving room in the transaction for the rest. */
const TAKEN_BATCHES_MAX = 40;
const TIDY_OPERATIONS_MAX = 40;
const ATTEMPTS_MAX = 30;
/** Redelivered offsets closer than this are read in one fetch. */
const SPAN_GAP_MAX = 16;

/**
 * One acquisition from one share-partition (ARCHITECTURE.md, "Queues", Acquire): read the window,
 * decide, read the records from the log, write one transaction conditioned on what was read; on a
 * conflict, again. The caller makes sure only one runs per share-partition in this process.
 */
export async function acquireFromPartition(
  deps: AcquireDeps,
  request: PartitionAcquireRequest,
): Promise<PartitionAcquisition> {
  const { engine, metadata, clock } = deps;
  const { memberId, configs } = request;
  const policy: ArchivePolicy = {
    deliveryCountLimit: configs.deliveryCountLimit,
    deadLetter: configs.deadLetterTopic !== null,
  };
  let scan = request.scan;
  for (let attempt = 1; ; attempt++) {
    const nowMs = clock.now();
    const window = scan
      ? await loadWindow(metadata, request.partition)
      : await loadBatchesFor(metadata, request.partition, []);
    const offsets = await engine.partitionOffsets(request.partition.topic, request.partition.partition);
    if (!window.state) {
      const start = configs.autoOffsetReset === "earliest" ? offsets.logStartOffset : offsets.highWatermark;
      window.state = { exists: false, startOffset: start, endOffset: start, epoch: 1, version: 0 };
    }
    const state = window.state;
    resolvePassedLocks(window, nowMs, policy);
    if (configs.deadLetterTopic !== null)
      await writeDueDeadLetters(engine, window, configs.deadLetterTopic, request.groupUid);

    // Available records in offset order, then fresh ones from the end.
    const lockDeadlineMs = nowMs + configs.lockDurationMs;
    const wanted: { batch: Batch; index: number; offset: number }[] = [];
    const touched = new Set<Batch>();
    for (const batch of window.batches) {
      if (wanted.length >= request.maxRecords) break;
      if (!touched.has(batch) && touched.size >= TAKEN_BATCHES_MAX) break;
      batch.slots.forEach((slot, index) => {
        if (slot.state !== "A" || wanted.length >= request.maxRecords) return;
        wanted.push({ batch, index, offset: batch.base + index });
        touched.add(batch);
      });
    }
    const freshWanted = Math.max(
      0,
      Math.min(
        request.maxRecords - wanted.length,
        FRESH_BATCH_RECORDS_MAX,
        offsets.highWatermark - state.endOffset,
        state.startOffset + deps.maxInFlightRecords - state.endOffset,
      ),
    );
    if (!scan && (freshWanted === 0 || !state.exists)) {
      // Nothing fresh to take without looking at what is in flight: look at the whole window.
      scan = true;
      continue;
    }
    const read = await readRecords(
      engine,
      request.partition,
      wanted.map((entry) => entry.offset),
      state.endOffset,
      freshWanted,
      request.maxBytes,
    );

    const records: AcquiredRecord[] = [];
    const stamp: WriteStamp = { writtenBy: memberId, writtenAtMs: nowMs };
    for (const entry of wanted) {
      const record = read.byOffset.get(entry.offset);
      if (!record) continue;
      const slot = entry.batch.slots[entry.index]!;
      const deliveries = slot.deliveries + 1;
      entry.batch.slots[entry.index] = {
        state: "Q",
        deliveries,
        member: memberId,
        deadlineMs: lockDeadlineMs,
      };
      entry.batch.changed = true;
      records.push(acquired(request.partition, record, deliveries, lockDeadlineMs));
    }
    let fresh: Batch | undefined;
    if (read.fresh.length > 0) {
      fresh = newBatch(request.partition, state.endOffset, read.fresh.length, state.epoch, {
        state: "Q",
        deliveries: 1,
        member: memberId,
        deadlineMs: lockDeadlineMs,
      });
      for (const record of read.fresh) records.push(acquired(request.partition, record, 1, lockDeadlineMs));
    }
    const endOffset = state.endOffset + (fresh?.count ?? 0);
    // Tidying costs up to two operations per batch it drops (a merge also rewrites its target).
    const busy = 3 + window.batches.filter((batch) => batch.changed).length;
    const tidied = tidy(
      window,
      Math.min(TIDY_OPERATIONS_MAX, Math.floor((TRANSACTION_OPERATIONS_MAX - busy) / 2)),
    );

    const operations: TransactOperation[] = [];
    if (records.length > 0) {
      // Only a member whose session has not ended may take records.
      operations.push({
        kind: "condition_check",
        key: shareMemberKey(request.partition.groupId, memberId),
        condition: cond.compare("sessionDeadlineMs", ">=", nowMs),
      });
    }
    for (const batch of window.batches) if (batch.changed) operations.push(batchUpdate(batch, stamp));
    for (const batch of tidied.deleted) operations.push(batchDelete(batch));
    if (fresh) operations.push(batchPut(fresh, stamp));
    if (!state.exists || fresh || tidied.startOffset !== state.startOffset)
      operations.push(stateWrite(window, tidied.startOffset, endOffset, stamp));
    const waitInfo = {
      scanned: scan,
      endOffset,
      room: endOffset - tidied.startOffset < deps.maxInFlightRecords,
      nextLockDeadlineMs: nextLockDeadline(window, fresh),
    };
    if (operations.length === 0) return { records: [], ...waitInfo };
    if (operations.length > TRANSACTION_OPERATIONS_MAX) {
      throw new Error(`an acquisition built ${operations.length} operations`); // bounded above; a bug
    }

    const landed = () => {
      deps.meter?.acquired(request.partition, records.length);
      deps.meter?.written(
        request.partition,
        [...window.batches.filter((batch) => batch.changed), ...tidied.deleted],
        policy.deadLetter,
      );
    };
    try {
      await metadata.transactWrite(operations);
      landed();
      if (window.garbage.length > 0) await deleteGarbage(metadata, window);
      // Dead letters this write made due (locks that passed at the limit) go out now that they are stored.
      const due = window.batches.some(
        (batch) => batch.changed && batch.slots.some((slot) => slot.state === "L"),
      );
      if (due && configs.deadLetterTopic !== null)
        await deadLetterNow(deps, request.partition, configs.deadLetterTopic, request.groupUid, memberId);
      return { records, ...waitInfo };
    } catch (error) {
      if (error instanceof TransactionCanceledError) {
        if (records.length > 0 && error.failures.some((failure) => failure.index === 0)) {
          throw unknownShareMember(request.partition.groupId, memberId, "is no longer a member");
        }
        if (attempt >= ATTEMPTS_MAX) throw error;
        await clock.sleep(backoffMs(clock, Math.min(attempt, 6), 2, 100));
        continue;
      }
      if (error instanceof UnavailableError && records.length > 0 && attempt < ATTEMPTS_MAX) {
        // The answer may be lost after the write landed: the records are then ours, with our
        // deadline. Otherwise it never arrived, and deciding again is safe.
        if (await wroteAll(metadata, request.partition, records, memberId, lockDeadlineMs)) {
          landed();
          return { records, ...waitInfo };
        }
        continue;
      }
      throw error;
    }
  }
}

function acquired(
  partition: SharePartition,
  record: ConsumedRecord,
  deliveryCount: number,
  lockDeadlineMs: number,
): AcquiredRecord {
  return {
    topic: partition.topic,
    partition: partition.partition,
    offset: record.offset,
    deliveryCount,
    lockDeadlineMs,
    record,
  };
}

/** The earliest lock among records held by others (when one passes, a waiting poll looks again). */
function nextLockDeadline(window: Window, fresh: Batch | undefined): number | undefined {
  let next: number | undefined;
  for (const batch of fresh ? [...window.batches, fresh] : window.batches) {
    for (const slot of batch.slots) {
      if (slot.state === "Q" && (next === undefined || slot.deadlineMs < next)) next = slot.deadlineMs;
    }
  }
  return next;
}

/** Whether an acquisition whose answer was lost landed: every record it took is ours at its deadline. */
async function wroteAll(
  metadata: MetadataStore,
  partition: SharePartition,
  records: AcquiredRecord[],
  memberId: string,
  lockDeadlineMs: number,
): Promise<boolean> {
  const window = await loadWindow(metadata, partition);
  return records.every((record) => {
    const batch = window.batches.find(
      (candidate) => record.offset >= candidate.base && record.offset < candidate.base + candidate.count,
    );
    const slot = batch?.slots[record.offset - batch.base];
    return (
      slot?.state === "Q" &&
      slot.member === memberId &&
      slot.deadlineMs === lockDeadlineMs &&
      slot.deliveries === record.deliveryCount
    );
  });
}

async function deleteGarbage(metadata: MetadataStore, window: Window): Promise<void> {
  for (const key of window.garbage) {
    try {
      await metadata.delete(key, { condition: cond.compare("epoch", "<", window.state!.epoch) });
    } catch {
      // Someone else deleted or replaced it; garbage is ignored by readers either way.
    }
  }
}

/**
 * Reads the records to hand out: the redelivered offsets (in spans), then up to `freshCount`
 * records from `freshFrom`, until `maxBytes` of keys and values (at least one record).
 */
async function readRecords(
  engine: Engine,
  partition: SharePartition,
  redelivered: number[],
  freshFrom: number,
  freshCount: number,
  maxBytes: number,
): Promise<{ byOffset: Map<number, ConsumedRecord>; fresh: ConsumedRecord[] }> {
  const byOffset = new Map<number, ConsumedRecord>();
  let bytes = 0;
  const full = () => byOffset.size > 0 && bytes >= maxBytes;
  const size = (record: ConsumedRecord) => (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
  for (let start = 0; start < redelivered.length && !full(); ) {
    let end = start;
    while (end + 1 < redelivered.length && redelivered[end + 1]! - redelivered[end]! <= SPAN_GAP_MAX) end++;
    const first = redelivered[start]!;
    const last = redelivered[end]!;
    const wanted = new Set(redelivered.slice(start, end + 1));
    const result = await engine.fetch({
      topic: partition.topic,
      partition: partition.partition,
      offset: first,
      maxRecords: last - first + 1,
    });
    for (const record of result.records) {
      if (!wanted.has(record.offset) || full()) continue;
      byOffset.set(record.offset, record);
      bytes += size(record);
    }
    start = end + 1;
  }
  const fresh: ConsumedRecord[] = [];
  if (freshCount > 0 && !full()) {
    const result = await engine.fetch({
      topic: partition.topic,
      partition: partition.partition,
      offset: freshFrom,
      maxRecords: freshCount,
      maxBytes: Math.max(1, maxBytes - bytes),
    });
    for (const record of result.records) {
      // Contiguous from the end offset: a fresh batch covers every record between.
      if (record.offset !== freshFrom + fresh.length) break;
      if (fresh.length > 0 && bytes >= maxBytes) break;
      fresh.push(record);
      bytes += size(record);
    }
  }
  return { byOffset, fresh };
}
