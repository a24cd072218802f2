import { SluiceClient } from "@sluice/client";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { run } from "./cli.js";
import {
  formatBytesRate,
  formatMs,
  formatRate,
  renderTop,
  TOP_WIDTH,
  type TopSnapshot,
} from "./commands/top.js";
import type { CliIO, Output } from "./io.js";

const URL = "http://sluice.test";

class Capture implements Output {
  text = "";
  constructor(readonly isTTY = false) {}
  write(chunk: string | Uint8Array): boolean {
    this.text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }
  once(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
}

async function setup() {
  const clock = new SimulatedClock();
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  const app = createApp({ engine, metadata, clock, clusterId: "top", logger: { error: () => undefined } });
  const fetch = async (url: string, init: RequestInit) => app.request(url, init);
  const client = new SluiceClient({ url: URL, fetch });
  const sluice = async (args: string[], options: { tty?: boolean } = {}) => {
    const stdout = new Capture(options.tty);
    const stderr = new Capture();
    const io: CliIO = {
      stdin: (async function* () {})(),
      stdout,
      stderr,
      env: { SLUICE_URL: URL },
      fetch,
      now: () => Date.parse("2026-01-02T03:04:05Z"),
    };
    const code = await run(args, io);
    return { code, stdout: stdout.text, stderr: stderr.text };
  };
  return { clock, client, sluice };
}

function snapshot(overrides: Partial<TopSnapshot> = {}): TopSnapshot {
  return {
    url: "http://127.0.0.1:8080",
    at: Date.parse("2026-01-02T03:04:05Z"),
    topics: [],
    groups: [],
    ...overrides,
  };
}

const activity = (recordsIn: number, extra: Record<string, number | null> = {}) => ({
  windowSeconds: 10,
  recordsInPerSecond: recordsIn,
  bytesInPerSecond: recordsIn * 100,
  recordsOutPerSecond: 0,
  bytesOutPerSecond: 0,
  errors: 0,
  errorsPerSecond: 0,
  produceLatencyP99Ms: 4.2,
  fetchLatencyP99Ms: null,
  ...extra,
});

describe("sluice top", () => {
  it("shows each topic's rates, p99 latencies and errors, and each group's lag", async () => {
    const { clock, client, sluice } = await setup();
    await client.createTopic("orders", { partitions: 2 });
    await client.createTopic("idle");
    await clock.advance(2_000);
    await client.produceMany("orders", [
      { partitionId: 0, value: "0123456789" },
      { partitionId: 1, value: "0123456789" },
      { partitionId: 1, value: "0123456789" },
      { partitionId: 1, value: "0123456789" },
    ]);
    await client.readPartition("orders", 1, { offset: 0 });
    await client.groupHeartbeat("billing", {
      memberId: "m",
      memberEpoch: 0,
      subscribedTopicNames: ["orders"],
    });
    await client.commitGroupOffsets("billing", "m", [{ topicName: "orders", partitionId: 1, offset: 1 }]);
    await clock.advance(2_000);

    const result = await sluice(["top", "-n", "1"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(TOP_WIDTH);
    expect(lines[0]).toBe(`sluice top  ${URL}  03:04:05 UTC  every 2 s`);
    expect(lines[1]).toBe("rates over the server's last 4 s; Ctrl-C to quit");
    const orders = lines.find((line) => line.startsWith("orders"))!;
    // 4 records and 40 bytes in, 3 records and 30 bytes out, in 4 s; p99s measured; no errors.
    expect(orders).toMatch(
      /^orders {19}2 {7}1\.0 {7}10 B {7}0\.8 {7}7\.5 B +\d+(\.\d)? ms +\d+(\.\d)? ms +-$/,
    );
    expect(lines.indexOf(orders)).toBeLessThan(lines.findIndex((line) => line.startsWith("idle")));
    const billing = lines.find((line) => line.startsWith("billing"))!;
    // Lag: partition 0 from the log start (1 record), partition 1 from offset 1 (2 records).
    expect(billing).toMatch(/^billing\s+STABLE\s+1\s+3\s+orders\/1 \(2\)$/);
  });

  it("shows each processor's state, lag, records processed and dead-lettered, most behind first", async () => {
    const { client, sluice } = await setup();
    await client.createTopic("orders", { partitions: 2 });
    await client.createTopic("payments");
    await client.produceMany("orders", [
      { partitionId: 0, value: "a" },
      { partitionId: 1, value: "b" },
      { partitionId: 1, value: "c" },
    ]);
    await client.produce("payments", { value: "p" });
    const definition = {
      handler: { type: "webhook" as const, url: "http://127.0.0.1:9/hook" },
      starting_position: "EARLIEST" as const,
    };
    await client.createProcessor({ name: "audit", topics: ["payments"], ...definition });
    await client.createProcessor({ name: "enrich", topics: ["orders"], ...definition });
    await client.pauseProcessor("audit");

    const result = await sluice(["top", "-n", "1"]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(TOP_WIDTH);
    const header = lines.findIndex((line) => line.startsWith("PROCESSOR"));
    expect(header).toBeGreaterThan(0);
    // Nothing ran them (no runtime beside this app): lag is every record, nothing processed.
    expect(lines[header + 1]).toMatch(/^enrich\s+RUNNING\s+3\s+0\s+0\s+-$/);
    expect(lines[header + 2]).toMatch(/^audit\s+PAUSED\s+1\s+0\s+0\s+-$/);

    const json = JSON.parse((await sluice(["top", "-n", "1", "--format", "json"])).stdout);
    expect(json.processors).toEqual([
      { processor: "audit", state: "PAUSED", lag: 1, processed: 0, dead_lettered: 0 },
      { processor: "enrich", state: "RUNNING", lag: 3, processed: 0, dead_lettered: 0 },
    ]);
  });

  it("redraws in place on a terminal, and stops after -n refreshes", async () => {
    const { client, sluice } = await setup();
    await client.createTopic("t");
    const result = await sluice(["top", "-n", "2", "-i", "0.1"], { tty: true });
    expect(result.code).toBe(0);
    // Hide the cursor and clear once; each frame starts at the top left; the cursor comes back.
    expect(result.stdout.startsWith("\x1b[?25l\x1b[2J\x1b[H")).toBe(true);
    expect(result.stdout.split("\x1b[H")).toHaveLength(3);
    expect(result.stdout.endsWith("\x1b[J\x1b[?25h")).toBe(true);
  });

  it("ends at Ctrl-C while a refresh still waits on the server", async () => {
    const controller = new AbortController();
    let asked = 0;
    const io: CliIO = {
      stdin: (async function* () {})(),
      stdout: new Capture(true),
      stderr: new Capture(),
      env: { SLUICE_URL: URL },
      // A server that never answers.
      fetch: () => {
        asked++;
        return new Promise<Response>(() => undefined);
      },
      now: () => Date.parse("2026-01-02T03:04:05Z"),
      signal: controller.signal,
    };
    const running = run(["top", "-i", "1"], io);
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toBeGreaterThan(0);
    controller.abort();
    expect(await running).toBe(0);
  });

  it("prints a JSON object per refresh with --format json", async () => {
    const { client, sluice } = await setup();
    await client.createTopic("t");
    const result = await sluice(["top", "-n", "1", "--format", "json"]);
    const frame = JSON.parse(result.stdout);
    expect(frame.topics).toEqual([
      { topic: "t", partitions: 1, activity: expect.objectContaining({ recordsInPerSecond: 0 }) },
    ]);
    expect(frame.groups).toEqual([]);
  });

  it("refuses a bad interval", async () => {
    const { sluice } = await setup();
    const result = await sluice(["top", "-i", "0"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("sluice: --interval must be a number of seconds from 0.1 to 3600, got 0\n");
  });
});

describe("renderTop", () => {
  it("keeps every line within 100 columns, cutting long names with an ellipsis", () => {
    const long = "a-topic-name-much-longer-than-its-column-allows";
    const lines = renderTop(
      snapshot({
        topics: [
          {
            clusterId: "c",
            topicName: long,
            isInternal: false,
            replicationFactor: 3,
            partitionsCount: 10_000,
            activity: activity(123_456_789, { bytesInPerSecond: 5e12, errorsPerSecond: 99_999 }),
          },
        ],
        groups: [
          {
            groupId: long,
            state: "RECONCILING",
            partitionAssignor: "uniform",
            groupEpoch: 1,
            members: 1000,
            lag: {
              maxLag: 1e12,
              totalLag: 1e13,
              maxLagTopicName: long,
              maxLagPartitionId: 9999,
              maxLagConsumerId: null,
            },
          },
        ],
      }),
      { intervalSeconds: 2 },
    );
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(TOP_WIDTH);
    expect(lines.find((line) => line.startsWith("a-topic"))).toMatch(
      /^a-topic-name-much-l… 10000 {4}123.5M /,
    );
  });

  it("fits a short terminal: topics are cut with a count of the rest", () => {
    const topics = Array.from({ length: 30 }, (_, i) => ({
      clusterId: "c",
      topicName: `t${String(i).padStart(2, "0")}`,
      isInternal: false,
      replicationFactor: 3,
      partitionsCount: 1,
      activity: activity(i),
    }));
    const lines = renderTop(snapshot({ topics }), { intervalSeconds: 2, maxLines: 12 });
    expect(lines).toHaveLength(12);
    expect(lines[4]).toMatch(/^t29 /);
    expect(lines.at(-1)).toMatch(/^… and \d+ more topics$/);
  });

  it("shows a processor's latest error on one line, cut to its column", () => {
    const partition = (at: number, message: string) => ({
      topicName: "orders",
      partitionId: at,
      checkpoint: 0,
      highWatermark: 10,
      lag: 10,
      pending: 0,
      blockedKeys: [],
      lastError: { message, offset: 3, at },
      owner: null,
      processed: 7,
      deadLettered: 2,
      filtered: 0,
    });
    const lines = renderTop(
      snapshot({
        processors: [
          {
            name: "a-processor-name-longer-than-its-column",
            uid: "u",
            state: "RUNNING",
            definition: { name: "p", topics: ["orders"], handler: { type: "module", module: "m" } },
            createdAt: 0,
            updatedAt: 0,
            lag: 20,
            partitions: [
              partition(1, "older"),
              partition(2, "webhook answered 500:\nInternal Server Error at the far end"),
            ],
          },
        ],
      }),
      { intervalSeconds: 2 },
    );
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(TOP_WIDTH);
    // The newest error of any partition, its line breaks folded; records summed over partitions.
    expect(lines.at(-1)).toBe(
      "a-processor-name-longer… RUNNING           20           14        4 webhook answered 500: Internal …",
    );
  });

  it("says when a refresh failed", () => {
    const lines = renderTop(snapshot({ problem: "connect ECONNREFUSED 127.0.0.1:8080" }), {
      intervalSeconds: 2,
    });
    expect(lines.at(-1)).toBe("refresh failed: connect ECONNREFUSED 127.0.0.1:8080");
  });

  it("formats rates, bytes and milliseconds for a narrow column", () => {
    expect([0, 0.25, 99.94, 1234.5, 123_456, 12_345_678].map(formatRate)).toEqual([
      "-",
      "0.3",
      "99.9",
      "1,235",
      "123k",
      "12.3M",
    ]);
    expect([0, 512, 2048, 5.5 * 1024 * 1024, 3e12].map(formatBytesRate)).toEqual([
      "-",
      "512 B",
      "2.0 KiB",
      "5.5 MiB",
      "2794 GiB",
    ]);
    expect([null, 0.8, 42.4, 12_345].map(formatMs)).toEqual(["-", "0.8 ms", "42 ms", "12.3 s"]);
  });
});
