/**
 * Model-based scenario suite for leases, written once and bound to each metadata store (memory,
 * SQLite, DynamoDB). fast-check generates holders — each with its own `Leases` over its own
 * fault-injecting view of one shared store, all on one simulated clock — that acquire, renew,
 * release, run short jobs (acquire, write, release), pause past their expiry and come back,
 * crash, and make guarded writes: a transaction of `guard(lease)`, a conditioned counter bump and
 * one log entry `{owner, epoch}` per write. Writes are lost before the store, applied with their
 * answer lost, applied by a process that then dies, or held up in flight while the clock moves on
 * (so a decision made on a stale read lands late).
 * Every applied write is recorded in the order the store applied it (RecordingMetadataStore), and
 * the run is checked against ARCHITECTURE.md, "Leases":
 * - a lease is taken only when free, released, expired or already the taker's, always at the
 *   epoch it had plus one, and epochs never go back;
 * - every guarded write lands under the lease as it is at that moment, so the log of a resource
 *   has non-decreasing epochs, each epoch with one owner, and nobody writes after another holder
 *   was acknowledged a higher epoch (fencing);
 * - acknowledged writes are in the log once, fenced ones never, unknown ones at most once;
 * - once the faults stop and every lease has expired, contenders for a lease get it: exactly one
 *   wins, at a higher epoch than any before.
 */
import { FencedError, UnavailableError } from "@sluice/core";
import { cond, type Item, type MetadataStore, TransactionCanceledError } from "@sluice/storage";
import {
  type AppliedWrite,
  DelayingMetadataStore,
  type DelayPlan,
  type FaultPlan,
  FaultyMetadataStore,
  itemId,
  leaseWriteViolations,
  RecordingMetadataStore,
  SimulatedClock,
  SimulatedCrashError,
  scenarioSuite,
  seededChooser,
} from "@sluice/testing";
import fc from "fast-check";
import { expect } from "vitest";
import {
  guard,
  LEASE_EPOCH,
  LEASE_EXPIRES_AT,
  LEASE_OWNER,
  type Lease,
  LeaseHeldError,
  Leases,
} from "./lease.js";

export interface LeasesBackend {
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

export interface LeasesScenarioOptions {
  name: string;
  create: () => Promise<LeasesBackend>;
  /** fast-check runs: many in memory, few against a network emulator. */
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. Default 20 s. */
  runTimeoutMs?: number;
}

type ActionKind = "idle" | "acquire" | "renew" | "release" | "write" | "cycle" | "pause";

interface Action {
  kind: ActionKind;
  resource: number;
  /** Rounds a pause lasts: long enough for the clock to pass the holder's expiry. */
  rounds: number;
}

interface Round {
  advanceMs: number;
  /** One action per holder, all run concurrently. */
  actions: Action[];
}

interface Scenario {
  resources: number;
  holders: number;
  rounds: Round[];
  faults: FaultPlan;
  delays: DelayPlan;
  seed: number;
}

const TTL_MS = 1_000;
const WRITE_ATTEMPTS_MAX = 8;

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc
    .record({ resources: fc.integer({ min: 1, max: 2 }), holders: fc.integer({ min: 2, max: 4 }) })
    .chain(({ resources, holders }) =>
      fc.record({
        resources: fc.constant(resources),
        holders: fc.constant(holders),
        rounds: fc.array(
          fc.record({
            advanceMs: fc.constantFrom(0, 100, 300, 600, 1_500),
            actions: fc.array(
              fc.record({
                kind: fc.constantFrom<ActionKind>(
                  "idle",
                  "acquire",
                  "acquire",
                  "renew",
                  "release",
                  "write",
                  "write",
                  "write",
                  "cycle",
                  "cycle",
                  "pause",
                ),
                resource: fc.integer({ min: 0, max: resources - 1 }),
                rounds: fc.integer({ min: 1, max: 4 }),
              }),
              { minLength: holders, maxLength: holders },
            ),
          }),
          { minLength: 8, maxLength: 40 },
        ),
        faults: fc.record({
          failBefore: fc.constantFrom(0, 0.1),
          loseAnswer: fc.constantFrom(0, 0.1, 0.25),
          crashAfter: fc.constantFrom(0, 0.05, 0.1),
        }),
        delays: fc.record({
          probability: fc.constantFrom(0, 0.15, 0.3),
          maxMs: fc.constantFrom(500, 2_000),
        }),
        seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      }),
    );
}

export function runLeaseScenarios(options: LeasesScenarioOptions): void {
  scenarioSuite(options, {
    protocol: "Leases",
    property: "holders that race, pause, crash and lose answers never write under a lease they lost",
    scenarios: scenarioArbitrary(),
    run: (backend, scenario) => runScenario(backend.metadata, scenario),
    runTimeoutMs: 20_000,
    timeoutMs: 120_000,
  });
}

/** What a holder tried, as the model saw it: `acked` (answered), `fenced`, or `unknown` (lost). */
interface Attempt {
  resource: number;
  owner: string;
  epoch: number;
  startTick: number;
  endTick: number;
  outcome: "acked" | "fenced" | "unknown";
}

interface WriteAttempt extends Attempt {
  writeId: string;
}

interface Holder {
  index: number;
  incarnation: number;
  owner: string;
  leases: Map<number, Lease>;
  pausedUntilRound: number;
  leasesApi: Leases;
  metadata: FaultyMetadataStore;
  /** The action in progress, perhaps held up in the store for several rounds. */
  busy: Promise<void> | undefined;
  signalHeld: () => void;
}

let runCounter = 0;

async function runScenario(base: MetadataStore, scenario: Scenario): Promise<void> {
  // Keys of their own per run, so runs can share one DynamoDB table.
  const run = `r${++runCounter}-${scenario.seed}`;
  const leaseKey = (resource: number) => ({ pk: `lease-scenario#${run}`, sk: `lease#${resource}` });
  const counterKey = (resource: number) => ({ pk: `lease-scenario#${run}`, sk: `counter#${resource}` });
  const logPk = (resource: number) => `lease-scenario#${run}#log#${resource}`;

  const clock = new SimulatedClock({ seed: scenario.seed });
  const violations: string[] = [];
  const recorder = new RecordingMetadataStore(base, (write) =>
    checkAppliedWrite(write, clock.now(), violations),
  );
  const faults: FaultPlan = { ...scenario.faults };
  const delays: DelayPlan = { ...scenario.delays };
  const choose = seededChooser(scenario.seed);
  const chooseDelay = seededChooser(scenario.seed + 1);
  let tick = 0;
  const acquisitions: Attempt[] = [];
  const writes: WriteAttempt[] = [];

  const holders: Holder[] = Array.from({ length: scenario.holders }, (_, index) => {
    const holder = { signalHeld: () => {} } as Holder;
    const delayed = new DelayingMetadataStore(recorder, clock, delays, chooseDelay, () =>
      holder.signalHeld(),
    );
    const metadata = new FaultyMetadataStore(delayed, faults, choose);
    return Object.assign(holder, {
      index,
      incarnation: 0,
      owner: `h${index}.0`,
      leases: new Map(),
      pausedUntilRound: -1,
      leasesApi: new Leases(metadata, clock),
      metadata,
      busy: undefined,
    });
  });
  // A crash ends the holder's process: it comes back as a new incarnation holding nothing.
  const restart = (holder: Holder) => {
    holder.incarnation += 1;
    holder.owner = `h${holder.index}.${holder.incarnation}`;
    holder.leases.clear();
  };

  const acquire = async (holder: Holder, resource: number): Promise<Lease | undefined> => {
    const startTick = ++tick;
    const owner = holder.owner;
    try {
      const lease = await holder.leasesApi.acquire(leaseKey(resource), owner, TTL_MS);
      acquisitions.push({
        resource,
        owner,
        epoch: lease.epoch,
        startTick,
        endTick: ++tick,
        outcome: "acked",
      });
      holder.leases.set(resource, lease);
      return lease;
    } catch (error) {
      if (error instanceof LeaseHeldError) return undefined;
      holder.leases.delete(resource);
      if (error instanceof UnavailableError) return undefined;
      if (error instanceof SimulatedCrashError) {
        restart(holder);
        return undefined;
      }
      throw error;
    }
  };

  const guardedWrite = async (holder: Holder, resource: number, lease: Lease, writeId: string) => {
    const attempt: WriteAttempt = {
      resource,
      owner: lease.owner,
      epoch: lease.epoch,
      writeId,
      startTick: ++tick,
      endTick: 0,
      outcome: "unknown",
    };
    writes.push(attempt);
    try {
      for (let tries = 1; ; tries++) {
        const counter = await holder.metadata.get(counterKey(resource));
        const seq = Number(counter?.seq ?? 0);
        try {
          await holder.metadata.transactWrite([
            guard(lease),
            {
              kind: "update",
              key: counterKey(resource),
              changes: { set: { seq: seq + 1 } },
              condition: seq === 0 ? cond.notExists("pk") : cond.eq("seq", seq),
            },
            {
              kind: "put",
              item: {
                pk: logPk(resource),
                sk: seq.toString().padStart(10, "0"),
                owner: lease.owner,
                epoch: lease.epoch,
                writeId,
              },
              condition: cond.notExists("pk"),
            },
          ]);
          attempt.outcome = "acked";
          return;
        } catch (error) {
          if (!(error instanceof TransactionCanceledError)) throw error;
          if (error.failures.some((failure) => failure.index === 0)) {
            attempt.outcome = "fenced";
            holder.leases.delete(resource);
            return;
          }
          // Another writer moved the counter first: read it again.
          if (tries >= WRITE_ATTEMPTS_MAX)
            throw new Error(`write ${writeId} lost the counter race ${tries} times`);
        }
      }
    } catch (error) {
      if (error instanceof UnavailableError) return;
      if (error instanceof SimulatedCrashError) {
        restart(holder);
        return;
      }
      throw error;
    } finally {
      attempt.endTick = ++tick;
    }
  };

  const act = async (holder: Holder, action: Action, roundIndex: number, writeId: string) => {
    if (roundIndex < holder.pausedUntilRound) return;
    const lease = holder.leases.get(action.resource);
    switch (action.kind) {
      case "idle":
        return;
      case "pause":
        // Stops acting while time moves on; comes back with the leases it had, maybe lost by then.
        holder.pausedUntilRound = roundIndex + 1 + action.rounds;
        return;
      case "acquire":
        await acquire(holder, action.resource);
        return;
      case "renew":
        if (!lease) return;
        try {
          holder.leases.set(action.resource, await holder.leasesApi.renew(lease, TTL_MS));
        } catch (error) {
          if (error instanceof FencedError) holder.leases.delete(action.resource);
          else if (error instanceof SimulatedCrashError) restart(holder);
          // A lost renewal may or may not have moved the expiry; the lease (owner, epoch) stands.
          else if (!(error instanceof UnavailableError)) throw error;
        }
        return;
      case "release":
        if (!lease) return;
        holder.leases.delete(action.resource);
        try {
          await holder.leasesApi.release(lease);
        } catch (error) {
          if (error instanceof SimulatedCrashError) restart(holder);
          else if (!(error instanceof UnavailableError)) throw error;
        }
        return;
      case "write":
        // Holders write only under a lease they believe they hold (perhaps one lost while paused).
        if (lease) await guardedWrite(holder, action.resource, lease, writeId);
        return;
      case "cycle": {
        // A short job: take the lease (or keep it), write under it, give it back.
        const taken = lease ?? (await acquire(holder, action.resource));
        if (!taken || holder.owner !== taken.owner) return;
        await guardedWrite(holder, action.resource, taken, writeId);
        const still = holder.leases.get(action.resource);
        if (!still || holder.owner !== still.owner) return;
        holder.leases.delete(action.resource);
        try {
          await holder.leasesApi.release(still);
        } catch (error) {
          if (error instanceof SimulatedCrashError) restart(holder);
          else if (!(error instanceof UnavailableError)) throw error;
        }
        return;
      }
    }
  };

  // A round starts every idle holder's action and waits until each has finished or is held up in
  // the store; held ones go on when the clock passes their delay, rounds later.
  const failures: unknown[] = [];
  const start = (holder: Holder, action: Action, roundIndex: number): Promise<void> => {
    const held = new Promise<void>((resolve) => {
      holder.signalHeld = resolve;
    });
    const work = act(holder, action, roundIndex, `w${roundIndex}.${holder.index}`).finally(() => {
      holder.busy = undefined;
    });
    holder.busy = work.catch((error) => {
      failures.push(error);
    });
    return Promise.race([work, held]);
  };
  for (const [roundIndex, round] of scenario.rounds.entries()) {
    await Promise.all(
      holders
        .filter((holder) => !holder.busy)
        .map((holder) => start(holder, round.actions[holder.index]!, roundIndex)),
    );
    await clock.advance(round.advanceMs);
    if (failures.length > 0) throw failures[0];
  }

  // Settle: faults and hold-ups stop, held writes land, every holder is back, every lease expired.
  faults.failBefore = 0;
  faults.loseAnswer = 0;
  faults.crashAfter = 0;
  delays.probability = 0;
  while (holders.some((holder) => holder.busy)) {
    await clock.advance(delays.maxMs);
    // Work released by the advance may have finished already; wait only for what has not.
    const pending = holders.map((holder) => holder.busy).filter((busy) => busy !== undefined);
    if (pending.length > 0) await Promise.race(pending);
  }
  if (failures.length > 0) throw failures[0];
  await clock.advance(TTL_MS + 1);
  for (let resource = 0; resource < scenario.resources; resource++) {
    const seenEpoch = Number((await base.get(leaseKey(resource)))?.[LEASE_EPOCH] ?? 0);
    const won = await Promise.all(holders.map((holder) => acquire(holder, resource)));
    const winners = won.filter((lease): lease is Lease => lease !== undefined);
    expect(winners, `resource ${resource}: exactly one contender takes an expired lease`).toHaveLength(1);
    const winner = winners[0]!;
    expect(winner.epoch).toBeGreaterThan(seenEpoch);
    const holder = holders.find((candidate) => candidate.owner === winner.owner)!;
    await guardedWrite(holder, resource, winner, `final.${resource}`);
    expect(writes.at(-1)!.outcome, `resource ${resource}: the winner writes under its lease`).toBe("acked");
    // Everyone else's lease is gone: their writes are fenced.
    for (const other of holders) {
      const stale = other.leases.get(resource);
      if (other === holder || !stale) continue;
      await guardedWrite(other, resource, stale, `stale.${resource}.${other.index}`);
      expect(writes.at(-1)!.outcome).toBe("fenced");
    }
  }

  expect(violations, violations.join("\n")).toEqual([]);
  for (let resource = 0; resource < scenario.resources; resource++) {
    const log = await readLog(base, logPk(resource));
    checkLog(
      resource,
      log,
      writes.filter((write) => write.resource === resource),
      acquisitions.filter((acquisition) => acquisition.resource === resource),
    );
  }
}

/** Ground truth: each applied write judged against the items exactly as it found them. */
function checkAppliedWrite(write: AppliedWrite, nowMs: number, violations: string[]): void {
  violations.push(
    ...leaseWriteViolations(
      write,
      nowMs,
      { owner: LEASE_OWNER, epoch: LEASE_EPOCH, expiresAt: LEASE_EXPIRES_AT },
      (key) => key.sk.startsWith("lease#"),
    ),
  );
  for (const operation of write.operations) {
    // A guard passed: the lease was held, by that owner at that epoch.
    if (operation.kind !== "condition_check" || !operation.key.sk.startsWith("lease#")) continue;
    if (!holds(write.before.get(itemId(operation.key)), operation.condition)) {
      violations.push(
        `#${write.sequence} ${operation.key.sk}: a guarded write passed a lease it did not hold`,
      );
    }
  }
}

/** Whether a guard's `leaseOwner = o AND leaseEpoch = e` held for the item as it was. */
function holds(item: Item | undefined, condition: unknown): boolean {
  const parts = (condition as { conditions?: { attribute: string; value: unknown }[] }).conditions ?? [];
  return parts.every((part) => item?.[part.attribute] === part.value);
}

interface LogEntry {
  seq: number;
  owner: string;
  epoch: number;
  writeId: string;
}

async function readLog(metadata: MetadataStore, pk: string): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await metadata.query({ pk, cursor });
    for (const item of page.items) {
      entries.push({
        seq: Number(item.sk),
        owner: String(item.owner),
        epoch: Number(item.epoch),
        writeId: String(item.writeId),
      });
    }
    cursor = page.cursor;
  } while (cursor);
  return entries;
}

function checkLog(resource: number, log: LogEntry[], writes: WriteAttempt[], acquisitions: Attempt[]): void {
  const where = `resource ${resource}`;
  // Dense: the counter and the entries move together.
  log.forEach((entry, index) => {
    expect(entry.seq, `${where}: log entries are dense`).toBe(index);
  });
  // Non-decreasing epochs, one owner per epoch (in the log and in acknowledged acquisitions).
  const ownerOfEpoch = new Map<number, string>();
  for (const acquisition of acquisitions) {
    const known = ownerOfEpoch.get(acquisition.epoch);
    expect(known ?? acquisition.owner, `${where}: epoch ${acquisition.epoch} was granted to two owners`).toBe(
      acquisition.owner,
    );
    ownerOfEpoch.set(acquisition.epoch, acquisition.owner);
  }
  for (const [index, entry] of log.entries()) {
    if (index > 0) {
      expect(entry.epoch, `${where}: epochs in the log go back at seq ${entry.seq}`).toBeGreaterThanOrEqual(
        log[index - 1]!.epoch,
      );
    }
    const known = ownerOfEpoch.get(entry.epoch);
    expect(known ?? entry.owner, `${where}: epoch ${entry.epoch} wrote as two owners`).toBe(entry.owner);
    ownerOfEpoch.set(entry.epoch, entry.owner);
  }
  // Each write: acknowledged once, fenced never, unknown at most once; nothing else is in the log.
  const byId = new Map(writes.map((write) => [write.writeId, write]));
  const seen = new Map<string, number>();
  for (const entry of log) {
    const write = byId.get(entry.writeId);
    expect(write, `${where}: log entry ${entry.writeId} was never written`).toBeDefined();
    expect(write!.outcome, `${where}: fenced write ${entry.writeId} is in the log`).not.toBe("fenced");
    expect({ owner: entry.owner, epoch: entry.epoch }).toEqual({ owner: write!.owner, epoch: write!.epoch });
    seen.set(entry.writeId, (seen.get(entry.writeId) ?? 0) + 1);
  }
  for (const write of writes) {
    const count = seen.get(write.writeId) ?? 0;
    if (write.outcome === "acked") expect(count, `${where}: acknowledged write ${write.writeId}`).toBe(1);
    else
      expect(count, `${where}: write ${write.writeId}`).toBeLessThanOrEqual(
        write.outcome === "fenced" ? 0 : 1,
      );
  }
  // Fencing in real time: once a higher epoch was acknowledged, no write under a lower one succeeds.
  for (const write of writes) {
    if (write.outcome !== "acked") continue;
    const newer = acquisitions.find(
      (acquisition) => acquisition.epoch > write.epoch && acquisition.endTick < write.startTick,
    );
    expect(
      newer,
      `${where}: ${write.owner} wrote ${write.writeId} at epoch ${write.epoch} after ${newer?.owner} had acquired epoch ${newer?.epoch}`,
    ).toBeUndefined();
  }
  // Epochs never go back in real time either: an acquisition after another has a higher epoch.
  for (const first of acquisitions) {
    for (const second of acquisitions) {
      if (first.endTick < second.startTick) {
        expect(second.epoch, `${where}: epoch went back between acquisitions`).toBeGreaterThan(first.epoch);
      }
    }
  }
}
