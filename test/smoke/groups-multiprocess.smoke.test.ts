import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GroupConsumer, SluiceClient, SluiceConnectionError } from "@sluice/client";
import { type Commit, checkHistory, type Delivery, type Produced } from "@sluice/testing";
import { afterAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServerProcess, within } from "./processes.js";

/**
 * Several local servers on one data directory stand for several Lambdas: SQLite and the
 * filesystem store are safe across processes, and no server keeps group state of its own. Three
 * group members send every request through a balancer that picks any live server, while servers
 * are killed with SIGKILL at seeded random points and started again. A history checker then looks
 * for lost records, redeliveries after a commit, gaps within an assignment and starts past the
 * committed offset.
 */
const SEED = Number(process.env.SLUICE_CHAOS_SEED ?? 20261202);
const SERVERS = 3;
const PARTITIONS = 6;
const BATCHES = 30;
const RECORDS_PER_BATCH = 100;
const KILLS = 6;
const SESSION_MS = 3_000;

/** mulberry32: the fault schedule replays from its seed. */
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

let dataDir: string | undefined;
const servers: (ServerProcess | undefined)[] = [];

afterAll(async () => {
  for (const server of servers) {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("consumer groups across server processes killed at random", () => {
  it("lose nothing, never redeliver committed records and keep every assignment in order", async () => {
    const rand = random(SEED);
    dataDir = await mkdtemp(join(tmpdir(), "sluice-groups-mp-"));
    for (let index = 0; index < SERVERS; index++) servers.push(await startServerProcess(dataDir));
    const ports = servers.map((server) => Number(new URL(server!.url).port));
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);

    // A balancer in front of the servers, as a Function URL is in front of Lambdas: each
    // request goes to a random server, and to the next one when that one refuses connections.
    const cutOff = new Set<number>();
    const balanced = (pick: () => number, member?: number) => async (input: string, init: RequestInit) => {
      // A member cut off from every server, as a network partition looks to it.
      if (member !== undefined && cutOff.has(member))
        throw new TypeError("fetch failed (cut off by the test)");
      const path = input.slice(urls[0]!.length);
      const first = Math.floor(pick() * SERVERS);
      let lastError: unknown;
      for (let attempt = 0; attempt < SERVERS; attempt++) {
        const url = urls[(first + attempt) % SERVERS]! + path;
        try {
          return await fetch(url, init);
        } catch (error) {
          lastError = error;
          if (init.body && typeof init.body !== "string") throw error; // a stream cannot be sent twice
        }
      }
      throw lastError;
    };
    const clientFor = (seed: number, member?: number) =>
      new SluiceClient({ url: urls[0]!, fetch: balanced(random(seed), member) });
    const admin = clientFor(SEED + 1);
    await admin.createTopic("jobs", { partitions: PARTITIONS });

    const started = performance.now();
    const now = () => performance.now() - started;
    const produced: Produced[] = [];
    const deliveries: Delivery[] = [];
    const commits: Commit[] = [];

    // Members: each handles a batch (records it in the history), then commits it.
    const consumers: GroupConsumer[] = [];
    const loops = Array.from({ length: 3 }, async (_, index) => {
      const client = clientFor(SEED + 10 + index, index);
      const assignments = new Map<number, { id: string; committedAtStart: number }>();
      let incarnation = 0;
      const consumer: GroupConsumer = client.groupConsumer({
        groupId: "workers",
        topics: ["jobs"],
        autoCommit: false,
        autoOffsetReset: "earliest",
        sessionTimeoutMs: SESSION_MS,
        fetchWaitMs: 200,
        valueType: "STRING",
        onAssigned: async (partitions) => {
          incarnation++;
          const committed = await client.getGroupOffsets("workers").catch(() => []);
          for (const tp of partitions) {
            const found = committed.find((offset) => offset.partitionId === tp.partitionId);
            assignments.set(tp.partitionId, {
              id: `m${index}.${incarnation}`,
              committedAtStart: found?.offset ?? 0,
            });
          }
        },
        onRevoked: async (partitions) => {
          for (const tp of partitions) assignments.delete(tp.partitionId);
        },
        onLost: async (partitions) => {
          for (const tp of partitions) assignments.delete(tp.partitionId);
        },
      });
      consumers.push(consumer);
      for await (const batch of consumer) {
        const assignment = assignments.get(batch.partitionId);
        for (const record of batch.records) {
          deliveries.push({
            assignment: assignment?.id ?? `m${index}.unannounced`,
            partition: record.partitionId,
            offset: record.offset,
            value: String(record.value?.data),
            atMs: now(),
            ...(assignment &&
            record === batch.records[0] &&
            !deliveries.some((d) => d.assignment === assignment.id && d.partition === batch.partitionId)
              ? { committedAtStart: assignment.committedAtStart }
              : {}),
          });
        }
        const last = batch.records.at(-1);
        if (!last) continue;
        try {
          await consumer.commit([
            { topicName: "jobs", partitionId: batch.partitionId, offset: last.offset + 1 },
          ]);
          commits.push({ partition: batch.partitionId, offset: last.offset + 1, ackedAtMs: now() });
        } catch {
          // Fenced (the partition moved while the server was away) or the server died mid-commit:
          // the next owner starts from the last acknowledged commit.
        }
      }
    });

    // Producer: idempotency keys make a retry after a killed server write nothing twice.
    const producer = (async () => {
      const client = clientFor(SEED + 2);
      for (let batch = 0; batch < BATCHES; batch++) {
        // Spread over the fault schedule, so records keep arriving while servers die.
        await delay(150 + rand() * 150);
        const records = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({
          partitionId: (batch + i) % PARTITIONS,
          value: `r-${batch}-${i}`,
        }));
        for (let attempt = 0; ; attempt++) {
          try {
            const outcomes = await client.produceMany("jobs", records, { idempotencyKey: `batch-${batch}` });
            outcomes.forEach((outcome, i) => {
              if (!outcome.ok) throw new Error(`record ${i} of batch ${batch} failed: ${outcome.message}`);
              produced.push({
                partition: outcome.report.partitionId,
                offset: outcome.report.offset,
                value: records[i]!.value,
              });
            });
            break;
          } catch (error) {
            if (
              attempt >= 20 ||
              !(
                error instanceof SluiceConnectionError ||
                (error as { status?: number }).status === 503 ||
                (error as { status?: number }).status === 409
              )
            )
              throw error;
            await delay(100);
          }
        }
      }
    })();

    // Faults: SIGKILL a random server and start it again on its port a moment later; and cut a
    // member off from every server for longer than its session, so its partitions move while it
    // still believes it owns them, then let it back (it is fenced and rejoins).
    let kills = 0;
    let cuts = 0;
    const cuttings = (async () => {
      for (; cuts < 2; cuts++) {
        await delay(800 + rand() * 1_500);
        const member = Math.floor(rand() * 3);
        cutOff.add(member);
        await delay(SESSION_MS + 500 + rand() * 1_000);
        cutOff.delete(member);
      }
    })();
    const chaos = (async () => {
      for (; kills < KILLS; kills++) {
        await delay(400 + rand() * 800);
        const victim = Math.floor(rand() * SERVERS);
        const server = servers[victim]!;
        server.child.kill("SIGKILL");
        await server.exited;
        await delay(200 + rand() * 400);
        servers[victim] = await startServerProcess(dataDir!, { port: ports[victim]! });
      }
    })();

    await within(Promise.all([producer, chaos, cuttings]), 90_000, "the producer and the fault schedule");
    // Drained: every partition committed up to its end (bounded wait on the group's own lag).
    await within(
      (async () => {
        for (;;) {
          const summary = await admin.getGroupLagSummary("workers").catch(() => undefined);
          if (summary && summary.totalLag === 0 && commits.length > 0) return;
          await delay(200);
        }
      })(),
      60_000,
      "the group to drain",
    );
    await Promise.all(consumers.map((consumer) => consumer.close()));
    await within(Promise.all(loops), 30_000, "the members to leave");

    const result = checkHistory({ produced, deliveries, commits });
    process.stdout.write(
      `groups multi-process: seed ${SEED}, ${kills} kills, ${cuts} members cut off past their session, ${produced.length} produced, ${deliveries.length} delivered, ${result.duplicates} duplicates (in flight at a kill), ${commits.length} commits\n`,
    );
    expect(produced).toHaveLength(BATCHES * RECORDS_PER_BATCH);
    expect(new Set(produced.map((record) => `${record.partition}:${record.offset}`)).size).toBe(
      produced.length,
    );
    expect(result.lost).toEqual([]);
    expect(result.redeliveredAfterCommit).toEqual([]);
    expect(result.nonMonotonic).toEqual([]);
    expect(result.startedPastCommit).toEqual([]);
    for (const server of servers) expect(server!.stderr.text).not.toMatch(/internal error/);
  }, 240_000);
});
