import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FetchFunction, SluiceClient } from "@sluice/client";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run } from "./cli.js";
import type { CliIO, Output } from "./io.js";

const URL = "http://sluice.test";

class Capture implements Output {
  text = "";
  isTTY = false;
  write(chunk: string | Uint8Array): boolean {
    this.text += Buffer.from(chunk).toString("utf8");
    return true;
  }
  once(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
}

let fetchFn: FetchFunction;
let client: SluiceClient;
let dir: string;

beforeEach(async () => {
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata });
  const app = createApp({ engine, metadata, clusterId: "cli-test", logger: { error: () => undefined } });
  fetchFn = async (url, init) => app.request(url, init);
  client = new SluiceClient({ url: URL, fetch: fetchFn });
  await client.createTopic("orders", { partitions: 2 });
  await client.createTopic("orders-audit");
  await client.createTopic("orders-dead");
  dir = await mkdtemp(join(tmpdir(), "sluice-cli-processor-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sluice(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIO = {
    stdin: (async function* () {})(),
    stdout,
    stderr,
    env: { SLUICE_URL: URL },
    fetch: fetchFn,
  };
  const code = await run(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe("sluice processor", () => {
  it("creates a webhook processor from options, lists and describes it", async () => {
    const created = await sluice(
      "processor",
      "create",
      "audit",
      "--topic",
      "orders",
      "--webhook",
      "http://127.0.0.1:8787/orders",
      "-H",
      "authorization=Bearer t",
      "--output",
      "orders-audit",
      "--dead-letter",
      "orders-dead",
      "--ordering",
      "key",
      "--parallelism",
      "8",
      "--max-attempts",
      "5",
      "--start",
      "earliest",
      "--filter",
      '{"value":{"kind":"order"}}',
    );
    expect(created, created.stderr).toMatchObject({ code: 0, stdout: "created processor audit on orders\n" });
    const stored = await client.describeProcessor("audit");
    expect(stored.definition).toMatchObject({
      handler: {
        type: "webhook",
        url: "http://127.0.0.1:8787/orders",
        headers: { authorization: "Bearer t" },
      },
      output_topics: ["orders-audit"],
      dead_letter_topic: "orders-dead",
      ordering: "KEY",
      parallelism: 8,
      starting_position: "EARLIEST",
      retry: { max_attempts: 5 },
      filter: { value: { kind: "order" } },
    });
    const listed = await sluice("processor", "list");
    expect(listed.stdout).toBe(
      [
        "PROCESSOR  STATE    TOPICS  HANDLER                               OUTPUTS",
        "audit      RUNNING  orders  webhook http://127.0.0.1:8787/orders  orders-audit",
        "",
      ].join("\n"),
    );
    const described = await sluice("processor", "describe", "audit");
    expect(described.stdout).toMatch(/^PROCESSOR\s+audit\nSTATE\s+RUNNING\n/);
    expect(described.stdout).toMatch(/ORDERING\s+key \(parallelism 8\)/);
    expect(described.stdout).toMatch(/\norders\s+0\s+0\s+0\s+0\s+0\s+0\s+0\s+-\s+-\n/);
    const json = JSON.parse((await sluice("processor", "describe", "audit", "--format", "json")).stdout);
    expect(json.partitions.map((partition: { partition: number }) => partition.partition)).toEqual([0, 1]);
  });

  it("creates a shared processor with --shared and describes its share group", async () => {
    const created = await sluice(
      "processor",
      "create",
      "ocr",
      "--topic",
      "orders",
      "--webhook",
      "http://127.0.0.1:9/ocr",
      "--shared",
      "--parallelism",
      "8",
      "--start",
      "earliest",
    );
    expect(created, created.stderr).toMatchObject({ code: 0, stdout: "created processor ocr on orders\n" });
    expect((await client.describeProcessor("ocr")).definition).toMatchObject({
      ordering: "SHARED",
      parallelism: 8,
    });
    const described = await sluice("processor", "describe", "ocr");
    expect(described.stdout).toMatch(/ORDERING\s+shared \(parallelism 8 per runtime\)/);
    expect(described.stdout).toMatch(/SHARE-GROUP\s+__processor\.\S+\n/);
    expect(described.stdout).toMatch(/START-OFFSET\s+END-OFFSET/);
    expect(described.stdout).toMatch(/\norders\s+0\s+0\s+0\s+0\s+0\s+0\s+0\n/);
    const json = JSON.parse((await sluice("processor", "describe", "ocr", "--format", "json")).stdout);
    expect(json.partitions).toEqual([]);
    expect(json.shared.partitions.map((partition: { partition: number }) => partition.partition)).toEqual([
      0, 1,
    ]);
    expect(
      (
        await sluice(
          "processor",
          "create",
          "x",
          "-t",
          "orders",
          "--webhook",
          "http://x",
          "--shared",
          "--ordering",
          "key",
        )
      ).stderr,
    ).toMatch(/--shared and --ordering key contradict each other/);
    await sluice("processor", "pause", "ocr");
    expect((await sluice("processor", "reset", "ocr", "--to-earliest")).stdout).toMatch(
      /^TOPIC\s+PARTITION\s+START-OFFSET\s+LAG\norders\s+0\s+0\s+0\norders\s+1\s+0\s+0\n$/,
    );
    expect((await sluice("processor", "reset", "ocr", "--to-offset", "orders:0=0")).stderr).toMatch(
      /offsets: processor ocr is SHARED; reset it to earliest, latest or a timestamp/,
    );
  });

  it("creates from a definition file, the options overriding it", async () => {
    const file = join(dir, "definition.json");
    await writeFile(
      file,
      JSON.stringify({
        name: "from-file",
        topics: ["orders"],
        handler: { type: "lambda", function_name: "enrich" },
        batch_size: 10,
      }),
    );
    const created = await sluice("processor", "create", "--file", file, "--batch-size", "20");
    expect(created.code, created.stderr).toBe(0);
    expect((await client.describeProcessor("from-file")).definition).toMatchObject({
      handler: { type: "lambda", function_name: "enrich" },
      batch_size: 20,
    });
  });

  it("pauses, resets, resumes and deletes", async () => {
    await sluice("processor", "create", "p", "--topic", "orders", "--webhook", "http://127.0.0.1:9/hook");
    expect((await sluice("processor", "reset", "p", "--to-earliest")).stderr).toMatch(
      /pause it before resetting its checkpoints \(HTTP 409\)/,
    );
    expect((await sluice("processor", "pause", "p")).stdout).toBe("processor p is paused\n");
    const reset = await sluice("processor", "reset", "p", "--to-offset", "orders:1=0");
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(
      /^TOPIC\s+PARTITION\s+CHECKPOINT\s+LAG\norders\s+0\s+0\s+0\norders\s+1\s+0\s+0\n$/,
    );
    expect((await sluice("processor", "resume", "p")).stdout).toBe("processor p is running\n");
    expect((await sluice("processor", "delete", "p")).stdout).toBe("deleted processor p\n");
    expect((await sluice("processor", "describe", "p")).stderr).toBe(
      "sluice: processor not found: p (HTTP 404)\n",
    );
  });

  it("says what is wrong with a command line, and relays the server's 400 naming the field", async () => {
    expect(await sluice("processor", "create", "p", "--webhook", "http://x")).toMatchObject({
      code: 2,
      stderr: "sluice: sluice processor create needs --topic (a source topic)\n",
    });
    expect((await sluice("processor", "create", "p", "--topic", "orders")).stderr).toMatch(
      /needs --webhook URL or --lambda/,
    );
    expect(
      (await sluice("processor", "create", "p", "-t", "orders", "--webhook", "http://x", "--lambda", "f"))
        .code,
    ).toBe(2);
    expect((await sluice("processor", "reset", "p")).stderr).toMatch(/name exactly one of --to-earliest/);
    const refused = await sluice(
      "processor",
      "create",
      "p",
      "--topic",
      "nope",
      "--webhook",
      "http://127.0.0.1:9/",
    );
    expect(refused).toMatchObject({
      code: 1,
      stderr: "sluice: topics[0]: topic nope does not exist (HTTP 400)\n",
    });
  });
});
