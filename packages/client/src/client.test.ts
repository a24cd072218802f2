import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { SluiceClient } from "./client.js";
import { dataText, headerText } from "./data.js";
import { SluiceConnectionError, SluiceHttpError } from "./errors.js";
import type { ConsumedRecord } from "./types.js";

const CLUSTER = "test-cluster";
const BASE_URL = "http://sluice.test";

/** A client that calls the real Hono app in-process, over in-memory stores. */
function setup(): { client: SluiceClient; engine: Engine; metadata: MemoryMetadataStore } {
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata });
  const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
  const client = new SluiceClient({
    url: `${BASE_URL}/`,
    fetch: async (url, init) => app.request(url, init),
  });
  return { client, engine, metadata };
}

async function rejection(promise: Promise<unknown>): Promise<SluiceHttpError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SluiceHttpError);
  return error as SluiceHttpError;
}

let client: SluiceClient;
let engine: Engine;
let metadata: MemoryMetadataStore;
beforeEach(() => {
  ({ client, engine, metadata } = setup());
});

describe("clusters", () => {
  it("discovers the cluster id and describes the cluster", async () => {
    expect(await client.clusterId()).toBe(CLUSTER);
    expect(await client.listClusters()).toEqual([{ clusterId: CLUSTER }]);
    expect(await client.getCluster()).toEqual({ clusterId: CLUSTER });
  });

  it("uses a given cluster id as is, and an unknown one is a 404", async () => {
    const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
    const other = new SluiceClient({
      url: BASE_URL,
      clusterId: "nope",
      fetch: async (url, init) => app.request(url, init),
    });
    expect(await other.clusterId()).toBe("nope");
    const error = await rejection(other.listTopics());
    expect(error).toMatchObject({ status: 404, errorCode: 404 });
    expect(error.message).toContain("nope");
  });
});

describe("request URLs", () => {
  it("sends each request to its own path and query, however often paths repeat", async () => {
    const metadata = new MemoryMetadataStore();
    const engine = new Engine({ objects: new MemoryObjectStore(), metadata });
    const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
    const asked: string[] = [];
    const recording = new SluiceClient({
      url: BASE_URL,
      clusterId: CLUSTER,
      fetch: async (url, init) => {
        asked.push(String(url));
        return app.request(url, init);
      },
    });
    await recording.createTopic("t", { partitions: 1 });
    // More distinct paths than the client keeps parsed, twice over, and reads with a query.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 300; i++) {
        asked.length = 0;
        await recording.getTopicConfig(`t${i}`, "retention.ms").catch(() => undefined);
        expect(asked).toEqual([`${BASE_URL}/v3/clusters/${CLUSTER}/topics/t${i}/configs/retention.ms`]);
      }
      for (const offset of [0, 3, 0]) {
        asked.length = 0;
        await recording.readPartition("t", 0, { offset, timeoutMs: 0 }).catch(() => undefined);
        expect(asked).toHaveLength(1);
        expect(new URL(asked[0]!).searchParams.get("offset")).toBe(String(offset));
      }
    }
  });
});

describe("topics", () => {
  it("creates, lists, describes, grows and deletes topics", async () => {
    const created = await client.createTopic("orders", {
      partitions: 3,
      configs: { "retention.ms": "1000" },
    });
    expect(created).toMatchObject({
      clusterId: CLUSTER,
      topicName: "orders",
      partitionsCount: 3,
      isInternal: false,
    });
    await client.createTopic("audit");
    expect((await client.listTopics()).map((topic) => topic.topicName).sort()).toEqual(["audit", "orders"]);
    expect(await client.describeTopic("audit")).toMatchObject({ topicName: "audit", partitionsCount: 1 });
    expect(await client.increasePartitions("orders", 5)).toMatchObject({ partitionsCount: 5 });
    expect((await client.listPartitions("orders")).map((partition) => partition.partitionId)).toEqual([
      0, 1, 2, 3, 4,
    ]);
    await client.deleteTopic("audit");
    expect((await client.listTopics()).map((topic) => topic.topicName)).toEqual(["orders"]);
  });

  it("reports API errors as SluiceHttpError with status, error code and message", async () => {
    await client.createTopic("orders", { partitions: 2 });
    expect(await rejection(client.createTopic("orders"))).toMatchObject({ status: 409, errorCode: 409 });
    const missing = await rejection(client.describeTopic("missing"));
    expect(missing).toMatchObject({ status: 404, errorCode: 404 });
    expect(missing.message).toContain("missing");
    expect(missing.retryable).toBe(false);
    expect(await rejection(client.increasePartitions("orders", 1))).toMatchObject({ status: 409 });
    expect(await rejection(client.createTopic("bad", { configs: { "no.such.config": "1" } }))).toMatchObject({
      status: 400,
    });
  });

  it("gets, sets, resets and alters configs", async () => {
    await client.createTopic("orders");
    const configs = await client.getTopicConfigs("orders");
    expect(configs.find((config) => config.name === "retention.ms")).toMatchObject({
      value: "604800000",
      isDefault: true,
      source: "DEFAULT_CONFIG",
    });
    await client.setTopicConfig("orders", "retention.ms", "1000");
    expect(await client.getTopicConfig("orders", "retention.ms")).toMatchObject({
      value: "1000",
      isDefault: false,
      source: "DYNAMIC_TOPIC_CONFIG",
    });
    await client.resetTopicConfig("orders", "retention.ms");
    expect(await client.getTopicConfig("orders", "retention.ms")).toMatchObject({
      value: "604800000",
      isDefault: true,
    });
    await client.alterTopicConfigs("orders", [
      { name: "cleanup.policy", value: "compact" },
      { name: "max.message.bytes", value: "2048", operation: "SET" },
    ]);
    await client.alterTopicConfigs("orders", [{ name: "cleanup.policy", operation: "DELETE" }]);
    const after = Object.fromEntries((await client.getTopicConfigs("orders")).map((c) => [c.name, c.value]));
    expect(after["cleanup.policy"]).toBe("delete");
    expect(after["max.message.bytes"]).toBe("2048");
  });
});

describe("produce", () => {
  beforeEach(async () => {
    await client.createTopic("orders", { partitions: 2 });
  });

  it("produces one record and reports where it went", async () => {
    const report = await client.produce("orders", {
      partitionId: 1,
      key: "k",
      value: { type: "JSON", data: { n: 1 } },
      headers: { trace: "abc" },
      timestamp: 1_700_000_000_000,
    });
    expect(report).toEqual({
      clusterId: CLUSTER,
      topicName: "orders",
      partitionId: 1,
      offset: 0,
      timestamp: 1_700_000_000_000,
      key: { type: "STRING", size: 1 },
      value: { type: "JSON", size: 7 },
    });
    const { records } = await client.readPartition("orders", 1, { valueType: "JSON", keyType: "STRING" });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      topicName: "orders",
      partitionId: 1,
      offset: 0,
      timestamp: 1_700_000_000_000,
      key: { type: "STRING", data: "k" },
      value: { type: "JSON", data: { n: 1 } },
    });
    expect(headerText(records[0]?.headers[0] as never)).toBe("abc");
  });

  it("streams many records in one request, with an outcome per record", async () => {
    await client.setTopicConfig("orders", "max.message.bytes", "100");
    const outcomes = await client.produceMany("orders", [
      { partitionId: 0, value: "a" },
      { partitionId: 0, value: "x".repeat(500) },
      { partitionId: 0, value: new Uint8Array([1, 2, 3]) },
    ]);
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, false, true]);
    expect(outcomes[1]).toMatchObject({ ok: false, errorCode: 413 });
    const offsets = outcomes.flatMap((outcome) => (outcome.ok ? [outcome.report.offset] : []));
    expect(offsets).toEqual([0, 1]);
  });

  it("streams records from an async iterable as the request body", async () => {
    async function* records() {
      for (let i = 0; i < 250; i++) yield { partitionId: i % 2, key: `k${i}`, value: `v${i}` };
    }
    const outcomes = await client.produceMany("orders", records());
    expect(outcomes).toHaveLength(250);
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    const partitions = await client.listPartitions("orders");
    expect(partitions.map((partition) => partition.latestOffset)).toEqual([125, 125]);
  });

  it("throws for a request-level failure", async () => {
    expect(await rejection(client.produceMany("missing", [{ value: "a" }, { value: "b" }]))).toMatchObject({
      status: 404,
    });
    const badPartition = await rejection(client.produce("orders", { partitionId: 7, value: "a" }));
    expect([400, 404]).toContain(badPartition.status);
    expect(badPartition.message).toContain("partition");
  });

  it("produces a batch with per-entry failures", async () => {
    const result = await client.produceBatch("orders", [
      { id: "one", partitionId: 0, value: "a" },
      { id: "two", partitionId: 9, value: "b" },
      { id: "three", partitionId: 0, value: "c" },
    ]);
    expect(result.successes.map((success) => [success.id, success.partitionId, success.offset])).toEqual([
      ["one", 0, 0],
      ["three", 0, 1],
    ]);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toMatchObject({ id: "two" });
    expect(result.failures[0]?.errorCode).toBeGreaterThanOrEqual(400);
  });

  it("retries with an idempotency key without writing twice", async () => {
    const first = await client.produce(
      "orders",
      { partitionId: 0, value: "once" },
      { idempotencyKey: "key-1" },
    );
    const again = await client.produce(
      "orders",
      { partitionId: 0, value: "once" },
      { idempotencyKey: "key-1" },
    );
    expect(again.offset).toBe(first.offset);
    expect((await client.getPartition("orders", 0)).latestOffset).toBe(1);
  });

  it("runs an idempotent producer: duplicates are answered, old epochs fenced", async () => {
    const producer = await client.initProducer();
    expect(producer.producerEpoch).toBe(0);
    const options = { producer: { ...producer, sequence: 0 } };
    const first = await client.produceMany(
      "orders",
      [
        { partitionId: 0, value: "a" },
        { partitionId: 0, value: "b" },
      ],
      options,
    );
    const duplicate = await client.produceMany(
      "orders",
      [
        { partitionId: 0, value: "a" },
        { partitionId: 0, value: "b" },
      ],
      options,
    );
    const offsetsOf = (outcomes: typeof first) =>
      outcomes.map((outcome) =>
        outcome.ok ? [outcome.report.partitionId, outcome.report.offset] : outcome.message,
      );
    expect(offsetsOf(duplicate)).toEqual([
      [0, 0],
      [0, 1],
    ]);
    expect(offsetsOf(first)).toEqual(offsetsOf(duplicate));
    expect((await client.getPartition("orders", 0)).latestOffset).toBe(2);
    const bumped = await client.initProducer(producer.producerId);
    expect(bumped).toEqual({ producerId: producer.producerId, producerEpoch: 1 });
    const fenced = await rejection(
      client.produce("orders", { partitionId: 0, value: "c" }, { producer: { ...producer, sequence: 2 } }),
    );
    expect(fenced.status).toBe(409);
  });
});

describe("consume", () => {
  beforeEach(async () => {
    await client.createTopic("events", { partitions: 2 });
  });

  it("reads a partition with offsets, limits and value types", async () => {
    await client.produceMany(
      "events",
      Array.from({ length: 5 }, (_, i) => ({ partitionId: 0, value: `v${i}`, timestamp: 1_000 + i })),
    );
    const page = await client.readPartition("events", 0, { offset: 1, maxRecords: 2, valueType: "STRING" });
    expect(page.records.map((record) => [record.offset, dataText(record.value)])).toEqual([
      [1, "v1"],
      [2, "v2"],
    ]);
    expect(page).toMatchObject({ nextOffset: 3, highWatermark: 5, logStartOffset: 0, partitionId: 0 });
    expect(await client.getPartition("events", 0)).toMatchObject({ earliestOffset: 0, latestOffset: 5 });
    const latest = await client.readPartition("events", 0, { offset: "latest" });
    expect(latest.records).toEqual([]);
    expect(latest.nextOffset).toBe(5);
    expect(await rejection(client.readPartition("events", 0, { offset: 99 }))).toMatchObject({ status: 416 });
  });

  it("long-polls until a record arrives", async () => {
    const waiting = client.readPartition("events", 1, { offset: 0, timeoutMs: 20_000 });
    await client.produce("events", { partitionId: 1, value: "late" });
    const result = await waiting;
    expect(result.records.map((record) => dataText(record.value))).toEqual(["late"]);
  });

  it("finds offsets by timestamp", async () => {
    await client.produceMany("events", [
      { partitionId: 0, value: "a", timestamp: 1_000 },
      { partitionId: 0, value: "b", timestamp: 2_000 },
      { partitionId: 1, value: "c", timestamp: 1_500 },
    ]);
    const offsets = await client.offsetsForTimestamp("events", 1_800);
    expect(offsets.sort((a, b) => a.partitionId - b.partitionId)).toEqual([
      { partitionId: 0, offset: 1 },
      { partitionId: 1, offset: null },
    ]);
    expect(await client.offsetsForTimestamp("events", new Date(500))).toEqual(
      expect.arrayContaining([{ partitionId: 1, offset: 0 }]),
    );
  });
});

describe("tailPartition", () => {
  beforeEach(async () => {
    await client.createTopic("live", { partitions: 1 });
    await client.produceMany("live", [{ value: "old-0" }, { value: "old-1" }]);
  });

  async function take(
    iterator: AsyncIterable<ConsumedRecord>,
    count: number,
    onEach?: (n: number) => Promise<void>,
  ) {
    const seen: ConsumedRecord[] = [];
    for await (const record of iterator) {
      seen.push(record);
      await onEach?.(seen.length);
      if (seen.length >= count) break;
    }
    return seen;
  }

  it("yields stored records, then new ones as they are committed (server-sent events)", async () => {
    const seen = await take(client.tailPartition("live", 0, { offset: "earliest" }), 4, async (n) => {
      if (n === 2) await client.produceMany("live", [{ value: "new-2" }, { value: "new-3" }]);
    });
    expect(seen.map((record) => [record.offset, dataText(record.value)])).toEqual([
      [0, "old-0"],
      [1, "old-1"],
      [2, "new-2"],
      [3, "new-3"],
    ]);
  });

  it("resumes after a Last-Event-ID", async () => {
    await client.produce("live", { value: "old-2" });
    const seen = await take(client.tailPartition("live", 0, { lastEventId: "0" }), 2);
    expect(seen.map((record) => record.offset)).toEqual([1, 2]);
  });

  it("stops cleanly when the signal aborts", async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    for await (const record of client.tailPartition("live", 0, { offset: 0, signal: controller.signal })) {
      seen.push(record.offset);
      if (record.offset === 1) controller.abort();
    }
    expect(seen).toEqual([0, 1]);
  });

  it("ends after timeoutMs without reconnecting", async () => {
    const seen = [];
    for await (const record of client.tailPartition("live", 0, { offset: 0, timeoutMs: 200 }))
      seen.push(record);
    expect(seen.map((record) => record.offset)).toEqual([0, 1]);
  });

  it("long-polls with transport poll", async () => {
    const tail = take(client.tailPartition("live", 0, { offset: 1, transport: "poll" }), 2);
    await client.produce("live", { value: "polled" });
    const seen = await tail;
    expect(seen.map((record) => [record.offset, dataText(record.value)])).toEqual([
      [1, "old-1"],
      [2, "polled"],
    ]);
  });

  it("covers a window longer than one stream (30 s at most) with several streams", async () => {
    const urls: string[] = [];
    const controller = new AbortController();
    const fake = new SluiceClient({
      url: BASE_URL,
      clusterId: CLUSTER,
      fetch: async (url) => {
        urls.push(url);
        if (urls.length === 2) controller.abort();
        const body =
          urls.length === 1
            ? 'id: 0\nevent: record\ndata: {"offset":0,"timestamp_ms":1,"key":null,"value":null,"headers":[]}\n\n'
            : "";
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
    });
    const seen = [];
    for await (const record of fake.tailPartition("t", 0, {
      offset: 0,
      timeoutMs: 90_000,
      signal: controller.signal,
    })) {
      seen.push(record.offset);
    }
    expect(seen).toEqual([0]);
    expect(urls).toHaveLength(2);
    expect(new URL(urls[0] as string).searchParams.get("timeout_ms")).toBe("30000");
    expect(new URL(urls[1] as string).searchParams.get("offset")).toBe("1");
  });

  it("throws a non-retryable error for an unknown topic", async () => {
    expect(await rejection(take(client.tailPartition("missing", 0), 1))).toMatchObject({ status: 404 });
  });
});

describe("connection failures", () => {
  it("are SluiceConnectionError naming the URL", async () => {
    const offline = new SluiceClient({
      url: BASE_URL,
      fetch: async () => {
        throw new TypeError("fetch failed", {
          cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
        });
      },
    });
    const error = await offline.listClusters().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SluiceConnectionError);
    expect((error as Error).message).toBe(`cannot reach ${BASE_URL}: connect ECONNREFUSED`);
  });
});

describe("readPartitionBatches", () => {
  /** The reads the app saw, by the form they asked for. */
  function countingClient() {
    const app = createApp({ engine, metadata, clusterId: CLUSTER, logger: { error: () => undefined } });
    const accepts: string[] = [];
    const counting = new SluiceClient({
      url: BASE_URL,
      fetch: async (url, init) => {
        if (url.includes("/records")) accepts.push(new Headers(init.headers).get("accept") ?? "");
        return app.request(url, init);
      },
    });
    return { counting, accepts };
  }

  /** Records of every kind the type fallbacks distinguish, over three appends (three batches). */
  async function produceMixed(topic: string, configs: Record<string, string> = {}) {
    await client.createTopic(topic, { configs });
    await client.produceMany(topic, [
      { partitionId: 0, key: "customer-42", value: { type: "JSON", data: { item: "tea", qty: 2 } } },
      { partitionId: 0, value: "not json", headers: { "trace-id": "abc", empty: null } },
      { partitionId: 0, key: Uint8Array.of(0xff, 0xfe), value: Uint8Array.of(0xff, 0xfe, 0xfd) },
    ]);
    await client.produceMany(topic, [
      { partitionId: 0, value: "7", timestamp: 1_700_000_000_000 },
      { partitionId: 0, value: null },
    ]);
    await client.produceMany(topic, [
      { partitionId: 0, value: { type: "JSON", data: "quoted" } },
      { partitionId: 0, key: "", value: "" },
      { partitionId: 0, value: "ünïcode ✓" },
    ]);
  }

  it("gives the same records as the JSON read, in every type, from any offset", async () => {
    await produceMixed("mixed");
    const { counting, accepts } = countingClient();
    for (const offset of [0, 1, 4, "earliest"] as const) {
      for (const type of [undefined, "JSON", "STRING", "BINARY"] as const) {
        const options = { offset, ...(type ? { keyType: type, valueType: type } : {}) };
        const binary = await counting.readPartitionBatches("mixed", 0, options);
        const json = await client.readPartition("mixed", 0, options);
        expect(binary, `offset ${offset}, type ${type}`).toEqual(json);
        expect(binary.records[0]?.offset).toBe(offset === "earliest" ? 0 : offset);
      }
    }
    expect(new Set(accepts)).toEqual(new Set(["application/vnd.kafka.record-batch.v2"]));
  });

  it("stops at max_records exactly, and answers an empty page at the end", async () => {
    await produceMixed("limits");
    for (const maxRecords of [1, 2, 3, 6, 100]) {
      const options = { offset: 1, maxRecords };
      const binary = await client.readPartitionBatches("limits", 0, options);
      expect(binary, `max_records ${maxRecords}`).toEqual(await client.readPartition("limits", 0, options));
    }
    const end = await client.readPartitionBatches("limits", 0, { offset: "latest" });
    expect(end).toMatchObject({ records: [], nextOffset: 8, highWatermark: 8, logStartOffset: 0 });
    const error = await rejection(client.readPartitionBatches("limits", 0, { offset: 9 }));
    expect(error.status).toBe(416);
  });

  it("reads a page holding a compressed batch again as JSON, from where the page starts", async () => {
    await produceMixed("packed", { "compression.type": "gzip" });
    const { counting, accepts } = countingClient();
    const binary = await counting.readPartitionBatches("packed", 0, { offset: 4, valueType: "STRING" });
    expect(binary).toEqual(await client.readPartition("packed", 0, { offset: 4, valueType: "STRING" }));
    expect(binary.records.map((record) => record.offset)).toEqual([4, 5, 6, 7]);
    expect(accepts).toEqual(["application/vnd.kafka.record-batch.v2", "application/json"]);
  });

  it("decodes a fetched page later: a compressed page is read as JSON up to the page's end, even past the JSON read's own limit", async () => {
    await client.createTopic("pages", { configs: { "compression.type": "gzip" } });
    for (let batch = 0; batch < 3; batch++) {
      await client.produceMany(
        "pages",
        Array.from({ length: 5 }, (_, n) => ({ partitionId: 0, value: `v${batch * 5 + n}` })),
      );
    }
    // max_records counts whole batches in the binary form (two of five) and records in JSON (six).
    const options = { offset: 0, maxRecords: 6, valueType: "STRING" } as const;
    const page = await client.fetchPartitionBatches("pages", 0, options);
    expect(page).toMatchObject({ nextOffset: 10, highWatermark: 15, empty: false });
    const all = await page.decode();
    expect(all.records.map((record) => dataText(record.value))).toEqual(
      Array.from({ length: 10 }, (_, n) => `v${n}`),
    );
    expect(all.nextOffset).toBe(10);
    const three = await page.decode(3);
    expect(three.records.map((record) => record.offset)).toEqual([0, 1, 2]);
    expect(three.nextOffset).toBe(3);
    const end = await client.fetchPartitionBatches("pages", 0, { offset: "latest" });
    expect(end).toMatchObject({ empty: true, nextOffset: 15 });
    expect((await end.decode()).records).toEqual([]);
  });

  it("decodes a page in parts, each from after the last record of the one before, plain or compressed", async () => {
    for (const codec of ["uncompressed", "gzip"] as const) {
      const topic = `parts-${codec}`;
      await client.createTopic(topic, { configs: { "compression.type": codec } });
      for (let batch = 0; batch < 4; batch++) {
        await client.produceMany(
          topic,
          Array.from({ length: 5 }, (_, n) => ({ partitionId: 0, value: `v${batch * 5 + n}` })),
        );
      }
      const options = { offset: 2, valueType: "STRING" } as const;
      const page = await client.fetchPartitionBatches(topic, 0, options);
      const whole = (await page.decode()).records;
      expect(
        whole.map((record) => record.offset),
        codec,
      ).toEqual(Array.from({ length: 18 }, (_, n) => n + 2));
      for (const size of [1, 3, 5, 7]) {
        const parts: number[][] = [];
        let from: number | undefined;
        for (;;) {
          const part = await page.decode(size, from);
          if (part.records.length === 0) break;
          expect(part.records.length, `${codec} parts of ${size}`).toBeLessThanOrEqual(size);
          parts.push(part.records.map((record) => record.offset));
          from = part.records[part.records.length - 1]!.offset + 1;
          expect(part.nextOffset).toBe(from === 20 ? page.nextOffset : from);
        }
        expect(parts.flat(), `${codec} parts of ${size}`).toEqual(whole.map((record) => record.offset));
      }
      // A part may also start anywhere, not only where the last one ended.
      expect((await page.decode(2, 11)).records.map((record) => dataText(record.value))).toEqual([
        "v11",
        "v12",
      ]);
      expect((await page.decode(2, 3)).records.map((record) => dataText(record.value))).toEqual(["v3", "v4"]);
    }
  });

  it("long-polls as the JSON read does: records committed during the wait come back", async () => {
    await client.createTopic("waiting");
    const pending = client.readPartitionBatches("waiting", 0, { offset: 0, timeoutMs: 10_000 });
    // Whether the produce lands before the read begins to wait or during the wait, the answer is
    // the same record: nothing here depends on timing.
    await client.produce("waiting", { partitionId: 0, value: "late" });
    const result = await pending;
    expect(result.records.map((record) => [record.offset, dataText(record.value)])).toEqual([[0, "late"]]);
    expect(result.nextOffset).toBe(1);
  });
});
