import { type Clock, ConflictError, FencedError } from "@sluice/core";
import { keys, type Topic } from "@sluice/engine";
import {
  acquireOperation,
  guard,
  isAvailable,
  type Lease,
  leaseStateOf,
  releaseOperation,
  renewOperation,
} from "@sluice/leases";
import {
  cond,
  type ItemKey,
  type MetadataStore,
  type ObjectStore,
  type TransactOperation,
} from "@sluice/storage";
import type { MaintenanceSettings } from "./settings.js";

/** What every job is given: the stores, the clock, the settings and who is running it. */
export interface JobContext {
  objects: ObjectStore;
  metadata: MetadataStore;
  clock: Clock;
  settings: MaintenanceSettings;
  /** This runner's id, unique per incarnation: the owner of its leases. */
  owner: string;
  /** Whether the run's time budget allows starting another step (a job stops between steps). */
  hasTime: () => boolean;
}

/**
 * A job's lease, kept alive between steps. Every write a job makes carries `guard()`, so a
 * runner that lost its lease (paused past it) can never write under it.
 */
export class HeldLease {
  constructor(
    private readonly context: JobContext,
    private lease: Lease,
  ) {}

  get current(): Lease {
    return this.lease;
  }

  /** The transaction part that fails unless the lease is still held. */
  guard(): TransactOperation {
    return guard(this.lease);
  }

  /** Renews the lease once half of it has passed; FencedError when it was lost. */
  async keepAlive(): Promise<void> {
    const { clock, settings, metadata } = this.context;
    const now = clock.now();
    if (this.lease.expiresAtMs - now > settings.leaseTtlMs / 2) return;
    const renewed = renewOperation(this.lease, now + settings.leaseTtlMs);
    try {
      await metadata.transactWrite([renewed.operation]);
    } catch (error) {
      if (error instanceof ConflictError) throw lost(this.lease, error);
      throw error;
    }
    this.lease = renewed.lease;
  }

  async release(): Promise<void> {
    try {
      await this.context.metadata.transactWrite([releaseOperation(this.lease)]);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
}

/**
 * Takes the lease at `key` when it is free, released or expired, in one transaction with a
 * check that `topic` still exists (so a lease item is never created in a deleted topic's items),
 * or answers undefined when another runner holds it or the topic is gone.
 */
export async function tryAcquire(
  context: JobContext,
  key: ItemKey,
  topic?: Pick<Topic, "name" | "topicId">,
): Promise<HeldLease | undefined> {
  const { metadata, clock, settings, owner } = context;
  const now = clock.now();
  const state = leaseStateOf(key, await metadata.get(key));
  if (!isAvailable(state, owner, now)) return undefined;
  const { operation, lease } = acquireOperation(key, state, owner, now + settings.leaseTtlMs, now);
  const operations: TransactOperation[] = [operation];
  if (topic) {
    operations.push({
      kind: "condition_check",
      key: keys.topicKey(topic.name),
      condition: cond.eq("topicId", topic.topicId),
    });
  }
  try {
    await metadata.transactWrite(operations);
  } catch (error) {
    if (error instanceof ConflictError) return undefined;
    throw error;
  }
  return new HeldLease(context, lease);
}

function lost(lease: Lease, cause: unknown): FencedError {
  return new FencedError(`maintenance lease ${lease.key.pk}/${lease.key.sk} of ${lease.owner} was lost`, {
    cause,
    details: { owner: lease.owner, epoch: lease.epoch },
  });
}
