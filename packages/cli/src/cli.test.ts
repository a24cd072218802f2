import { type FetchFunction, SluiceClient } from "@sluice/client";
import { decodeRecordBatches } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MaintenanceRunner } from "@sluice/maintenance";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { run } from "./cli.js";
import type { CliIO, Output } from "./io.js";

const URL = "http://sluice.test";

class Capture implements Output {
  chunks: Buffer[] = [];
  isTTY = false;
  private listeners: Array<() => void> = [];
  write(chunk: string | Uint8Array): boolean {
    this.chunks.push(Buffer.from(chunk));
    for (const listener of this.listeners.splice(0)) listener();
    return true;
  }
  once(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
  /** Resolves once the output contains `pattern` (event-driven, no polling). */
  waitFor(pattern: RegExp): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (pattern.test(this.text)) resolve();
        else this.listeners.push(check);
      };
      check();
    });
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let fetchFn: FetchFunction;
let client: SluiceClient;
let requests: Array<{ method: string; url: string; body: string; bytes?: Uint8Array }>;
let onRequest: Array<() => void>;

let stores: { objects: MemoryObjectStore; metadata: MemoryMetadataStore };

beforeEach(() => {
  const metadata = new MemoryMetadataStore();
  stores = { objects: new MemoryObjectStore(), metadata };
  const engine = new Engine({ objects: stores.objects, metadata });
  const app = createApp({ engine, metadata, clusterId: "cli-test", logger: { error: () => undefined } });
  requests = [];
  onRequest = [];
  fetchFn = async (url, init) => {
    const body = typeof init.body === "string" ? init.body : "";
    const bytes = init.body instanceof Uint8Array ? init.body : undefined;
    requests.push({ method: init.method ?? "GET", url, body, ...(bytes ? { bytes } : {}) });
    for (const listener of onRequest.splice(0)) listener();
    return app.request(url, init);
  };
  client = new SluiceClient({ url: URL, fetch: fetchFn });
});

function io(stdin: string | string[] = [], options: { signal?: AbortSignal; stdout?: Capture } = {}) {
  const chunks = typeof stdin === "string" ? [stdin] : stdin;
  const stdout = options.stdout ?? new Capture();
  const stderr = new Capture();
  const cliIO: CliIO = {
    stdin: (async function* () {
      for (const chunk of chunks) yield Buffer.from(chunk);
    })(),
    stdout,
    stderr,
    env: { SLUICE_URL: URL },
    fetch: fetchFn,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  return { cliIO, stdout, stderr };
}

async function sluice(args: string, stdin: string | string[] = []): Promise<Result> {
  const { cliIO, stdout, stderr } = io(stdin);
  const code = await run(splitArgs(args), cliIO);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Splits on spaces, keeping 'single-quoted' words together. */
function splitArgs(args: string): string[] {
  return [...args.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2] ?? "");
}

describe("help and usage", () => {
  it("prints help with exit code 0", async () => {
    const help = await sluice("--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: sluice <command>");
    const consumeHelp = await sluice("consume --help");
    expect(consumeHelp.code).toBe(0);
    expect(consumeHelp.stdout).toContain("-f, --format-string");
    expect((await sluice("--version")).stdout).toMatch(/^sluice \d+\.\d+\.\d+\n$/);
  });

  it("reports usage errors as one line and exit code 2", async () => {
    for (const args of [
      "frobnicate",
      "topic",
      "topic create",
      "topic create t -p zero",
      "consume t -o soon",
      "consume t -f %q",
      "produce",
      "topic list --nope",
      "topic list --format yaml",
      "consume t --format json -f %v",
    ]) {
      const result = await sluice(args);
      expect(result.code, args).toBe(2);
      expect(result.stderr, args).toMatch(/^sluice: [^\n]+\n$/);
    }
  });

  it("reports API errors as one line and exit code 1", async () => {
    const result = await sluice("topic describe missing");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^sluice: .*missing.*\(HTTP 404\)\n$/);
    await sluice("topic create dup");
    expect((await sluice("topic create dup")).stderr).toMatch(/^sluice: .*\(HTTP 409\)\n$/);
  });

  it("reports an unreachable server as one line and exit code 1", async () => {
    const { cliIO, stderr } = io();
    cliIO.fetch = async () => {
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:9") });
    };
    expect(await run(["topic", "list"], cliIO)).toBe(1);
    expect(stderr.text).toBe(`sluice: cannot reach ${URL}: connect ECONNREFUSED 127.0.0.1:9\n`);
  });

  it("takes --url over SLUICE_URL", async () => {
    const { cliIO } = io();
    const seen: string[] = [];
    const inner = cliIO.fetch as FetchFunction;
    cliIO.fetch = (url, init) => {
      seen.push(url);
      return inner(url.replace("http://other.test", URL), init);
    };
    expect(await run(["--url", "http://other.test", "topic", "list"], cliIO)).toBe(0);
    expect(seen.every((url) => url.startsWith("http://other.test/"))).toBe(true);
  });

  it("takes host:port without a scheme, and -b as kcat's alias for --url", async () => {
    const cases: Array<[string[], Record<string, string>, string]> = [
      [["--url", "other.test:8080", "topic", "list"], {}, "http://other.test:8080/"],
      [["-b", "other.test:8080", "topic", "list"], {}, "http://other.test:8080/"],
      [["topic", "list", "-b", "other.test"], {}, "http://other.test/"],
      [["topic", "list", "-bhttps://other.test:8443/"], {}, "https://other.test:8443/"],
      [["topic", "list"], { SLUICE_URL: "other.test:9000" }, "http://other.test:9000/"],
      [["topic", "list", "-b", ":8080"], {}, "http://127.0.0.1:8080/"],
    ];
    for (const [args, env, prefix] of cases) {
      const { cliIO, stderr } = io();
      cliIO.env = env;
      const seen: string[] = [];
      cliIO.fetch = (url, init) => {
        seen.push(url);
        return fetchFn(`${URL}${new globalThis.URL(url).pathname}`, init);
      };
      expect(await run(args, cliIO), `${args.join(" ")}: ${stderr.text}`).toBe(0);
      expect(seen.length, args.join(" ")).toBeGreaterThan(0);
      expect(
        seen.every((url) => url.startsWith(prefix)),
        `${args.join(" ")}: ${seen.join(" ")}`,
      ).toBe(true);
    }
    for (const bad of ["ftp://other.test", "http://", "a b:80"]) {
      const result = await sluice(`topic list --url '${bad}'`);
      expect(result.code, bad).toBe(2);
      expect(result.stderr, bad).toMatch(/^sluice: invalid --url .*\n$/);
    }
  });

  it("prints each command group's own help", async () => {
    for (const args of ["cluster --help", "cluster -h", "help cluster", "--url localhost:1 cluster --help"]) {
      const result = await sluice(args);
      expect(result.code, args).toBe(0);
      expect(result.stdout, args).toMatch(
        /^the cluster the API serves\n\nUsage: sluice cluster <subcommand>/,
      );
      expect(result.stdout, args).toContain("sluice cluster info\n");
      expect(result.stdout, args).not.toContain("sluice topic");
    }
    const topic = await sluice("topic --help");
    expect(topic.code).toBe(0);
    expect(topic.stdout).toMatch(/^create, list, describe.*\n\nUsage: sluice topic <subcommand>/);
    for (const word of ["list", "create", "describe", "delete", "config", "add-partitions"]) {
      expect(topic.stdout).toContain(`sluice topic ${word}`);
    }
    expect((await sluice("help consume")).stdout).toContain("-f, --format-string");
    expect(await sluice("cluster")).toEqual({
      code: 2,
      stdout: "",
      stderr: "sluice: sluice cluster needs a subcommand: info (see sluice cluster --help)\n",
    });
  });
});

describe("topic commands", () => {
  it("creates, lists, describes, configures, grows and deletes topics", async () => {
    const created = await sluice(
      "topic create orders audit -p 3 -c retention.ms=1000 -c cleanup.policy=compact",
    );
    expect(created).toEqual({
      code: 0,
      stdout: "created topic orders (3 partitions)\ncreated topic audit (3 partitions)\n",
      stderr: "",
    });
    expect((await sluice("topic list")).stdout).toBe("NAME    PARTITIONS\naudit   3\norders  3\n");
    expect(JSON.parse((await sluice("topic list --format json")).stdout)).toEqual([
      { name: "audit", partitions: 3 },
      { name: "orders", partitions: 3 },
    ]);

    const described = await sluice("topic describe orders");
    expect(described.stdout).toMatch(/^SUMMARY\nNAME\s+orders\nPARTITIONS\s+3\n/);
    expect(described.stdout).toMatch(/retention\.ms\s+1000\s+DYNAMIC_TOPIC_CONFIG/);
    expect(described.stdout).toMatch(/SIZE\s+-\nOBJECTS\s+-\nMAINTENANCE\s+never ran\n/);
    expect(described.stdout).toMatch(
      /PARTITION\s+EARLIEST-OFFSET\s+LATEST-OFFSET\s+SIZE\s+ENTRIES\n0\s+0\s+0\s+-\s+-\n1\s+0\s+0\s+-\s+-\n2\s+0\s+0\s+-\s+-\n$/,
    );
    const json = JSON.parse((await sluice("--format json topic describe orders")).stdout);
    expect(json).toMatchObject({ name: "orders", partitions: 3, configs: { "retention.ms": "1000" } });
    expect(json.partition_offsets).toHaveLength(3);

    const changed = await sluice("topic config orders --set retention.ms=2000 --delete cleanup.policy");
    expect(changed.code).toBe(0);
    expect(changed.stdout).toMatch(/^updated 2 configs of orders\n/);
    const configs = JSON.parse((await sluice("topic config orders --format json")).stdout);
    expect(configs).toMatchObject({ "retention.ms": "2000", "cleanup.policy": "delete" });

    expect((await sluice("topic add-partitions orders -n 2")).stdout).toBe(
      "topic orders now has 5 partitions\n",
    );
    expect((await sluice("topic delete audit")).stdout).toBe("deleted topic audit\n");
    expect((await sluice("topic list")).stdout).toBe("NAME    PARTITIONS\norders  5\n");
    expect((await sluice("cluster info")).stdout).toBe(`url         ${URL}\ncluster id  cli-test\n`);
  });
});

describe("produce", () => {
  beforeEach(async () => {
    await client.createTopic("t", { partitions: 3 });
  });

  it("describes a topic's size, object count and last maintenance once maintenance ran", async () => {
    await sluice("topic create sized -p 2");
    const produced = await sluice("produce sized -p 1", "alpha\nbeta\n");
    expect(produced.code).toBe(0);
    await new MaintenanceRunner({ objects: stores.objects, metadata: stores.metadata }).runOnce();
    const described = await sluice("topic describe sized");
    expect(described.stdout).toMatch(/SIZE\s+\d+ B\nOBJECTS\s+1\nMAINTENANCE\s+ran \d{4}-\d\d-\d\dT/);
    expect(described.stdout).toMatch(/\n0\s+0\s+0\s+0 B\s+0\n1\s+0\s+2\s+\d+ B\s+1\n$/);
    const json = JSON.parse((await sluice("--format json topic describe sized")).stdout);
    expect(json.storage).toMatchObject({
      object_count: 1,
      partitions: [
        { partition: 0, size_bytes: 0 },
        { partition: 1, records: 2 },
      ],
    });
    expect(json.storage.size_bytes).toBe(json.storage.partitions[1].size_bytes);
  });

  it("sends one record per line with keys, headers and a summary", async () => {
    const result = await sluice(
      "produce t -k : -H source=test -H v=1 --keep-empty-lines",
      "a:1\nb:2:x\nno-key\r\n\n",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^produced 4 records to t \(partitions? [\d, ]+\) in \d+\.\d\d s, [\d,]+ records\/s\n$/,
    );
    const records = (
      await Promise.all(
        [0, 1, 2].map((p) => client.readPartition("t", p, { keyType: "STRING", valueType: "STRING" })),
      )
    )
      .flatMap((page) => page.records)
      .map((record) => [
        record.key?.data ?? null,
        record.value?.data,
        record.headers.map((h) => h.name).join(","),
      ]);
    expect(records).toEqual(
      expect.arrayContaining([
        ["a", "1", "source,v"],
        ["b", "2:x", "source,v"],
        [null, "no-key", "source,v"],
        [null, "", "source,v"],
      ]),
    );
    expect(records).toHaveLength(4);
  });

  it("skips empty lines unless asked to keep them, and says how many", async () => {
    const result = await sluice("produce t -p 0 --format json", "\nx\n\r\n\ny\n\n");
    expect(result.code).toBe(0);
    const reports = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    // Delivery reports keep the input's line numbers.
    expect(reports).toEqual([
      { line: 2, partition: 0, offset: 0, timestamp: expect.any(Number) },
      { line: 5, partition: 0, offset: 1, timestamp: expect.any(Number) },
    ]);
    expect(result.stderr).toMatch(/^produced 2 records to t \(partition 0\) in .*; 4 empty lines skipped\n$/);
    const page = await client.readPartition("t", 0, { valueType: "STRING" });
    expect(page.records.map((record) => record.value?.data)).toEqual(["x", "y"]);

    const kept = await sluice("produce t -p 1 --keep-empty-lines", "\nz\n");
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/^produced 2 records to t \(partition 1\) in [^;]*\n$/);
    const keptPage = await client.readPartition("t", 1, { valueType: "STRING" });
    expect(keptPage.records.map((record) => record.value?.data)).toEqual(["", "z"]);

    const onlyEmpty = await sluice("produce t", "\n\n");
    expect(onlyEmpty.code).toBe(0);
    expect(onlyEmpty.stdout).toMatch(/^produced 0 records to t in .*; 2 empty lines skipped\n$/);
  });

  it("sends to one partition with -p and prints delivery reports with --format json", async () => {
    const result = await sluice("produce t -p 2 --format json", "x\ny\n");
    expect(result.code).toBe(0);
    const reports = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports).toEqual([
      { line: 1, partition: 2, offset: 0, timestamp: expect.any(Number) },
      { line: 2, partition: 2, offset: 1, timestamp: expect.any(Number) },
    ]);
    expect(result.stderr).toMatch(/^produced 2 records to t \(partition 2\)/);
  });

  it("sends record batches of up to 1,000 records (--batch-size), in input order", async () => {
    const lines = Array.from({ length: 2_500 }, (_, i) => `line-${i}`);
    // Split the input across chunks at odd places, as a pipe would.
    const input = `${lines.join("\n")}\n`;
    const chunks = [input.slice(0, 7), input.slice(7, 9_000), input.slice(9_000)];
    // A linger longer than the test: batches close when full, and the rest at the end of input.
    const result = await sluice("produce t -p 0 --linger-ms 60000", chunks);
    expect(result.code).toBe(0);
    const produces = requests.filter(
      (request) => request.method === "POST" && request.url.endsWith("/record-batches"),
    );
    const counts = await Promise.all(
      produces.map(async (request) =>
        (await decodeRecordBatches(request.bytes!)).map((batch) => batch.recordCount),
      ),
    );
    expect(counts).toEqual([[1_000], [1_000], [500]]);
    const page = await client.readPartition("t", 0, { valueType: "STRING", maxRecords: 10_000 });
    expect(page.records.map((record) => record.value?.data)).toEqual(lines);
  });

  it("reports refused records and exits 1", async () => {
    await client.setTopicConfig("t", "max.message.bytes", "10");
    const result = await sluice("produce t --format json", "ok\nthis line is far too long\nok too\n");
    expect(result.code).toBe(1);
    const reports = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports.map((report) => report.error_code ?? 200)).toEqual([200, 413, 200]);
    expect(result.stderr).toMatch(
      /^produced 2 records to t .*; 1 failed\nsluice: 1 of 3 records failed; first: line 2: .+\n$/,
    );
  });

  it("fails with one line for an unknown topic or partition, before reading stdin", async () => {
    for (const stdin of ["a\n", ""]) {
      const result = await sluice("produce missing", stdin);
      expect(result, JSON.stringify(stdin)).toEqual({
        code: 1,
        stdout: "",
        stderr: "sluice: topic not found: missing (HTTP 404)\n",
      });
    }
    const noPartition = await sluice("produce t -p 3", "a\n");
    expect(noPartition).toEqual({
      code: 2,
      stdout: "",
      stderr: "sluice: topic t has no partition 3 (it has 3)\n",
    });
    expect(requests.filter((request) => request.url.endsWith("/records"))).toEqual([]);
  });

  it("fails at once when a request fails, even while stdin stays open", async () => {
    const { cliIO, stderr } = io();
    cliIO.stdin = (async function* () {
      yield Buffer.from("a\n");
      await new Promise(() => undefined); // stdin stays open
    })();
    cliIO.fetch = async (url, init) => {
      if (url.endsWith("/record-batches"))
        throw new TypeError("fetch failed", { cause: new Error("socket hang up") });
      return fetchFn(url, init);
    };
    expect(await run(["produce", "t", "--retries", "1"], cliIO)).toBe(1);
    expect(stderr.text).toBe(
      `sluice: cannot reach ${URL}: socket hang up (0 of 1 records sent were acknowledged)\n`,
    );
    const produces = requests.filter((request) => request.url.endsWith("/record-batches"));
    expect(produces).toHaveLength(0); // the failing fetch never reached the app
  });

  it("resends a request whose answer was lost, without duplicating it", async () => {
    const { cliIO, stdout } = io("x\ny\n");
    let lost = false;
    cliIO.fetch = async (url, init) => {
      const response = await fetchFn(url, init);
      if (url.endsWith("/record-batches") && !lost) {
        lost = true; // the records are committed, but the answer never arrives
        throw new TypeError("fetch failed", { cause: new Error("other side closed") });
      }
      return response;
    };
    expect(await run(["produce", "t", "-p", "0"], cliIO)).toBe(0);
    expect(stdout.text).toMatch(/^produced 2 records to t \(partition 0\)/);
    const produces = requests.filter((request) => request.url.endsWith("/record-batches"));
    expect(produces).toHaveLength(2);
    expect((await client.getPartition("t", 0)).latestOffset).toBe(2);
  });

  it("stops reading on Ctrl-C, flushes what it read and exits 130", async () => {
    const controller = new AbortController();
    const stdout = new Capture();
    const { cliIO } = io([], { signal: controller.signal, stdout });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    cliIO.stdin = (async function* () {
      yield Buffer.from("a\nb\n");
      release();
      await new Promise(() => undefined); // stdin stays open
    })();
    const running = run(["produce", "t", "-p", "1"], cliIO);
    await gate;
    controller.abort();
    expect(await running).toBe(130);
    expect(stdout.text).toMatch(/^produced 2 records to t .*; interrupted\n$/);
    expect((await client.getPartition("t", 1)).latestOffset).toBe(2);
  });
});

describe("consume", () => {
  beforeEach(async () => {
    await client.createTopic("c", { partitions: 2 });
    await client.produceMany("c", [
      { partitionId: 0, key: "k0", value: "p0-a", timestamp: 1_000, headers: { h: "1" } },
      { partitionId: 1, key: "k1", value: "p1-a", timestamp: 1_500 },
      { partitionId: 0, value: "p0-b", timestamp: 2_000 },
      { partitionId: 1, value: "p1-b", timestamp: 2_500 },
      { partitionId: 1, value: "p1-c", timestamp: 3_000 },
    ]);
  });

  it("reads all partitions to the end, merged by timestamp, and exits", async () => {
    const result = await sluice("consume c");
    expect(result).toEqual({ code: 0, stdout: "p0-a\np1-a\np0-b\np1-b\np1-c\n", stderr: "" });
  });

  it("formats records kcat-style", async () => {
    const result = await sluice("consume c -p 0 -f '%t/%p/%o %T %k=%v [%h]\\n'");
    expect(result.stdout).toBe("c/0/0 1000 k0=p0-a [h=1]\nc/0/1 2000 =p0-b []\n");
  });

  it("prints JSON lines with --format json", async () => {
    const result = await sluice("consume c -p 1 -n 1 --format json");
    expect(JSON.parse(result.stdout)).toEqual({
      topic: "c",
      partition: 1,
      offset: 0,
      timestamp: 1_500,
      key: "k1",
      value: "p1-a",
      headers: [],
    });
  });

  it("starts at offsets, from the end, after a timestamp, and stops after -n", async () => {
    expect((await sluice("consume c -p 1 -o 1")).stdout).toBe("p1-b\np1-c\n");
    expect((await sluice("consume c -o -1")).stdout).toBe("p0-b\np1-c\n");
    expect((await sluice("consume c -o +1 -p 1")).stdout).toBe("p1-b\np1-c\n");
    expect((await sluice("consume c -o @2000")).stdout).toBe("p0-b\np1-b\np1-c\n");
    expect((await sluice("consume c -o beginning -n 2")).stdout).toBe("p0-a\np1-a\n");
    expect((await sluice("consume c -o end")).stdout).toBe("");
    expect((await sluice("consume c -p 5")).code).toBe(2);
  });

  it("says an offset past the end is past the end and exits 1, after printing what exists", async () => {
    expect(await sluice("consume c -o 999")).toEqual({
      code: 1,
      stdout: "",
      stderr: "sluice: offset 999 is past the end of c partitions 0 (next offset 2), 1 (next offset 3)\n",
    });
    expect(await sluice("consume c -p 1 -o 4")).toEqual({
      code: 1,
      stdout: "",
      stderr: "sluice: offset 4 is past the end of c partition 1 (next offset 3)\n",
    });
    // Partition 0 ends at 2, partition 1 still has offset 2: only partition 0 is out of range.
    expect(await sluice("consume c -o 2")).toEqual({
      code: 0,
      stdout: "p1-c\n",
      stderr: "",
    });
    expect(await sluice("consume c -o 3")).toEqual({
      code: 1,
      stdout: "",
      stderr: "sluice: offset 3 is past the end of c partition 0 (next offset 2)\n",
    });
  });

  it("says on stderr when --follow has caught up and waits, after the records before it", async () => {
    const controller = new AbortController();
    const { cliIO, stdout, stderr } = io([], { signal: controller.signal });
    const running = run(["consume", "c", "-o", "start", "--follow", "-f", "%p/%o\\n"], cliIO);
    await stderr.waitFor(/waiting/);
    expect(stderr.text).toBe(
      "sluice: at the end of c (all 2 partitions); waiting for new records (Ctrl-C to stop)\n",
    );
    expect(stdout.text.split("\n").sort()).toEqual(["", "0/0", "0/1", "1/0", "1/1", "1/2"]);
    controller.abort();
    expect(await running).toBe(0);

    const atEnd = io();
    const tail = run(["consume", "c", "-p", "1", "-o", "end", "--follow", "-n", "1"], atEnd.cliIO);
    await atEnd.stderr.waitFor(/waiting/);
    expect(atEnd.stderr.text).toBe(
      "sluice: at the end of c (partition 1); waiting for new records (Ctrl-C to stop)\n",
    );
    await client.produce("c", { partitionId: 1, value: "p1-d" });
    expect(await tail).toBe(0);
    expect(atEnd.stdout.text).toBe("p1-d\n");
  });

  it("with --follow, waits for an offset past the end", async () => {
    const { cliIO, stdout, stderr } = io();
    const running = run(
      ["consume", "c", "-p", "1", "-o", "5", "--follow", "-n", "1", "-f", "%o:%v\\n"],
      cliIO,
    );
    await stderr.waitFor(/waiting/);
    expect(stderr.text).toBe(
      "sluice: offset 5 is past the end of c partition 1 (next offset 3); waiting for new records (Ctrl-C to stop)\n",
    );
    await client.produceMany("c", [
      { partitionId: 1, value: "p1-d" },
      { partitionId: 1, value: "p1-e" },
      { partitionId: 1, value: "p1-f" },
    ]);
    expect(await running).toBe(0);
    expect(stdout.text).toBe("5:p1-f\n");
  });

  it("follows new records with --follow until -n", async () => {
    const { cliIO, stdout } = io();
    const running = run(
      ["consume", "c", "-p", "1", "-o", "start", "--follow", "-n", "4", "-f", "%o:%v\\n"],
      cliIO,
    );
    await stdout.waitFor(/2:p1-c\n/);
    await client.produce("c", { partitionId: 1, value: "p1-d" });
    expect(await running).toBe(0);
    expect(stdout.text).toBe("0:p1-a\n1:p1-b\n2:p1-c\n3:p1-d\n");
  });

  it("follows all partitions by long-polling with --poll, and stops cleanly on Ctrl-C", async () => {
    const controller = new AbortController();
    const { cliIO, stdout, stderr } = io([], { signal: controller.signal });
    const running = run(["consume", "c", "-o", "end", "--follow", "--poll", "-q"], cliIO);
    // Wait until both partitions' long-polls are waiting, so the records below are not missed.
    await until(() => requests.filter((request) => request.url.includes("timeout_ms=")).length >= 2);
    await client.produceMany("c", [
      { partitionId: 0, value: "new-0" },
      { partitionId: 1, value: "new-1" },
    ]);
    await stdout.waitFor(/new-0\n[\s\S]*new-1\n|new-1\n[\s\S]*new-0\n/);
    controller.abort();
    expect(await running).toBe(0);
    expect(stdout.text.split("\n").sort()).toEqual(["", "new-0", "new-1"]);
    expect(stderr.text).toBe(""); // -q: no word about waiting
  });
});

/** Resolves once `condition` holds; checked after each request the CLI makes (no polling). */
function until(condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (condition()) resolve();
      else onRequest.push(check);
    };
    check();
  });
}

describe("consumer groups", () => {
  beforeEach(async () => {
    await client.createTopic("orders", { partitions: 2 });
    await client.produceMany("orders", [
      ...["a0", "a1", "a2", "a3", "a4"].map((value) => ({ partitionId: 0, value })),
      ...["b0", "b1", "b2"].map((value) => ({ partitionId: 1, value })),
    ]);
  });

  const describeText = (epoch: number | null, state: string, members: number, lag: number, rows: string) =>
    [
      "GROUP      g",
      `STATE      ${state}`,
      "ASSIGNOR   uniform",
      `EPOCH      ${epoch}`,
      `MEMBERS    ${members}`,
      `TOTAL-LAG  ${lag}`,
      "",
      rows,
    ].join("\n");

  it("consume -g prints every record once, commits what it printed and leaves; describe shows the lag", async () => {
    const consumed = await sluice("consume -g g orders -n 8 -q -f %p/%v\\n");
    expect(consumed).toMatchObject({ code: 0, stderr: "" });
    expect(consumed.stdout.split("\n").sort()).toEqual([
      "",
      "0/a0",
      "0/a1",
      "0/a2",
      "0/a3",
      "0/a4",
      "1/b0",
      "1/b1",
      "1/b2",
    ]);
    await client.produceMany("orders", [
      { partitionId: 0, value: "a5" },
      { partitionId: 0, value: "a6" },
    ]);

    const { groupEpoch } = await client.describeGroup("g");
    expect(await sluice("group describe g")).toEqual({
      code: 0,
      stderr: "",
      stdout: describeText(
        groupEpoch,
        "EMPTY",
        0,
        2,
        [
          "GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID",
          "g      orders  0          5               7               2    -",
          "g      orders  1          3               3               0    -",
          "",
        ].join("\n"),
      ),
    });
    const json = JSON.parse((await sluice("group describe g --format json")).stdout);
    expect(json).toMatchObject({ group: "g", state: "EMPTY", members: [], total_lag: 2 });
    expect(json.partitions).toEqual([
      { topic: "orders", partition: 0, current_offset: 5, log_end_offset: 7, lag: 2, consumer_id: null },
      { topic: "orders", partition: 1, current_offset: 3, log_end_offset: 3, lag: 0, consumer_id: null },
    ]);

    // The next member starts where the group stopped.
    const next = await sluice("consume -g g orders -n 2 -q");
    expect(next).toEqual({ code: 0, stdout: "a5\na6\n", stderr: "" });
  });

  it("consume -g -n commits exactly the records it printed, even part of a batch", async () => {
    expect((await sluice("consume -g g orders -n 1 -q -f %v\\n")).code).toBe(0);
    const lags = await client.getGroupLags("g");
    // One record of one partition committed; nothing of the other.
    expect(lags.map((lag) => lag.currentOffset ?? 0).reduce((sum, offset) => sum + offset, 0)).toBe(1);
    const rest = await sluice("consume -g g orders -n 7 -q -f %v\\n");
    const first = (await client.getGroupOffsets("g")).map((offset) => offset.offset);
    expect(first.sort()).toEqual([3, 5]);
    expect(rest.stdout.split("\n").filter(Boolean)).toHaveLength(7);
  });

  it("consume -g reports its assignment on stderr and leaves cleanly on Ctrl-C", async () => {
    const controller = new AbortController();
    const { cliIO, stdout, stderr } = io([], { signal: controller.signal });
    const running = run(["consume", "-g", "g", "orders", "-f", "%v\\n"], cliIO);
    await stdout.waitFor(/(?:[ab]\d\n){8}/);
    controller.abort();
    expect(await running).toBe(0);
    expect(stdout.text.split("\n").filter(Boolean)).toHaveLength(8);
    expect(stderr.text).toBe(
      "sluice: group g: assigned orders partitions 0, 1\nsluice: group g: revoked orders partitions 0, 1\n",
    );
    // It left: no members, and what it printed is committed.
    expect(await client.listGroupMembers("g")).toEqual([]);
    expect((await client.getGroupLags("g")).map((lag) => lag.lag)).toEqual([0, 0]);
  });

  it("describe names the member owning each partition while it runs, and reset refuses a group with members", async () => {
    const member = client.groupConsumer({ groupId: "g", topics: ["orders"], autoOffsetReset: "earliest" });
    try {
      await member.next();
      const { groupEpoch } = await client.describeGroup("g");
      const described = await sluice("group describe g");
      expect(described.stdout).toBe(
        describeText(
          groupEpoch,
          "STABLE",
          1,
          8,
          [
            "GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID",
            `g      orders  0          -               5               5    ${member.memberId}`,
            `g      orders  1          -               3               3    ${member.memberId}`,
            "",
          ].join("\n"),
        ),
      );
      const refused = await sluice("group reset g --topic orders --to-earliest --execute");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /^sluice: cannot reset offsets of consumer group g: it has 1 active member; .*\(HTTP 409\)\n$/,
      );
      expect((await sluice("group delete g")).code).toBe(1);
    } finally {
      await member.close();
    }
    expect((await client.describeGroup("g")).state).toBe("EMPTY");
  });

  it("reset prints the plan and changes nothing without --execute; with it, moves the offsets", async () => {
    expect((await sluice("consume -g g orders -n 8 -q")).code).toBe(0);
    const committed = async () =>
      (await client.getGroupOffsets("g")).map((offset) => `${offset.partitionId}:${offset.offset}`).sort();
    expect(await committed()).toEqual(["0:5", "1:3"]);

    const plan = [
      "TOPIC   PARTITION  PREVIOUS  NEW",
      "orders  0          5         0",
      "orders  1          3         0",
      "",
    ].join("\n");
    expect(await sluice("group reset g --to-earliest")).toEqual({
      code: 0,
      stdout: plan,
      stderr: "sluice: dry run, nothing changed; add --execute to apply this plan\n",
    });
    expect((await sluice("group reset g --to-earliest --dry-run")).stdout).toBe(plan);
    expect(await committed()).toEqual(["0:5", "1:3"]);

    const shifted = await sluice("group reset g --topic orders --shift-by -2 --execute");
    expect(shifted).toEqual({
      code: 0,
      stdout: [
        "TOPIC   PARTITION  PREVIOUS  NEW",
        "orders  0          5         3",
        "orders  1          3         1",
        "",
      ].join("\n"),
      stderr: "sluice: reset 2 partitions of consumer group g\n",
    });
    expect(await committed()).toEqual(["0:3", "1:1"]);
    // Clamped to each log: offset 4 is past partition 1's end (3).
    expect((await sluice("group reset g --to-offset 4 --execute")).code).toBe(0);
    expect(await committed()).toEqual(["0:4", "1:3"]);
    expect((await sluice("group reset g --to-latest --execute")).code).toBe(0);
    expect(await committed()).toEqual(["0:5", "1:3"]);
    expect((await sluice("group reset g --to-datetime 2000-01-01T00:00:00Z --execute")).code).toBe(0);
    expect(await committed()).toEqual(["0:0", "1:0"]);
    const json = JSON.parse((await sluice("group reset g --to-offset 1 --format json")).stdout);
    expect(json).toEqual({
      group: "g",
      dry_run: true,
      partitions: [
        { topic: "orders", partition: 0, previous_offset: 0, new_offset: 1 },
        { topic: "orders", partition: 1, previous_offset: 0, new_offset: 1 },
      ],
    });
  });

  it("lists and deletes groups; an unknown group is exit 1 with the server's message", async () => {
    expect((await sluice("consume -g g orders -n 1 -q")).code).toBe(0);
    expect((await sluice("consume -g h orders -n 1 -q")).code).toBe(0);
    expect(await sluice("group list")).toEqual({
      code: 0,
      stdout: "GROUP  STATE  MEMBERS\ng      EMPTY  0\nh      EMPTY  0\n",
      stderr: "",
    });
    expect(JSON.parse((await sluice("group list --format json")).stdout)).toEqual([
      { group: "g", state: "EMPTY", members: 0 },
      { group: "h", state: "EMPTY", members: 0 },
    ]);
    expect(await sluice("group delete g")).toEqual({
      code: 0,
      stdout: "deleted consumer group g\n",
      stderr: "",
    });
    expect((await sluice("group list")).stdout).toBe("GROUP  STATE  MEMBERS\nh      EMPTY  0\n");
    for (const args of ["group describe g", "group delete g", "group reset g --to-earliest"]) {
      expect(await sluice(args), args).toEqual({
        code: 1,
        stdout: "",
        stderr: "sluice: consumer group not found: g (HTTP 404)\n",
      });
    }
  });

  it("refuses wrong usage with exit 2, and has help for the group and each command", async () => {
    for (const args of [
      "group",
      "group frob",
      "group describe",
      "group describe a b",
      "group reset g",
      "group reset g --to-earliest --to-latest",
      "group reset g --to-offset x",
      "group reset g --to-datetime soon",
      "group reset g --to-earliest --dry-run --execute",
      "group delete",
      "consume -g g",
      "consume -g g orders -p 0",
      "consume -g g orders -o 5",
    ]) {
      const result = await sluice(args);
      expect(result.code, args).toBe(2);
      expect(result.stderr, args).toMatch(/^sluice: [^\n]+\n$/);
    }
    const help = await sluice("group --help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(
      /^list, describe, delete consumer groups.*\n\nUsage: sluice group <subcommand>/,
    );
    for (const word of ["list", "describe", "delete", "reset"])
      expect(help.stdout).toContain(`sluice group ${word}`);
    expect((await sluice("group reset --help")).stdout).toContain("--to-datetime T");
    expect((await sluice("consume --help")).stdout).toContain("-g, --group GROUP");
    expect((await sluice("--help")).stdout).toContain("group describe");
  });
});
