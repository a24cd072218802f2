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
  /** For each want, in the order given: the records handed to it, or why it got none (its session ended). */
  taken: (AcquiredRecord[] | Error)[];
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

/** One member's acquisition, served by a combined one. */
export interface AcquireWant {
  memberId: string;
  maxRecords: number;
  maxBytes: number;
}

export interface PartitionAcquireRequest {
  partition: SharePartition;
  /** Served in this order, each as if alone after the ones before it; several may name one member. */
  wants: AcquireWant[];
  configs: ShareGroupConfigs;
  groupUid: string;
  /**
   * Read the whole window: hand out records given back (released, or whose lock passed) first,
   * write due dead letters, drop the settled head. Without it only fresh records are taken, from
   * the `state` item alone — unless some want would get none, when the window is read anyway.
   */
  scan: boolean;
}

/** Records of one fresh batch at most: bounds a batch item (runs of up to this many records). */
export const FRESH_BATCH_RECORDS_MAX = 500;
/**
 * Wants one combined acquisition serves at most: with a membership check and a fresh batch each,
 * the state item and the batches taken from, its transaction stays under the store's limit.
 */
export const COMBINED_WANTS_MAX = 16;
/** Existing batches one acquisition writes at most, leaving room in the transaction for the rest. */
const TAKEN_BATCHES_MAX = 40;
const TIDY_OPERATIONS_MAX = 40;
const ATTEMPTS_MAX = 30;
/** Redelivered offsets closer than this are read in one fetch. */
const SPAN_GAP_MAX = 16;

interface Plan {
  /** Index into the request's wants. */
  index: number;
  want: AcquireWant;
  wanted: { batch: Batch; index: number; offset: number }[];
  records: AcquiredRecord[];
  bytes: number;
  fresh: Batch | undefined;
}

/**
 * One acquisition from one share-partition for one or more wants (ARCHITECTURE.md, "Queues",
 * Acquire and Combined acquisition): read the window, decide for each want in turn, read the
 * records from the log, write one transaction conditioned on what was read; on a conflict, again.
 * The caller makes sure only one runs per share-partition in this process.
 */
export async function acquireFromPartition(
  deps: AcquireDeps,
  request: PartitionAcquireRequest,
): Promise<PartitionAcquisition> {
  const { engine, metadata, clock } = deps;
  const { configs } = request;
  if (request.wants.length === 0 || request.wants.length > COMBINED_WANTS_MAX)
    throw new Error(`a combined acquisition serves 1 to ${COMBINED_WANTS_MAX} wants`); // a bug
  const policy: ArchivePolicy = {
    deliveryCountLimit: configs.deliveryCountLimit,
    deadLetter: configs.deadLetterTopic !== null,
  };
  const taken: (AcquiredRecord[] | Error)[] = request.wants.map(() => []);
  /** Wants still served: a member whose session ended drops out. */
  let active = request.wants.map((want, index) => ({ want, index }));
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

    // Available records in offset order, to the wants in turn; then fresh ones from the end.
    const lockDeadlineMs = nowMs + configs.lockDurationMs;
    const plans: Plan[] = active.map(({ want, index }) => ({
      index,
      want,
      wanted: [],
      records: [],
      bytes: 0,
      fresh: undefined,
    }));
    const touched = new Set<Batch>();
    let serving = 0;
    scanning: for (const batch of window.batches) {
      for (let index = 0; index < batch.slots.length; index++) {
        if (batch.slots[index]!.state !== "A") continue;
        while (serving < plans.length && plans[serving]!.wanted.length >= plans[serving]!.want.maxRecords)
          serving++;
        if (serving >= plans.length) break scanning;
        if (!touched.has(batch) && touched.size >= TAKEN_BATCHES_MAX) break scanning;
        plans[serving]!.wanted.push({ batch, index, offset: batch.base + index });
        touched.add(batch);
      }
    }
    const limit = Math.min(offsets.highWatermark, state.startOffset + deps.maxInFlightRecords);
    let freshTotal = 0;
    const freshWanted = plans.map((plan) => {
      const count = Math.max(
        0,
        Math.min(
          plan.want.maxRecords - plan.wanted.length,
          FRESH_BATCH_RECORDS_MAX,
          limit - state.endOffset - freshTotal,
        ),
      );
      freshTotal += count;
      return count;
    });
    if (!scan && (!state.exists || freshWanted.some((count) => count === 0))) {
      // Nothing fresh for some want without looking at what is in flight: look at the whole window.
      scan = true;
      continue;
    }
    for (const plan of plans) {
      const read = await readRedelivered(
        engine,
        request.partition,
        plan.wanted.map((entry) => entry.offset),
        plan.want.maxBytes,
      );
      plan.bytes = read.bytes;
      for (const entry of plan.wanted) {
        const record = read.byOffset.get(entry.offset);
        if (!record) continue;
        const slot = entry.batch.slots[entry.index]!;
        const deliveries = slot.deliveries + 1;
        entry.batch.slots[entry.index] = {
          state: "Q",
          deliveries,
          member: plan.want.memberId,
          deadlineMs: lockDeadlineMs,
        };
        entry.batch.changed = true;
        plan.records.push(acquired(request.partition, record, deliveries, lockDeadlineMs));
      }
    }
    // One read of the fresh records for every want, cut into consecutive ranges, one batch each.
    const { records: freshRecords, gap } =
      freshTotal > 0
        ? await readFresh(
            engine,
            request.partition,
            state.endOffset,
            freshTotal,
            plans.reduce((sum, plan) => sum + Math.max(1, plan.want.maxBytes - plan.bytes), 0),
          )
        : { records: [], gap: 0 };
    let next = 0;
    let endOffset = state.endOffset;
    // Offsets without a record at the end (key compaction's, or a failed parallel commit's) join
    // the window archived, as Kafka's share-partitions keep gaps: never delivered, passed over.
    const gapBatch =
      gap > 0
        ? newBatch(request.partition, endOffset, gap, state.epoch, {
            state: "X",
            deliveries: 0,
            member: "",
            deadlineMs: 0,
          })
        : undefined;
    endOffset += gap;
    plans.forEach((plan, planIndex) => {
      const from = next;
      while (next < freshRecords.length && next - from < freshWanted[planIndex]!) {
        if (next > from || plan.records.length > 0) {
          if (plan.bytes >= plan.want.maxBytes) break;
        }
        const record = freshRecords[next]!;
        plan.bytes += size(record);
        next++;
      }
      if (next === from) return;
      plan.fresh = newBatch(request.partition, endOffset, next - from, state.epoch, {
        state: "Q",
        deliveries: 1,
        member: plan.want.memberId,
        deadlineMs: lockDeadlineMs,
      });
      endOffset += next - from;
      for (const record of freshRecords.slice(from, next))
        plan.records.push(acquired(request.partition, record, 1, lockDeadlineMs));
    });

    const holders = [
      ...new Set(plans.filter((plan) => plan.records.length > 0).map((plan) => plan.want.memberId)),
    ];
    const freshBatches = [
      ...(gapBatch ? [gapBatch] : []),
      ...plans.flatMap((plan) => (plan.fresh ? [plan.fresh] : [])),
    ];
    // Tidying costs up to two operations per batch it drops (a merge also rewrites its target).
    const busy =
      1 + holders.length + freshBatches.length + window.batches.filter((batch) => batch.changed).length;
    const tidied = tidy(
      window,
      Math.min(TIDY_OPERATIONS_MAX, Math.floor((TRANSACTION_OPERATIONS_MAX - busy) / 2)),
    );

    // A write for several members names them all (ARCHITECTURE.md, "Queues", Items).
    const stamp: WriteStamp = {
      writtenBy: holders.length > 0 ? holders.join(",") : plans[0]!.want.memberId,
      writtenAtMs: nowMs,
    };
    const operations: TransactOperation[] = [];
    // Only a member whose session has not ended may take records.
    for (const memberId of holders) {
      operations.push({
        kind: "condition_check",
        key: shareMemberKey(request.partition.groupId, memberId),
        condition: cond.compare("sessionDeadlineMs", ">=", nowMs),
      });
    }
    for (const batch of window.batches) if (batch.changed) operations.push(batchUpdate(batch, stamp));
    for (const batch of tidied.deleted) operations.push(batchDelete(batch));
    for (const batch of freshBatches) operations.push(batchPut(batch, stamp));
    if (!state.exists || freshBatches.length > 0 || tidied.startOffset !== state.startOffset)
      operations.push(stateWrite(window, tidied.startOffset, endOffset, stamp));
    const waitInfo = {
      scanned: scan,
      endOffset,
      room: endOffset - tidied.startOffset < deps.maxInFlightRecords,
      nextLockDeadlineMs: nextLockDeadline(window, freshBatches),
    };
    const answer = (): PartitionAcquisition => {
      for (const plan of plans) taken[plan.index] = plan.records;
      return { taken, ...waitInfo };
    };
    if (operations.length === 0) return answer();
    if (operations.length > TRANSACTION_OPERATIONS_MAX) {
      throw new Error(`an acquisition built ${operations.length} operations`); // bounded above; a bug
    }

    const landed = () => {
      for (const plan of plans) deps.meter?.acquired(request.partition, plan.records.length);
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
        await deadLetterNow(
          deps,
          request.partition,
          configs.deadLetterTopic,
          request.groupUid,
          stamp.writtenBy,
        );
      return answer();
    } catch (error) {
      if (error instanceof TransactionCanceledError) {
        // A member whose session ended gets no records; the others decide again without it.
        const ended = new Set(
          error.failures
            .filter((failure) => failure.index < holders.length)
            .map((failure) => holders[failure.index]!),
        );
        if (ended.size > 0) {
          for (const { want, index } of active) {
            if (ended.has(want.memberId))
              taken[index] = unknownShareMember(
                request.partition.groupId,
                want.memberId,
                "is no longer a member",
              );
          }
          active = active.filter(({ want }) => !ended.has(want.memberId));
          if (active.length === 0) return { taken, ...waitInfo };
          continue;
        }
        if (attempt >= ATTEMPTS_MAX) throw error;
        await clock.sleep(backoffMs(clock, Math.min(attempt, 6), 2, 100));
        continue;
      }
      if (error instanceof UnavailableError && holders.length > 0 && attempt < ATTEMPTS_MAX) {
        // The answer may be lost after the write landed: the records are then theirs, with this
        // deadline. Otherwise it never arrived, and deciding again is safe.
        if (await wroteAll(metadata, request.partition, plans, lockDeadlineMs)) {
          landed();
          return answer();
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
function nextLockDeadline(window: Window, fresh: Batch[]): number | undefined {
  let next: number | undefined;
  for (const batch of [...window.batches, ...fresh]) {
    for (const slot of batch.slots) {
      if (slot.state === "Q" && (next === undefined || slot.deadlineMs < next)) next = slot.deadlineMs;
    }
  }
  return next;
}

/** Whether an acquisition whose answer was lost landed: every record it took is its member's at its deadline. */
async function wroteAll(
  metadata: MetadataStore,
  partition: SharePartition,
  plans: Plan[],
  lockDeadlineMs: number,
): Promise<boolean> {
  const window = await loadWindow(metadata, partition);
  return plans.every((plan) =>
    plan.records.every((record) => {
      const batch = window.batches.find(
        (candidate) => record.offset >= candidate.base && record.offset < candidate.base + candidate.count,
      );
      const slot = batch?.slots[record.offset - batch.base];
      return (
        slot?.state === "Q" &&
        slot.member === plan.want.memberId &&
        slot.deadlineMs === lockDeadlineMs &&
        slot.deliveries === record.deliveryCount
      );
    }),
  );
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

function size(record: ConsumedRecord): number {
  return (record.key?.byteLength ?? 0) + (record.value?.byteLength ?? 0);
}

/** Reads the redelivered offsets (in spans), until `maxBytes` of keys and values (at least one record). */
async function readRedelivered(
  engine: Engine,
  partition: SharePartition,
  redelivered: number[],
  maxBytes: number,
): Promise<{ byOffset: Map<number, ConsumedRecord>; bytes: number }> {
  const byOffset = new Map<number, ConsumedRecord>();
  let bytes = 0;
  const full = () => byOffset.size > 0 && bytes >= maxBytes;
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
  return { byOffset, bytes };
}

/**
 * Reads the next `count` offsets from `from`, about `maxBytes` of records: the `gap` offsets at
 * the front that hold no record, then the records contiguous from there, within those offsets.
 */
async function readFresh(
  engine: Engine,
  partition: SharePartition,
  from: number,
  count: number,
  maxBytes: number,
): Promise<{ records: ConsumedRecord[]; gap: number }> {
  const result = await engine.fetch({
    topic: partition.topic,
    partition: partition.partition,
    offset: from,
    maxRecords: count,
    maxBytes,
  });
  const first = result.records[0];
  const gapEnd = Math.min(first ? first.offset : result.nextOffset, from + count);
  const records: ConsumedRecord[] = [];
  for (const record of result.records) {
    // Contiguous from the gap's end: a fresh batch covers every record between.
    if (record.offset !== gapEnd + records.length || gapEnd + records.length >= from + count) break;
    records.push(record);
  }
  return { records, gap: gapEnd - from };
}
