import { RECORD_BATCH_HEADER_SIZE, readBatchHeader } from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { PrometheusMetrics } from "@sluice/telemetry/prometheus";
import { parsePrometheusText, SimulatedClock, sampleValue } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import type { ProduceRecord } from "./append/append-types.js";
import { Engine } from "./engine.js";

const text = new TextEncoder();

/** A record of known size: key k bytes, value v bytes, one header "h" + 2 bytes when asked. */
function sized(partition: number, keyBytes: number, valueBytes: number, header = false): ProduceRecord {
  return {
    partition,
    key: keyBytes === 0 ? null : new Uint8Array(keyBytes).fill(107),
    value: new Uint8Array(valueBytes).fill(118),
    ...(header ? { headers: [{ key: "trace-é", value: text.encode("ab") }] } : {}),
  };
}

let metrics: PrometheusMetrics;
let clock: SimulatedClock;
let engine: Engine;

beforeEach(async () => {
  metrics = new PrometheusMetrics({ processMetrics: false });
  clock = new SimulatedClock();
  engine = new Engine({
    objects: new MemoryObjectStore(),
    metadata: new MemoryMetadataStore(),
    clock,
    metrics,
  });
  await engine.createTopic({ name: "orders", partitions: 3 });
});

async function value(name: string, labels: Record<string, string> = {}) {
  return sampleValue(parsePrometheusText(await metrics.exposition()), name, labels);
}

describe("engine metrics", () => {
  it("count a produce of record batches per batch: its records and its bytes as stored, duplicates not again", async () => {
    const { encodeRecordBatch } = await import("@sluice/core");
    const { producerId } = await engine.initProducer();
    const batch = (count: number) =>
      encodeRecordBatch(
        Array.from({ length: count }, () => ({ key: null, value: new Uint8Array(10), timestamp: 1 })),
        { compression: "none", producerId, producerEpoch: 0, baseSequence: 0 },
      );
    const [one, two] = [await batch(3), await batch(2)];
    const body = new Uint8Array([...one, ...two]);
    await engine.appendBatches({ topic: "orders", batches: body, partitions: [0, 2] });
    await engine.appendBatches({ topic: "orders", batches: body, partitions: [0, 2] }); // duplicates
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "0" })).toBe(3);
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "2" })).toBe(2);
    expect(await value("sluice_produce_bytes_total", { topic: "orders", partition: "2" })).toBe(
      two.byteLength,
    );
    expect(await value("sluice_produce_requests_total", { topic: "orders" })).toBe(2);
  });

  it("count produced records and record bytes per partition, one request and one latency per append", async () => {
    await engine.append({
      topic: "orders",
      records: [sized(0, 3, 10), sized(0, 0, 7, true), sized(2, 5, 100)],
    });
    // "trace-é" is 8 UTF-8 bytes, its value 2.
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "0" })).toBe(2);
    expect(await value("sluice_produce_bytes_total", { topic: "orders", partition: "0" })).toBe(
      3 + 10 + 7 + 8 + 2,
    );
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "2" })).toBe(1);
    expect(await value("sluice_produce_bytes_total", { topic: "orders", partition: "2" })).toBe(105);
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "1" })).toBeUndefined();
    expect(await value("sluice_produce_requests_total", { topic: "orders" })).toBe(1);
    expect(await value("sluice_produce_latency_seconds_count", { topic: "orders" })).toBe(1);
    expect(await value("sluice_produce_batch_records_sum", { topic: "orders" })).toBe(3);
    expect(await value("sluice_produce_batch_bytes_sum", { topic: "orders" })).toBe(135);
  });

  it("a retry answered from an earlier commit is a request but writes, and counts, no records", async () => {
    const request = { topic: "orders", records: [sized(1, 2, 2)], idempotencyKey: "k-1" };
    await engine.append(request);
    const retry = await engine.append(request);
    expect(retry.duplicate).toBe(true);
    const chunked = await engine.appendInChunks(request);
    expect(chunked[0]).toMatchObject({ ok: true, duplicate: true });
    expect(await value("sluice_produce_requests_total", { topic: "orders" })).toBe(3);
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "1" })).toBe(1);
    expect(await value("sluice_produce_latency_seconds_count", { topic: "orders" })).toBe(1);
  });

  it("chunked appends count every record written, across chunks", async () => {
    const records = Array.from({ length: 10_050 }, (_, i) => sized(i % 3, 1, 4));
    const outcomes = await engine.appendInChunks({ topic: "orders", records });
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    for (const partition of [0, 1, 2]) {
      expect(
        await value("sluice_produce_records_total", { topic: "orders", partition: String(partition) }),
      ).toBe(3_350);
      expect(
        await value("sluice_produce_bytes_total", { topic: "orders", partition: String(partition) }),
      ).toBe(16_750);
    }
    expect(await value("sluice_produce_requests_total", { topic: "orders" })).toBe(1);
  });

  it("a refused append is a request with no records", async () => {
    await expect(engine.append({ topic: "orders", records: [sized(7, 1, 1)] })).rejects.toThrow(/partition/);
    expect(await value("sluice_produce_requests_total", { topic: "orders" })).toBe(1);
    expect(await value("sluice_produce_records_total", { topic: "orders", partition: "7" })).toBeUndefined();
  });

  it("count fetched records and bytes from the offset asked, alike for JSON and binary reads", async () => {
    await engine.append({
      topic: "orders",
      records: [sized(0, 1, 10), sized(0, 2, 20, true), sized(0, 3, 30)],
    });
    await engine.append({ topic: "orders", records: [sized(0, 0, 40)] });
    const json = await engine.fetch({ topic: "orders", partition: 0, offset: 1 });
    expect(json.records).toHaveLength(3);
    const labels = { topic: "orders", partition: "0" };
    const fromOffsetOne = 2 + 20 + 10 + 3 + 30 + 40;
    expect(await value("sluice_fetch_records_total", labels)).toBe(3);
    expect(await value("sluice_fetch_bytes_total", labels)).toBe(fromOffsetOne);
    const binary = await engine.fetchBatches({ topic: "orders", partition: 0, offset: 1 });
    // The binary answer starts at the batch holding offset 1: offset 0 is sent, and not counted.
    expect(readBatchHeader(binary.batches, 0).baseOffset).toBe(0);
    expect(await value("sluice_fetch_records_total", labels)).toBe(6);
    expect(await value("sluice_fetch_bytes_total", labels)).toBe(2 * fromOffsetOne);
    expect(await value("sluice_fetch_requests_total", labels)).toBe(2);
    expect(await value("sluice_fetch_latency_seconds_count", { topic: "orders" })).toBe(2);
    await engine.fetch({ topic: "orders", partition: 0, offset: 4 });
    expect(await value("sluice_fetch_requests_total", labels)).toBe(3);
    expect(await value("sluice_fetch_records_total", labels)).toBe(6);
  });

  it("a compressed batch read as bytes counts its records from the offset and its stored records section", async () => {
    await engine.createTopic({ name: "zipped", partitions: 1, configs: { "compression.type": "gzip" } });
    await engine.append({ topic: "zipped", records: [sized(0, 1, 500), sized(0, 1, 500), sized(0, 1, 500)] });
    const binary = await engine.fetchBatches({ topic: "zipped", partition: 0, offset: 1 });
    const header = readBatchHeader(binary.batches, 0);
    expect(header.compression).toBe("gzip");
    const labels = { topic: "zipped", partition: "0" };
    expect(await value("sluice_fetch_records_total", labels)).toBe(2);
    expect(await value("sluice_fetch_bytes_total", labels)).toBe(
      header.byteLength - RECORD_BATCH_HEADER_SIZE,
    );
    // Read as JSON the records are decoded, and measured exactly.
    await engine.fetch({ topic: "zipped", partition: 0, offset: 1 });
    expect(await value("sluice_fetch_bytes_total", labels)).toBe(
      header.byteLength - RECORD_BATCH_HEADER_SIZE + 1002,
    );
  });

  it("feeds the recent-activity window the topic resources read, whatever the sink", async () => {
    const quiet = new Engine({
      objects: new MemoryObjectStore(),
      metadata: new MemoryMetadataStore(),
      clock,
    });
    await quiet.createTopic({ name: "t", partitions: 2 });
    await clock.advance(2_000);
    await quiet.append({ topic: "t", records: [sized(0, 0, 10), sized(1, 0, 30)] });
    await quiet.fetch({ topic: "t", partition: 1, offset: 0 });
    const activity = quiet.activity.topic("t");
    expect(activity.windowSeconds).toBe(2);
    expect(activity.recordsInPerSecond).toBe(1);
    expect(activity.bytesInPerSecond).toBe(20);
    expect(activity.partitions.get(1)).toEqual({
      recordsInPerSecond: 0.5,
      bytesInPerSecond: 15,
      recordsOutPerSecond: 0.5,
      bytesOutPerSecond: 15,
    });
    expect(activity.produceLatencyP99Seconds).not.toBeNull();
    await quiet.deleteTopic("t");
    expect(quiet.activity.topic("t").recordsInPerSecond).toBe(0);
  });
});
