import { ConflictError, InvalidArgumentError, NotFoundError } from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingMetadataStore, SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { progressKey, progressPk } from "./keys.js";
import { bytes, readAll, runWithClock, type TestBed, testBed, text } from "./test-support.js";

let clock: SimulatedClock;
let metadata: CountingMetadataStore;
let bed: TestBed;

beforeEach(async () => {
  clock = new SimulatedClock({ sleeps: "wait" });
  metadata = new CountingMetadataStore(new MemoryMetadataStore());
  bed = testBed(new MemoryObjectStore(), metadata, clock);
  await bed.engine.createTopic({ name: "orders", partitions: 2 });
  await bed.engine.createTopic({ name: "enriched", partitions: 1 });
  bed.modules.set("copy", (batch) => ({ outputs: batch.records.map((record) => ({ value: record.value })) }));
});

const webhook = { type: "webhook", url: "http://127.0.0.1:9/hook" };
const produce = (values: string[], partition = 0) =>
  bed.engine.append({
    topic: "orders",
    records: values.map((value) => ({ key: null, value: bytes(value), partition })),
  });

describe("creating a processor", () => {
  it("checks every topic exists before writing anything, naming the field", async () => {
    metadata.reset();
    for (const [json, field] of [
      [{ name: "p", topics: ["nope"], handler: webhook }, "topics[0]"],
      [
        { name: "p", topics: ["orders"], handler: webhook, output_topics: ["enriched", "gone"] },
        "output_topics[1]",
      ],
      [{ name: "p", topics: ["orders"], handler: webhook, dead_letter_topic: "gone" }, "dead_letter_topic"],
    ] as const) {
      const error = await bed.admin.create(json).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details.field).toBe(field);
    }
    expect(metadata.writes).toBe(0);
  });

  it("refuses module handlers through the API and a second processor of the same name", async () => {
    const module = { name: "p", topics: ["orders"], handler: { type: "module", module: "./copy.ts" } };
    await expect(bed.admin.create(module)).rejects.toThrow(
      /handler.type: module handlers are declared in the local server's processor config file/,
    );
    await bed.admin.create({ name: "p", topics: ["orders"], handler: webhook });
    await expect(
      bed.admin.create({ name: "p", topics: ["orders"], handler: webhook }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("starts every partition at its starting position as of creation", async () => {
    await produce(["a", "b"]);
    await bed.admin.create({ name: "latest", topics: ["orders"], handler: webhook });
    await bed.admin.create({
      name: "earliest",
      topics: ["orders"],
      handler: webhook,
      starting_position: "EARLIEST",
    });
    await produce(["c"]);
    const latest = await bed.admin.describe("latest");
    expect(latest.partitions.map((partition) => [partition.checkpoint, partition.lag])).toEqual([
      [2, 1],
      [0, 0],
    ]);
    const earliest = await bed.admin.describe("earliest");
    expect(earliest.partitions.map((partition) => [partition.checkpoint, partition.lag])).toEqual([
      [0, 3],
      [0, 0],
    ]);
    expect(earliest.lag).toBe(3);
  });
});

describe("managing a processor", () => {
  const copy = {
    name: "copy",
    topics: ["orders"],
    handler: { type: "module", module: "copy" },
    output_topics: ["enriched"],
    starting_position: "EARLIEST",
  };

  it("lists, pauses (runners stop at the next batch), resumes and describes progress", async () => {
    await bed.admin.create(copy, { allowModuleHandlers: true });
    expect((await bed.admin.list()).map((processor) => [processor.name, processor.state])).toEqual([
      ["copy", "running"],
    ]);
    await bed.admin.pause("copy");
    await produce(["a"]);
    expect((await runWithClock(await bed.runner("copy", "orders", 0), clock)).outcome).toBe("paused");
    expect(await readAll(bed.engine, "enriched")).toEqual([]);
    await bed.admin.resume("copy");
    expect((await runWithClock(await bed.runner("copy", "orders", 0), clock)).outcome).toBe("drained");
    const described = await bed.admin.describe("copy");
    expect(described.state).toBe("running");
    expect(described.partitions[0]).toMatchObject({
      checkpoint: 1,
      lag: 0,
      processed: 1,
      owner: null,
      lastError: null,
    });
  });

  it("resets checkpoints only while paused and with no runner holding a partition, fencing earlier holders", async () => {
    await bed.admin.create(copy, { allowModuleHandlers: true });
    await produce(["a", "b"]);
    await runWithClock(await bed.runner("copy", "orders", 0), clock);
    await expect(bed.admin.reset("copy", { to: "earliest" })).rejects.toThrow(/pause it before resetting/);
    await bed.admin.pause("copy");
    const before = await metadata.get(progressKey("copy", "orders", 0));
    const partitions = await bed.admin.reset("copy", {
      to: "offsets",
      offsets: [{ topic: "orders", partition: 0, offset: 1 }],
    });
    expect(partitions[0]!.checkpoint).toBe(1);
    const after = await metadata.get(progressKey("copy", "orders", 0));
    expect(Number(after!.leaseEpoch)).toBe(Number(before!.leaseEpoch) + 1);
    await expect(
      bed.admin.reset("copy", { to: "offsets", offsets: [{ topic: "orders", partition: 0, offset: 9 }] }),
    ).rejects.toThrow(/offset 9 is out of range for partition 0 of orders: valid offsets are 0 to 2/);
    await expect(
      bed.admin.reset("copy", { to: "offsets", offsets: [{ topic: "enriched", partition: 0, offset: 0 }] }),
    ).rejects.toThrow(/does not read partition 0 of topic enriched/);
    await bed.admin.resume("copy");
    await runWithClock(await bed.runner("copy", "orders", 0), clock);
    // Reset to offset 1: record "b" handled again (an operator's choice).
    expect((await readAll(bed.engine, "enriched")).map((record) => text(record.value))).toEqual([
      "a",
      "b",
      "b",
    ]);
  });

  it("deletes the definition and every partition's progress", async () => {
    await bed.admin.create(copy, { allowModuleHandlers: true });
    await bed.admin.delete("copy");
    await expect(bed.admin.describe("copy")).rejects.toBeInstanceOf(NotFoundError);
    expect((await metadata.query({ pk: progressPk("copy") })).items).toEqual([]);
    await expect(bed.admin.delete("copy")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("applies a config file's definition: creates, leaves alone, updates keeping progress", async () => {
    expect(await bed.admin.apply(copy, { allowModuleHandlers: true })).toBe("created");
    await produce(["a"]);
    await runWithClock(await bed.runner("copy", "orders", 0), clock);
    expect(await bed.admin.apply(copy, { allowModuleHandlers: true })).toBe("unchanged");
    expect(await bed.admin.apply({ ...copy, batch_size: 10 }, { allowModuleHandlers: true })).toBe("updated");
    const described = await bed.admin.describe("copy");
    expect(described.definition.batch_size).toBe(10);
    expect(described.partitions[0]!.checkpoint).toBe(1);
  });
});
