import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConsumedRecord, dataText, SluiceClient, SluiceConnectionError } from "@sluice/client";
import { MemoryMetadataStore } from "@sluice/storage/memory";
import type { ReclaimReport } from "@sluice/storage/packed";
import { parsePrometheusText, sampleValue } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadClusterId } from "./cluster-id.js";
import { type RunningServer, startServer } from "./server.js";

let dataDir: string;
const running: RunningServer[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-server-"));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await rm(dataDir, { recursive: true, force: true });
});

async function start(): Promise<RunningServer> {
  const server = await startServer({ dataDir, port: 0, logger: { error: () => undefined } });
  running.push(server);
  return server;
}

/** Resolves when the server has received `count` more requests. */
function requestsArrive(server: RunningServer, count = 1): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const onRequest = () => {
      if (++seen < count) return;
      server.httpServer.off("request", onRequest);
      resolve();
    };
    server.httpServer.on("request", onRequest);
  });
}

/**
 * Starts `wait` (a request that waits on the server), closes the server once the request has
 * arrived, and gives what the wait settled to: how many records it was answered with, or its error.
 */
async function settledAtClose(
  server: RunningServer,
  wait: () => Promise<{ records: readonly unknown[] }>,
): Promise<{ records: number } | { error: unknown }> {
  const arrived = requestsArrive(server);
  const settled = wait().then(
    (result) => ({ records: result.records.length }),
    (error: unknown) => ({ error }),
  );
  await arrived;
  await server.close();
  return settled;
}

describe("loadClusterId", () => {
  it("creates one id and then always returns it", async () => {
    const metadata = new MemoryMetadataStore();
    const [a, b] = await Promise.all([loadClusterId(metadata), loadClusterId(metadata)]);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(b).toBe(a);
    expect(await loadClusterId(metadata)).toBe(a);
  });
});

describe("startServer", () => {
  it("serves the API on a free port and keeps data and cluster id across restarts", async () => {
    const first = await start();
    expect(first.url).toBe(`http://127.0.0.1:${first.port}`);
    expect(first.port).toBeGreaterThan(0);
    const client = new SluiceClient({ url: first.url });
    expect(await client.clusterId()).toBe(first.clusterId);
    await client.createTopic("kept", { partitions: 2 });
    const outcomes = await client.produceMany("kept", [
      { partitionId: 0, value: "a" },
      { partitionId: 1, value: "b" },
    ]);
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    await first.close();
    await expect(client.listTopics()).rejects.toBeInstanceOf(SluiceConnectionError);

    const second = await start();
    expect(second.clusterId).toBe(first.clusterId);
    const again = new SluiceClient({ url: second.url });
    const pages = await Promise.all([0, 1].map((p) => again.readPartition("kept", p)));
    expect(pages.map((page) => page.records.map((record) => dataText(record.value)))).toEqual([["a"], ["b"]]);
  });

  it("reports a port in use clearly", async () => {
    const first = await start();
    await expect(startServer({ dataDir, port: first.port })).rejects.toThrow(/already in use/);
  });
});

describe("close", () => {
  it("lets a produce in flight finish and be acknowledged, and it is kept", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    async function* records() {
      yield { value: "first" };
      await gate; // the request is in flight: headers sent, body unfinished
      yield { value: "second" };
    }
    const arrived = requestsArrive(server);
    const produced = client.produceMany("t", records());
    await arrived;
    const closed = server.close();
    openGate();
    const outcomes = await produced;
    expect(outcomes.map((outcome) => outcome.ok && outcome.report.offset)).toEqual([0, 1]);
    await closed;

    const restarted = await start();
    const page = await new SluiceClient({ url: restarted.url }).readPartition("t", 0);
    expect(page.records.map((record) => dataText(record.value))).toEqual(["first", "second"]);
  });

  it("ends a waiting long-poll promptly instead of waiting for its timeout", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    const poll = settledAtClose(server, () => client.readPartition("t", 0, { offset: 0, timeoutMs: 30_000 }));
    // Answered (no records), not cut after the grace period, and never held for 30 s.
    expect(await poll).toEqual({ records: 0 });
  }, 15_000);

  it("ends a waiting queue acquire promptly with an answer, as it ends a long-poll", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    await client.joinShareGroup("g", { memberId: "m", topics: ["t"] });
    const acquire = settledAtClose(server, () => client.acquireRecords("g", "m", { timeoutMs: 30_000 }));
    expect(await acquire).toEqual({ records: 0 });
  }, 15_000);

  it("idle polling counts requests but not long-polls, which wait by design", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    await client.createTopic("other");
    expect(server.idlePoller.requestsInFlight).toBe(0);
    const arrived = requestsArrive(server);
    const poll = client.readPartition("t", 0, { offset: 0, timeoutMs: 30_000 });
    await arrived;
    // A produce elsewhere while the long-poll waits: once it is answered nothing counts as in
    // flight, so the server may poll.
    await client.produce("other", { value: "y" });
    expect(server.idlePoller.requestsInFlight).toBe(0);
    await client.produce("t", { value: "x" });
    expect((await poll).records.map((record) => dataText(record.value))).toEqual(["x"]);
    expect(server.idlePoller.requestsInFlight).toBe(0);
  });

  it("says how long the app took on every answer (Server-Timing), set on Node's response", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    const base = `${server.url}/v3/clusters/${server.clusterId}/topics/t`;
    const answers = await Promise.all([
      fetch(`${base}/records`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value: { type: "STRING", data: "x" } }),
      }),
      fetch(`${base}/partitions/0/records?offset=0`),
      fetch(`${base}/nowhere`),
    ]);
    for (const answer of answers) {
      expect(answer.headers.get("server-timing"), `status ${answer.status}`).toMatch(/^app;dur=\d+\.\d{2}$/);
      await answer.arrayBuffer();
    }
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 404]);
  });

  it("refuses an idle-poll window outside 0 to 10 ms", async () => {
    await expect(startServer({ dataDir, port: 0, idlePollUs: 10_001 })).rejects.toThrow(
      /idlePollUs must be 0 \(off\) to 10000 microseconds, got 10001/,
    );
    await expect(startServer({ dataDir, port: 0, idlePollUs: -1 })).rejects.toThrow(/got -1/);
  });

  it("ends event streams, so a tail stops", async () => {
    const server = await start();
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("t");
    await client.produce("t", { value: "x" });
    const seen: ConsumedRecord[] = [];
    let closing: Promise<void> | undefined;
    const tail = (async () => {
      for await (const record of client.tailPartition("t", 0, { offset: 0, reconnect: false })) {
        seen.push(record);
        closing ??= server.close();
      }
    })();
    await tail;
    await closing;
    expect(seen.map((record) => dataText(record.value))).toEqual(["x"]);
  }, 15_000);

  it("is idempotent", async () => {
    const server = await start();
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(server.httpServer.listening).toBe(false);
  });
});

describe("maintenance", () => {
  it("runs on its schedule when asked: retention moves the log start past expired records", async () => {
    const reports: number[] = [];
    const reclaims: ReclaimReport[] = [];
    const server = await startServer({
      dataDir,
      port: 0,
      logger: { error: () => undefined },
      maintenance: {
        intervalMs: 3_600_000,
        onReport: (report) => reports.push(report.retention.entriesDeleted),
        onReclaim: (report) => reclaims.push(report),
      },
    });
    running.push(server);
    const client = new SluiceClient({ url: server.url });
    await client.createTopic("old", { configs: { "retention.ms": "86400000" } });
    await client.produce("old", { partitionId: 0, value: "from 2020", timestamp: Date.UTC(2020, 0, 1) });
    await client.produce("old", { partitionId: 0, value: "now" });
    await server.maintenance!.runNow();
    expect(reports).toEqual([1]);
    // Each run ends by reclaiming the packed store's mostly dead segments (none here: too little data).
    expect(reclaims).toEqual([{ segments: 0, objects: 0, bytesCopied: 0, bytesFreed: 0 }]);
    const page = await client.readPartition("old", 0, { offset: "earliest" });
    expect(page.logStartOffset).toBe(1);
    expect(page.records.map((record) => dataText(record.value))).toEqual(["now"]);
    // The run is in GET /metrics: each partition job once, the expired record removed.
    const samples = parsePrometheusText(await (await fetch(`${server.url}/metrics`)).text());
    for (const job of ["retention", "compaction", "time-index", "gc"])
      expect(sampleValue(samples, "sluice_maintenance_runs_total", { job, result: "ok" })).toBe(1);
    expect(
      sampleValue(samples, "sluice_maintenance_records_removed_total", { job: "retention", topic: "old" }),
    ).toBe(1);
    expect(sampleValue(samples, "sluice_maintenance_run_duration_seconds_count", { job: "retention" })).toBe(
      1,
    );
  });

  it("is off unless asked", async () => {
    const server = await start();
    expect(server.maintenance).toBeUndefined();
  });
});
