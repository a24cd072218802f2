import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collected, REPO_ROOT, runCli, type ServerProcess, startServerProcess, within } from "./processes.js";

/**
 * The README's processor tour, as a user runs it: `npm start` with the example config file (a
 * module processor enriching `orders` into `orders-enriched`, declared before its topics exist),
 * then the example webhook endpoint attached with the CLI to `orders-enriched`. Every wait is on
 * an event (output, a long-poll answer) and bounded.
 */
let dataDir: string;
let server: ServerProcess;
let webhook: ChildProcess | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-processors-smoke-"));
  server = await startServerProcess(dataDir, {
    env: { SLUICE_PROCESSORS: "examples/processors/sluice.processors.json", SLUICE_LOG_REQUESTS: "0" },
  });
});

afterAll(async () => {
  webhook?.kill("SIGTERM");
  if (server && server.child.exitCode === null) {
    server.child.kill("SIGTERM");
    await within(server.exited, 20_000, "the server to exit");
  }
  await rm(dataDir, { recursive: true, force: true });
});

interface WireRecord {
  offset: number;
  key: { data: unknown } | null;
  value: { data: unknown } | null;
  headers: { name: string; value: string | null }[];
}

/** Waits (long-polling, bounded) until partition 0.. of `topic` hold `count` records in all; returns them. */
async function records(topic: string, partitions: number, count: number): Promise<WireRecord[]> {
  const base = `${server.url}/v3/clusters/${server.clusterId}/topics/${topic}/partitions`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pages = await Promise.all(
      Array.from({ length: partitions }, (_, partition) =>
        fetch(`${base}/${partition}/records?offset=0&timeout_ms=${count === 0 ? 0 : 1000}`).then(
          (response) => response.json() as Promise<{ records: WireRecord[] }>,
        ),
      ),
    );
    const all = pages.flatMap((page) => page.records);
    if (all.length >= count || Date.now() > deadline) return all;
  }
}

describe("processors in npm start", () => {
  it("runs the example module processor once its topics exist, and a webhook processor attached with the CLI", async () => {
    await within(
      server.stdout.match(/processor enrich-orders: waiting for topic orders to exist/, server.exited),
      10_000,
      "the server to say the processor waits for its topic",
    );
    expect(server.stdout.text).toMatch(/processors: enrich-orders \(.*sluice\.processors\.json\)/);
    for (const [topic, partitions] of [
      ["orders", "3"],
      ["orders-enriched", "3"],
      ["orders-dead", "1"],
    ] as const) {
      expect((await runCli(["topic", "create", topic, "-p", partitions], server.url)).code).toBe(0);
    }
    await within(
      server.stdout.match(/processor enrich-orders: created from/, server.exited),
      10_000,
      "the processor to be declared once its topics exist",
    );
    const produced = await runCli(
      ["produce", "orders", "-k", ":"],
      server.url,
      'customer-42:{"item":"tea","qty":2}\ncustomer-7:{"item":"cake","qty":1}\ncustomer-42:not an order\ncustomer-9:{"item":"coffee","qty":3}\n',
    );
    expect(produced.code, produced.stderr).toBe(0);

    const enriched = await records("orders-enriched", 3, 3);
    expect(
      enriched
        .map((record) => record.value?.data)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual([
      { item: "cake", qty: 1, unitPrice: 5, total: 5 },
      { item: "coffee", qty: 3, unitPrice: 3.2, total: 9.600000000000001 },
      { item: "tea", qty: 2, unitPrice: 4.5, total: 9 },
    ]);
    const dead = await records("orders-dead", 1, 1);
    expect(dead.map((record) => record.value?.data)).toEqual(["not an order"]);
    expect(dead[0]!.headers.map((header) => header.name)).toEqual(
      expect.arrayContaining(["sluice-processor", "sluice-source-offset", "sluice-attempts", "sluice-error"]),
    );
    expect(server.stdout.text).toMatch(
      /enrich-orders: orders\/\d offset \d dead-lettered after 3 attempt\(s\): .*is not valid JSON/,
    );

    // The webhook example on a free port; attached with the CLI from the earliest enriched order.
    webhook = spawn(process.execPath, ["--import", "tsx", "examples/processors/webhook-server.ts"], {
      cwd: REPO_ROOT,
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const webhookOut = new Collected(webhook.stdout);
    const ended = new Promise((resolve) => webhook?.once("exit", resolve));
    const url = (
      await within(webhookOut.match(/listening on (\S+)\n/, ended), 30_000, "the webhook to listen")
    )[1]!;
    const created = await runCli(
      ["processor", "create", "ship", "--topic", "orders-enriched", "--webhook", url, "--start", "earliest"],
      server.url,
    );
    expect(created, created.stderr).toMatchObject({
      code: 0,
      stdout: "created processor ship on orders-enriched\n",
    });
    for (const customer of ["customer-42", "customer-7", "customer-9"]) {
      await within(
        webhookOut.match(new RegExp(`ship orders-enriched/\\d@\\d attempt 1: ship ${customer} `), ended),
        15_000,
        `the webhook to ship ${customer}`,
      );
    }
    const described = await runCli(
      ["processor", "describe", "enrich-orders", "--format", "json"],
      server.url,
    );
    const details = JSON.parse(described.stdout) as {
      lag: number;
      partitions: { processed: number; dead_lettered: number }[];
    };
    expect(details.lag).toBe(0);
    expect(details.partitions.reduce((sum, partition) => sum + partition.processed, 0)).toBe(3);
    expect(details.partitions.reduce((sum, partition) => sum + partition.dead_lettered, 0)).toBe(1);
  });
});
