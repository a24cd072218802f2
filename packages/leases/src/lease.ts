import { type Clock, ConflictError, FencedError } from "@sluice/core";
import {
  type Condition,
  cond,
  type Item,
  type ItemKey,
  type MetadataStore,
  type TransactOperation,
} from "@sluice/storage";

/**
 * Leases with fencing (ARCHITECTURE.md, "Leases"). A lease lives in three attributes of an item
 * the caller names, so it may share the item with the resource's own data.
 *
 * Guarantees:
 * - At most one holder acquires a given epoch: acquisition is a write conditioned on the epoch
 *   the acquirer read, and every acquisition increments it.
 * - A lease is taken from its holder only once it is released or its expiry has passed on the
 *   taker's clock at write time.
 * - `guard(lease)` in a transaction makes the transaction fail unless the lease is still held by
 *   that owner at that epoch, so a holder that lost its lease can never commit under it.
 * - Epochs never go back while the item lives; owners are unique per incarnation, so even a
 *   deleted and recreated lease item never lets an old holder pass a guard.
 * Safety never depends on clocks; expiry only decides when a silent holder counts as gone.
 */
export interface Lease {
  key: ItemKey;
  owner: string;
  epoch: number;
  expiresAtMs: number;
}

/** What a lease item says now: the holder (if any) and its epoch. */
export interface LeaseState {
  key: ItemKey;
  owner: string | undefined;
  epoch: number;
  expiresAtMs: number;
}

export const LEASE_OWNER = "leaseOwner";
export const LEASE_EPOCH = "leaseEpoch";
export const LEASE_EXPIRES_AT = "leaseExpiresAt";

export class LeaseHeldError extends ConflictError {
  override readonly name = "LeaseHeldError";
}

/** The lease attributes of an item; `undefined` for a missing item. */
export function leaseStateOf(key: ItemKey, item: Item | undefined): LeaseState | undefined {
  if (!item) return undefined;
  const owner = item[LEASE_OWNER];
  return {
    key,
    owner: typeof owner === "string" ? owner : undefined,
    epoch: Number(item[LEASE_EPOCH] ?? 0),
    expiresAtMs: Number(item[LEASE_EXPIRES_AT] ?? 0),
  };
}

/** Whether `owner` may acquire the lease now: nobody holds it, it expired, or it is already theirs. */
export function isAvailable(state: LeaseState | undefined, owner: string, nowMs: number): boolean {
  return !state || state.owner === undefined || state.owner === owner || state.expiresAtMs < nowMs;
}

/** Whether the lease is held by someone (anyone) and not expired at `nowMs`. */
export function isHeld(state: LeaseState | undefined, nowMs: number): boolean {
  return state?.owner !== undefined && state.expiresAtMs >= nowMs;
}

/**
 * The write that acquires a lease seen as `state` (or missing), and the lease it yields once the
 * write commits. Callers put it in their own transaction; `Leases.acquire` runs it alone.
 */
export function acquireOperation(
  key: ItemKey,
  state: LeaseState | undefined,
  owner: string,
  expiresAtMs: number,
  nowMs: number,
): { operation: TransactOperation; lease: Lease } {
  const epoch = (state?.epoch ?? 0) + 1;
  const lease: Lease = { key, owner, epoch, expiresAtMs };
  if (!state) {
    return {
      lease,
      operation: {
        kind: "put",
        item: { ...key, [LEASE_OWNER]: owner, [LEASE_EPOCH]: epoch, [LEASE_EXPIRES_AT]: expiresAtMs },
        condition: cond.notExists("pk"),
      },
    };
  }
  return {
    lease,
    operation: {
      kind: "update",
      key,
      changes: { set: { [LEASE_OWNER]: owner, [LEASE_EPOCH]: epoch, [LEASE_EXPIRES_AT]: expiresAtMs } },
      condition: cond.and(
        cond.eq(LEASE_EPOCH, state.epoch),
        cond.or(
          cond.notExists(LEASE_OWNER),
          cond.compare(LEASE_EXPIRES_AT, "<", nowMs),
          cond.eq(LEASE_OWNER, owner),
        ),
      ),
    },
  };
}

/**
 * The write that hands a held lease from `state.owner` to `owner` at a new epoch, whether or not
 * it expired: for a holder's own successor (a static group member restarting under a new id).
 * Conditioned on the epoch and owner seen, so it fails if anyone else acquired meanwhile.
 */
export function transferOperation(
  state: LeaseState & { owner: string },
  owner: string,
  expiresAtMs: number,
): { operation: TransactOperation; lease: Lease } {
  const lease: Lease = { key: state.key, owner, epoch: state.epoch + 1, expiresAtMs };
  return {
    lease,
    operation: {
      kind: "update",
      key: state.key,
      changes: { set: { [LEASE_OWNER]: owner, [LEASE_EPOCH]: lease.epoch, [LEASE_EXPIRES_AT]: expiresAtMs } },
      condition: heldCondition(state),
    },
  };
}

/** The condition that `lease` is still held as it was granted. */
export function heldCondition(lease: Pick<Lease, "owner" | "epoch">): Condition {
  return cond.and(cond.eq(LEASE_OWNER, lease.owner), cond.eq(LEASE_EPOCH, lease.epoch));
}

/** A transaction part that fails unless `lease` is still held: put it beside every write made under it. */
export function guard(lease: Lease): TransactOperation {
  return { kind: "condition_check", key: lease.key, condition: heldCondition(lease) };
}

export function renewOperation(
  lease: Lease,
  expiresAtMs: number,
): { operation: TransactOperation; lease: Lease } {
  return {
    lease: { ...lease, expiresAtMs },
    operation: {
      kind: "update",
      key: lease.key,
      changes: { set: { [LEASE_EXPIRES_AT]: expiresAtMs } },
      condition: heldCondition(lease),
    },
  };
}

export function releaseOperation(lease: Pick<Lease, "key" | "owner" | "epoch">): TransactOperation {
  return {
    kind: "update",
    key: lease.key,
    changes: { set: { [LEASE_EXPIRES_AT]: 0 }, remove: [LEASE_OWNER] },
    condition: heldCondition(lease),
  };
}

/** The operations above, each run on its own against a MetadataStore. */
export class Leases {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly clock: Clock,
  ) {}

  async get(key: ItemKey): Promise<LeaseState | undefined> {
    return leaseStateOf(key, await this.metadata.get(key));
  }

  /**
   * Takes the lease for `ttlMs` when it is free, released, expired or already ours (a new epoch
   * every time). LeaseHeldError (a ConflictError) names the current holder otherwise.
   */
  async acquire(key: ItemKey, owner: string, ttlMs: number): Promise<Lease> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock.now();
      const state = await this.get(key);
      if (!isAvailable(state, owner, now)) throw heldBy(state!, now);
      const { operation, lease } = acquireOperation(key, state, owner, now + ttlMs, now);
      try {
        await this.metadata.transactWrite([operation]);
        return lease;
      } catch (error) {
        // Someone else acquired (or renewed) between our read and our write: look again.
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    const state = await this.get(key);
    throw heldBy(state ?? { key, owner: undefined, epoch: 0, expiresAtMs: 0 }, this.clock.now());
  }

  /** Extends the lease by `ttlMs` from now. FencedError when it was taken. */
  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    const renewed = renewOperation(lease, this.clock.now() + ttlMs);
    try {
      await this.metadata.transactWrite([renewed.operation]);
      return renewed.lease;
    } catch (error) {
      if (error instanceof ConflictError) throw fenced(lease, error);
      throw error;
    }
  }

  /** Gives the lease up. Releasing a lease already lost is not an error: there is nothing to give up. */
  async release(lease: Lease): Promise<void> {
    try {
      await this.metadata.transactWrite([releaseOperation(lease)]);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
}

function heldBy(state: LeaseState, nowMs: number): LeaseHeldError {
  const remaining = Math.max(0, state.expiresAtMs - nowMs);
  return new LeaseHeldError(
    `lease ${state.key.pk}/${state.key.sk} is held by ${state.owner ?? "nobody"} at epoch ${state.epoch} for ${remaining} ms more`,
    { details: { owner: state.owner, epoch: state.epoch, remainingMs: remaining } },
  );
}

function fenced(lease: Lease, cause: unknown): FencedError {
  return new FencedError(
    `lease ${lease.key.pk}/${lease.key.sk} of ${lease.owner} at epoch ${lease.epoch} was lost`,
    { cause, details: { owner: lease.owner, epoch: lease.epoch } },
  );
}
