import { InternalError } from "@sluice/core";
import type { AttributeValue, Item, ItemKey, MetadataStore } from "@sluice/storage";
import { BATCH_PREFIX, batchKey, batchSortKey, STATE_SK, sharePartitionPk } from "./keys.js";

/**
 * A share-partition's window (ARCHITECTURE.md, "Queues"): the `state` item and the batch items
 * between the start and end offsets, each batch's records decoded from their runs into slots.
 * Everything here is pure but `loadWindow`.
 */

/** A: available, Q: acquired, K: acknowledged, X: archived, L / R: archived, dead letter due (limit / rejected). */
export type SlotState = "A" | "Q" | "K" | "X" | "L" | "R";

export interface Slot {
  state: SlotState;
  deliveries: number;
  /** The holder (Q), the acknowledging member (K; forgotten in a merge that would make too many runs); "" otherwise. */
  member: string;
  /** The lock deadline (Q); 0 otherwise. */
  deadlineMs: number;
}

export interface Batch {
  key: ItemKey;
  base: number;
  count: number;
  epoch: number;
  /** The stored version; every write is conditioned on it. */
  version: number;
  slots: Slot[];
  /** Set when this operation changed a slot: the batch must be written. */
  changed: boolean;
  /** The runs and count as read (undefined for a fresh batch): what a landed write changed, for metrics. */
  storedRuns?: AttributeValue;
  storedCount: number;
}

export interface WindowState {
  /** False until the first writer creates the item. */
  exists: boolean;
  startOffset: number;
  endOffset: number;
  epoch: number;
  version: number;
}

export interface SharePartition {
  groupId: string;
  topic: string;
  topicId: string;
  partition: number;
}

export interface Window extends SharePartition {
  state: WindowState | undefined;
  /** The live batches, in offset order, tiling [startOffset, endOffset). */
  batches: Batch[];
  /** Batch items of older epochs, or outside the window: left by a reset, to be deleted. */
  garbage: ItemKey[];
}

export const SETTLED: ReadonlySet<SlotState> = new Set(["K", "X"]);
/** No longer deliverable (settled, or archived with its dead letter due). */
export const FINISHED: ReadonlySet<SlotState> = new Set(["K", "X", "L", "R"]);
const STATES: ReadonlySet<string> = new Set(["A", "Q", "K", "X", "L", "R"]);

/** Runs: `[length, state, deliveries, member, deadlineMs]` for each stretch of alike slots. */
export function encodeRuns(slots: readonly Slot[]): AttributeValue[] {
  const runs: [number, string, number, string, number][] = [];
  slots.forEach((slot, index) => {
    if (index > 0 && sameRun(slots[index - 1]!, slot)) runs[runs.length - 1]![0]++;
    else runs.push([1, slot.state, slot.deliveries, slot.member, slot.deadlineMs]);
  });
  return runs;
}

/** How many runs `encodeRuns` would write, without building them. */
function runCount(slots: readonly Slot[]): number {
  let count = 0;
  for (let index = 0; index < slots.length; index++)
    if (index === 0 || !sameRun(slots[index - 1]!, slots[index]!)) count++;
  return count;
}

/** Whether two neighbouring slots belong to one run: every field alike. */
function sameRun(a: Slot, b: Slot): boolean {
  return (
    a.state === b.state &&
    a.deliveries === b.deliveries &&
    a.member === b.member &&
    a.deadlineMs === b.deadlineMs
  );
}

export function decodeRuns(runs: AttributeValue | undefined, count: number, where: string): Slot[] {
  const slots: Slot[] = [];
  if (!Array.isArray(runs)) throw corrupt(where, "its runs are missing");
  for (const run of runs) {
    if (!Array.isArray(run) || run.length !== 5) throw corrupt(where, "a run is malformed");
    const [length, state, deliveries, member, deadlineMs] = run;
    if (typeof state !== "string" || !STATES.has(state))
      throw corrupt(where, `unknown state ${String(state)}`);
    const slot: Slot = {
      state: state as SlotState,
      deliveries: Number(deliveries),
      member: String(member),
      deadlineMs: Number(deadlineMs),
    };
    for (let index = 0; index < Number(length); index++) slots.push({ ...slot });
  }
  if (slots.length !== count) throw corrupt(where, `its runs hold ${slots.length} records, not ${count}`);
  return slots;
}

function corrupt(where: string, what: string): InternalError {
  return new InternalError(`share-partition batch ${where} is unreadable: ${what}`);
}

export function batchFromItem(item: Item): Batch {
  const count = Number(item.count);
  return {
    key: { pk: item.pk, sk: item.sk },
    base: Number(item.base),
    count,
    epoch: Number(item.epoch),
    version: Number(item.version),
    slots: decodeRuns(item.runs, count, `${item.pk}/${item.sk}`),
    changed: false,
    storedRuns: item.runs,
    storedCount: count,
  };
}

/** Reads a share-partition's window: one query of its `pk` (paged). */
export async function loadWindow(metadata: MetadataStore, partition: SharePartition): Promise<Window> {
  const pk = sharePartitionPk(partition.groupId, partition.topicId, partition.partition);
  let state: WindowState | undefined;
  const batches: Batch[] = [];
  let cursor: string | undefined;
  do {
    const page = await metadata.query({ pk, cursor });
    for (const item of page.items) {
      if (item.sk === STATE_SK) {
        state = {
          exists: true,
          startOffset: Number(item.startOffset),
          endOffset: Number(item.endOffset),
          epoch: Number(item.epoch),
          version: Number(item.version),
        };
      } else if (item.sk.startsWith(BATCH_PREFIX)) {
        batches.push(batchFromItem(item));
      }
    }
    cursor = page.cursor;
  } while (cursor);
  const live: Batch[] = [];
  const garbage: ItemKey[] = [];
  for (const batch of batches) {
    const inside =
      state !== undefined &&
      batch.epoch === state.epoch &&
      batch.base >= state.startOffset &&
      batch.base < state.endOffset;
    if (inside) live.push(batch);
    else garbage.push(batch.key);
  }
  live.sort((a, b) => a.base - b.base);
  if (state) checkTiling(partition, state, live);
  return { ...partition, state, batches: live, garbage };
}

/**
 * Reads the `state` item and just the batches holding `offsets` (one query each, for the batch
 * starting at or before the offset), not the whole window: what acknowledgements need. The
 * batches found need not be adjacent; an offset no batch holds was settled and dropped.
 */
export async function loadBatchesFor(
  metadata: MetadataStore,
  partition: SharePartition,
  offsets: readonly number[],
): Promise<Window> {
  const pk = sharePartitionPk(partition.groupId, partition.topicId, partition.partition);
  const stateItem = await metadata.get({ pk, sk: STATE_SK });
  const state: WindowState | undefined = stateItem && {
    exists: true,
    startOffset: Number(stateItem.startOffset),
    endOffset: Number(stateItem.endOffset),
    epoch: Number(stateItem.epoch),
    version: Number(stateItem.version),
  };
  const batches: Batch[] = [];
  if (state) {
    for (const offset of [...offsets].sort((a, b) => a - b)) {
      if (offset < state.startOffset || offset >= state.endOffset) continue;
      if (batches.some((batch) => offset >= batch.base && offset < batch.base + batch.count)) continue;
      const page = await metadata.query({
        pk,
        sk: { kind: "between", low: BATCH_PREFIX, high: batchSortKey(offset) },
        order: "desc",
        limit: 1,
      });
      const item = page.items[0];
      const batch = item && batchFromItem(item);
      if (!batch || batch.epoch !== state.epoch || offset >= batch.base + batch.count) {
        // Inside the window yet not in a live batch: garbage of an older epoch hides it, or the
        // window moved since the state was read. The whole window settles which.
        return loadWindow(metadata, partition);
      }
      batches.push(batch);
    }
  }
  batches.sort((a, b) => a.base - b.base);
  return { ...partition, state, batches, garbage: [] };
}

/** Batches tile the window exactly; anything else is a bug worth stopping for. */
function checkTiling(partition: SharePartition, state: WindowState, batches: Batch[]): void {
  let next = state.startOffset;
  for (const batch of batches) {
    if (batch.base !== next) {
      throw new InternalError(
        `share-partition ${partition.topic}/${partition.partition} of group ${partition.groupId}: the batch at ${batch.base} does not follow on from ${next}`,
      );
    }
    next = batch.base + batch.count;
  }
  if (next !== state.endOffset) {
    throw new InternalError(
      `share-partition ${partition.topic}/${partition.partition} of group ${partition.groupId}: batches end at ${next}, the window at ${state.endOffset}`,
    );
  }
}

export function newBatch(
  partition: SharePartition,
  base: number,
  count: number,
  epoch: number,
  slot: Slot,
): Batch {
  return {
    key: batchKey(partition.groupId, partition.topicId, partition.partition, base),
    base,
    count,
    epoch,
    version: 0,
    slots: Array.from({ length: count }, () => ({ ...slot })),
    changed: true,
    storedCount: 0,
  };
}

export interface ArchivePolicy {
  deliveryCountLimit: number;
  /** A dead-letter topic is set: archived records are first due for it. */
  deadLetter: boolean;
}

/** What a slot becomes when given back (released, or its lock passed): available, or archived when out of deliveries. */
export function giveBack(slot: Slot, policy: ArchivePolicy): Slot {
  if (slot.deliveries >= policy.deliveryCountLimit) {
    return { state: policy.deadLetter ? "L" : "X", deliveries: slot.deliveries, member: "", deadlineMs: 0 };
  }
  return { state: "A", deliveries: slot.deliveries, member: "", deadlineMs: 0 };
}

/**
 * Resolves locks that passed before `nowMs`, in memory: such records count as given back. A passed
 * lock needs no write to count as passed, so the batch is not marked changed for it — except when
 * the record now has a dead letter due (`L`): that must be written down before the dead letter is
 * appended (see `storedState`), or a holder's acknowledgement landing first would leave a dead
 * letter for an accepted record.
 */
export function resolvePassedLocks(window: Window, nowMs: number, policy: ArchivePolicy): void {
  for (const batch of window.batches) {
    for (let index = 0; index < batch.slots.length; index++) {
      const slot = batch.slots[index]!;
      if (slot.state !== "Q" || slot.deadlineMs >= nowMs) continue;
      batch.slots[index] = giveBack(slot, policy);
      if (batch.slots[index]!.state === "L") batch.changed = true;
    }
  }
}

/** The state of the record at `index` as the batch was read from the store (undefined when fresh). */
export function storedStates(batch: Batch): SlotState[] | undefined {
  if (batch.storedRuns === undefined) return undefined;
  return decodeRuns(batch.storedRuns, batch.storedCount, `${batch.key.pk}/${batch.key.sk}`).map(
    (slot) => slot.state,
  );
}

export function isSettled(batch: Batch): boolean {
  return batch.slots.every((slot) => SETTLED.has(slot.state));
}

/** Where an offset lives: its batch and index, or undefined outside the window. */
export function locate(window: Window, offset: number): { batch: Batch; index: number } | undefined {
  for (const batch of window.batches) {
    if (offset >= batch.base && offset < batch.base + batch.count)
      return { batch, index: offset - batch.base };
  }
  return undefined;
}

export interface Tidying {
  /** Batches to delete under their versions: settled ones at the head, and ones merged into a neighbour. */
  deleted: Batch[];
  /** The start offset after the settled head is dropped. */
  startOffset: number;
}

/** Runs a merged settled batch may keep with their acknowledging members (about 40 bytes each). */
const MERGED_RUNS_MAX = 256;

/**
 * Drops the settled head of the window (the start moves past it) and merges runs of adjacent
 * settled batches further in into their first, so a window holds few items however long the
 * head waits. Changes `window.batches` in memory; at most `operationsMax` deletions.
 */
export function tidy(window: Window, operationsMax: number): Tidying {
  const deleted: Batch[] = [];
  let startOffset = window.state!.startOffset;
  while (deleted.length < operationsMax && window.batches.length > 0 && isSettled(window.batches[0]!)) {
    const head = window.batches.shift()!;
    deleted.push(head);
    startOffset = head.base + head.count;
  }
  const kept: Batch[] = [];
  for (const batch of window.batches) {
    const previous = kept[kept.length - 1];
    if (
      previous &&
      deleted.length < operationsMax &&
      isSettled(previous) &&
      isSettled(batch) &&
      previous.base + previous.count === batch.base
    ) {
      const slots = [...previous.slots, ...batch.slots];
      previous.count += batch.count;
      // Who acknowledged a settled record is kept: a retry of that acknowledgement whose answer
      // was lost (its server killed) must be recognised, not refused as someone else's. Only a
      // merged batch that would hold too many runs forgets it, so that it stays one small item.
      previous.slots =
        runCount(slots) <= MERGED_RUNS_MAX
          ? slots
          : slots.map((slot) => ({ ...slot, member: "", deadlineMs: 0 }));
      previous.changed = true;
      deleted.push(batch);
      continue;
    }
    kept.push(batch);
  }
  window.batches = kept;
  return { deleted, startOffset };
}
