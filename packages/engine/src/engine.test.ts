import {
  ConflictError,
  DataCorruptionError,
  decodeRecordBatches,
  FencedError,
  InvalidArgumentError,
  NotFoundError,
  partitionForKey,
} from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingMetadataStore, CountingObjectStore, SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { RECORDS_PER_REQUEST_MAX } from "./append/append-types.js";
import { COMMIT_WINDOW_MS, CommitWindowClosedError } from "./append/commit-window.js";
import { Engine } from "./engine.js";
import { OffsetOutOfRangeError, OutOfOrderSequenceError, RecordTooLargeError } from "./errors.js";
import { deletionKey } from "./keys.js";

const text = new TextEncoder();
const decode = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const record = (
  value: string,
  key: string | null = null,
  extra: { partition?: number; timestamp?: number } = {},
) => ({
  key: key === null ? null : text.encode(key),
  value: text.encode(value),
  ...extra,
});

let objects: CountingObjectStore;
let metadata: CountingMetadataStore;
let clock: SimulatedClock;
let engine: Engine;

beforeEach(() => {
  objects = new CountingObjectStore(new MemoryObjectStore());
  metadata = new CountingMetadataStore(new MemoryMetadataStore());
  clock = new SimulatedClock();
  engine = new Engine({ objects, metadata, clock });
});

/** A second process over the same stores: empty caches, as another Lambda would have. */
const otherProcess = () => new Engine({ objects, metadata, clock });

describe("topics", () => {
  it("creates, describes, lists and deletes topics", async () => {
    const created = await engine.createTopic({
      name: "orders",
      partitions: 3,
      configs: { "retention.ms": "1000" },
    });
    expect(created.partitions).toBe(3);
    expect(created.settings.retentionMs).toBe(1000);
    await engine.createTopic({ name: "audit", partitions: 1 });
    expect((await engine.listTopics()).map((topic) => topic.name).sort()).toEqual(["audit", "orders"]);
    await engine.deleteTopic("orders");
    await expect(engine.describeTopic("orders")).rejects.toBeInstanceOf(NotFoundError);
    expect((await engine.listTopics()).map((topic) => topic.name)).toEqual(["audit"]);
  });

  it("refuses a second topic of the same name", async () => {
    await engine.createTopic({ name: "orders", partitions: 1 });
    await expect(engine.createTopic({ name: "orders", partitions: 2 })).rejects.toThrow(
      /topic already exists: orders/,
    );
  });

  it.each([
    ["", /invalid topic name/],
    ["a/b", /invalid topic name/],
    ["..", /invalid topic name/],
    ["x".repeat(250), /invalid topic name/],
  ])("rejects the topic name %j", async (name, message) => {
    await expect(engine.createTopic({ name, partitions: 1 })).rejects.toThrow(message);
  });

  it("accepts Kafka's legal names up to 249 characters", async () => {
    const name = `a.b_c-D9${"x".repeat(241)}`;
    expect((await engine.createTopic({ name, partitions: 1 })).name).toBe(name);
  });

  it.each([0, -1, 10_001, 1.5])("rejects %d partitions", async (partitions) => {
    await expect(engine.createTopic({ name: "t", partitions })).rejects.toThrow(/invalid partition count/);
  });

  it("validates configs by name and value", async () => {
    await expect(
      engine.createTopic({ name: "t", partitions: 1, configs: { "retention.hours": "1" } }),
    ).rejects.toThrow(/unknown topic config: retention.hours/);
    await expect(
      engine.createTopic({ name: "t", partitions: 1, configs: { "cleanup.policy": "forever" } }),
    ).rejects.toThrow(/invalid value for topic config cleanup.policy/);
    await expect(
      engine.createTopic({ name: "t", partitions: 1, configs: { "max.message.bytes": "0" } }),
    ).rejects.toThrow(/max.message.bytes/);
    await expect(
      engine.createTopic({ name: "t", partitions: 1, configs: { "compression.type": "brotli" } }),
    ).rejects.toThrow(/compression.type/);
  });

  it("updates and resets configs", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": "5" } });
    const updated = await engine.updateTopicConfigs("t", {
      "retention.ms": null,
      "cleanup.policy": "compact",
    });
    expect(updated.configs).toEqual({ "cleanup.policy": "compact" });
    await expect(engine.updateTopicConfigs("t", { "no.such": "1" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it("grows partitions but never shrinks them", async () => {
    await engine.createTopic({ name: "t", partitions: 2 });
    expect((await engine.increasePartitions("t", 5)).partitions).toBe(5);
    await expect(engine.increasePartitions("t", 3)).rejects.toThrow(/can only grow/);
  });

  it("keeps a cached topic's object across refreshes that find it unchanged, and takes up any change", async () => {
    const created = await engine.createTopic({ name: "t", partitions: 2, configs: { "retention.ms": "9" } });
    expect(await engine.topics.get("t")).toBe(created);
    await clock.advance(5_000); // past the cache's 5 s: read again, the same
    const reads = metadata.calls.get;
    expect(await engine.topics.get("t")).toBe(created);
    expect(metadata.calls.get).toBe(reads + 1);
    // Changed by another process: each change is read as a new object once the cache expires.
    await otherProcess().increasePartitions("t", 3);
    await clock.advance(5_000);
    const grown = await engine.topics.get("t");
    expect(grown).not.toBe(created);
    expect(grown.partitions).toBe(3);
    await otherProcess().updateTopicConfigs("t", { "retention.ms": "10" });
    await clock.advance(5_000);
    const reconfigured = await engine.topics.get("t");
    expect(reconfigured.settings.retentionMs).toBe(10);
    await otherProcess().updateTopicConfigs("t", { "cleanup.policy": "compact" }); // one config more
    expect((await engine.describeTopic("t")).configs).toEqual({
      "retention.ms": "10",
      "cleanup.policy": "compact",
    });
    // Deleted and created again under the same name: a new topic id, a new object.
    await otherProcess().deleteTopic("t");
    const again = await otherProcess().createTopic({
      name: "t",
      partitions: 3,
      configs: { "retention.ms": "10" },
    });
    expect((await engine.describeTopic("t")).topicId).toBe(again.topicId);
  });

  it("deletes a topic at once, leaving a purge job for its data; a new topic of the same name starts empty", async () => {
    const old = await engine.createTopic({ name: "t", partitions: 2 });
    await engine.append({ topic: "t", records: [record("old")] });
    await engine.deleteTopic("t");
    await expect(otherProcess().fetch({ topic: "t", partition: 0, offset: 0 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(await metadata.get(deletionKey(old.topicId))).toMatchObject({
      name: "t",
      topicId: old.topicId,
      partitions: 2,
      deletedAt: clock.now(),
    });
    await engine.createTopic({ name: "t", partitions: 1 });
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 0, highWatermark: 0 });
    await expect(engine.deleteTopic("gone")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("the commit window", () => {
  it("refuses to commit an object whose upload outlasted the window, retryably, and a retry commits a new one", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    let slow = true;
    const slowObjects = Object.assign(Object.create(objects) as typeof objects, {
      put: async (...args: Parameters<typeof objects.put>) => {
        const info = await objects.put(...args);
        // The upload took longer than the commit window (a stalled connection, a paused process).
        if (slow) await clock.sleep(COMMIT_WINDOW_MS + 1);
        return info;
      },
    });
    const writer = new Engine({ objects: slowObjects, metadata, clock });
    const error = await writer
      .append({ topic: "t", records: [record("late")] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommitWindowClosedError);
    expect(error).toMatchObject({ kind: "unavailable", retryable: true, code: "COMMIT_WINDOW_CLOSED" });
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 0, highWatermark: 0 });
    slow = false;
    expect((await writer.append({ topic: "t", records: [record("again")] })).records[0]!.offset).toBe(0);
    // The refused object is left behind, named by no entry: garbage for the collector.
    expect((await objects.list("topics/")).objects).toHaveLength(2);
  });
});

describe("append and fetch", () => {
  beforeEach(async () => {
    await engine.createTopic({ name: "t", partitions: 4 });
  });

  it("assigns dense offsets and reads records back with keys, headers and timestamps", async () => {
    const first = await engine.append({
      topic: "t",
      records: [
        {
          ...record("v0", null, { partition: 2, timestamp: 111 }),
          headers: [{ key: "h", value: text.encode("x") }],
        },
        record("v1", null, { partition: 2 }),
      ],
    });
    const second = await engine.append({ topic: "t", records: [{ key: null, value: null, partition: 2 }] });
    expect(first.records.map((r) => [r.partition, r.offset])).toEqual([
      [2, 0],
      [2, 1],
    ]);
    expect(second.records[0]).toMatchObject({ partition: 2, offset: 2 });
    const fetched = await otherProcess().fetch({ topic: "t", partition: 2, offset: 0 });
    expect(fetched.records.map((r) => [r.offset, decode(r.value)])).toEqual([
      [0, "v0"],
      [1, "v1"],
      [2, null],
    ]);
    expect(fetched.records[0]!.timestamp).toBe(111);
    expect(fetched.records[1]!.timestamp).toBe(clock.now());
    expect(decode(fetched.records[0]!.headers[0]!.value)).toBe("x");
    expect(fetched).toMatchObject({ nextOffset: 3, highWatermark: 3, logStartOffset: 0 });
  });

  it("puts keyed records where Kafka's default partitioner would", async () => {
    const keys = ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"];
    const result = await engine.append({ topic: "t", records: keys.map((key) => record(key, key)) });
    result.records.forEach((appended, index) => {
      expect(appended.partition).toBe(partitionForKey(text.encode(keys[index]!), 4));
    });
  });

  it("sends a request's unkeyed records to one partition, rotating between requests", async () => {
    const partitionsUsed = new Set<number>();
    for (let request = 0; request < 8; request++) {
      const result = await engine.append({ topic: "t", records: [record("a"), record("b"), record("c")] });
      expect(new Set(result.records.map((r) => r.partition)).size).toBe(1);
      partitionsUsed.add(result.records[0]!.partition);
    }
    expect(partitionsUsed.size).toBe(4);
  });

  it("writes one object and one metadata transaction per request, with no read once the head is cached", async () => {
    await engine.append({ topic: "t", records: [record("warm", null, { partition: 0 })] });
    objects.reset();
    metadata.reset();
    await engine.append({
      topic: "t",
      records: [record("a", null, { partition: 0 }), record("b", null, { partition: 0 })],
    });
    expect(objects.calls.put).toBe(1);
    expect(metadata.calls.transactWrite).toBe(1);
    expect(metadata.writes).toBe(1);
    expect(metadata.reads).toBe(0);
  });

  it("recovers from a stale cached head by retrying with the current one, without uploading again", async () => {
    const writerA = engine;
    const writerB = otherProcess();
    await writerA.append({ topic: "t", records: [record("a0", null, { partition: 1 })] });
    await writerB.append({ topic: "t", records: [record("b0", null, { partition: 1 })] });
    objects.reset();
    const result = await writerA.append({ topic: "t", records: [record("a1", null, { partition: 1 })] });
    expect(result.records[0]!.offset).toBe(2);
    expect(objects.calls.put).toBe(1);
    const fetched = await engine.fetch({ topic: "t", partition: 1, offset: 0 });
    expect(fetched.records.map((r) => decode(r.value))).toEqual(["a0", "b0", "a1"]);
  });

  it("honours max_records and max_bytes, always returning at least one batch", async () => {
    for (let i = 0; i < 5; i++) {
      await engine.append({
        topic: "t",
        records: [record(`a${i}`, null, { partition: 0 }), record(`b${i}`, null, { partition: 0 })],
      });
    }
    const limited = await engine.fetch({ topic: "t", partition: 0, offset: 1, maxRecords: 4 });
    expect(limited.records.map((r) => r.offset)).toEqual([1, 2, 3, 4]);
    expect(limited.nextOffset).toBe(5);
    const tiny = await engine.fetch({ topic: "t", partition: 0, offset: 0, maxBytes: 1 });
    expect(tiny.records.map((r) => r.offset)).toEqual([0, 1]);
    const rest = await engine.fetch({ topic: "t", partition: 0, offset: 5 });
    expect(rest.records.map((r) => r.offset)).toEqual([5, 6, 7, 8, 9]);
  });

  it("rejects offsets out of range and unknown partitions", async () => {
    await engine.append({ topic: "t", records: [record("a", null, { partition: 0 })] });
    await expect(engine.fetch({ topic: "t", partition: 0, offset: 2 })).rejects.toBeInstanceOf(
      OffsetOutOfRangeError,
    );
    await expect(engine.fetch({ topic: "t", partition: 0, offset: -1 })).rejects.toBeInstanceOf(
      OffsetOutOfRangeError,
    );
    expect((await engine.fetch({ topic: "t", partition: 0, offset: 1 })).records).toEqual([]);
    await expect(engine.fetch({ topic: "t", partition: 4, offset: 0 })).rejects.toThrow(
      /partition 4 not found/,
    );
    await expect(engine.fetch({ topic: "nope", partition: 0, offset: 0 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("finds offsets by timestamp, earliest and latest", async () => {
    await engine.append({
      topic: "t",
      records: [10, 20, 30].map((ts) => record(`t${ts}`, null, { partition: 3, timestamp: ts })),
    });
    await engine.append({
      topic: "t",
      records: [40, 50].map((ts) => record(`t${ts}`, null, { partition: 3, timestamp: ts })),
    });
    expect(await engine.offsetForTimestamp("t", 3, 0)).toBe(0);
    expect(await engine.offsetForTimestamp("t", 3, 25)).toBe(2);
    expect(await engine.offsetForTimestamp("t", 3, 41)).toBe(4);
    expect(await engine.offsetForTimestamp("t", 3, 51)).toBeNull();
    expect(await engine.partitionOffsets("t", 3)).toEqual({ logStartOffset: 0, highWatermark: 5 });
  });

  it("stamps append time on LogAppendTime topics", async () => {
    await engine.createTopic({
      name: "lat",
      partitions: 1,
      configs: { "message.timestamp.type": "LogAppendTime" },
    });
    await clock.advance(5_000);
    await engine.append({ topic: "lat", records: [record("x", null, { timestamp: 1 })] });
    const [fetched] = (await otherProcess().fetch({ topic: "lat", partition: 0, offset: 0 })).records;
    expect(fetched!.timestamp).toBe(clock.now());
  });

  it.each(["gzip", "snappy", "lz4", "zstd"] as const)(
    "stores %s-compressed batches that read back intact",
    async (codec) => {
      await engine.createTopic({ name: `c-${codec}`, partitions: 1, configs: { "compression.type": codec } });
      const values = Array.from({ length: 50 }, (_, i) => `value-${i}-${"z".repeat(i)}`);
      await engine.append({ topic: `c-${codec}`, records: values.map((value) => record(value)) });
      const fetched = await otherProcess().fetch({ topic: `c-${codec}`, partition: 0, offset: 0 });
      expect(fetched.records.map((r) => decode(r.value))).toEqual(values);
    },
  );

  it("wakes a waiting reader when a record is committed", async () => {
    const waiting = engine.waitForRecords("t", 0, 0, 30_000);
    await engine.append({ topic: "t", records: [record("late", null, { partition: 0 })] });
    expect(await waiting).toBe(1);
  });

  it("returns the current high watermark when a wait times out on the engine's clock", async () => {
    let resolved: number | undefined;
    const waiting = engine.waitForRecords("t", 0, 0, 5_000).then((hw) => {
      resolved = hw;
      return hw;
    });
    await clock.advance(4_999);
    expect(resolved).toBeUndefined();
    await clock.advance(1);
    expect(await waiting).toBe(0);
  });

  it("ends a wait within four polls when another process deletes the topic", async () => {
    let outcome: unknown;
    const waiting = engine.waitForRecords("t", 0, 0, 60_000).then(
      (hw) => {
        outcome = hw;
      },
      (error: unknown) => {
        outcome = error;
      },
    );
    await otherProcess().deleteTopic("t");
    await clock.advance(750);
    expect(outcome).toBeUndefined();
    await clock.advance(250);
    await waiting;
    expect(outcome).toBeInstanceOf(NotFoundError);
    expect(String(outcome)).toMatch(/deleted while waiting for records/);
  });

  it("sees a commit made by another process at the next poll of the head", async () => {
    let resolved: number | undefined;
    const waiting = engine.waitForRecords("t", 0, 0, 60_000).then((hw) => {
      resolved = hw;
      return hw;
    });
    await otherProcess().append({ topic: "t", records: [record("elsewhere", null, { partition: 0 })] });
    await clock.advance(100);
    expect(resolved).toBeUndefined();
    await clock.advance(250);
    expect(await waiting).toBe(1);
  });
});

describe("bad input never writes", () => {
  beforeEach(async () => {
    await engine.createTopic({ name: "t", partitions: 2, configs: { "max.message.bytes": "100" } });
    objects.reset();
    metadata.reset();
  });

  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ["an empty request", () => engine.append({ topic: "t", records: [] }), /at least one record/],
    [
      "a record over max.message.bytes",
      () => engine.append({ topic: "t", records: [record("x".repeat(101))] }),
      /record 0 is 101 bytes \(key, value and headers\), over the topic's max.message.bytes of 100/,
    ],
    [
      "a partition out of range",
      () => engine.append({ topic: "t", records: [record("x", null, { partition: 2 })] }),
      /partition 2 does not exist; topic t has 2 partitions/,
    ],
    [
      "a negative timestamp",
      () => engine.append({ topic: "t", records: [record("x", null, { timestamp: -5 })] }),
      /timestamp/,
    ],
    [
      "too many records",
      () => engine.append({ topic: "t", records: Array.from({ length: 10_001 }, () => record("x")) }),
      /too many records/,
    ],
    [
      "a bad idempotency key",
      () => engine.append({ topic: "t", records: [record("x")], idempotencyKey: "has space" }),
      /idempotency key/,
    ],
  ];

  it.each(cases)("rejects %s with a message naming the problem", async (_, action, message) => {
    await expect(action()).rejects.toThrow(message);
    expect(objects.writes).toBe(0);
    expect(metadata.writes).toBe(0);
  });

  it("reports an oversized record as RecordTooLargeError", async () => {
    await expect(engine.append({ topic: "t", records: [record("y".repeat(200))] })).rejects.toBeInstanceOf(
      RecordTooLargeError,
    );
  });

  it("rejects an unknown topic", async () => {
    await expect(engine.append({ topic: "missing", records: [record("x")] })).rejects.toThrow(
      /topic not found: missing/,
    );
    expect(objects.writes + metadata.writes).toBe(0);
  });
});

describe("idempotency keys", () => {
  beforeEach(async () => {
    await engine.createTopic({ name: "t", partitions: 3 });
  });

  it("answers a retry with the original offsets and writes nothing", async () => {
    const request = { topic: "t", records: [record("a", "k1"), record("b", "k2")], idempotencyKey: "req-1" };
    const first = await engine.append(request);
    objects.reset();
    metadata.reset();
    const retry = await otherProcess().append(request);
    expect(retry.records).toEqual(first.records);
    expect(retry.duplicate).toBe(true);
    expect(objects.writes + metadata.writes).toBe(0);
  });

  it("refuses the same key for a different request", async () => {
    await engine.append({ topic: "t", records: [record("a")], idempotencyKey: "req-1" });
    await expect(
      engine.append({ topic: "t", records: [record("b")], idempotencyKey: "req-1" }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("forgets a key after 24 hours", async () => {
    const request = { topic: "t", records: [record("a", null, { partition: 0 })], idempotencyKey: "req-1" };
    await engine.append(request);
    await clock.advance(24 * 60 * 60 * 1000 + 1000);
    const again = await otherProcess().append(request);
    expect(again.duplicate).toBe(false);
    expect(again.records[0]!.offset).toBe(1);
  });

  it("deduplicates requests spanning several transactions", async () => {
    await engine.createTopic({ name: "wide", partitions: 120 });
    const records = Array.from({ length: 120 }, (_, partition) =>
      record(`p${partition}`, null, { partition }),
    );
    const first = await engine.append({ topic: "wide", records, idempotencyKey: "wide-1" });
    const retry = await otherProcess().append({ topic: "wide", records, idempotencyKey: "wide-1" });
    expect(retry.records).toEqual(first.records);
    expect((await engine.partitionOffsets("wide", 119)).highWatermark).toBe(1);
  });
});

describe("idempotent producers", () => {
  beforeEach(async () => {
    await engine.createTopic({ name: "t", partitions: 2 });
  });

  const batch = (
    producer: { producerId: number; producerEpoch: number },
    sequence: number,
    values: string[],
  ) => ({
    topic: "t",
    records: values.map((value) => record(value, null, { partition: 1 })),
    producer: { ...producer, baseSequences: { 1: sequence } },
  });

  it("answers a duplicate batch with its original offsets and writes nothing new", async () => {
    const producer = await engine.initProducer();
    const first = await engine.append(batch(producer, 0, ["a", "b"]));
    await engine.append(batch(producer, 2, ["c"]));
    const duplicate = await otherProcess().append(batch(producer, 0, ["a", "b"]));
    expect(duplicate.records).toEqual(first.records);
    expect(duplicate.duplicate).toBe(true);
    expect((await engine.partitionOffsets("t", 1)).highWatermark).toBe(3);
  });

  it("rejects a sequence gap", async () => {
    const producer = await engine.initProducer();
    await engine.append(batch(producer, 0, ["a"]));
    await expect(engine.append(batch(producer, 5, ["b"]))).rejects.toBeInstanceOf(OutOfOrderSequenceError);
    await expect(engine.append(batch(producer, 5, ["b"]))).rejects.toThrow(/next expected sequence is 1/);
  });

  it("fences an older epoch once the producer is re-initialised", async () => {
    const old = await engine.initProducer();
    await engine.append(batch(old, 0, ["a"]));
    const bumped = await otherProcess().initProducer(old.producerId);
    expect(bumped.producerEpoch).toBe(1);
    await expect(engine.append(batch(old, 1, ["b"]))).rejects.toBeInstanceOf(FencedError);
    await expect(engine.append(batch(bumped, 3, ["b"]))).rejects.toThrow(/must start at sequence 0/);
    expect((await engine.append(batch(bumped, 0, ["b"]))).records[0]!.offset).toBe(1);
  });

  it("requires a sequence for every partition written", async () => {
    const producer = await engine.initProducer();
    await expect(
      engine.append({
        topic: "t",
        records: [record("a", null, { partition: 0 })],
        producer: { ...producer, baseSequences: { 1: 0 } },
      }),
    ).rejects.toThrow(/no base sequence for partition 0/);
  });

  it("rejects an unknown producer id", async () => {
    await expect(engine.append(batch({ producerId: 99, producerEpoch: 0 }, 0, ["a"]))).rejects.toThrow(
      /unknown producer id 99/,
    );
  });
});

describe("verification of stored bytes", () => {
  it("fails a fetch with DataCorruptionError when one stored byte changes", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    await engine.append({ topic: "t", records: [record("precious data"), record("more")] });
    const [stored] = (await objects.list("topics/")).objects;
    const object = await objects.get(stored!.key);
    const corrupted = object.body.slice();
    corrupted[corrupted.length - 3]! ^= 0x01;
    await objects.put(stored!.key, corrupted);
    await expect(otherProcess().fetch({ topic: "t", partition: 0, offset: 0 })).rejects.toBeInstanceOf(
      DataCorruptionError,
    );
  });
});

describe("fetching batches as bytes", () => {
  /** Three appends of 3, 2 and 4 records: batches at offsets 0, 3 and 5. */
  async function threeBatches(configs: Record<string, string> = {}) {
    await engine.createTopic({ name: "t", partitions: 1, configs });
    for (const [first, count] of [
      [0, 3],
      [3, 2],
      [5, 4],
    ] as const) {
      const records = Array.from({ length: count }, (_, n) => ({
        ...record(`v${first + n}`, `k${first + n}`),
        headers: [{ key: "n", value: text.encode(String(first + n)) }],
      }));
      await engine.append({ topic: "t", records });
    }
  }

  it("returns whole batches from the one holding the offset, with their offsets set", async () => {
    await threeBatches();
    const result = await otherProcess().fetchBatches({ topic: "t", partition: 0, offset: 4 });
    expect(result).toMatchObject({
      topic: "t",
      partition: 0,
      nextOffset: 9,
      highWatermark: 9,
      logStartOffset: 0,
    });
    // Decoded with the offsets the bytes carry, no override: the patch is in the bytes.
    const batches = await decodeRecordBatches(result.batches);
    expect(batches.map((batch) => [batch.baseOffset, batch.recordCount])).toEqual([
      [3, 2],
      [5, 4],
    ]);
    const records = batches.flatMap((batch) => batch.records);
    const fetched = await engine.fetch({ topic: "t", partition: 0, offset: 3 });
    expect(records).toEqual(fetched.records);
    expect(
      records.map((r) => [r.offset, decode(r.key), decode(r.value), decode(r.headers[0]!.value)]),
    ).toEqual([3, 4, 5, 6, 7, 8].map((n) => [n, `k${n}`, `v${n}`, String(n)]));
  });

  it("leaves the cached bytes as they were: decoded fetches after a batch fetch still agree", async () => {
    await threeBatches();
    const before = await engine.fetch({ topic: "t", partition: 0, offset: 0 });
    const bytes = await engine.fetchBatches({ topic: "t", partition: 0, offset: 0 });
    bytes.batches.fill(0);
    const after = await engine.fetch({ topic: "t", partition: 0, offset: 0 });
    expect(after.records.map((r) => [r.offset, decode(r.value)])).toEqual(
      before.records.map((r) => [r.offset, decode(r.value)]),
    );
    const again = await engine.fetchBatches({ topic: "t", partition: 0, offset: 0 });
    expect((await decodeRecordBatches(again.batches)).map((batch) => batch.baseOffset)).toEqual([0, 3, 5]);
  });

  it("answers nothing at the high watermark and refuses offsets outside the log", async () => {
    await threeBatches();
    const atEnd = await engine.fetchBatches({ topic: "t", partition: 0, offset: 9 });
    expect(atEnd.batches.byteLength).toBe(0);
    expect(atEnd.nextOffset).toBe(9);
    await expect(engine.fetchBatches({ topic: "t", partition: 0, offset: 10 })).rejects.toBeInstanceOf(
      OffsetOutOfRangeError,
    );
    await expect(engine.fetchBatches({ topic: "t", partition: 1, offset: 0 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("stops at max_bytes after whole batches, but always returns the first", async () => {
    await threeBatches();
    const one = await engine.fetchBatches({ topic: "t", partition: 0, offset: 1, maxBytes: 1 });
    expect((await decodeRecordBatches(one.batches)).map((batch) => batch.baseOffset)).toEqual([0]);
    expect(one.nextOffset).toBe(3);
    const first = await engine.fetchBatches({ topic: "t", partition: 0, offset: 0, maxBytes: 1 });
    const two = await engine.fetchBatches({
      topic: "t",
      partition: 0,
      offset: 0,
      maxBytes: first.batches.byteLength + 1,
    });
    expect(two.nextOffset).toBe(3);
    const fetched = await engine.fetch({
      topic: "t",
      partition: 0,
      offset: 0,
      maxBytes: first.batches.byteLength + 1,
    });
    expect(fetched.nextOffset).toBe(two.nextOffset);
  });

  it("returns compressed batches as stored, still compressed", async () => {
    await threeBatches({ "compression.type": "gzip" });
    const result = await engine.fetchBatches({ topic: "t", partition: 0, offset: 0 });
    const batches = await decodeRecordBatches(result.batches);
    expect(batches.map((batch) => batch.compression)).toEqual(["gzip", "gzip", "gzip"]);
    expect(batches.flatMap((batch) => batch.records).map((r) => decode(r.value))).toEqual(
      Array.from({ length: 9 }, (_, n) => `v${n}`),
    );
  });

  it("fails with DataCorruptionError when one stored byte changes", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    await engine.append({ topic: "t", records: [record("precious data"), record("more")] });
    const [stored] = (await objects.list("topics/")).objects;
    const object = await objects.get(stored!.key);
    const corrupted = object.body.slice();
    corrupted[corrupted.length - 3]! ^= 0x01;
    await objects.put(stored!.key, corrupted);
    await expect(otherProcess().fetchBatches({ topic: "t", partition: 0, offset: 0 })).rejects.toBeInstanceOf(
      DataCorruptionError,
    );
  });
});

describe("waiting for records", () => {
  it("returns at once when the signal is already aborted", async () => {
    await engine.createTopic({ name: "w", partitions: 1 });
    const controller = new AbortController();
    controller.abort();
    // A 60 s wait that must end immediately: the test's own timeout would fail it otherwise.
    expect(await engine.waitForRecords("w", 0, 0, 60_000, controller.signal)).toBe(0);
  });

  it("returns when the signal aborts during the wait", async () => {
    await engine.createTopic({ name: "w", partitions: 1 });
    const controller = new AbortController();
    const waiting = engine.waitForRecords("w", 0, 0, 60_000, controller.signal);
    controller.abort();
    expect(await waiting).toBe(0);
  });
});

describe("appends larger than one request", () => {
  const many = (count: number, partition = 0) =>
    Array.from({ length: count }, (_, i) => record(`v${i}`, null, { partition }));

  beforeEach(async () => {
    await engine.createTopic({ name: "big", partitions: 2 });
  });

  it("splits into appends of RECORDS_PER_REQUEST_MAX and reports each record in order", async () => {
    const outcomes = await engine.appendInChunks({
      topic: "big",
      records: many(RECORDS_PER_REQUEST_MAX * 2 + 5),
    });
    expect(outcomes).toHaveLength(RECORDS_PER_REQUEST_MAX * 2 + 5);
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    expect(outcomes.map((outcome) => (outcome.ok ? outcome.appended.offset : -1))).toEqual(
      outcomes.map((_, index) => index),
    );
    expect(objects.calls.put).toBe(3);
  });

  it("remembers an idempotency key for every chunk, apart from any other key", async () => {
    const records = many(RECORDS_PER_REQUEST_MAX + 3);
    const first = await engine.appendInChunks({ topic: "big", records, idempotencyKey: "batch" });
    // A key that looks like a derived chunk key is a key of its own, not a replay of chunk 1.
    const other = await engine.append({
      topic: "big",
      records: [record("x", null, { partition: 0 })],
      idempotencyKey: "batch#1",
    });
    expect(other.duplicate).toBe(false);
    expect(other.records[0]!.offset).toBe(RECORDS_PER_REQUEST_MAX + 3);
    const retried = await otherProcess().appendInChunks({ topic: "big", records, idempotencyKey: "batch" });
    // The same offsets, each marked as answered from the earlier commit.
    expect(retried).toEqual(first.map((outcome) => ({ ...outcome, duplicate: true })));
    expect(first.every((outcome) => outcome.ok && outcome.duplicate === false)).toBe(true);
    expect((await engine.partitionOffsets("big", 0)).highWatermark).toBe(RECORDS_PER_REQUEST_MAX + 4);
  });

  it("runs an idempotent producer's sequences on across chunks, so the next request and a retry line up", async () => {
    const producer = await engine.initProducer();
    const records = many(RECORDS_PER_REQUEST_MAX + 10, 1);
    const first = await engine.appendInChunks({
      topic: "big",
      records,
      producer: { ...producer, baseSequences: { 1: 0 } },
    });
    expect(first.every((outcome) => outcome.ok)).toBe(true);
    const retried = await otherProcess().appendInChunks({
      topic: "big",
      records,
      producer: { ...producer, baseSequences: { 1: 0 } },
    });
    // The same offsets, each marked as answered from the earlier commit.
    expect(retried).toEqual(first.map((outcome) => ({ ...outcome, duplicate: true })));
    expect(first.every((outcome) => outcome.ok && outcome.duplicate === false)).toBe(true);
    const next = await engine.append({
      topic: "big",
      records: [record("after", null, { partition: 1 })],
      producer: { ...producer, baseSequences: { 1: RECORDS_PER_REQUEST_MAX + 10 } },
    });
    expect(next.records[0]!.offset).toBe(RECORDS_PER_REQUEST_MAX + 10);
  });

  it("refuses a chunked producer request whose unkeyed records name no partition, writing nothing", async () => {
    const producer = await engine.initProducer();
    const records = Array.from({ length: RECORDS_PER_REQUEST_MAX + 1 }, (_, i) => record(`v${i}`));
    const outcomes = engine.appendInChunks({
      topic: "big",
      records,
      producer: { ...producer, baseSequences: { 0: 0, 1: 0 } },
    });
    await expect(outcomes).rejects.toThrow(/record 0 has neither a partition nor a key/);
    expect(objects.calls.put).toBe(0);
  });
});
