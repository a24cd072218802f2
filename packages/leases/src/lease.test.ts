import { FencedError } from "@sluice/core";
import { cond, TransactionCanceledError } from "@sluice/storage";
import { MemoryMetadataStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import {
  acquireOperation,
  guard,
  isAvailable,
  isHeld,
  LEASE_EPOCH,
  LEASE_OWNER,
  LeaseHeldError,
  Leases,
  leaseStateOf,
  transferOperation,
} from "./lease.js";

const KEY = { pk: "jobs", sk: "lease#compaction" };
const TTL = 1_000;
let clock: SimulatedClock;
let metadata: MemoryMetadataStore;
let leases: Leases;

beforeEach(() => {
  clock = new SimulatedClock({ seed: 3 });
  metadata = new MemoryMetadataStore();
  leases = new Leases(metadata, clock);
});

/** A write under `lease`: its guard plus a put of one item. */
function writeUnder(lease: Parameters<typeof guard>[0], sk: string) {
  return metadata.transactWrite([guard(lease), { kind: "put", item: { pk: "work", sk } }]);
}

describe("leases", () => {
  it("acquires a missing lease at epoch 1 and creates its item", async () => {
    const lease = await leases.acquire(KEY, "a", TTL);
    expect(lease).toEqual({ key: KEY, owner: "a", epoch: 1, expiresAtMs: clock.now() + TTL });
    expect(await leases.get(KEY)).toEqual({ key: KEY, owner: "a", epoch: 1, expiresAtMs: clock.now() + TTL });
  });

  it("refuses a held lease with LeaseHeldError naming the holder, and changes nothing", async () => {
    await leases.acquire(KEY, "a", TTL);
    await clock.advance(400);
    const refused = leases.acquire(KEY, "b", TTL);
    await expect(refused).rejects.toBeInstanceOf(LeaseHeldError);
    await expect(refused).rejects.toThrow(/held by a at epoch 1 for 600 ms more/);
    expect((await leases.get(KEY))?.owner).toBe("a");
  });

  it("lets the holder acquire again, at the next epoch", async () => {
    await leases.acquire(KEY, "a", TTL);
    expect((await leases.acquire(KEY, "a", TTL)).epoch).toBe(2);
  });

  it("lets another take the lease once it expired, and fences the old holder", async () => {
    const old = await leases.acquire(KEY, "a", TTL);
    await clock.advance(TTL);
    // At the deadline itself the lease still counts as held.
    await expect(leases.acquire(KEY, "b", TTL)).rejects.toBeInstanceOf(LeaseHeldError);
    await clock.advance(1);
    const taken = await leases.acquire(KEY, "b", TTL);
    expect(taken.epoch).toBe(2);
    await expect(leases.renew(old, TTL)).rejects.toBeInstanceOf(FencedError);
    await expect(writeUnder(old, "late")).rejects.toBeInstanceOf(TransactionCanceledError);
    await writeUnder(taken, "fresh");
    expect(await metadata.get({ pk: "work", sk: "late" })).toBeUndefined();
    expect(await metadata.get({ pk: "work", sk: "fresh" })).toBeDefined();
  });

  it("renews: the expiry moves and the epoch stays, so a renewed lease is not taken", async () => {
    const lease = await leases.acquire(KEY, "a", TTL);
    await clock.advance(800);
    const renewed = await leases.renew(lease, TTL);
    expect(renewed).toEqual({ ...lease, expiresAtMs: clock.now() + TTL });
    await clock.advance(800);
    await expect(leases.acquire(KEY, "b", TTL)).rejects.toBeInstanceOf(LeaseHeldError);
    await writeUnder(renewed, "still-mine");
  });

  it("releases: the owner goes, the epoch stays, and the next holder gets the next epoch", async () => {
    const lease = await leases.acquire(KEY, "a", TTL);
    await leases.release(lease);
    const state = await leases.get(KEY);
    expect(state).toEqual({ key: KEY, owner: undefined, epoch: 1, expiresAtMs: 0 });
    expect((await metadata.get(KEY))?.[LEASE_OWNER]).toBeUndefined();
    expect((await leases.acquire(KEY, "b", TTL)).epoch).toBe(2);
    // Releasing a lease already lost is a no-op, not an error, and leaves the new holder alone.
    await leases.release(lease);
    expect((await leases.get(KEY))?.owner).toBe("b");
    await expect(writeUnder(lease, "released")).rejects.toBeInstanceOf(TransactionCanceledError);
  });

  it("gives a free lease to exactly one of several concurrent acquirers", async () => {
    const results = await Promise.allSettled(
      ["a", "b", "c", "d"].map((owner) => leases.acquire(KEY, owner, TTL)),
    );
    const won = results.filter((result) => result.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === "rejected") expect(result.reason).toBeInstanceOf(LeaseHeldError);
    }
    expect((await leases.get(KEY))?.epoch).toBe(1);
  });

  it("lets only one of two acquirers that read the same epoch commit", async () => {
    await metadata.put({ ...KEY, [LEASE_EPOCH]: 4 });
    const state = leaseStateOf(KEY, await metadata.get(KEY))!;
    const first = acquireOperation(KEY, state, "a", clock.now() + TTL, clock.now());
    const second = acquireOperation(KEY, state, "b", clock.now() + TTL, clock.now());
    expect(first.lease.epoch).toBe(5);
    await metadata.transactWrite([first.operation]);
    // Had "a" released at once, "b"'s stale decision would still fail on the epoch it read.
    await metadata.transactWrite([
      { kind: "update", key: KEY, changes: { remove: [LEASE_OWNER] }, condition: cond.eq(LEASE_OWNER, "a") },
    ]);
    await expect(metadata.transactWrite([second.operation])).rejects.toBeInstanceOf(TransactionCanceledError);
    expect((await leases.get(KEY))?.epoch).toBe(5);
  });

  it("transfers a held lease to a named successor at the next epoch, fencing the predecessor", async () => {
    const lease = await leases.acquire(KEY, "a", TTL);
    const state = (await leases.get(KEY)) as Parameters<typeof transferOperation>[0];
    const transfer = transferOperation(state, "a2", clock.now() + TTL);
    await metadata.transactWrite([transfer.operation]);
    expect(transfer.lease).toMatchObject({ owner: "a2", epoch: 2 });
    await expect(writeUnder(lease, "old")).rejects.toBeInstanceOf(TransactionCanceledError);
    // A transfer decided on a stale view fails.
    await expect(
      metadata.transactWrite([transferOperation(state, "a3", clock.now() + TTL).operation]),
    ).rejects.toBeInstanceOf(TransactionCanceledError);
  });

  it("says when a lease is available and when it is held", () => {
    const now = clock.now();
    const held = { key: KEY, owner: "a", epoch: 3, expiresAtMs: now + 10 };
    expect(isAvailable(undefined, "b", now)).toBe(true);
    expect(isAvailable({ ...held, owner: undefined }, "b", now)).toBe(true);
    expect(isAvailable(held, "b", now)).toBe(false);
    expect(isAvailable(held, "a", now)).toBe(true);
    expect(isAvailable({ ...held, expiresAtMs: now - 1 }, "b", now)).toBe(true);
    expect(isHeld(held, now)).toBe(true);
    expect(isHeld({ ...held, expiresAtMs: now - 1 }, now)).toBe(false);
    expect(isHeld(undefined, now)).toBe(false);
  });
});
