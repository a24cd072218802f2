import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import {
  type Chooser,
  FaultyMetadataStore,
  FaultyObjectStore,
  SimulatedClock,
  seededChooser,
} from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { type FetchFunction, SluiceClient } from "./client.js";
import { SluiceHttpError } from "./errors.js";
import { DeliveryUnknownError, type ProduceTicket } from "./producer.js";

/**
 * The producer against a real app whose network misbehaves, from a seed: requests that never
 * arrive, answers lost after the records were written, requests held back so that later ones
 * overtake them, answers held back so that later requests' answers overtake them, answers lost
 * while the request itself arrives much later (a stale copy), 503s,
 * and lost answers inside the stores under the engine. Midway the topic's max.message.bytes
 * shrinks, so some batches are refused for good and the producer must renumber its sequences
 * under a new epoch while copies of earlier requests are still on their way.
 *
 * What must hold whatever happened (checked against the log at the end, after every held and
 * stale request has landed): no record is written twice; each partition holds its records in the
 * order they were produced; a record whose delivery resolved is at the offset it was given; a
 * record refused with a definite answer is not written, and was refused for itself (too large),
 * never because a request overtook another; a record that timed out is written at most once.
 */
const CLUSTER = "faults";
const URL = "http://sluice.test";

interface NetworkPlan {
  /** The request never reaches the server. */
  neverArrives: number;
  /** The server handles it; the answer is lost. */
  answerLost: number;
  /** The answer is lost at once; the request reaches the server much later. */
  staleCopy: number;
  /** The request is held back, so that later ones overtake it; its answer arrives. */
  heldBack: number;
  /** The server handles it at once; its answer is held back, so that later answers overtake it. */
  answerHeld: number;
  /** The server answers 503 without handling it. */
  unavailable: number;
}

const PLAN: NetworkPlan = {
  neverArrives: 0.05,
  answerLost: 0.08,
  staleCopy: 0.06,
  heldBack: 0.12,
  answerHeld: 0.08,
  unavailable: 0.05,
};

function faultyNetwork(
  app: { request: (url: string, init: RequestInit) => Response | Promise<Response> },
  clock: SimulatedClock,
  choose: Chooser,
  plan: NetworkPlan,
): { fetch: FetchFunction; stale: Promise<unknown>[]; injected: Record<keyof NetworkPlan, number> } {
  const injected = {
    neverArrives: 0,
    answerLost: 0,
    staleCopy: 0,
    heldBack: 0,
    answerHeld: 0,
    unavailable: 0,
  };
  const stale: Promise<unknown>[] = [];
  const later = (ms: number) => new Promise<void>((resolve) => clock.setTimer(ms, resolve));
  const lost = () => new TypeError("fetch failed", { cause: new Error("other side closed") });
  const fetch: FetchFunction = async (url, init) => {
    if (!url.endsWith("/record-batches")) return app.request(url, init);
    let roll = choose();
    const pick = (name: keyof NetworkPlan) => {
      if (roll < plan[name]) {
        injected[name]++;
        return true;
      }
      roll -= plan[name];
      return false;
    };
    if (pick("neverArrives")) throw lost();
    if (pick("unavailable")) {
      return new Response(JSON.stringify({ error_code: 503, message: "injected: unavailable" }), {
        status: 503,
        headers: { "content-type": "application/json", "retry-after": "0" },
      });
    }
    if (pick("answerLost")) {
      await app.request(url, init);
      throw lost();
    }
    if (pick("staleCopy")) {
      stale.push(later(50 + Math.floor(choose() * 400)).then(() => app.request(url, init)));
      throw lost();
    }
    if (pick("heldBack")) await later(5 + Math.floor(choose() * 40));
    if (pick("answerHeld")) {
      const answer = await app.request(url, init);
      await later(5 + Math.floor(choose() * 40));
      return answer;
    }
    return app.request(url, init);
  };
  return { fetch, stale, injected };
}

/** Administration is not under test: its calls are repeated until the faulty stores let them through. */
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof SluiceHttpError) || error.status !== 503) throw error;
    }
  }
}

/** Moves the clock in 5 ms steps until `promise` settles (bounded, so a hang fails the test). */
async function advanceUntil<T>(clock: SimulatedClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  tracked.catch(() => undefined);
  await Promise.resolve();
  for (let step = 0; !settled && step < 20_000; step++) await clock.advance(5);
  if (!settled) throw new Error("did not settle within 100 s of the producer's clock");
  return tracked;
}

async function runSchedule(seed: number) {
  const choose = seededChooser(seed);
  const serverClock = new SimulatedClock({ seed });
  const clientClock = new SimulatedClock({ seed, sleeps: "wait" });
  const metadata = new MemoryMetadataStore();
  const objects = new MemoryObjectStore();
  // The topic is made over the stores themselves, before faults: setting up is not under test.
  await new Engine({ objects, metadata }).createTopic({ name: "t", partitions: 3 });
  const storePlan = { failBefore: 0.02, loseAnswer: 0.03 };
  const engine = new Engine({
    objects: new FaultyObjectStore(objects, storePlan, choose),
    metadata: new FaultyMetadataStore(metadata, storePlan, choose),
    clock: serverClock,
  });
  const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
  const admin = new SluiceClient({
    url: URL,
    clusterId: CLUSTER,
    fetch: async (url, init) => app.request(url, init),
  });
  const network = faultyNetwork(app, clientClock, choose, PLAN);
  const client = new SluiceClient({ url: URL, clusterId: CLUSTER, fetch: network.fetch });
  const producer = client.producer({
    clock: clientClock,
    random: choose,
    lingerMs: 2,
    batchRecordsMax: 1 + Math.floor(choose() * 12),
    retryBackoffMs: 10,
    retryBackoffMaxMs: 80,
    deliveryTimeoutMs: 5_000,
  });

  const RECORDS = 300;
  const tickets: ProduceTicket[] = [];
  for (let i = 0; i < RECORDS; i++) {
    if (i === 150) await retrying(() => admin.setTopicConfig("t", "max.message.bytes", "200"));
    const roll = choose();
    const big = choose() < 0.05;
    const value = big ? `r${i}:${"x".repeat(300)}` : `r${i}`;
    const where =
      roll < 0.4
        ? { key: `k${Math.floor(choose() * 15)}` }
        : roll < 0.7
          ? { partition: Math.floor(choose() * 3) }
          : {};
    // produce may wait on the producer's clock (its first call gets a producer id, with retries).
    tickets.push(await advanceUntil(clientClock, producer.produce({ topic: "t", value, ...where })));
    if (choose() < 0.2) await clientClock.advance(1 + Math.floor(choose() * 5));
  }
  const results = await advanceUntil(
    clientClock,
    Promise.allSettled(tickets.map((ticket) => ticket.delivered)),
  );
  // Every held-back and stale request lands before the log is judged.
  await clientClock.advance(1_000);
  await Promise.allSettled(network.stale);

  const log = new Map<number, { index: number; offset: number }[]>();
  const where = new Map<number, { partition: number; offset: number }[]>();
  for (const partition of [0, 1, 2]) {
    const page = await admin.readPartition("t", partition, { valueType: "STRING", maxRecords: 10_000 });
    const entries = page.records.map((record) => ({
      index: Number(/^r(\d+)/.exec(String(record.value?.data))![1]),
      offset: record.offset,
    }));
    log.set(partition, entries);
    for (const entry of entries) {
      where.set(entry.index, [...(where.get(entry.index) ?? []), { partition, offset: entry.offset }]);
    }
  }
  const counts = { resolved: 0, refused: 0, timedOut: 0 };
  results.forEach((result, index) => {
    const found = where.get(index) ?? [];
    expect(found.length, `seed ${seed}: record ${index} is written at most once`).toBeLessThanOrEqual(1);
    if (result.status === "fulfilled") {
      counts.resolved++;
      expect(found, `seed ${seed}: record ${index} is where its delivery said`).toEqual([
        { partition: result.value.partitionId, offset: result.value.offset },
      ]);
    } else if (result.reason instanceof DeliveryUnknownError) {
      counts.timedOut++;
    } else {
      counts.refused++;
      expect(result.reason, `seed ${seed}: record ${index}`).toBeInstanceOf(SluiceHttpError);
      // A refusal as out of order is the producer's own business (it sends the batch again once
      // the batches before it are written), never a record's fate while the log is intact.
      expect((result.reason as SluiceHttpError).code, `seed ${seed}: record ${index} refused`).not.toBe(
        "OUT_OF_ORDER_SEQUENCE",
      );
      expect(
        found,
        `seed ${seed}: refused record ${index} is not written (${(result.reason as Error).message})`,
      ).toEqual([]);
    }
  });
  for (const [partition, entries] of log) {
    const indexes = entries.map((entry) => entry.index);
    expect(indexes, `seed ${seed}: partition ${partition} keeps produce order`).toEqual(
      [...indexes].sort((a, b) => a - b),
    );
  }
  return { counts, injected: network.injected };
}

describe("Producer under a faulty network and faulty stores", () => {
  it("never writes a record twice, never reorders a partition, and tells the truth about each record", async () => {
    const totals = {
      resolved: 0,
      refused: 0,
      timedOut: 0,
      staleCopy: 0,
      heldBack: 0,
      answerHeld: 0,
      answerLost: 0,
    };
    const seeds = Number(process.env.SLUICE_PRODUCER_SEEDS ?? 40);
    for (let seed = 1; seed <= seeds; seed++) {
      const { counts, injected } = await runSchedule(seed);
      totals.resolved += counts.resolved;
      totals.refused += counts.refused;
      totals.timedOut += counts.timedOut;
      totals.staleCopy += injected.staleCopy;
      totals.heldBack += injected.heldBack;
      totals.answerHeld += injected.answerHeld;
      totals.answerLost += injected.answerLost;
    }
    // The schedules did what they are for: faults of every kind, refusals that forced renumbering.
    expect(totals.staleCopy).toBeGreaterThan(10);
    expect(totals.heldBack).toBeGreaterThan(10);
    expect(totals.answerHeld).toBeGreaterThan(10);
    expect(totals.answerLost).toBeGreaterThan(10);
    expect(totals.refused).toBeGreaterThan(0);
    expect(totals.resolved).toBeGreaterThan(seeds * 300 * 0.8);
  }, 120_000);
});
