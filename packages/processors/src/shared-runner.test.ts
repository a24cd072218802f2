import { InvalidArgumentError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { ShareGroups } from "@sluice/queues";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessorAdmin } from "./admin.js";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";
import { parseProcessorJson, toProcessorJson } from "./definition.js";
import type { RunOutcome } from "./runner.js";
import { ProcessorRuntime } from "./runtime.js";
import { SHARED_GROUP_PREFIX, sharedGroupId } from "./shared-group.js";
import { SharedRunner } from "./shared-runner.js";
import { ProcessorStore } from "./store.js";
import { bytes, header, ModuleTable, readAll, text } from "./test-support.js";

let clock: SimulatedClock;
let metadata: MemoryMetadataStore;
let engine: Engine;
let modules: ModuleTable;
let admin: ProcessorAdmin;
let shareGroups: ShareGroups;
const runtimes: ProcessorRuntime[] = [];

beforeEach(async () => {
  clock = new SimulatedClock({ sleeps: "wait" });
  metadata = new MemoryMetadataStore();
  engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  modules = new ModuleTable();
  shareGroups = new ShareGroups({ engine, metadata, clock });
  admin = new ProcessorAdmin({ engine, metadata, clock, shareGroups });
  await engine.createTopic({ name: "orders", partitions: 2 });
  await engine.createTopic({ name: "single", partitions: 1 });
  await engine.createTopic({ name: "copies", partitions: 1 });
  await engine.createTopic({ name: "dead", partitions: 1 });
});

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.stop()));
});

async function create(json: Record<string, unknown>): Promise<void> {
  await admin.create(
    {
      handler: { type: "module", module: String(json.name) },
      output_topics: ["copies"],
      starting_position: "EARLIEST",
      ordering: "SHARED",
      ...json,
    },
    { allowModuleHandlers: true },
  );
}

async function runner(name: string, memberId = "runtime-a"): Promise<SharedRunner> {
  const store = new ProcessorStore(metadata);
  const definition = await store.get(name);
  if (!definition) throw new Error(`no processor ${name}`);
  return new SharedRunner(
    { engine, clock, handlers: modules.invoker(), store, shareGroups, memberId },
    definition,
  );
}

/** Runs the runner to its end, moving the simulated clock on `stepMs` at a time. */
async function runToEnd(shared: SharedRunner, stepMs = 10, limitMs = 600_000): Promise<RunOutcome> {
  let outcome: RunOutcome | undefined;
  let failure: unknown;
  shared.run().then(
    (result) => {
      outcome = result;
    },
    (error: unknown) => {
      failure = error;
    },
  );
  const startedMs = clock.now();
  while (outcome === undefined && failure === undefined) {
    if (clock.now() - startedMs > limitMs) throw new Error(`the runner did not end within ${limitMs} ms`);
    await clock.advance(stepMs);
  }
  if (failure !== undefined) throw failure;
  return outcome!;
}

async function produce(topic: string, values: string[], partition?: number): Promise<void> {
  await engine.append({
    topic,
    records: values.map((value, index) => ({
      key: null,
      value: bytes(value),
      partition: partition ?? index % 2,
    })),
  });
}

const values = async (topic: string) => (await readAll(engine, topic)).map((record) => text(record.value)!);

describe("a shared processor's definition", () => {
  it("takes ordering SHARED with a parallelism, and gives it back as it was given", () => {
    const spec = parseProcessorJson({
      name: "p",
      topics: ["t"],
      handler: { type: "webhook", url: "http://127.0.0.1:1/x" },
      ordering: "SHARED",
      parallelism: 8,
    });
    expect(spec.ordering).toEqual({ kind: "shared", parallelism: 8 });
    expect(toProcessorJson(spec)).toMatchObject({ ordering: "SHARED", parallelism: 8 });
  });

  it.each([
    [{ batch_window_ms: 100 }, "batch_window_ms"],
    [{ bisect_on_error: true }, "bisect_on_error"],
    [{ retry: { max_attempts: 100 } }, "retry.max_attempts"],
    [{ parallelism: 101 }, "parallelism"],
  ])("refuses %j, a setting a share group cannot honour, naming the field", (extra, field) => {
    const parse = () =>
      parseProcessorJson({
        name: "p",
        topics: ["t"],
        handler: { type: "webhook", url: "http://127.0.0.1:1/x" },
        ordering: "SHARED",
        ...extra,
      });
    expect(parse).toThrow(InvalidArgumentError);
    expect(parse).toThrow(new RegExp(`^${field.replace(".", "\\.")}:`));
  });
});

describe("the shared runner", () => {
  it("handles every record once when the handler succeeds, and settles the group", async () => {
    const seen: number[] = [];
    modules.set("copy", (batch) => {
      seen.push(...batch.records.map((record) => record.offset));
      return { outputs: batch.records.map((record) => ({ value: record.value })) };
    });
    await create({ name: "copy", topics: ["orders"], batch_size: 3, parallelism: 3 });
    const sent = Array.from({ length: 20 }, (_, index) => `r${index}`);
    await produce("orders", sent);

    expect(await runToEnd(await runner("copy"))).toBe("drained");

    expect((await values("copies")).sort()).toEqual([...sent].sort());
    expect(seen).toHaveLength(20);
    const described = await admin.describe("copy");
    expect(described.shared?.groupId).toBe(sharedGroupId(described.uid));
    expect(described.shared?.groupId.startsWith(SHARED_GROUP_PREFIX)).toBe(true);
    expect(described.lag).toBe(0);
    expect(
      described.shared?.partitions.map((partition) => [partition.startOffset, partition.inFlight]),
    ).toEqual([
      [10, 0],
      [10, 0],
    ]);
  });

  it("redelivers a failed record with its attempt count, after the retry policy's backoff", async () => {
    const attempts: { attempt: number; atMs: number }[] = [];
    modules.set("flaky", (batch) => {
      const record = batch.records[0]!;
      if (text(record.value) !== "bad") return { outputs: [{ value: record.value }] };
      attempts.push({ attempt: batch.attempt, atMs: clock.now() });
      if (batch.attempt < 3) throw new Error(`failed on attempt ${batch.attempt}`);
      return { outputs: [{ value: bytes("bad-fixed") }] };
    });
    await create({
      name: "flaky",
      topics: ["single"],
      batch_size: 1,
      retry: { max_attempts: 5, backoff_ms: 1_000, max_backoff_ms: 10_000 },
    });
    await produce("single", ["a", "bad", "b"], 0);

    expect(await runToEnd(await runner("flaky"))).toBe("drained");

    expect(attempts.map((entry) => entry.attempt)).toEqual([1, 2, 3]);
    // The second try waits the backoff, the third twice it.
    expect(attempts[1]!.atMs - attempts[0]!.atMs).toBeGreaterThanOrEqual(1_000);
    expect(attempts[2]!.atMs - attempts[1]!.atMs).toBeGreaterThanOrEqual(2_000);
    expect((await values("copies")).sort()).toEqual(["a", "b", "bad-fixed"]);
  });

  it("dead-letters a poison record with the processor's headers once its attempts are spent", async () => {
    modules.set("poison", (batch) => ({
      outputs: batch.records
        .filter((record) => text(record.value) !== "poison")
        .map((record) => ({ value: record.value, sourceOffset: record.offset })),
      failures: batch.records
        .filter((record) => text(record.value) === "poison")
        .map((record) => ({ offset: record.offset, error: "cannot parse poison" })),
    }));
    await create({
      name: "poison",
      topics: ["single"],
      batch_size: 10,
      dead_letter_topic: "dead",
      retry: { max_attempts: 3, backoff_ms: 0 },
    });
    await produce("single", ["a", "poison", "b"], 0);

    expect(await runToEnd(await runner("poison"))).toBe("drained");

    expect((await values("copies")).sort()).toEqual(["a", "b"]);
    const dead = await readAll(engine, "dead");
    expect(dead).toHaveLength(1);
    expect(text(dead[0]!.value)).toBe("poison");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.processor)).toBe("poison");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.topic)).toBe("single");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.partition)).toBe("0");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.offset)).toBe("1");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.attempts)).toBe("3");
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.error)).toBe("cannot parse poison");
    expect((await admin.describe("poison")).lag).toBe(0);
  });

  it("has more batches in flight than the topic has partitions", async () => {
    let inFlight = 0;
    let most = 0;
    modules.set("slow", async (batch) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await clock.sleep(100);
      inFlight--;
      return { outputs: batch.records.map((record) => ({ value: record.value })) };
    });
    await create({ name: "slow", topics: ["single"], batch_size: 1, parallelism: 4 });
    await produce(
      "single",
      Array.from({ length: 12 }, (_, index) => `r${index}`),
      0,
    );

    expect(await runToEnd(await runner("slow"))).toBe("drained");

    expect(most).toBe(4);
    expect(await values("copies")).toHaveLength(12);
  });

  it("stops acquiring once paused, leaves the group, and a reset then moves its start", async () => {
    const seen: string[] = [];
    modules.set("pausable", (batch) => {
      seen.push(...batch.records.map((record) => text(record.value)!));
      return { outputs: [] };
    });
    await create({ name: "pausable", topics: ["single"], batch_size: 1 });
    await produce("single", ["a", "b"], 0);
    expect(await runToEnd(await runner("pausable"))).toBe("drained");
    expect(seen).toEqual(["a", "b"]);

    await admin.pause("pausable");
    await produce("single", ["c"], 0);
    await clock.advance(2_000);
    expect(await runToEnd(await runner("pausable"))).toBe("paused");
    expect(seen).toEqual(["a", "b"]);
    expect((await admin.describe("pausable")).shared?.members).toBe(0);

    await admin.reset("pausable", { to: "earliest" });
    expect((await admin.describe("pausable")).shared?.partitions[0]?.startOffset).toBe(0);
    await admin.resume("pausable");
    expect(await runToEnd(await runner("pausable"))).toBe("drained");
    expect(seen).toEqual(["a", "b", "a", "b", "c"]);
  });

  it("refuses to reset a shared processor to per-partition offsets, naming the field", async () => {
    modules.set("r", () => ({ outputs: [] }));
    await create({ name: "r", topics: ["single"] });
    await admin.pause("r");
    await expect(
      admin.reset("r", { to: "offsets", offsets: [{ topic: "single", partition: 0, offset: 0 }] }),
    ).rejects.toThrow(/^offsets:/);
  });

  it("refuses changing a processor to or from SHARED, or its group's settings", async () => {
    modules.set("c", () => ({ outputs: [] }));
    await create({ name: "c", topics: ["single"] });
    const base = {
      name: "c",
      topics: ["single"],
      handler: { type: "module", module: "c" },
      output_topics: ["copies"],
      starting_position: "EARLIEST",
    };
    await expect(
      admin.apply({ ...base, ordering: "PARTITION" }, { allowModuleHandlers: true }),
    ).rejects.toThrow(/^ordering:/);
    await expect(
      admin.apply({ ...base, ordering: "SHARED", retry: { max_attempts: 7 } }, { allowModuleHandlers: true }),
    ).rejects.toThrow(/fixed when it is created/);
    expect(
      await admin.apply({ ...base, ordering: "SHARED", parallelism: 9 }, { allowModuleHandlers: true }),
    ).toBe("updated");
  });

  it("ends when its processor is deleted, whose share group goes with it", async () => {
    modules.set("gone", () => ({ outputs: [] }));
    await create({ name: "gone", topics: ["single"] });
    await produce("single", ["a"], 0);
    const groupId = (await admin.describe("gone")).shared!.groupId;
    expect((await shareGroups.list()).map((group) => group.groupId)).toContain(groupId);
    // Read its definition just before the deletion: it must not bring the group back by joining.
    const shared = await runner("gone");
    await admin.delete("gone");
    expect(await runToEnd(shared)).toBe("deleted");
    expect((await shareGroups.list()).map((group) => group.groupId)).not.toContain(groupId);
    const leftovers = await metadata.query({ pk: `share-group#${groupId}` });
    expect(leftovers.items).toEqual([]);
  });

  it("leaves the group once paused, at the runtime's next sweep, so a reset finds it empty", async () => {
    modules.set("swept", (batch) => ({ outputs: batch.records.map((record) => ({ value: record.value })) }));
    await create({ name: "swept", topics: ["single"] });
    const local = new ProcessorRuntime({
      engine,
      metadata,
      clock,
      handlers: modules.invoker(),
      shareGroups,
      sweepIntervalMs: 1_000,
      lingerMs: 0,
    });
    runtimes.push(local);
    local.start();
    await produce("single", ["a"], 0);
    await clock.advance(1_500);
    expect(await values("copies")).toEqual(["a"]);
    expect((await admin.describe("swept")).shared?.members).toBe(1);
    await admin.pause("swept");
    await clock.advance(2_500);
    expect((await admin.describe("swept")).shared?.members).toBe(0);
    await admin.reset("swept", { to: "earliest" });
    await admin.resume("swept");
    await clock.advance(2_500);
    expect(await values("copies")).toEqual(["a", "a"]);
  });
});

describe("the runtime with a shared processor", () => {
  it("runs it on commits in this process, without a sweep", async () => {
    modules.set("live", (batch) => ({ outputs: batch.records.map((record) => ({ value: record.value })) }));
    await create({ name: "live", topics: ["orders"], starting_position: "LATEST" });
    const local = new ProcessorRuntime({
      engine,
      metadata,
      clock,
      handlers: modules.invoker(),
      shareGroups,
      sweepIntervalMs: 3_600_000,
      lingerMs: 0,
    });
    runtimes.push(local);
    local.start();
    await clock.advance(10);
    await produce("orders", ["x", "y", "z"]);
    const startedMs = clock.now();
    while ((await values("copies")).length < 3) {
      if (clock.now() - startedMs > 60_000) throw new Error("no outputs within a minute");
      await clock.advance(10);
    }
    expect((await values("copies")).sort()).toEqual(["x", "y", "z"]);
    expect(clock.now() - startedMs).toBeLessThan(1_000);
  });
});
