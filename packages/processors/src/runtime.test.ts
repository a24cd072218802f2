import { encodeRecordBatch } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessorAdmin } from "./admin.js";
import { ProcessorRuntime } from "./runtime.js";
import { bytes, ModuleTable, readAll, text } from "./test-support.js";

let clock: SimulatedClock;
let metadata: MemoryMetadataStore;
let objects: MemoryObjectStore;
let engine: Engine;
let modules: ModuleTable;
const runtimes: ProcessorRuntime[] = [];

beforeEach(async () => {
  clock = new SimulatedClock({ sleeps: "wait" });
  metadata = new MemoryMetadataStore();
  objects = new MemoryObjectStore();
  engine = new Engine({ objects, metadata, clock });
  modules = new ModuleTable();
  modules.set("copy", (batch) => ({ outputs: batch.records.map((record) => ({ value: record.value })) }));
  await engine.createTopic({ name: "orders", partitions: 2 });
  await engine.createTopic({ name: "copies", partitions: 1 });
  await new ProcessorAdmin({ engine, metadata, clock }).create(
    {
      name: "copy",
      topics: ["orders"],
      handler: { type: "module", module: "copy" },
      output_topics: ["copies"],
    },
    { allowModuleHandlers: true },
  );
});

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.stop()));
});

function runtime(
  over: Engine,
  options: { sweepIntervalMs?: number; lingerMs?: number } = {},
): ProcessorRuntime {
  const created = new ProcessorRuntime({
    engine: over,
    metadata,
    clock,
    handlers: modules.invoker(),
    sweepIntervalMs: options.sweepIntervalMs ?? 3_600_000,
    lingerMs: options.lingerMs ?? 0,
  });
  runtimes.push(created);
  return created;
}

async function copies(): Promise<string[]> {
  return (await readAll(engine, "copies")).map((record) => text(record.value)!);
}

/** Moves the clock on in small steps until `done` holds (at most `limitMs`). */
async function until(done: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = clock.now();
  while (!(await done())) {
    if (clock.now() - started >= limitMs) throw new Error(`not done within ${limitMs} ms of simulated time`);
    await clock.advance(10);
  }
  return clock.now() - started;
}

describe("the processor runtime", () => {
  it("runs a processor on a commit in this process at once, without waiting for the sweep", async () => {
    const local = runtime(engine);
    local.start();
    await clock.advance(10);
    await engine.append({ topic: "orders", records: [{ key: null, value: bytes("a"), partition: 1 }] });
    const tookMs = await until(async () => (await copies()).length === 1, 60_000);
    expect(tookMs).toBeLessThan(1_000);
    expect(await copies()).toEqual(["a"]);
  });

  it("runs a processor at once on record batches appended as a producer encoded them", async () => {
    const local = runtime(engine);
    local.start();
    await clock.advance(10);
    const batch = await encodeRecordBatch([{ key: null, value: bytes("binary") }], {
      compression: "none",
      defaultTimestamp: clock.now(),
      timestampType: "create",
    });
    await engine.appendBatches({ topic: "orders", batches: batch, partitions: [0] });
    const tookMs = await until(async () => (await copies()).length === 1, 60_000);
    expect(tookMs).toBeLessThan(1_000);
    expect(await copies()).toEqual(["binary"]);
  });

  it("finds a commit made by another process with its sweep", async () => {
    const local = runtime(engine, { sweepIntervalMs: 5_000 });
    local.start();
    await clock.advance(10);
    // Another process's engine: its commits reach no notifier here.
    await new Engine({ objects, metadata, clock }).append({
      topic: "orders",
      records: [{ key: null, value: bytes("elsewhere"), partition: 0 }],
    });
    await clock.advance(4_000);
    expect(await copies()).toEqual([]);
    await until(async () => (await copies()).length === 1, 10_000);
    expect(await copies()).toEqual(["elsewhere"]);
  });

  it("loses no wake-up that found the lease held elsewhere: the holder looks again after releasing", async () => {
    let answer: () => void = () => undefined;
    let calls = 0;
    modules.set("copy", async (batch) => {
      calls++;
      if (calls === 1) await new Promise<void>((resolve) => (answer = resolve));
      return { outputs: batch.records.map((record) => ({ value: record.value })) };
    });
    const holderEngine = new Engine({ objects, metadata, clock });
    const holder = runtime(holderEngine);
    holder.start();
    await clock.advance(10);
    await holderEngine.append({
      topic: "orders",
      records: [{ key: null, value: bytes("first"), partition: 0 }],
    });
    await clock.advance(10);
    expect(calls).toBe(1);
    // A second process commits; its runtime is woken, finds the lease held and lets go.
    const otherEngine = new Engine({ objects, metadata, clock });
    const other = runtime(otherEngine);
    other.start();
    await clock.advance(10);
    await otherEngine.append({
      topic: "orders",
      records: [{ key: null, value: bytes("second"), partition: 0 }],
    });
    await clock.advance(10);
    answer();
    await until(async () => (await copies()).length === 2, 10_000);
    expect(await copies()).toEqual(["first", "second"]);
  });

  it("stops its runners, which release their leases", async () => {
    const local = runtime(engine, { lingerMs: 60_000 });
    local.start();
    await clock.advance(10);
    await engine.append({ topic: "orders", records: [{ key: null, value: bytes("a"), partition: 0 }] });
    await until(async () => (await copies()).length === 1, 1_000);
    const held = await metadata.get({ pk: "processor#copy", sk: "partition#orders#0000000000" });
    expect(held?.leaseOwner).toBe(local.runnerId);
    await local.stop();
    const released = await metadata.get({ pk: "processor#copy", sk: "partition#orders#0000000000" });
    expect(released?.leaseOwner).toBeUndefined();
  });
});
