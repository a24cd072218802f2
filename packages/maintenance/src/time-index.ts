import { ConflictError } from "@sluice/core";
import {
  type IndexEntry,
  IndexReader,
  keys,
  LruCache,
  lastRunAttribute,
  partitionMaintenanceState,
  type Topic,
} from "@sluice/engine";
import { cond, type Item, type ItemKey, type TransactOperation } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";

/** Entries one run indexes at most; the rest waits for the next run. */
const ENTRIES_PER_RUN = 20_000;

export interface TimeIndexOutcome {
  itemsWritten: number;
  itemsDeleted: number;
  /** The offset the index now covers up to. */
  indexedTo: number;
  interrupted: boolean;
}

/**
 * The time-index job on one partition (ARCHITECTURE.md, "The time index"): an item for every
 * entry (a segment's piece) whose greatest timestamp passes all before it. When the log start
 * moved since the index was built, the items between the new start and the first item at or
 * after it are computed afresh first, and only then are items below the start removed, so a
 * lookup always finds a valid lower bound; then the index is extended over the entries committed
 * since the last run.
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
  const index = new IndexReader(metadata, new LruCache<string, IndexEntry>(10_000));
  const puts = new Map<string, Item>();
  const deletes: ItemKey[] = [];
  const put = (entry: IndexEntry) => {
    const key = keys.timeIndexKey(topicId, partition, entry.maxTimestamp);
    puts.set(key.sk, { ...key, baseOffset: entry.baseOffset });
  };

  let indexedTo = state.timeIndexTo;
  let runningMax = state.timeIndexMax;
  if (indexedTo < logStart) {
    // Retention passed everything indexed: start again from the log start.
    for (const item of await timeItems(context, topicId, partition))
      deletes.push({ pk: item.pk, sk: item.sk });
    indexedTo = logStart;
    runningMax = -1;
  } else if (state.timeIndexFrom < logStart) {
    const items = await timeItems(context, topicId, partition);
    const firstKept = items.find((item) => Number(item.baseOffset) >= logStart);
    const fixEnd = firstKept ? Number(firstKept.baseOffset) : indexedTo;
    let fixMax = -1;
    for await (const entry of index.walk(topicId, partition, logStart, fixEnd)) {
      if (entry.baseOffset >= fixEnd) break;
      if (entry.maxTimestamp > fixMax) {
        put(entry);
        fixMax = entry.maxTimestamp;
      }
    }
    for (const item of items) {
      if (Number(item.baseOffset) < logStart && !puts.has(item.sk))
        deletes.push({ pk: item.pk, sk: item.sk });
    }
    if (!firstKept) runningMax = fixMax;
  }

  let walked = 0;
  if (indexedTo < highWatermark) {
    for await (const entry of index.walk(topicId, partition, indexedTo, highWatermark)) {
      if (entry.maxTimestamp > runningMax) {
        put(entry);
        runningMax = entry.maxTimestamp;
      }
      indexedTo = Math.max(indexedTo, entry.baseOffset + entry.offsetCount);
      if (++walked >= ENTRIES_PER_RUN) break;
    }
  }

  // An old item whose key a new one takes is replaced by the put, not deleted after it.
  const stale = deletes.filter((key) => !puts.has(key.sk));
  const outcome: TimeIndexOutcome = { itemsWritten: 0, itemsDeleted: 0, indexedTo, interrupted: false };
  // Puts first, then deletes, then the state: every step leaves lookups a valid lower bound.
  const operations: TransactOperation[] = [
    ...[...puts.values()].map((item): TransactOperation => ({ kind: "put", item })),
    ...stale.map((key): TransactOperation => ({ kind: "delete", key })),
  ];
  try {
    const perTransaction = context.settings.itemsPerTransaction;
    for (let start = 0; start < operations.length; start += perTransaction) {
      await lease.keepAlive();
      await metadata.transactWrite([lease.guard(), ...operations.slice(start, start + perTransaction)]);
    }
    await metadata.transactWrite([
      lease.guard(),
      {
        kind: "update",
        key: keys.maintenanceStateKey(topicId, partition),
        changes: {
          set: {
            timeIndexFrom: logStart,
            timeIndexTo: indexedTo,
            timeIndexMax: runningMax,
            [lastRunAttribute("time-index")]: context.clock.now(),
          },
        },
        condition: cond.or(cond.notExists("timeIndexTo"), cond.eq("timeIndexTo", state.timeIndexTo)),
      },
    ]);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    outcome.interrupted = true;
    return outcome;
  }
  outcome.itemsWritten = puts.size;
  outcome.itemsDeleted = stale.length;
  return outcome;
}

async function timeItems(context: JobContext, topicId: string, partition: number): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | undefined;
  do {
    const page = await context.metadata.query({
      pk: keys.partitionPk(topicId, partition),
      sk: { kind: "begins_with", prefix: keys.TIME_INDEX_PREFIX },
      cursor,
    });
    items.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return items;
}
