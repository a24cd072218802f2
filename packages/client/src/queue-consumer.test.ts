import { getEventListeners } from "node:events";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { ShareGroups } from "@sluice/queues";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SluiceClient } from "./client.js";
import {
  QueueAcknowledgementError,
  type QueueConsumer,
  type QueueConsumerOptions,
  type QueueRecord,
} from "./queue-consumer.js";

const CLUSTER = "test-cluster";
const LOCK_MS = 2_000;

/**
 * The queue consumer against the HTTP app in-process, on two simulated clocks: the server's (locks,
 * sessions, long-polls) and the consumers' (renewals, acknowledgement lingering, retries). Both
 * move only when `drive` advances them, together, so a lock passes only when a test lets it.
 */
let serverClock: SimulatedClock;
let clientClock: SimulatedClock;
let client: SluiceClient;
let consumers: QueueConsumer[];
let acquisitions: number;
/** The `max_records` of each acquisition, in order. */
let asked: number[];
let acknowledgeRequests: number;

beforeEach(async () => {
  serverClock = new SimulatedClock({ seed: 5, sleeps: "wait" });
  clientClock = new SimulatedClock({ seed: 6, sleeps: "wait" });
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock: serverClock });
  const shareGroups = new ShareGroups({ engine, metadata, clock: serverClock });
  const app = createApp({ engine, metadata, clock: serverClock, shareGroups, clusterId: CLUSTER });
  acquisitions = 0;
  asked = [];
  acknowledgeRequests = 0;
  client = new SluiceClient({
    url: "http://sluice.test",
    clusterId: CLUSTER,
    fetch: async (url, init) => {
      if (url.endsWith("records:acquire")) {
        acquisitions++;
        asked.push(JSON.parse(String(init.body)).max_records);
      }
      if (url.endsWith("records:acknowledge")) acknowledgeRequests++;
      return app.request(url, init);
    },
  });
  consumers = [];
  await client.createTopic("jobs", { partitions: 4 });
  await client.createTopic("jobs-dlq", { partitions: 1 });
});

afterEach(async () => {
  const closing = Promise.all(consumers.map((consumer) => consumer.close().catch(() => undefined)));
  await drive(() => false, 200).catch(() => undefined);
  await closing;
});

/** Advances both clocks in steps until `done()` holds; fails after `maxMs` of clock time. */
async function drive(done: () => boolean, maxMs = 60_000, stepMs = 10): Promise<void> {
  for (let elapsed = 0; !done(); elapsed += stepMs) {
    if (elapsed >= maxMs) throw new Error(`not done after ${maxMs} ms of clock time`);
    await Promise.all([serverClock.advance(stepMs), clientClock.advance(stepMs)]);
  }
}

function consumer(options: Partial<QueueConsumerOptions> = {}): QueueConsumer {
  const created = client.queueConsumer({
    groupId: "workers",
    topics: ["jobs"],
    configs: {
      autoOffsetReset: "earliest",
      lockDurationMs: LOCK_MS,
      deliveryCountLimit: 3,
      deadLetterTopic: "jobs-dlq",
    },
    valueType: "STRING",
    pollWaitMs: 500,
    clock: clientClock,
    ...options,
  });
  consumers.push(created);
  return created;
}

async function produce(count: number): Promise<void> {
  await client.produceMany(
    "jobs",
    Array.from({ length: count }, (_, index) => ({ partitionId: index % 4, value: `job-${index}` })),
  );
}

/** Runs a loop over the consumer in the background: `handle` decides what happens to each record. */
function run(queue: QueueConsumer, handle: (record: QueueRecord) => Promise<void> | void) {
  const seen: QueueRecord[] = [];
  const state = { seen, error: undefined as unknown, done: false };
  void (async () => {
    try {
      for await (const record of queue) {
        seen.push(record);
        await handle(record);
      }
    } catch (error) {
      state.error = error;
    } finally {
      state.done = true;
    }
  })();
  return state;
}

const key = (record: QueueRecord) => `${record.partitionId}:${record.offset}`;

describe("queue consumer", () => {
  it("three consumers share a topic: every record goes to exactly one of them, accepted implicitly", async () => {
    await produce(30);
    const runs = [consumer(), consumer(), consumer()].map((queue) => run(queue, () => undefined));
    const all = () => runs.flatMap((state) => state.seen);
    await drive(() => all().length >= 30);
    expect(new Set(all().map(key)).size).toBe(30);
    expect(all().every((record) => record.deliveryCount === 1)).toBe(true);
    expect(runs.filter((state) => state.seen.length > 0).length).toBeGreaterThan(1);
    // The last record of each is accepted when its loop asks for more; then everything is settled.
    await drive(() => false, 300).catch(() => undefined);
    const partitions = await client.getSharePartitions("workers");
    expect(partitions.map((partition) => partition.lag)).toEqual([0, 0, 0, 0]);
    expect(partitions.reduce((sum, partition) => sum + partition.highWatermark, 0)).toBe(30);
    expect(runs.every((state) => state.error === undefined)).toBe(true);
  });

  it("a released record comes back with its delivery count raised; past the limit it is dead-lettered", async () => {
    await produce(1);
    const queue = consumer();
    const state = run(queue, (record) => record.release());
    await drive(() => state.seen.length >= 3);
    expect(state.seen.map((record) => record.deliveryCount)).toEqual([1, 2, 3]);
    await drive(() => false, 500).catch(() => undefined);
    const dead = await client.readPartition("jobs-dlq", 0, { offset: 0, valueType: "STRING" });
    expect(dead.records.map((record) => record.value?.data)).toEqual(["job-0"]);
    const reason = dead.records[0]!.headers.find((header) => header.name === "sluice.dlq.reason");
    expect(new TextDecoder().decode(reason!.value!)).toBe("delivery-count-limit");
  });

  it("keeps a record's lock while the handler works past it, so nobody else gets the record", async () => {
    await produce(1);
    let finish: () => void = () => undefined;
    const slow = run(consumer({ maxRecords: 1 }), (record) => {
      const handled = new Promise<void>((resolve) => {
        finish = resolve;
      });
      return handled.then(() => record.accept());
    });
    await drive(() => slow.seen.length === 1);
    const other = run(consumer({ maxRecords: 1 }), () => undefined);
    // Five lock lengths later the record is still ours: the renewals kept it.
    await drive(() => false, LOCK_MS * 5).catch(() => undefined);
    expect(other.seen).toEqual([]);
    finish();
    await drive(() => slow.seen[0]!.acknowledged);
    await drive(() => false, 300).catch(() => undefined);
    expect(slow.error).toBeUndefined();
    const partitions = await client.getSharePartitions("workers");
    expect(partitions.reduce((sum, partition) => sum + partition.lag, 0)).toBe(0);
    expect(other.seen).toEqual([]);
  });

  it("without renewals a lock passes: the record goes to another member, and the late accept is refused", async () => {
    await produce(1);
    let late: Promise<void> | undefined;
    let release: () => void = () => undefined;
    const first = run(
      consumer({ maxRecords: 1, renewLocks: false, acknowledgement: "explicit" }),
      (record) => {
        release = () => {
          late = record.accept();
        };
      },
    );
    await drive(() => first.seen.length === 1);
    const second = run(consumer({ maxRecords: 1 }), () => undefined);
    await drive(() => second.seen.length === 1, LOCK_MS * 5);
    expect(second.seen[0]!.deliveryCount).toBe(2);
    release();
    const outcome = late!.then(
      () => "accepted",
      (error: unknown) => error,
    );
    let settled: unknown;
    void outcome.then((value) => {
      settled = value;
    });
    await drive(() => settled !== undefined);
    expect(settled).toBeInstanceOf(QueueAcknowledgementError);
    expect((settled as QueueAcknowledgementError).code).toBe("INVALID_RECORD_STATE");
  });

  it("explicit acknowledgement: records are handled concurrently and acknowledged out of order", async () => {
    await produce(8);
    const held: QueueRecord[] = [];
    const state = run(consumer({ acknowledgement: "explicit", maxRecords: 8 }), (record) => {
      held.push(record);
    });
    await drive(() => held.length === 8);
    const results = Promise.all([...held].reverse().map((record) => record.accept()));
    let done = false;
    void results.then(() => {
      done = true;
    });
    await drive(() => done);
    expect(state.error).toBeUndefined();
    await drive(() => false, 300).catch(() => undefined);
    expect((await client.getSharePartitions("workers")).map((partition) => partition.lag)).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it("a handler awaiting each explicit accept waits a few milliseconds for it, not the implicit linger", async () => {
    await produce(8);
    const waits: number[] = [];
    const state = run(consumer({ acknowledgement: "explicit", maxRecords: 4 }), async (record) => {
      const askedAt = clientClock.now();
      await record.accept();
      waits.push(clientClock.now() - askedAt);
    });
    await drive(() => waits.length === 8, 60_000, 1);
    expect(state.error).toBeUndefined();
    // Sent after the 5 ms linger (or sooner, with an acquisition): well under the 250 ms of implicit acceptance.
    expect(Math.max(...waits)).toBeLessThan(50);
  });

  it("an acceptance riding a poll on an empty topic is answered within its linger, not after the long-poll", async () => {
    await produce(4);
    const waits: number[] = [];
    const state = run(
      consumer({ acknowledgement: "explicit", maxRecords: 4, pollWaitMs: 5_000, ackLingerMs: 250 }),
      (record) => {
        const askedAt = clientClock.now();
        void record.accept().then(() => waits.push(clientClock.now() - askedAt));
      },
    );
    await drive(() => waits.length === 4, 20_000);
    expect(state.error).toBeUndefined();
    // The first acceptance rides the poll asked for once the second record was taken (half of
    // them gone); nothing more comes, so that poll would wait its 5 s before answering. Bounded
    // by a linger or two (the poll's wait, the server's answer), never the long-poll.
    expect(acquisitions).toBeGreaterThanOrEqual(2);
    expect(Math.max(...waits)).toBeLessThan(1_000);
  });

  it("polls and waits for room leave no listener behind on the consumer's signal", async () => {
    await produce(40);
    const queue = consumer({ maxRecords: 4 });
    const state = run(queue, () => undefined);
    await drive(() => state.seen.length === 40);
    // White-box: the signal every wait listens on lives as long as the consumer; listeners left
    // on it pile up (one per wait) and make each new one slower to add.
    const stop = (queue as unknown as { stop: AbortController }).stop;
    expect(getEventListeners(stop.signal, "abort").length).toBeLessThan(5);
  });

  it("acknowledgements ride polls: a linger that runs out with no poll in flight polls early rather than sending them alone", async () => {
    await produce(24);
    let accepted = 0;
    const state = run(
      consumer({ acknowledgement: "explicit", maxRecords: 4, ackLingerMs: 50 }),
      async (record) => {
        await clientClock.sleep(20);
        void record.accept().then(() => accepted++);
      },
    );
    await drive(() => accepted === 24);
    expect(state.error).toBeUndefined();
    // Polls come every two records (40 ms of handling) or when a linger runs out; only the last
    // acknowledgements, made while the final poll waits on an empty topic, may go alone.
    expect(acknowledgeRequests).toBeLessThanOrEqual(1);
  });

  it.each([
    { chances: [0], points: [2, 2, 2, 2] },
    { chances: [0.999], points: [5, 5, 5, 5] },
    { chances: [0, 0.999], points: [5, 2, 5, 2] },
  ])(
    "asks for more once the records waiting fall to a point drawn anew for each acquisition (chances $chances)",
    async ({ chances, points }) => {
      await produce(40);
      let draws = 0;
      const queue = consumer({
        maxRecords: 8,
        // Chance drawn as the test says: the point lies between a quarter and three quarters of 8.
        clock: {
          now: () => clientClock.now(),
          sleep: (ms, signal) => clientClock.sleep(ms, signal),
          random: () => chances[draws++ % chances.length]!,
        },
      });
      const state = run(queue, () => clientClock.sleep(10));
      await drive(() => state.seen.length === 40);
      expect(state.error).toBeUndefined();
      // The first asks for all 8; each later one for what was handed since the point was reached
      // (the last ones may find fewer records left, and the very last waits on an empty topic).
      expect(asked[0]).toBe(8);
      expect(asked.slice(1, 5)).toEqual(points.map((point) => 8 - point));
    },
  );

  it("closing releases what the consumer held but had not acknowledged, at once, to the others", async () => {
    await produce(4);
    const first = consumer({ maxRecords: 4, acknowledgement: "explicit" });
    const state = run(first, () => undefined);
    await drive(() => state.seen.length === 4);
    let closed = false;
    void first.close().then(() => {
      closed = true;
    });
    await drive(() => closed);
    const second = run(consumer({ maxRecords: 4 }), () => undefined);
    await drive(() => second.seen.length === 4, LOCK_MS / 2);
    expect(second.seen.map((record) => record.deliveryCount)).toEqual([2, 2, 2, 2]);
    expect(acquisitions).toBeGreaterThan(0);
  });
});
