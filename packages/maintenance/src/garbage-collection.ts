import { ConflictError } from "@sluice/core";
import {
  keys,
  lastRunAttribute,
  storedIndexEntries,
  type Topic,
  topicMaintenanceState,
} from "@sluice/engine";
import type { Item, ObjectInfo, TransactOperation } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";

export interface GarbageOutcome {
  /** The topic's objects after the run. */
  objectCount: number;
  objectBytes: number;
  /** Objects found unreferenced for the first time this run (marked). */
  marked: number;
  /** Objects deleted: unreferenced, older than the bound, marked longer ago than the grace period. */
  deleted: number;
  /** Their bytes. */
  bytesDeleted: number;
  /** The topic was collected less than gcIntervalMs ago and no mark is due: nothing was read. */
  skipped: boolean;
}

/**
 * Garbage collection of one topic (ARCHITECTURE.md, "Garbage collection"): list its objects,
 * then read every partition's index (live and shadowed entries); an object older than
 * `gcMinAgeMs` that no entry names is garbage for good, since no entry can be created for it past
 * its commit window. It is marked with the time it was first found so, and deleted by a later
 * run once `objectGraceMs` has passed since, so a reader that read its entry just before the
 * entry was replaced can still read it.
 */
export async function collectGarbage(
  context: JobContext,
  lease: HeldLease,
  topic: Topic,
): Promise<GarbageOutcome> {
  const { objects, metadata, clock, settings } = context;
  const now = clock.now();
  const stateItem = await metadata.get(keys.topicMaintenanceStateKey(topic.topicId));
  const state = topicMaintenanceState(stateItem);
  const dueAt = Number(stateItem?.gcDueAt ?? 0);
  if (
    state.lastGcAt !== undefined &&
    now - state.lastGcAt < settings.gcIntervalMs &&
    (dueAt === 0 || now < dueAt)
  ) {
    return {
      objectCount: state.objectCount ?? 0,
      objectBytes: state.objectBytes ?? 0,
      marked: 0,
      deleted: 0,
      bytesDeleted: 0,
      skipped: true,
    };
  }
  // The listing comes first: whatever an entry read afterwards names was named all along or is new.
  const listed: ObjectInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await objects.list(keys.topicObjectsPrefix(topic.topicId), { cursor });
    listed.push(...page.objects);
    cursor = page.cursor;
  } while (cursor);
  const old = listed.filter((object) => {
    const uploadedAt = keys.objectKeyTimeMs(object.key);
    return uploadedAt !== undefined && now - uploadedAt > settings.gcMinAgeMs;
  });
  const marks = await readMarks(context, topic.topicId);
  const referenced = new Set<string>();
  if (old.length > 0) {
    for (let partition = 0; partition < topic.partitions; partition++) {
      for await (const entry of storedIndexEntries(metadata, topic.topicId, partition))
        referenced.add(entry.objectKey);
      await lease.keepAlive();
    }
  }
  const toMark: string[] = [];
  const toDelete: ObjectInfo[] = [];
  for (const object of old) {
    if (referenced.has(object.key)) continue;
    const markedAt = marks.get(object.key);
    if (markedAt === undefined) toMark.push(object.key);
    else if (now - markedAt >= settings.objectGraceMs) toDelete.push(object);
  }
  const present = new Set(listed.map((object) => object.key));
  // A mark whose object is gone (deleted by an earlier run that stopped before its marks), or
  // names an object some entry names (never written by a correct run), is dropped.
  const dropMarks = [...marks.keys()].filter((key) => !present.has(key) || referenced.has(key));

  await writeMarks(
    context,
    lease,
    toMark.map((objectKey) => ({ kind: "put", item: markItem(topic.topicId, objectKey, now) })),
  );
  if (toDelete.length > 0) await objects.deleteMany(toDelete.map((object) => object.key));
  await writeMarks(context, lease, [
    ...toDelete.map(
      (object): TransactOperation => ({
        kind: "delete",
        key: keys.garbageMarkKey(topic.topicId, object.key),
      }),
    ),
    ...dropMarks.map(
      (objectKey): TransactOperation => ({
        kind: "delete",
        key: keys.garbageMarkKey(topic.topicId, objectKey),
      }),
    ),
  ]);

  const deletedKeys = new Set(toDelete.map((object) => object.key));
  const remaining = listed.filter((object) => !deletedKeys.has(object.key));
  const outcome: GarbageOutcome = {
    objectCount: remaining.length,
    objectBytes: remaining.reduce((sum, object) => sum + object.size, 0),
    marked: toMark.length,
    deleted: toDelete.length,
    bytesDeleted: toDelete.reduce((sum, object) => sum + object.size, 0),
    skipped: false,
  };
  // Marks left waiting (new ones, and ones not yet past the grace period) bring the next run forward.
  const waiting = [
    ...toMark.map(() => now),
    ...[...marks.entries()]
      .filter(([key]) => !toDelete.some((object) => object.key === key) && !dropMarks.includes(key))
      .map(([, at]) => at),
  ];
  const gcDueAt = waiting.length === 0 ? 0 : Math.min(...waiting) + settings.objectGraceMs;
  try {
    await metadata.transactWrite([
      lease.guard(),
      {
        kind: "update",
        key: keys.topicMaintenanceStateKey(topic.topicId),
        changes: {
          set: {
            objectCount: outcome.objectCount,
            objectBytes: outcome.objectBytes,
            gcDueAt,
            [lastRunAttribute("gc")]: clock.now(),
          },
        },
      },
    ]);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
  }
  return outcome;
}

function markItem(topicId: string, objectKey: string, nowMs: number): Item {
  return { ...keys.garbageMarkKey(topicId, objectKey), firstUnreferencedAt: nowMs };
}

async function readMarks(context: JobContext, topicId: string): Promise<Map<string, number>> {
  const marks = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = await context.metadata.query({
      pk: keys.topicMaintenancePk(topicId),
      sk: { kind: "begins_with", prefix: keys.GARBAGE_PREFIX },
      cursor,
    });
    for (const item of page.items)
      marks.set(item.sk.slice(keys.GARBAGE_PREFIX.length), Number(item.firstUnreferencedAt));
    cursor = page.cursor;
  } while (cursor);
  return marks;
}

async function writeMarks(
  context: JobContext,
  lease: HeldLease,
  operations: TransactOperation[],
): Promise<void> {
  const perTransaction = context.settings.itemsPerTransaction;
  for (let start = 0; start < operations.length; start += perTransaction) {
    await lease.keepAlive();
    await context.metadata.transactWrite([lease.guard(), ...operations.slice(start, start + perTransaction)]);
  }
}
