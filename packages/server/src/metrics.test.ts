import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SluiceClient } from "@sluice/client";
import {
  hasPromtool,
  type PrometheusSample,
  parsePrometheusText,
  promtoolCheckMetrics,
  sampleValue,
} from "@sluice/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "./server.js";

/**
 * Counting tests: known records, bytes, errors and lag go through a real local server over HTTP,
 * and GET /metrics must show exactly those numbers (and pass promtool).
 */
let dataDir: string;
let server: RunningServer;
let client: SluiceClient;
let base: string;

const json = (body: unknown) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

const text = (data: string) => ({ type: "STRING", data });

/** Each sample's labels as the test names them: every label of the series, so a match is exact. */
async function scrape(): Promise<{ text: string; samples: PrometheusSample[] }> {
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const body = await response.text();
  return { text: body, samples: parsePrometheusText(body) };
}

const TIMESTAMP = Date.parse("2024-01-01T00:00:00Z");
let scrapedAfterMs = 0;
let scraped: { text: string; samples: PrometheusSample[] };
let scrapedBeforeMs = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-metrics-"));
  // Every append uploads its object (none is carried in the index), so the object store's calls
  // are there to be measured.
  server = await startServer({ dataDir, port: 0, inlineMaxBytes: 0, logger: { error: () => undefined } });
  client = new SluiceClient({ url: server.url });
  base = `${server.url}/v3/clusters/${server.clusterId}/topics`;
  await client.createTopic("counted", { partitions: 2 });

  // Produce: one request of three records to partition 0 and two to partition 1, then one of one.
  // Record bytes: key + value (+ header name and value).
  const stream = [
    { partition_id: 0, key: text("k1"), value: text("aaaa"), timestamp: TIMESTAMP }, // 6
    { partition_id: 0, value: text("bbbbbbbb"), timestamp: TIMESTAMP + 1 }, // 8
    { partition_id: 0, key: text("k3"), value: text("c"), headers: [{ name: "h", value: "eHl6" }] }, // 2+1+1+3
    { partition_id: 1, value: text("dd") }, // 2
    { partition_id: 1, key: text("key"), value: text("eee") }, // 6
  ]
    .map((record) => JSON.stringify(record))
    .join("\n");
  expect((await fetch(`${base}/counted/records`, json(stream))).status).toBe(200);
  expect(
    (await fetch(`${base}/counted/records`, json({ partition_id: 1, value: text("ffffffffff") }))).status,
  ).toBe(200);

  // Reads: JSON from offset 1 of partition 0 (2 records, 14 bytes), binary from 0 of partition 1 (3, 18).
  expect((await client.readPartition("counted", 0, { offset: 1 })).records).toHaveLength(2);
  const binary = await fetch(`${base}/counted/partitions/1/records?offset=0`, {
    headers: { Accept: "application/vnd.kafka.record-batch.v2" },
  });
  expect(binary.status).toBe(200);
  await binary.arrayBuffer();

  // Errors: an unknown partition, an offset out of range, malformed JSON, and one bad record in a
  // stream of two (a 200 answer holding one error; the good record is written: 4th append).
  expect((await fetch(`${base}/counted/records`, json({ partition_id: 5, value: text("x") }))).status).toBe(
    404,
  );
  expect((await fetch(`${base}/counted/partitions/0/records?offset=99`)).status).toBe(416);
  expect((await fetch(`${base}/counted/records`, json("{not json"))).status).toBe(400);
  const mixed = await fetch(
    `${base}/counted/records`,
    json(
      `${JSON.stringify({ partition_id: 0, value: text("g") })}${JSON.stringify({ partition_id: 9, value: text("h") })}`,
    ),
  );
  expect(mixed.status).toBe(200);
  expect(
    (await mixed.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).error_code),
  ).toEqual([200, 404]);

  // Lag: group "lagging" commits offset 1 on partition 0 (high watermark 4: lag 3, its first
  // unconsumed record stamped TIMESTAMP + 1) and nothing on partition 1 (high watermark 3: lag 3
  // from the log start).
  const joined = await client.groupHeartbeat("lagging", {
    memberId: "member-1",
    memberEpoch: 0,
    subscribedTopicNames: ["counted"],
  });
  expect(joined.assignment).toHaveLength(2);
  await client.commitGroupOffsets("lagging", "member-1", [
    { topicName: "counted", partitionId: 0, offset: 1 },
  ]);
  await client.groupHeartbeat("lagging", { memberId: "member-1", memberEpoch: -1 });

  scrapedBeforeMs = Date.now();
  scraped = await scrape();
  scrapedAfterMs = Date.now();
});

afterAll(async () => {
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const value = (name: string, labels: Record<string, string>) => sampleValue(scraped.samples, name, labels);

describe("GET /metrics on the local server", () => {
  it.skipIf(!hasPromtool())(
    `passes promtool check metrics${hasPromtool() ? "" : " (skipped: promtool is not installed; apt-get install prometheus)"}`,
    () => {
      // Without the process metrics (the default), not even a lint remark.
      expect(promtoolCheckMetrics(scraped.text)).toEqual({ status: 0, output: "" });
    },
  );

  it("counts produced records and record bytes per partition, and produce requests", () => {
    const records = (partition: string) =>
      value("sluice_produce_records_total", { topic: "counted", partition });
    const bytes = (partition: string) => value("sluice_produce_bytes_total", { topic: "counted", partition });
    expect(records("0")).toBe(4);
    expect(bytes("0")).toBe(6 + 8 + 7 + 1);
    expect(records("1")).toBe(3);
    expect(bytes("1")).toBe(2 + 6 + 10);
    // Four requests reached the engine; the one naming partition 5 was refused before it.
    expect(value("sluice_produce_requests_total", { topic: "counted" })).toBe(3);
    expect(value("sluice_produce_latency_seconds_count", { topic: "counted" })).toBe(3);
  });

  it("counts fetched records and bytes from the offset asked, JSON and binary alike", () => {
    expect(value("sluice_fetch_records_total", { topic: "counted", partition: "0" })).toBe(2);
    expect(value("sluice_fetch_bytes_total", { topic: "counted", partition: "0" })).toBe(8 + 7);
    expect(value("sluice_fetch_records_total", { topic: "counted", partition: "1" })).toBe(3);
    expect(value("sluice_fetch_bytes_total", { topic: "counted", partition: "1" })).toBe(18);
    // The out-of-range read is a fetch request that answered nothing.
    expect(value("sluice_fetch_requests_total", { topic: "counted", partition: "0" })).toBe(2);
    expect(value("sluice_fetch_requests_total", { topic: "counted", partition: "1" })).toBe(1);
    expect(value("sluice_fetch_latency_seconds_count", { topic: "counted" })).toBe(2);
  });

  it("counts each error answered by status, class, code and topic", () => {
    const errors = scraped.samples.filter((sample) => sample.name === "sluice_http_errors_total");
    expect(
      errors
        .map((sample): Record<string, string | number> => ({ ...sample.labels, value: sample.value }))
        .sort((a, b) => String(a.status).localeCompare(String(b.status))),
    ).toEqual([
      { status: "400", class: "client", code: "400", topic: "counted", value: 1 },
      { status: "404", class: "client", code: "404", topic: "counted", value: 2 },
      { status: "416", class: "client", code: "OFFSET_OUT_OF_RANGE", topic: "counted", value: 1 },
    ]);
  });

  it("counts requests by route pattern and status", () => {
    const produceRoute = "/v3/clusters/:cluster_id/topics/:topic_name/records";
    expect(value("sluice_http_requests_total", { method: "POST", route: produceRoute, status: "200" })).toBe(
      3,
    );
    expect(value("sluice_http_requests_total", { method: "POST", route: produceRoute, status: "404" })).toBe(
      1,
    );
    expect(value("sluice_http_requests_total", { method: "POST", route: produceRoute, status: "400" })).toBe(
      1,
    );
  });

  it("shows the group's lag per partition in records and in time", () => {
    const lag = (partition: string) =>
      value("sluice_consumer_group_lag_records", { group: "lagging", topic: "counted", partition });
    expect(lag("0")).toBe(3);
    expect(lag("1")).toBe(3);
    const seconds = value("sluice_consumer_group_lag_seconds", {
      group: "lagging",
      topic: "counted",
      partition: "0",
    })!;
    expect(seconds).toBeGreaterThanOrEqual((scrapedBeforeMs - (TIMESTAMP + 1)) / 1000);
    expect(seconds).toBeLessThanOrEqual((scrapedAfterMs - (TIMESTAMP + 1)) / 1000);
  });

  it("times and counts the storage calls behind it all", () => {
    // One object per append that was written.
    expect(
      value("sluice_storage_requests_total", { backend: "filesystem", operation: "put", result: "ok" }),
    ).toBe(3);
    expect(value("sluice_storage_latency_seconds_count", { backend: "filesystem", operation: "put" })).toBe(
      3,
    );
    expect(
      value("sluice_storage_requests_total", { backend: "sqlite", operation: "transactWrite", result: "ok" }),
    ).toBeGreaterThanOrEqual(3);
  });
});

describe("process metrics", () => {
  it("are served only when asked for (SLUICE_PROCESS_METRICS=on), and then pass promtool too", async () => {
    expect(scraped.text).not.toMatch(/^process_cpu_seconds_total /m);
    expect(scraped.text).not.toMatch(/^nodejs_eventloop_lag_seconds /m);
    const withProcess = await startServer({
      dataDir: join(dataDir, "process"),
      port: 0,
      processMetrics: true,
    });
    try {
      const text = await (await fetch(`${withProcess.url}/metrics`)).text();
      expect(text).toMatch(/^process_cpu_seconds_total \d/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
      if (hasPromtool()) {
        const result = promtoolCheckMetrics(text);
        expect([0, 3]).toContain(result.status);
        // prom-client names three of its process gauges *_total; nothing else may draw a remark.
        for (const remark of result.output.split("\n").filter(Boolean)) {
          expect(remark).toMatch(/^nodejs_active_\w+_total non-counter metrics/);
        }
      }
    } finally {
      await withProcess.close();
    }
  });
});

describe("a server with metrics off", () => {
  it("serves no /metrics route", async () => {
    const quiet = await startServer({ dataDir: join(dataDir, "quiet"), port: 0, metrics: false });
    try {
      expect(quiet.metrics).toBeUndefined();
      expect((await fetch(`${quiet.url}/metrics`)).status).toBe(404);
    } finally {
      await quiet.close();
    }
  });
});

describe("a server with its defaults", () => {
  it("carries a small append in the index: the commit is its only storage write, and it reads back", async () => {
    const plain = await startServer({ dataDir: join(dataDir, "defaults"), port: 0 });
    try {
      const sdk = new SluiceClient({ url: plain.url });
      await sdk.createTopic("small", { partitions: 1 });
      await sdk.produce("small", { value: "carried" });
      await sdk.produce("small", { value: "x".repeat(5_000) });
      const samples = parsePrometheusText(await (await fetch(`${plain.url}/metrics`)).text());
      const count = (operation: string) =>
        sampleValue(samples, "sluice_storage_requests_total", {
          backend: "filesystem",
          operation,
          result: "ok",
        });
      // The 5,000-byte record is over the 4096-byte default: its append alone is uploaded.
      expect(count("put")).toBe(1);
      const read = await sdk.readPartition("small", 0, { offset: 0 });
      expect(read.records.map((record) => record.value?.data)).toEqual(["carried", "x".repeat(5_000)]);
    } finally {
      await plain.close();
    }
  });
});
