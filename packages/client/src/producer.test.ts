import {
  compress,
  decodeRecordBatches,
  murmur2 as kafkaMurmur2,
  partitionForKey as kafkaPartition,
} from "@sluice/core";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { murmur2, partitionForKey } from "./batch-encoder.js";
import { SluiceClient } from "./client.js";
import { SluiceHttpError } from "./errors.js";
import { type Producer, ProducerClosedError, type ProducerOptions, type RecordMetadata } from "./producer.js";

const CLUSTER = "producer-test";
const BASE_URL = "http://sluice.test";

let clock: SimulatedClock;
let client: SluiceClient;
/** Every record-batch request the app answered: its partitions and bodies. */
let requests: { partitions: string; body: Uint8Array; status: number }[];

beforeEach(async () => {
  clock = new SimulatedClock({ sleeps: "wait" });
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock: new SimulatedClock() });
  const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
  requests = [];
  client = new SluiceClient({
    url: BASE_URL,
    clusterId: CLUSTER,
    fetch: async (url, init) => {
      const response = await app.request(url, init);
      if (url.endsWith("/record-batches")) {
        requests.push({
          partitions: new Headers(init.headers).get("sluice-partitions") ?? "",
          body: init.body as Uint8Array,
          status: response.status,
        });
      }
      return response;
    },
  });
  await client.createTopic("orders", { partitions: 3 });
});

function producer(options: ProducerOptions = {}): Producer {
  return client.producer({ clock, ...options });
}

/** Advances the producer's clock in small steps until `promise` settles. */
async function until<T>(promise: Promise<T>, stepMs = 5, stepsMax = 10_000): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  tracked.catch(() => undefined);
  for (let step = 0; !settled && step < stepsMax; step++) await clock.advance(stepMs);
  return tracked;
}

async function values(partition: number, topic = "orders"): Promise<string[]> {
  const page = await client.readPartition(topic, partition, { valueType: "STRING", maxRecords: 10_000 });
  return page.records.map((record) => String(record.value?.data));
}

describe("Producer", () => {
  it("batches records per partition, sends them as record batches and resolves each with its offset", async () => {
    const p = producer({ lingerMs: 10 });
    const tickets = [];
    for (let i = 0; i < 30; i++)
      tickets.push(await p.produce({ topic: "orders", partition: i % 3, value: `v${i}` }));
    expect(requests).toHaveLength(0); // lingering
    const delivered = await until(Promise.all(tickets.map((ticket) => ticket.delivered)));
    expect(delivered.map((meta) => [meta.partitionId, meta.offset])).toEqual(
      Array.from({ length: 30 }, (_, i) => [i % 3, Math.floor(i / 3)]),
    );
    // One request carried all three partitions' batches.
    expect(requests.map((request) => request.partitions)).toEqual(["0,1,2"]);
    for (const partition of [0, 1, 2]) {
      expect(await values(partition)).toEqual(Array.from({ length: 10 }, (_, n) => `v${partition + 3 * n}`));
    }
    // Idempotent by default: the batches carry a producer id, epoch 0 and sequence 0.
    const batches = await decodeRecordBatches(requests[0]!.body);
    expect(batches.map((batch) => [batch.producerId >= 0, batch.producerEpoch, batch.baseSequence])).toEqual([
      [true, 0, 0],
      [true, 0, 0],
      [true, 0, 0],
    ]);
  });

  it("sends a batch as soon as it reaches batchSizeBytes or batchRecordsMax", async () => {
    const p = producer({ lingerMs: 1_000_000, batchRecordsMax: 4 });
    const tickets = [];
    for (let i = 0; i < 10; i++)
      tickets.push(await p.produce({ topic: "orders", partition: 0, value: `r${i}` }));
    await until(Promise.all(tickets.slice(0, 8).map((ticket) => ticket.delivered)), 1, 100);
    expect(requests.map((request) => request.partitions)).toEqual(["0", "0"]);
    await until(p.flush());
    expect(await values(0)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    const sized = producer({ lingerMs: 1_000_000, batchSizeBytes: 300 });
    const big = await sized.produce({ topic: "orders", partition: 1, value: "x".repeat(290) });
    await until(big.delivered, 1, 100);
  });

  it("puts keyed records where Kafka's partitioner does, and unkeyed ones sticky per batch", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `customer-${i}`);
    for (const key of keys) {
      const bytes = new TextEncoder().encode(key);
      expect(partitionForKey(bytes, 3)).toBe(kafkaPartition(bytes, 3));
    }
    for (let length = 0; length < 40; length++) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 37 + length) & 0xff);
      expect(murmur2(bytes)).toBe(kafkaMurmur2(bytes));
    }
    const p = producer();
    const keyed = await until(Promise.all(keys.map((key) => p.send({ topic: "orders", key, value: key }))));
    keyed.forEach((meta, i) => {
      expect(meta.partitionId).toBe(kafkaPartition(new TextEncoder().encode(keys[i]!), 3));
    });
    const unkeyed = await until(
      Promise.all(Array.from({ length: 20 }, (_, i) => p.send({ topic: "orders", value: `u${i}` }))),
    );
    // All produced before the linger ended: one batch, so one partition.
    expect(new Set(unkeyed.map((meta) => meta.partitionId)).size).toBe(1);
  });

  it("compresses with gzip built in and other codecs given as functions", async () => {
    for (const compression of ["gzip", "lz4", "zstd"] as const) {
      const p = producer({
        compression,
        codecs: { lz4: (bytes) => compress("lz4", bytes), zstd: (bytes) => compress("zstd", bytes) },
      });
      await until(
        p.send({ topic: "orders", partition: 2, value: `${compression}-value`, headers: { h: "1" } }),
      );
      const [batch] = await decodeRecordBatches(requests.at(-1)!.body);
      expect(batch!.compression).toBe(compression);
    }
    expect(await values(2)).toEqual(["gzip-value", "lz4-value", "zstd-value"]);
    expect(() => producer({ compression: "snappy" })).toThrow(
      /compression snappy needs a codec: pass codecs.snappy/,
    );
    expect(() => producer({ maxInFlightRequests: 6 })).toThrow(/at most 5/);
  });

  it("makes produce wait while the buffer is full (back-pressure)", async () => {
    const p = producer({ bufferBytesMax: 1_000, lingerMs: 50 });
    const first = await p.produce({ topic: "orders", partition: 0, value: "a".repeat(600) });
    let admitted = false;
    const second = p.produce({ topic: "orders", partition: 0, value: "b".repeat(600) }).then((ticket) => {
      admitted = true;
      return ticket;
    });
    await clock.advance(1);
    expect(admitted).toBe(false);
    await until(first.delivered);
    const ticket = await until(second);
    expect(admitted).toBe(true);
    await until(ticket.delivered);
    expect((await values(0)).map((value) => value[0])).toEqual(["a", "b"]);
  });

  it("refuses at once a record over max.message.bytes, an unknown partition and an unknown topic", async () => {
    await client.setTopicConfig("orders", "max.message.bytes", "100");
    const p = producer();
    await expect(p.produce({ topic: "orders", value: "x".repeat(101) })).rejects.toThrow(
      /record is 101 bytes .* over the topic's max.message.bytes of 100/,
    );
    await expect(p.produce({ topic: "orders", partition: 3, value: "x" })).rejects.toThrow(
      /partition 3 does not exist; topic orders has 3 partitions/,
    );
    await expect(p.produce({ topic: "nope", value: "x" })).rejects.toBeInstanceOf(SluiceHttpError);
    expect(requests).toHaveLength(0);
  });

  it("fails only the bad batch of a refused request: the others are sent again alone", async () => {
    const p = producer({ lingerMs: 10 });
    const good = await p.produce({ topic: "orders", partition: 0, value: "fine" });
    const bad = await p.produce({ topic: "orders", partition: 1, value: "x".repeat(500) });
    // The topic's limit shrinks after the producer looked it up: the server refuses the batch.
    await client.setTopicConfig("orders", "max.message.bytes", "100");
    await expect(until(bad.delivered)).rejects.toThrow(/over the topic's max.message.bytes of 100/);
    expect((await until(good.delivered)).offset).toBe(0);
    const answered = requests.map((request) => [request.partitions, request.status]);
    expect(answered[0]).toEqual(["0,1", 413]);
    expect(answered.slice(1)).toEqual(
      expect.arrayContaining([
        ["0", 200],
        ["1", 413],
      ]),
    );
    expect(answered).toHaveLength(3);
    // The gap in partition 1's sequence is closed under a new epoch: later records still go.
    const after = await until(p.send({ topic: "orders", partition: 1, value: "later" }));
    expect(after.offset).toBe(0);
    const [batch] = await decodeRecordBatches(requests.at(-1)!.body);
    expect([batch!.producerEpoch, batch!.baseSequence]).toEqual([1, 0]);
  });

  it("with no linger, sends a batch at the end of the turn it was opened in, without waiting on the clock", async () => {
    const p = producer({ lingerMs: 0 });
    // Produced in one turn: one batch. No clock time passes while it is sent and answered.
    const first = await Promise.all(
      ["a", "b"].map((value) => p.send({ topic: "orders", partition: 0, value })),
    );
    expect(first.map((meta) => meta.offset)).toEqual([0, 1]);
    expect(requests).toHaveLength(1);
    const alone = await p.send({ topic: "orders", partition: 0, value: "c" });
    expect(alone.offset).toBe(2);
    expect(requests).toHaveLength(2);
    expect((await decodeRecordBatches(requests[0]!.body))[0]!.records).toHaveLength(2);
  });

  it("without idempotence, sends each request with an Idempotency-Key and one per partition in flight", async () => {
    const p = producer({ idempotent: false, lingerMs: 0 });
    const sent = await until(
      Promise.all([0, 1, 2, 3].map((i) => p.send({ topic: "orders", partition: 0, value: `n${i}` }))),
    );
    expect(sent.map((meta) => meta.offset)).toEqual([0, 1, 2, 3]);
    const [batch] = await decodeRecordBatches(requests[0]!.body);
    expect([batch!.producerId, batch!.baseSequence]).toEqual([-1, -1]);
  });

  it("tells each record's callback how it ended, in order, and answers `delivered` read after the end", async () => {
    const p = producer({ lingerMs: 10 });
    const told: [string, number | undefined, string | undefined][] = [];
    const callback = (name: string) => (error: unknown, metadata: RecordMetadata | undefined) => {
      told.push([name, metadata?.offset, error instanceof Error ? error.message : undefined]);
    };
    const first = await p.produce({ topic: "orders", partition: 0, value: "a" }, callback("a"));
    await p.produce({ topic: "orders", partition: 0, value: "b" }, callback("b"));
    const refused = await p.produce({ topic: "orders", partition: 1, value: "x".repeat(500) }, callback("x"));
    await client.setTopicConfig("orders", "max.message.bytes", "100");
    await until(p.flush());
    expect(told.filter(([name]) => name !== "x")).toEqual([
      ["a", 0, undefined],
      ["b", 1, undefined],
    ]);
    expect(told.find(([name]) => name === "x")).toEqual([
      "x",
      undefined,
      expect.stringMatching(/over the topic's max.message.bytes of 100/),
    ]);
    // `delivered` first read once the batch has ended still says how it ended.
    expect(await first.delivered).toMatchObject({ topicName: "orders", partitionId: 0, offset: 0 });
    await expect(refused.delivered).rejects.toThrow(/max.message.bytes/);
  });

  it("throws a callback's exception outside the producer, after telling the batch's other records", async () => {
    const p = producer({ lingerMs: 10 });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      const told: number[] = [];
      await p.produce({ topic: "orders", partition: 0, value: "a" }, () => {
        throw new Error("the caller's bug");
      });
      await p.produce({ topic: "orders", partition: 0, value: "b" }, (_error, metadata) => {
        told.push(metadata!.offset);
      });
      await until(p.flush());
      // The exception is thrown from a microtask of its own; let it run.
      await new Promise((resolve) => setImmediate(resolve));
      expect(told).toEqual([1]);
      expect(uncaught).toEqual([expect.objectContaining({ message: "the caller's bug" })]);
      expect((await until(p.send({ topic: "orders", partition: 0, value: "c" }))).offset).toBe(2);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });

  it("flush sends what lingers, and close refuses more", async () => {
    const p = producer({ lingerMs: 1_000_000 });
    const ticket = await p.produce({ topic: "orders", partition: 2, value: "late" });
    await until(p.close());
    expect((await ticket.delivered).offset).toBe(0);
    await expect(p.produce({ topic: "orders", value: "x" })).rejects.toBeInstanceOf(ProducerClosedError);
  });
});
