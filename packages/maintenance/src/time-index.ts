import { ConflictError } from "@sluice/core";
import {
  type IndexEntry,
  IndexReader,
  keys,
  LruCache,
  lastRunAttribute,
  type PartitionMaintenanceState,
  partitionMaintenanceState,
  type Topic,
} from "@sluice/engine";
import { cond, type Item, type ItemKey, type TransactOperation } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";

/** Entries one run indexes at most; the rest waits for the next run. */
const ENTRIES_PER_RUN = 20_000;
/** Items of old generations deleted per run at most. */
const STALE_ITEMS_PER_RUN = 2_000;

export interface TimeIndexOutcome {
  itemsWritten: number;
  itemsDeleted: number;
  /** The offset the generation lookups use now covers up to. */
  indexedTo: number;
  /** A new generation was started, continued or put in use. */
  rebuilding: boolean;
  interrupted: boolean;
}

/** One generation being extended: where it was built from, how far, its running maximum. */
interface Generation {
  generation: number;
  from: number;
  to: number;
  max: number;
}

/**
 * The time-index job on one partition (ARCHITECTURE.md, "The time index"): an item for every
 * entry (a segment's piece) whose greatest timestamp passes all before it, from where the
 * generation was built. Retention and compaction only take records away, so a generation stays
 * right as the log changes; once retention has moved the log start past half of what it covers,
 * a new generation is built from the log start beside it, run by run, put in use when it has
 * caught up (one conditioned write), and the old one's items deleted afterwards.
 */
export async function buildTimeIndex(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
): Promise<TimeIndexOutcome> {
  const { metadata } = context;
  const { topicId } = topic;
  const state = partitionMaintenanceState(await metadata.get(keys.maintenanceStateKey(topicId, partition)));
  const head = await metadata.get(keys.headKey(topicId, partition));
  const logStart = Number(head?.logStartOffset ?? 0);
  const highWatermark = Number(head?.nextOffset ?? 0);
  const outcome: TimeIndexOutcome = {
    itemsWritten: 0,
    itemsDeleted: 0,
    indexedTo: state.timeIndexTo,
    rebuilding: false,
    interrupted: false,
  };
  const current: Generation = {
    generation: state.timeIndexGeneration,
    from: state.timeIndexFrom,
    to: state.timeIndexTo,
    max: state.timeIndexMax,
  };
  let next = state.timeIndexNext;
  if (!next && isStale(current, logStart)) {
    next = { generation: current.generation + 1, from: logStart, to: logStart, max: -1 };
  }
  try {
    if (next) {
      outcome.rebuilding = true;
      const built = await extend(context, lease, topic, partition, next, highWatermark, outcome);
      const caughtUp = built.to >= highWatermark;
      await writeState(
        context,
        lease,
        topicId,
        partition,
        state,
        caughtUp ? { current: built } : { current, next: built },
      );
      if (caughtUp) outcome.indexedTo = built.to;
    } else {
      const built = await extend(context, lease, topic, partition, current, highWatermark, outcome);
      await writeState(context, lease, topicId, partition, state, { current: built });
      outcome.indexedTo = built.to;
    }
    outcome.itemsDeleted = await deleteOldGenerations(context, lease, topicId, partition);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    outcome.interrupted = true;
  }
  return outcome;
}

/** Retention has moved the log start past half of what the generation in use covers. */
function isStale(current: Pick<Generation, "from" | "to">, logStart: number): boolean {
  const stale = current.to < logStart || logStart - current.from > (current.to - current.from) / 2;
  return stale && logStart > current.from;
}

/**
 * Whether the job has anything to do on the partition: records not indexed yet, a generation
 * being built or due, or items of an old generation left to delete (one read for those).
 */
export async function timeIndexHasWork(
  context: JobContext,
  topicId: string,
  partition: number,
  state: PartitionMaintenanceState,
  logStart: number,
  highWatermark: number,
): Promise<boolean> {
  if (state.timeIndexNext || state.timeIndexTo < highWatermark) return true;
  if (isStale({ from: state.timeIndexFrom, to: state.timeIndexTo }, logStart)) return true;
  if (state.timeIndexGeneration === 0) return false;
  const page = await context.metadata.query({
    pk: keys.partitionPk(topicId, partition),
    sk: {
      kind: "between",
      low: keys.TIME_INDEX_PREFIX,
      high: keys.timeIndexGenerationPrefix(state.timeIndexGeneration),
    },
    limit: 1,
  });
  return page.items.some((item) => keys.timeIndexGenerationOf(item.sk) < state.timeIndexGeneration);
}

/** Appends the generation's items for the entries from where it reached up to the high watermark. */
async function extend(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
  partition: number,
  generation: Generation,
  highWatermark: number,
  outcome: TimeIndexOutcome,
): Promise<Generation> {
  const { topicId } = topic;
  const built = { ...generation };
  if (built.to >= highWatermark) return built;
  const index = new IndexReader(context.metadata, new LruCache<string, IndexEntry>(10_000));
  const puts: Item[] = [];
  let walked = 0;
  for await (const entry of index.walk(topicId, partition, built.to, highWatermark)) {
    if (entry.maxTimestamp > built.max) {
      const key = keys.timeIndexKey(topicId, partition, built.generation, entry.maxTimestamp);
      puts.push({ ...key, baseOffset: entry.baseOffset });
      built.max = entry.maxTimestamp;
    }
    built.to = Math.max(built.to, entry.baseOffset + entry.offsetCount);
    if (++walked >= ENTRIES_PER_RUN) break;
  }
  const perTransaction = context.settings.itemsPerTransaction;
  for (let start = 0; start < puts.length; start += perTransaction) {
    await lease.keepAlive();
    await context.metadata.transactWrite([
      lease.guard(),
      ...puts.slice(start, start + perTransaction).map((item): TransactOperation => ({ kind: "put", item })),
    ]);
  }
  outcome.itemsWritten += puts.length;
  return built;
}

/**
 * Records the generation in use (and the one being built, if any), conditioned on the state being
 * as read, so two runs can never both move it.
 */
async function writeState(
  context: JobContext,
  lease: HeldLease,
  topicId: string,
  partition: number,
  read: PartitionMaintenanceState,
  state: { current: Generation; next?: Generation },
): Promise<void> {
  const set: Record<string, number> = {
    timeIndexGeneration: state.current.generation,
    timeIndexFrom: state.current.from,
    timeIndexTo: state.current.to,
    timeIndexMax: state.current.max,
    [lastRunAttribute("time-index")]: context.clock.now(),
  };
  if (state.next) {
    set.timeIndexNextGeneration = state.next.generation;
    set.timeIndexNextFrom = state.next.from;
    set.timeIndexNextTo = state.next.to;
    set.timeIndexNextMax = state.next.max;
  }
  await context.metadata.transactWrite([
    lease.guard(),
    {
      kind: "update",
      key: keys.maintenanceStateKey(topicId, partition),
      changes: {
        set,
        ...(state.next
          ? {}
          : {
              remove: ["timeIndexNextGeneration", "timeIndexNextFrom", "timeIndexNextTo", "timeIndexNextMax"],
            }),
      },
      condition: cond.and(
        read.timeIndexGeneration === 0
          ? cond.or(cond.notExists("timeIndexGeneration"), cond.eq("timeIndexGeneration", 0))
          : cond.eq("timeIndexGeneration", read.timeIndexGeneration),
        cond.or(cond.notExists("timeIndexTo"), cond.eq("timeIndexTo", read.timeIndexTo)),
      ),
    },
  ]);
}

/** Deletes items of generations older than the one in use (left by a switch), a bounded number per run. */
async function deleteOldGenerations(
  context: JobContext,
  lease: HeldLease,
  topicId: string,
  partition: number,
): Promise<number> {
  const state = partitionMaintenanceState(
    await context.metadata.get(keys.maintenanceStateKey(topicId, partition)),
  );
  if (state.timeIndexGeneration === 0) return 0;
  const old: ItemKey[] = [];
  let cursor: string | undefined;
  do {
    const page = await context.metadata.query({
      pk: keys.partitionPk(topicId, partition),
      sk: {
        kind: "between",
        low: keys.TIME_INDEX_PREFIX,
        high: keys.timeIndexGenerationPrefix(state.timeIndexGeneration),
      },
      limit: 500,
      cursor,
    });
    for (const item of page.items) {
      if (keys.timeIndexGenerationOf(item.sk) < state.timeIndexGeneration)
        old.push({ pk: item.pk, sk: item.sk });
    }
    cursor = old.length < STALE_ITEMS_PER_RUN ? page.cursor : undefined;
  } while (cursor);
  const perTransaction = context.settings.itemsPerTransaction;
  for (let start = 0; start < old.length; start += perTransaction) {
    await lease.keepAlive();
    await context.metadata.transactWrite([
      lease.guard(),
      ...old.slice(start, start + perTransaction).map((key): TransactOperation => ({ kind: "delete", key })),
    ]);
  }
  return old.length;
}
