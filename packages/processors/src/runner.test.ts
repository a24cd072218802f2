import { Engine, PENDING_UPLOAD_MS } from "@sluice/engine";
import { MaintenanceRunner } from "@sluice/maintenance";
import type { MetadataStore } from "@sluice/storage";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock, withPut } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";
import { bytes, header, readAll, runWithClock, type TestBed, testBed, text } from "./test-support.js";

let clock: SimulatedClock;
let metadata: MemoryMetadataStore;
let objects: MemoryObjectStore;
let bed: TestBed;

beforeEach(async () => {
  clock = new SimulatedClock({ sleeps: "wait" });
  metadata = new MemoryMetadataStore();
  objects = new MemoryObjectStore();
  bed = testBed(objects, metadata, clock);
  await bed.engine.createTopic({ name: "orders", partitions: 2 });
  await bed.engine.createTopic({ name: "enriched", partitions: 2 });
  await bed.engine.createTopic({ name: "dead", partitions: 1 });
});

async function produce(values: { key?: string; value: string; partition?: number }[]): Promise<void> {
  await bed.engine.append({
    topic: "orders",
    records: values.map((entry) => ({
      key: entry.key === undefined ? null : bytes(entry.key),
      value: bytes(entry.value),
      ...(entry.partition === undefined ? {} : { partition: entry.partition }),
    })),
  });
}

const definition = (overrides: Record<string, unknown> = {}) => ({
  name: "enrich",
  topics: ["orders"],
  handler: { type: "module", module: "enrich" },
  output_topics: ["enriched"],
  dead_letter_topic: "dead",
  starting_position: "EARLIEST",
  retry: { max_attempts: 3, backoff_ms: 1_000, max_backoff_ms: 60_000 },
  ...overrides,
});

/** Upper-cases each value; values starting with "poison" always fail (thrown), "fail" ones are named. */
function enrichModule(calls: { offsets: number[]; attempt: number }[] = []): void {
  bed.modules.set("enrich", (batch) => {
    calls.push({ offsets: batch.records.map((record) => record.offset), attempt: batch.attempt });
    if (batch.records.some((record) => text(record.value)!.startsWith("poison")))
      throw new Error("poison in the batch");
    const failures = batch.records
      .filter((record) => text(record.value)!.startsWith("fail"))
      .map((r) => r.offset);
    return {
      failures,
      outputs: batch.records.map((record) => ({
        key: record.key,
        value: text(record.value)!.toUpperCase(),
        sourceOffset: record.offset,
      })),
    };
  });
}

/** What the "enrich" processor's description says of one of its partitions. */
async function partitionProgress(partition: number) {
  return (await bed.admin.describe("enrich")).partitions.find((entry) => entry.partition === partition);
}

async function outputValues(topic = "enriched"): Promise<string[]> {
  return (await readAll(bed.engine, topic)).map((record) => text(record.value)!);
}

describe("a partition runner", () => {
  it("appends the handler's outputs and moves the checkpoint, once, however often it runs", async () => {
    enrichModule();
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await produce([
      { value: "a", partition: 0 },
      { value: "b", partition: 0 },
      { value: "c", partition: 0 },
    ]);
    expect((await runWithClock(await bed.runner("enrich", "orders", 0), clock)).outcome).toBe("drained");
    expect(await outputValues()).toEqual(["A", "B", "C"]);
    // Again: nothing new, nothing appended twice.
    expect((await runWithClock(await bed.runner("enrich", "orders", 0), clock)).outcome).toBe("drained");
    expect(await outputValues()).toEqual(["A", "B", "C"]);
    expect(await partitionProgress(0)).toMatchObject({
      checkpoint: 3,
      highWatermark: 3,
      lag: 0,
      processed: 3,
      deadLettered: 0,
    });
  });

  it("does not start a second holder while one holds the lease", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    bed.modules.set("enrich", async (batch) => {
      await gate;
      return { outputs: batch.records.map((record) => ({ value: record.value })) };
    });
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await produce([{ value: "a", partition: 0 }]);
    const first = (await bed.runner("enrich", "orders", 0)).run();
    await clock.advance(10);
    expect((await (await bed.runner("enrich", "orders", 0)).run()).outcome).toBe("held");
    release();
    expect((await first).outcome).toBe("drained");
    expect(await outputValues()).toEqual(["a"]);
  });

  it("retries a failing record with backoff, then dead-letters it with headers naming it, and moves on", async () => {
    const calls: { offsets: number[]; attempt: number }[] = [];
    enrichModule(calls);
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await produce([
      { value: "a", partition: 0 },
      { value: "fail-b", partition: 0 },
      { value: "c", partition: 0 },
    ]);
    const started = clock.now();
    const result = await runWithClock(await bed.runner("enrich", "orders", 0), clock, 50);
    expect(result.outcome).toBe("drained");
    expect(await outputValues()).toEqual(["A", "C"]);
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => text(record.value))).toEqual(["fail-b"]);
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.processor)).toBe("enrich");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.topic)).toBe("orders");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.partition)).toBe("0");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.offset)).toBe("1");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.attempts)).toBe("3");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.error)).toMatch(/offset 1 as failed/);
    // First call: all three; then the failing record twice more (attempts 2 and 3), then "c".
    expect(calls.map((call) => [call.offsets[0], call.attempt])).toEqual([
      [0, 1],
      [1, 2],
      [1, 3],
      [2, 1],
    ]);
    // Backoff 1 s then 2 s: the record waited about three seconds, no more.
    const elapsed = clock.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(3_000);
    expect(elapsed).toBeLessThan(3_500);
  });

  it("bisects a batch that throws until the poison record is alone", async () => {
    const calls: { offsets: number[]; attempt: number }[] = [];
    enrichModule(calls);
    await bed.admin.create(definition({ bisect_on_error: true, batch_size: 8 }), {
      allowModuleHandlers: true,
    });
    await produce(
      Array.from({ length: 8 }, (_, index) => ({
        value: index === 5 ? "poison" : `r${index}`,
        partition: 0,
      })),
    );
    await runWithClock(await bed.runner("enrich", "orders", 0), clock, 50);
    expect(await outputValues()).toEqual(["R0", "R1", "R2", "R3", "R4", "R6", "R7"]);
    expect((await readAll(bed.engine, "dead")).map((record) => text(record.value))).toEqual(["poison"]);
    const sizes = calls.map((call) => call.offsets.length);
    expect(sizes.slice(0, 3)).toEqual([8, 4, 4]);
    // Narrowing down costs no attempts: the poison record alone was tried exactly max_attempts times.
    expect(calls.filter((call) => call.offsets.length === 1 && call.offsets[0] === 5)).toHaveLength(3);
  });

  it("under key ordering, only the failing key waits; the others flow and keep their order", async () => {
    const handledAt = new Map<string, number>();
    bed.modules.set("enrich", (batch) => {
      const failures = batch.records
        .filter((record) => text(record.value)!.startsWith("fail"))
        .map((r) => r.offset);
      for (const record of batch.records)
        if (!failures.includes(record.offset)) handledAt.set(text(record.value)!, clock.now());
      return {
        failures,
        outputs: batch.records.map((record) => ({
          key: record.key,
          value: text(record.value)!.toUpperCase(),
          sourceOffset: record.offset,
        })),
      };
    });
    await bed.admin.create(
      definition({ ordering: "KEY", parallelism: 2, retry: { max_attempts: 3, backoff_ms: 10_000 } }),
      {
        allowModuleHandlers: true,
      },
    );
    await produce([
      { key: "alice", value: "a1", partition: 0 },
      { key: "bob", value: "fail-b1", partition: 0 },
      { key: "alice", value: "a2", partition: 0 },
      { key: "bob", value: "b2", partition: 0 },
      { key: "carol", value: "c1", partition: 0 },
    ]);
    const started = clock.now();
    await runWithClock(await bed.runner("enrich", "orders", 0), clock, 100);
    const outputs = await readAll(bed.engine, "enriched");
    const byKey = (key: string) =>
      outputs.filter((record) => text(record.key) === key).map((record) => text(record.value));
    expect(byKey("alice")).toEqual(["A1", "A2"]);
    expect(byKey("carol")).toEqual(["C1"]);
    expect(byKey("bob")).toEqual(["B2"]);
    expect((await readAll(bed.engine, "dead")).map((record) => text(record.value))).toEqual(["fail-b1"]);
    // Alice and carol went through at once; bob's second record waited for its first: 10 s + 20 s of retries.
    expect(handledAt.get("a2")! - started).toBeLessThan(1_000);
    expect(handledAt.get("c1")! - started).toBeLessThan(1_000);
    expect(handledAt.get("b2")! - started).toBeGreaterThanOrEqual(30_000);
  });

  it("skips records the filter does not pass, without a handler call", async () => {
    const calls: { offsets: number[]; attempt: number }[] = [];
    enrichModule(calls);
    await bed.admin.create(definition({ filter: { value: { kind: "order" } } }), {
      allowModuleHandlers: true,
    });
    await produce([
      { value: JSON.stringify({ kind: "order", id: 1 }), partition: 0 },
      { value: JSON.stringify({ kind: "refund", id: 2 }), partition: 0 },
      { value: "not json", partition: 0 },
    ]);
    await runWithClock(await bed.runner("enrich", "orders", 0), clock);
    expect(calls.flatMap((call) => call.offsets)).toEqual([0]);
    const details = await bed.admin.describe("enrich");
    expect(details.partitions[0]).toMatchObject({ checkpoint: 3, processed: 1, filtered: 2 });
  });
});

/** Holds every transaction (commits, lease writes) until released, as a process frozen mid-write would. */
class HoldingWrites {
  private held: (() => void)[] = [];
  private holding = false;
  readonly metadata: MetadataStore;
  constructor(inner: MetadataStore) {
    this.metadata = {
      get: (key) => inner.get(key),
      query: (query) => inner.query(query),
      put: (item, options) => inner.put(item, options),
      update: (key, changes, options) => inner.update(key, changes, options),
      delete: (key, options) => inner.delete(key, options),
      transactWrite: async (operations) => {
        if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
        return inner.transactWrite(operations);
      },
    };
  }
  hold(): void {
    this.holding = true;
  }
  release(): void {
    this.holding = false;
    for (const resume of this.held.splice(0)) resume();
  }
}

describe("a partition runner over gaps", () => {
  it("passes offsets that hold no record (a failed parallel commit's), checkpointing past them", async () => {
    enrichModule();
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    let failNext = false;
    const failing = withPut(objects, async (key, body, options) => {
      if (failNext && body.byteLength > 0) {
        failNext = false;
        throw new Error("upload failed (test)");
      }
      return objects.put(key, body, options);
    });
    const writer = new Engine({ objects: failing, metadata, clock, parallelCommit: true });
    const write = (values: string[]) =>
      writer.append({
        topic: "orders",
        records: values.map((value) => ({ key: null, value: bytes(value), partition: 0 })),
      });
    await write(["a"]);
    failNext = true;
    await expect(write(["lost", "lost too"])).rejects.toThrow(/upload failed/);
    await write(["d"]);
    failNext = true;
    await expect(write(["lost at the end"])).rejects.toThrow(/upload failed/);
    await clock.advance(PENDING_UPLOAD_MS);
    expect((await runWithClock(await bed.runner("enrich", "orders", 0), clock)).outcome).toBe("drained");
    expect(await outputValues()).toEqual(["A", "D"]);
    expect(await partitionProgress(0)).toMatchObject({
      checkpoint: 5,
      highWatermark: 5,
      lag: 0,
      processed: 2,
    });
  });
});

describe("a partition runner over a key-compacted topic", () => {
  it("passes the offsets key compaction emptied, the partition's last ones included", async () => {
    enrichModule();
    await bed.engine.createTopic({
      name: "ledger",
      partitions: 1,
      configs: { "cleanup.policy": "compact", "delete.retention.ms": "0", "min.compaction.lag.ms": "0" },
    });
    await bed.admin.create(definition({ topics: ["ledger"] }), { allowModuleHandlers: true });
    // Only c1 outlives compaction: a and b end with tombstones, which go too.
    const writes: [string, string | null][] = [
      ["a", "a1"],
      ["c", "c1"],
      ["b", "b1"],
      ["a", "a2"],
      ["a", null],
      ["b", null],
    ];
    for (const [key, value] of writes) {
      await bed.engine.append({
        topic: "ledger",
        records: [{ key: bytes(key), value: value === null ? null : bytes(value), partition: 0 }],
      });
    }
    const maintenance = new MaintenanceRunner({
      objects,
      metadata,
      clock,
      settings: { segmentSettleMs: 0 },
      owner: "test",
    });
    const topic = await bed.engine.describeTopic("ledger");
    for (let pass = 0; pass < 2; pass++) {
      await clock.advance(60_000);
      const report = await maintenance.runPartition(topic, 0, undefined, ["compaction"]);
      expect(report.failures).toEqual([]);
    }
    const left = await bed.engine.fetch({ topic: "ledger", partition: 0, offset: 0 });
    expect(left.records.map((record) => [record.offset, text(record.value)])).toEqual([[1, "c1"]]);
    expect(left.nextOffset).toBe(writes.length);

    // Bounded: a runner that stops below the emptied offsets never drains.
    expect((await runWithClock(await bed.runner("enrich", "ledger", 0), clock, 100, 5_000)).outcome).toBe(
      "drained",
    );
    expect(await outputValues()).toEqual(["C1"]);
    expect(await partitionProgress(0)).toMatchObject({
      checkpoint: writes.length,
      highWatermark: writes.length,
      lag: 0,
      processed: 1,
    });
  });
});

describe("a runner that lost its lease", () => {
  it("cannot commit: a holder frozen mid-commit past its lease is fenced, and the new holder's outputs stand alone", async () => {
    const answers: (() => void)[] = [];
    bed.modules.set("enrich", async (batch) => {
      await new Promise<void>((resolve) => answers.push(resolve));
      return { outputs: batch.records.map((record) => ({ value: text(record.value)!.toUpperCase() })) };
    });
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await produce([{ value: "a", partition: 0 }]);
    const frozen = new HoldingWrites(metadata);
    const first = await bed.runner("enrich", "orders", 0, {
      runnerId: "first",
      metadata: frozen.metadata,
      leaseTtlMs: 1_000,
    });
    const firstRun = first.run();
    await clock.advance(10);
    expect(answers).toHaveLength(1);
    // The first runner's commit is on its way when its process freezes.
    frozen.hold();
    answers.shift()!();
    await clock.advance(10);
    await clock.advance(2_000);
    const second = await bed.runner("enrich", "orders", 0, { runnerId: "second", leaseTtlMs: 1_000 });
    const secondRun = second.run();
    await clock.advance(10);
    expect(answers).toHaveLength(1);
    // The first wakes before the second has committed anything: its commit must fail.
    frozen.release();
    expect((await firstRun).outcome).toBe("fenced");
    answers.shift()!();
    await clock.advance(10);
    expect((await secondRun).outcome).toBe("drained");
    expect(await outputValues()).toEqual(["A"]);
    const item = await metadata.get({ pk: "processor#enrich", sk: "partition#orders#0000000000" });
    expect(item?.committedBy).toBe("second");
  });

  it("carries a record's attempts over to the next runner", async () => {
    const calls: { offsets: number[]; attempt: number }[] = [];
    enrichModule(calls);
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await produce([
      { value: "a", partition: 0 },
      { value: "fail-b", partition: 0 },
    ]);
    // The first runner gives up once only a retry 1 s away is left (it waits for none).
    const first = await bed.runner("enrich", "orders", 0, { retryHoldMs: 0 });
    expect((await runWithClock(first, clock)).outcome).toBe("waiting");
    const described = await bed.admin.describe("enrich");
    expect(described.partitions[0]!.retries).toEqual([
      expect.objectContaining({ offset: 1, attempts: 1, error: "the handler reported offset 1 as failed" }),
    ]);
    expect((await runWithClock(await bed.runner("enrich", "orders", 0), clock, 50)).outcome).toBe("drained");
    expect(calls.map((call) => [call.offsets[0], call.attempt])).toEqual([
      [0, 1],
      [1, 2],
      [1, 3],
    ]);
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => header(record, DEAD_LETTER_HEADERS.attempts))).toEqual(["3"]);
  });
});

describe("settings a runner honours", () => {
  it("waits up to the batching window for a short batch, then hands it over", async () => {
    const calls: { offsets: number[]; at: number }[] = [];
    bed.modules.set("enrich", (batch) => {
      calls.push({ offsets: batch.records.map((record) => record.offset), at: clock.now() });
      return { outputs: [] };
    });
    await bed.admin.create(definition({ batch_size: 3, batch_window_ms: 5_000 }), {
      allowModuleHandlers: true,
    });
    await produce([{ value: "a", partition: 0 }]);
    const started = clock.now();
    const runner = await bed.runner("enrich", "orders", 0, { lingerMs: 60_000 });
    const running = runner.run();
    await clock.advance(2_000);
    expect(calls).toEqual([]);
    // Two more records fill the batch before the window ends: it goes at once, all three together.
    await produce([
      { value: "b", partition: 0 },
      { value: "c", partition: 0 },
    ]);
    runner.wake(); // as the commit notifier would
    await clock.advance(10);
    expect(calls.map((call) => [call.offsets, call.at - started])).toEqual([[[0, 1, 2], 2_000]]);
    // A lone record waits for the whole window.
    await produce([{ value: "d", partition: 0 }]);
    runner.wake();
    await clock.advance(4_900);
    expect(calls).toHaveLength(1);
    await clock.advance(200);
    expect(calls.map((call) => [call.offsets, call.at - started])).toEqual([
      [[0, 1, 2], 2_000],
      [[3], 2_010 + 5_000],
    ]);
    runner.stop();
    await clock.advance(10);
    expect((await running).outcome).toBe("stopped");
  });

  it("keeps a batch within batch_max_bytes; a record larger than that goes alone", async () => {
    const calls: number[][] = [];
    bed.modules.set("enrich", (batch) => {
      calls.push(batch.records.map((record) => record.offset));
      return { outputs: [] };
    });
    await bed.admin.create(definition({ batch_size: 100, batch_max_bytes: 1_024 }), {
      allowModuleHandlers: true,
    });
    // 400 bytes of value (and a little overhead) each: two fit in 1 KiB, three do not.
    const small = "x".repeat(400);
    await produce([
      ...Array.from({ length: 5 }, () => ({ value: small, partition: 0 })),
      { value: "y".repeat(2_000), partition: 0 },
      { value: small, partition: 0 },
    ]);
    expect((await runWithClock(await bed.runner("enrich", "orders", 0), clock)).outcome).toBe("drained");
    expect(calls).toEqual([[0, 1], [2, 3], [4], [5], [6]]);
  });

  it("dead-letters a failing record older than max_record_age_ms at once", async () => {
    const calls: { offsets: number[]; attempt: number }[] = [];
    enrichModule(calls);
    await bed.admin.create(
      definition({ retry: { max_attempts: 5, backoff_ms: 1_000, max_record_age_ms: 60_000 } }),
      {
        allowModuleHandlers: true,
      },
    );
    await bed.engine.append({
      topic: "orders",
      records: [{ key: null, value: bytes("fail-old"), partition: 0, timestamp: clock.now() - 120_000 }],
    });
    await runWithClock(await bed.runner("enrich", "orders", 0), clock);
    expect(calls).toHaveLength(1);
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => header(record, DEAD_LETTER_HEADERS.attempts))).toEqual(["1"]);
  });

  it("fails the records whose outputs go to a topic that no longer exists, and dead-letters them", async () => {
    enrichModule();
    await bed.admin.create(definition(), { allowModuleHandlers: true });
    await bed.engine.deleteTopic("enriched");
    await produce([{ value: "a", partition: 0 }]);
    await runWithClock(await bed.runner("enrich", "orders", 0), clock, 100);
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => text(record.value))).toEqual(["a"]);
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.error)).toMatch(
      /goes to topic enriched, which does not exist/,
    );
  });

  it("starts a processor created AT_TIMESTAMP at the first record at or after it", async () => {
    enrichModule();
    await produce([{ value: "old", partition: 0 }]);
    await clock.advance(10_000);
    const from = clock.now();
    await produce([{ value: "new", partition: 0 }]);
    await bed.admin.create(definition({ starting_position: "AT_TIMESTAMP", starting_timestamp: from }), {
      allowModuleHandlers: true,
    });
    await runWithClock(await bed.runner("enrich", "orders", 0), clock);
    expect(await outputValues()).toEqual(["NEW"]);
  });
});
