import { ConflictError } from "@sluice/core";
import { keys } from "@sluice/engine";
import { heldCondition } from "@sluice/leases";
import type { Item, ItemKey } from "@sluice/storage";
import type { HeldLease, JobContext } from "./job-context.js";

/** A deleted topic waiting for its data to go (keys.ts `deletionKey`). */
export interface DeletionJob {
  topicId: string;
  name: string;
  partitions: number;
  deletedAt: number;
  /** Partitions whose items are gone already. */
  purgedPartitions: number;
}

export function deletionJobFromItem(item: Item): DeletionJob {
  return {
    topicId: String(item.topicId),
    name: String(item.name),
    partitions: Number(item.partitions),
    deletedAt: Number(item.deletedAt),
    purgedPartitions: Number(item.purgedPartitions ?? 0),
  };
}

export async function listDeletionJobs(context: JobContext): Promise<DeletionJob[]> {
  const jobs: DeletionJob[] = [];
  let cursor: string | undefined;
  do {
    const page = await context.metadata.query({ pk: keys.DELETIONS_PK, cursor });
    jobs.push(...page.items.map(deletionJobFromItem));
    cursor = page.cursor;
  } while (cursor);
  return jobs;
}

export interface PurgeOutcome {
  itemsDeleted: number;
  objectsDeleted: number;
  bytesDeleted: number;
  /** The job is done and gone; false when it waits for late uploads or ran out of time. */
  finished: boolean;
}

/**
 * Purges a deleted topic in steps that each survive a crash (ARCHITECTURE.md, "Topic deletion as
 * a resumable job"): each partition's items (recording progress on the job), the idempotency
 * keys and maintenance items, the objects; once the commit window plus the GC margin has passed
 * since the deletion — so no upload made before it can still appear — the objects and
 * partitions once more, then the job itself. `hasTime` ends a run between steps.
 */
export async function purgeTopic(
  context: JobContext,
  lease: HeldLease,
  job: DeletionJob,
  hasTime: () => boolean = () => true,
): Promise<PurgeOutcome> {
  const outcome: PurgeOutcome = { itemsDeleted: 0, objectsDeleted: 0, bytesDeleted: 0, finished: false };
  const jobKey = keys.deletionKey(job.topicId);
  for (let partition = job.purgedPartitions; partition < job.partitions; partition++) {
    if (!hasTime()) return outcome;
    outcome.itemsDeleted += await deleteAllItems(context, lease, keys.partitionPk(job.topicId, partition));
    await context.metadata.transactWrite([
      {
        kind: "update",
        key: jobKey,
        changes: { set: { purgedPartitions: partition + 1 } },
        condition: heldCondition(lease.current),
      },
    ]);
  }
  if (!hasTime()) return outcome;
  outcome.itemsDeleted += await deleteAllItems(context, lease, keys.idempotencyKeyItem(job.topicId, "").pk);
  outcome.itemsDeleted += await deleteAllItems(context, lease, keys.topicMaintenancePk(job.topicId));
  await deleteAllObjects(context, lease, job.topicId, hasTime, outcome);
  const settled = context.clock.now() - job.deletedAt > context.settings.gcMinAgeMs;
  if (!settled || !hasTime()) return outcome;
  // Late arrivals: an upload that began before the deletion, a lease item of a slow runner.
  await deleteAllObjects(context, lease, job.topicId, hasTime, outcome);
  for (let partition = 0; partition < job.partitions; partition++) {
    outcome.itemsDeleted += await deleteAllItems(context, lease, keys.partitionPk(job.topicId, partition));
  }
  try {
    await context.metadata.transactWrite([
      { kind: "delete", key: jobKey, condition: heldCondition(lease.current) },
    ]);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    return outcome;
  }
  outcome.finished = true;
  return outcome;
}

async function deleteAllItems(context: JobContext, lease: HeldLease, pk: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await context.metadata.query({ pk, limit: context.settings.itemsPerTransaction });
    if (page.items.length === 0) return deleted;
    await lease.keepAlive();
    const itemKeys: ItemKey[] = page.items.map((item) => ({ pk: item.pk, sk: item.sk }));
    await context.metadata.transactWrite([
      lease.guard(),
      ...itemKeys.map((key) => ({ kind: "delete" as const, key })),
    ]);
    deleted += itemKeys.length;
  }
}

async function deleteAllObjects(
  context: JobContext,
  lease: HeldLease,
  topicId: string,
  hasTime: () => boolean,
  outcome: PurgeOutcome,
): Promise<void> {
  for (;;) {
    const page = await context.objects.list(keys.topicObjectsPrefix(topicId));
    if (page.objects.length === 0) return;
    await lease.keepAlive();
    await context.objects.deleteMany(page.objects.map((object) => object.key));
    outcome.objectsDeleted += page.objects.length;
    for (const object of page.objects) outcome.bytesDeleted += object.size;
    if (!hasTime()) return;
  }
}
