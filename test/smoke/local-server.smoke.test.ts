import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type ServerProcess, spawnCli, startServerProcess, within } from "./processes.js";

/**
 * The local server as a user runs it: its own process on a free port over a temporary data
 * directory, driven over real HTTP with fetch and with the `sluice` CLI, stopped with SIGTERM in
 * the middle of a produce, and restarted on the same directory. Every wait is on an event (output,
 * exit) and bounded.
 */

let dataDir: string;
let server: ServerProcess;
const processes: ServerProcess[] = [];

async function startServer(): Promise<ServerProcess> {
  const started = await startServerProcess(dataDir);
  processes.push(started);
  return started;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}/v3/clusters/${server.clusterId}${path}`, init);
}

async function json(path: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  const response = await api(path, init);
  const text = await response.text();
  expect(response.ok, `${init.method ?? "GET"} ${path} → ${response.status} ${text}`).toBe(true);
  return JSON.parse(text) as Record<string, unknown>;
}

interface WireRecord {
  offset: number;
  key: { type: string; data: string } | null;
  value: { type: string; data: string } | null;
}

/** Every record of a partition, as STRING data, read page by page over HTTP. */
async function readAll(topic: string, partition: number): Promise<WireRecord[]> {
  const records: WireRecord[] = [];
  let offset = 0;
  for (;;) {
    const page = await json(
      `/topics/${topic}/partitions/${partition}/records?offset=${offset}&key_type=STRING&value_type=STRING&max_records=10000`,
    );
    records.push(...(page.records as WireRecord[]));
    offset = page.next_offset as number;
    if (offset >= (page.high_watermark as number)) return records;
  }
}

async function stopServer(target: ServerProcess): Promise<void> {
  target.child.kill("SIGTERM");
  const exit = await within(target.exited, 20_000, "the server to exit after SIGTERM");
  expect(exit).toEqual({ code: 0, signal: null });
  expect(target.stdout.text).toMatch(/\nSIGTERM: stopping[\s\S]*\nstopped\n$/);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-smoke-"));
  server = await startServer();
});

afterAll(async () => {
  for (const started of processes) {
    if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill("SIGKILL");
  }
  await rm(dataDir, { recursive: true, force: true });
});

describe("the local server", () => {
  it("starts on a free port over the given data directory with a cluster id", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.dataDir).toBe(dataDir);
    expect(server.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const clusters = (await (await fetch(`${server.url}/v3/clusters`)).json()) as {
      data: Array<{ cluster_id: string }>;
    };
    expect(clusters.data.map((cluster) => cluster.cluster_id)).toEqual([server.clusterId]);
  });

  it("creates a topic, produces and consumes over HTTP with fetch", async () => {
    const topic = await json("/topics", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic_name: "smoke", partitions_count: 3 }),
    });
    expect(topic).toMatchObject({ topic_name: "smoke", partitions_count: 3 });

    // Streaming mode: three records in one request, one delivery report per line.
    const body = ["a", "b", "c"]
      .map((name) =>
        JSON.stringify({
          partition_id: 1,
          key: { type: "STRING", data: name },
          value: { type: "STRING", data: `value-${name}` },
        }),
      )
      .join("\n");
    const response = await api("/topics/smoke/records", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(response.status).toBe(200);
    const reports = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { error_code: number; partition_id: number; offset: number });
    expect(reports.map((report) => [report.error_code, report.partition_id, report.offset])).toEqual([
      [200, 1, 0],
      [200, 1, 1],
      [200, 1, 2],
    ]);

    const records = await readAll("smoke", 1);
    expect(records.map((record) => [record.offset, record.key?.data, record.value?.data])).toEqual([
      [0, "a", "value-a"],
      [1, "b", "value-b"],
      [2, "c", "value-c"],
    ]);

    // A server-sent event stream, bounded by timeout_ms, carries the same records.
    const events = await api("/topics/smoke/partitions/1/records?offset=1&value_type=STRING&timeout_ms=100", {
      headers: { accept: "text/event-stream" },
    });
    expect(events.headers.get("content-type")).toContain("text/event-stream");
    const stream = await events.text();
    expect([...stream.matchAll(/^id: (\d+)$/gm)].map((match) => match[1])).toEqual(["1", "2"]);
  });

  it("creates topics, produces and consumes with the CLI", async () => {
    const created = await runCli(["topic", "create", "cli-topic", "-p", "2"], server.url);
    expect(created).toMatchObject({
      code: 0,
      stdout: "created topic cli-topic (2 partitions)\n",
      stderr: "",
    });

    const lines = Array.from({ length: 100 }, (_, i) => `key-${i}:value-${i}`);
    const produced = await runCli(
      ["produce", "cli-topic", "-k", ":", "-H", "origin=smoke"],
      server.url,
      `${lines.join("\n")}\n`,
    );
    expect(produced.code, produced.stderr).toBe(0);
    expect(produced.stdout).toMatch(/^produced 100 records to cli-topic \(partitions 0, 1\) in [\d.]+ s/);

    const consumed = await runCli(["consume", "cli-topic", "-f", "%k=%v %h\\n"], server.url);
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stdout.trim().split("\n").sort()).toEqual(
      lines.map((line) => `${line.replace(":", "=")} origin=smoke`).sort(),
    );

    const described = await runCli(["topic", "describe", "cli-topic", "--format", "json"], server.url);
    const offsets = JSON.parse(described.stdout).partition_offsets as Array<{ latest_offset: number }>;
    expect(offsets.reduce((sum, partition) => sum + partition.latest_offset, 0)).toBe(100);

    const list = await runCli(["topic", "list"], server.url);
    expect(list.stdout).toBe("NAME       PARTITIONS\ncli-topic  2\nsmoke      3\n");

    const missing = await runCli(["topic", "describe", "nope"], server.url);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^sluice: .*nope.*\(HTTP 404\)\n$/);
  });

  it("stops on SIGTERM during a produce, and keeps everything acknowledged after a restart", async () => {
    expect((await runCli(["topic", "create", "load", "-p", "4"], server.url)).code).toBe(0);
    expect((await runCli(["topic", "create", "held"], server.url)).code).toBe(0);

    // 1. An endless produce with the CLI: it always has a request in flight or about to be.
    function* endless(): Generator<string> {
      for (let line = 1; ; line += 1_000) {
        yield Array.from({ length: 1_000 }, (_, i) => `k${(line + i) % 97}\tload-${line + i}\n`).join("");
      }
    }
    const producer = spawnCli(
      ["produce", "load", "-k", "\\t", "--format", "json", "--retries", "1"],
      server.url,
      endless(),
    );

    // 2. A produce whose body is held open: the server has it in flight (it logged its arrival)
    // until we finish the body, which we do only after the server has begun to stop.
    let finishBody: () => void = () => undefined;
    const bodyFinished = new Promise<void>((resolve) => {
      finishBody = resolve;
    });
    const encoder = new TextEncoder();
    const record = (value: string) =>
      encoder.encode(`${JSON.stringify({ value: { type: "STRING", data: value } })}\n`);
    const held = fetch(`${server.url}/v3/clusters/${server.clusterId}/topics/held/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(record("held-1"));
          await bodyFinished;
          controller.enqueue(record("held-2"));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);

    // 3. A long-poll that would wait 30 s: shutdown must end it, not wait for it.
    const longPoll = fetch(
      `${server.url}/v3/clusters/${server.clusterId}/topics/smoke/partitions/0/records?offset=0&timeout_ms=30000`,
    ).then(
      (response) => response.status,
      () => "cut",
    );

    await within(
      server.stdout.match(/-> POST \/v3\/clusters\/\S+\/topics\/held\/records/, server.exited),
      20_000,
      "the held produce to arrive",
    );
    await within(
      server.stdout.match(/-> GET \/v3\/clusters\/\S+\/topics\/smoke\/partitions\/0\/records/, server.exited),
      20_000,
      "the long-poll to arrive",
    );
    await within(
      producer.stdout.match(/"line":3000,/, producer.exited),
      60_000,
      "3,000 acknowledged records",
    );

    server.child.kill("SIGTERM");
    await within(
      server.stdout.match(/SIGTERM: stopping/, server.exited),
      20_000,
      "the server to begin stopping",
    );
    finishBody();
    const heldResponse = await within(held, 20_000, "the held produce to be answered");
    expect(heldResponse.status).toBe(200);
    const heldReports = (await heldResponse.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(heldReports.map((report) => [report.error_code, report.offset])).toEqual([
      [200, 0],
      [200, 1],
    ]);
    expect(await within(longPoll, 5_000, "the long-poll to end")).toSatisfy(
      (status) => status === 200 || status === "cut",
    );
    const exit = await within(server.exited, 20_000, "the server to exit after SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.stdout.text).toMatch(/\nstopped\n$/);

    const result = await within(producer.result, 30_000, "the producing CLI to exit");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^sluice: .*\(\d+ of \d+ records sent were acknowledged\)\n$/);
    const acknowledged = new Map<string, string>();
    for (const line of result.stdout.trim().split("\n")) {
      const report = JSON.parse(line) as {
        line: number;
        partition: number;
        offset: number;
        error_code?: number;
      };
      expect(report.error_code).toBeUndefined();
      acknowledged.set(`${report.partition}/${report.offset}`, `load-${report.line}`);
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(3_000);

    // Restart on the same data directory.
    const clusterId = server.clusterId;
    server = await startServer();
    expect(server.clusterId).toBe(clusterId);

    // Everything acknowledged is there, and nothing else: a graceful stop answers every request
    // it accepted, so no record was committed without its report reaching the client.
    const stored = new Map<string, string>();
    for (const partition of [0, 1, 2, 3]) {
      for (const entry of await readAll("load", partition)) {
        stored.set(`${partition}/${entry.offset}`, entry.value?.data ?? "");
      }
    }
    expect(stored).toEqual(acknowledged);
    expect((await readAll("held", 0)).map((entry) => entry.value?.data)).toEqual(["held-1", "held-2"]);
  });

  it("reads the same data back after the restart, with fetch and with the CLI", async () => {
    const records = await readAll("smoke", 1);
    expect(records.map((record) => record.value?.data)).toEqual(["value-a", "value-b", "value-c"]);
    const consumed = await runCli(["consume", "cli-topic", "-f", "%k=%v\\n"], server.url);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim().split("\n")).toHaveLength(100);
    const json = await runCli(["consume", "smoke", "-p", "1", "-o", "-1", "--format", "json"], server.url);
    expect(JSON.parse(json.stdout)).toMatchObject({
      topic: "smoke",
      partition: 1,
      offset: 2,
      key: "c",
      value: "value-c",
    });
    await stopServer(server);
  });
});
