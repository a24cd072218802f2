import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SluiceClient, SluiceConnectionError } from "@sluice/client";
import {
  checkQueueHistory,
  type QueueAcknowledgement,
  type QueueDeadLetter,
  type QueueDelivery,
  type QueueProduced,
} from "@sluice/testing";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, type ServerProcess, startServerProcess, within } from "./processes.js";

/**
 * Several local servers on one data directory stand for several Lambdas, and queue workers run as
 * processes of their own (test/smoke/queue-worker.ts), all members of one share group. Workers are
 * killed with SIGKILL at seeded random points — mid-record, holding locks, with acknowledgements in
 * flight — and started again as new members; servers are killed and started again too. Some
 * records are poison (rejected: dead-lettered), some flaky (released once). A history checker then
 * asks of every produced record: accepted exactly once or dead-lettered exactly once, never
 * delivered after its acceptance was confirmed, never held by two members at once, delivery
 * counts rising and within the limit.
 */
const SEED = Number(process.env.SLUICE_CHAOS_SEED ?? 20261203);
const SERVERS = 3;
const WORKERS = 4;
const PARTITIONS = 4;
const BATCHES = 30;
const RECORDS_PER_BATCH = 50;
const WORKER_KILLS = 8;
const SERVER_KILLS = 4;
const LOCK_MS = 2_000;
const DELIVERY_LIMIT = 3;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Worker {
  child: ChildProcess;
  member: string;
  exited: Promise<void>;
  /** It has been handed records: killing it now leaves records locked to it. */
  handling: boolean;
}

let dataDir: string | undefined;
const servers: (ServerProcess | undefined)[] = [];
const workers: (Worker | undefined)[] = [];

afterAll(async () => {
  for (const process of [
    ...servers.map((server) => server?.child),
    ...workers.map((worker) => worker?.child),
  ]) {
    if (process && process.exitCode === null && process.signalCode === null) process.kill("SIGKILL");
  }
  await Promise.all(servers.map((server) => server?.exited));
  await Promise.all(workers.map((worker) => worker?.exited));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("queues across server and worker processes killed at random", () => {
  it("accept every record exactly once or dead-letter it, never hand one to two members at once", async () => {
    const rand = random(SEED);
    dataDir = await mkdtemp(join(tmpdir(), "sluice-queues-mp-"));
    for (let index = 0; index < SERVERS; index++) servers.push(await startServerProcess(dataDir));
    const ports = servers.map((server) => Number(new URL(server!.url).port));
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);
    const balanced = (pick: () => number) => async (input: string, init: RequestInit) => {
      const path = input.slice(urls[0]!.length);
      const first = Math.floor(pick() * SERVERS);
      let lastError: unknown;
      for (let attempt = 0; attempt < SERVERS; attempt++) {
        try {
          return await fetch(urls[(first + attempt) % SERVERS]! + path, init);
        } catch (error) {
          lastError = error;
          if (init.body && typeof init.body !== "string") throw error;
        }
      }
      throw lastError;
    };
    const admin = new SluiceClient({ url: urls[0]!, fetch: balanced(random(SEED + 1)) });
    await admin.createTopic("jobs", { partitions: PARTITIONS });
    await admin.createTopic("jobs-dlq", { partitions: 1 });

    const deliveries: QueueDelivery[] = [];
    const acknowledgements: QueueAcknowledgement[] = [];
    /** ACCEPTs, RELEASEs and REJECTs asked for and not answered yet, by member and record. */
    const asked = new Map<string, QueueAcknowledgement>();
    let incarnations = 0;
    const startWorker = (index: number): Worker => {
      const member = `w${index}.${incarnations++}`;
      const worker = { member, handling: false } as Worker;
      const child = spawn(process.execPath, ["--import", "tsx", "test/smoke/queue-worker.ts"], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          SLUICE_URLS: urls.join(","),
          WORKER_MEMBER: member,
          WORKER_LOCK_MS: String(LOCK_MS),
          WORKER_DELIVERY_LIMIT: String(DELIVERY_LIMIT),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
      });
      const lines = createInterface({ input: child.stdout! });
      lines.on("line", (line) => {
        const event = JSON.parse(line);
        if (event.event === "delivered") {
          deliveries.push(event);
          worker.handling = true;
          return;
        }
        const id = `${event.member}|${event.partition}:${event.offset}|${event.type}`;
        if (event.outcome === "asked") asked.set(id, { ...event, outcome: "unknown" });
        else {
          const askedAtMs = asked.get(id)?.atMs;
          asked.delete(id);
          acknowledgements.push(askedAtMs === undefined ? event : { ...event, askedAtMs });
        }
      });
      const exited = new Promise<void>((resolve) =>
        child.once("exit", (code, signal) => {
          // A worker that dies on its own (not killed by the test) is a failure worth seeing.
          if (signal === null && code !== 0)
            failures.push(new Error(`worker ${member} exited ${code}:\n${stderr}`));
          resolve();
        }),
      );
      worker.child = child;
      worker.exited = exited;
      return worker;
    };
    const failures: Error[] = [];
    for (let index = 0; index < WORKERS; index++) workers.push(startWorker(index));

    // The producer: idempotency keys make a retry after a killed server write nothing twice.
    const produced: QueueProduced[] = [];
    const values = new Map<string, string>();
    const producer = (async () => {
      const client = new SluiceClient({ url: urls[0]!, fetch: balanced(random(SEED + 2)) });
      for (let batch = 0; batch < BATCHES; batch++) {
        await delay(100 + rand() * 200);
        const records = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => {
          const n = batch * RECORDS_PER_BATCH + i;
          const kind = n % 37 === 0 ? "poison" : n % 11 === 0 ? "flaky" : "job";
          return { partitionId: n % PARTITIONS, value: `${kind}-${n}` };
        });
        for (let attempt = 0; ; attempt++) {
          try {
            const outcomes = await client.produceMany("jobs", records, { idempotencyKey: `batch-${batch}` });
            for (const [index, outcome] of outcomes.entries()) {
              if (!outcome.ok) throw new Error(`produce failed: ${outcome.message}`);
              produced.push({ partition: outcome.report.partitionId, offset: outcome.report.offset });
              values.set(`${outcome.report.partitionId}:${outcome.report.offset}`, records[index]!.value);
            }
            break;
          } catch (error) {
            const status = (error as { status?: number }).status;
            if (
              attempt >= 20 ||
              !(error instanceof SluiceConnectionError || status === 503 || status === 409)
            )
              throw error;
            await delay(100);
          }
        }
      }
    })();

    // Faults: SIGKILL a worker (mid-record, holding locks) and start a new one; SIGKILL a server
    // and start it again on its port.
    let workerKills = 0;
    let serverKills = 0;
    const killingWorkers = (async () => {
      for (; workerKills < WORKER_KILLS; workerKills++) {
        await delay(500 + rand() * 1_000);
        // A worker that has started handling records (a new process takes a moment to start).
        let victim = Math.floor(rand() * WORKERS);
        for (let tries = 0; tries < 50 && !workers[victim]!.handling; tries++) {
          await delay(100);
          victim = Math.floor(rand() * WORKERS);
        }
        const worker = workers[victim]!;
        worker.child.kill("SIGKILL");
        await worker.exited;
        await delay(100 + rand() * 300);
        workers[victim] = startWorker(victim);
      }
    })();
    const killingServers = (async () => {
      for (; serverKills < SERVER_KILLS; serverKills++) {
        await delay(1_000 + rand() * 1_500);
        const victim = Math.floor(rand() * SERVERS);
        const server = servers[victim]!;
        server.child.kill("SIGKILL");
        await server.exited;
        await delay(200 + rand() * 400);
        servers[victim] = await startServerProcess(dataDir!, { port: ports[victim]! });
      }
    })();
    await within(
      Promise.all([producer, killingWorkers, killingServers]),
      120_000,
      "the producer and the faults",
    );

    // Drained: every window closed at its partition's end, no dead letter due.
    let lastSeen: unknown;
    await within(
      (async () => {
        for (;;) {
          const partitions = await admin.getSharePartitions("workers").catch(() => undefined);
          lastSeen = partitions;
          if (
            partitions?.length === PARTITIONS &&
            partitions.every(
              (partition) =>
                partition.initialized &&
                partition.startOffset === partition.highWatermark &&
                partition.deadLettersDue === 0,
            ) &&
            partitions.reduce((sum, partition) => sum + partition.highWatermark, 0) === produced.length
          )
            return;
          await delay(200);
        }
      })(),
      60_000,
      "the share group to drain",
    ).catch((error: unknown) => {
      // Where the windows stand says which record (or dead letter) held the drain up.
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}: ${JSON.stringify(lastSeen)}`,
      );
    });
    for (const worker of workers) worker!.child.kill("SIGTERM");
    await within(Promise.all(workers.map((worker) => worker!.exited)), 30_000, "the workers to leave");

    const dead = await admin.readPartition("jobs-dlq", 0, {
      offset: 0,
      maxRecords: 10_000,
      valueType: "STRING",
    });
    const header = (record: (typeof dead.records)[number], name: string) =>
      new TextDecoder().decode(
        record.headers.find((candidate) => candidate.name === name)?.value ?? new Uint8Array(),
      );
    const deadLetters: QueueDeadLetter[] = dead.records.map((record) => ({
      partition: Number(header(record, "sluice.dlq.partition")),
      offset: Number(header(record, "sluice.dlq.offset")),
      deliveryCount: Number(header(record, "sluice.dlq.delivery.count")),
      reason: header(record, "sluice.dlq.reason"),
    }));
    // An acknowledgement asked for by a worker that was killed before the answer: unknown outcome.
    acknowledgements.push(...asked.values());
    const result = checkQueueHistory({
      produced,
      deliveries,
      acknowledgements,
      deadLetters,
      deliveryCountLimit: DELIVERY_LIMIT,
    });
    const rejected = deadLetters.filter((letter) => letter.reason === "rejected").length;
    const refusals = acknowledgements.filter((ack) => ack.outcome === "refused");
    const refusalReasons = [
      ...new Set(
        refusals.map((ack) => String((ack as { reason?: unknown }).reason ?? "").replace(/\d+/g, "N")),
      ),
    ];
    process.stdout.write(
      `queues multi-process: seed ${SEED}, ${workerKills} workers and ${serverKills} servers killed, ${produced.length} produced, ${deliveries.length} deliveries (${result.redeliveries} redeliveries, ${result.unseenDeliveries} more locked to workers that died before handing them out), ${deadLetters.length} dead letters (${rejected} rejected), ${result.unconfirmed} accepted without a confirmed answer, ${refusals.length} acknowledgements refused${refusals.length > 0 ? ` (${refusalReasons.join("; ")})` : ""}\n`,
    );
    expect(failures).toEqual([]);
    expect(produced).toHaveLength(BATCHES * RECORDS_PER_BATCH);
    // Said in full when it fails: every delivery and acknowledgement (with a refusal's reason) of
    // each record lost or held twice.
    const story = (record: { partition: number; offset: number }) =>
      [
        ...deliveries.filter((d) => d.partition === record.partition && d.offset === record.offset),
        ...acknowledgements.filter((a) => a.partition === record.partition && a.offset === record.offset),
      ].sort((a, b) => a.atMs - b.atMs);
    expect(result.lost.map(story), "records lost, with their histories").toEqual([]);
    expect(result.acceptedTwice).toEqual([]);
    expect(result.acceptedAndDeadLettered).toEqual([]);
    expect(result.deadLetteredTwice).toEqual([]);
    expect(result.deliveredAfterAcceptance).toEqual([]);
    expect(
      result.heldTwice.map(({ earlier }) => story(earlier)),
      "records held by two members at once, with their histories",
    ).toEqual([]);
    expect(result.badDeliveryCounts).toEqual([]);
    // Every poison record is in the dead-letter topic, and only poison was rejected into it.
    const key = (record: { partition: number; offset: number }) => `${record.partition}:${record.offset}`;
    const lettered = new Set(deadLetters.map(key));
    const poison = produced.filter((record) => values.get(key(record))?.startsWith("poison"));
    expect(poison.length).toBeGreaterThan(0);
    expect(poison.filter((record) => !lettered.has(key(record)))).toEqual([]);
    expect(
      deadLetters.filter(
        (letter) => letter.reason === "rejected" && !values.get(key(letter))?.startsWith("poison"),
      ),
    ).toEqual([]);
    for (const server of servers) expect(server!.stderr.text).not.toMatch(/internal error/);
  }, 240_000);
});
