import { COMMIT_WINDOW_MS, CommitWindowClosedError, Engine, keys, storedIndexEntries } from "@sluice/engine";
import type { ObjectStore } from "@sluice/storage";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { kafkajsBatch, SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { MaintenanceRunner } from "./runner.js";

/**
 * Every path that commits index entries naming objects keeps the commit window garbage collection
 * relies on (ARCHITECTURE.md, "Garbage collection"): the record-batch produce and hedged uploads,
 * whose losing copy is garbage the collector removes while the winner's entries stay.
 */
const MINUTE = 60_000;
const settings = {
  gcMinAgeMs: 10 * MINUTE,
  objectGraceMs: MINUTE,
  gcIntervalMs: 0,
  segmentSettleMs: 600 * MINUTE,
};

let objects: MemoryObjectStore;
let metadata: MemoryMetadataStore;
let clock: SimulatedClock;

beforeEach(() => {
  objects = new MemoryObjectStore();
  metadata = new MemoryMetadataStore();
  clock = new SimulatedClock();
});

async function dataObjects(): Promise<string[]> {
  return (await objects.list("topics/")).objects.map((object) => object.key).sort();
}

async function namedObjects(engine: Engine, topic: string): Promise<string[]> {
  const { topicId } = await engine.describeTopic(topic);
  const named: string[] = [];
  for await (const entry of storedIndexEntries(metadata, topicId, 0)) named.push(entry.objectKey);
  return named.sort();
}

/** Runs garbage collection past the age bound and then past the grace period. */
async function collectGarbage(): Promise<void> {
  const runner = new MaintenanceRunner({ objects, metadata, clock, settings });
  await clock.advance(settings.gcMinAgeMs + 1);
  expect((await runner.runOnce()).failures).toEqual([]);
  await clock.advance(settings.objectGraceMs + 1);
  expect((await runner.runOnce()).failures).toEqual([]);
}

describe("the commit window on every path that names objects", () => {
  it("refuses a record-batch produce whose upload outlasted the window; the collector removes its object", async () => {
    const engine = new Engine({ objects, metadata, clock });
    await engine.createTopic({ name: "t", partitions: 1 });
    let slow = true;
    const slowObjects: ObjectStore = Object.assign(Object.create(objects) as ObjectStore, {
      put: async (...args: Parameters<ObjectStore["put"]>) => {
        const info = await objects.put(...args);
        if (slow) await clock.sleep(COMMIT_WINDOW_MS + 1);
        return info;
      },
    });
    const writer = new Engine({ objects: slowObjects, metadata, clock });
    const batch = await kafkajsBatch([{ key: "k", value: "late" }]);
    const refused = await writer
      .appendBatches({ topic: "t", batches: batch, partitions: [0] })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CommitWindowClosedError);
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 0, highWatermark: 0 });
    slow = false;
    const retried = await writer.appendBatches({
      topic: "t",
      batches: await kafkajsBatch([{ key: "k", value: "again" }]),
      partitions: [0],
    });
    expect(retried.batches[0]).toMatchObject({ partition: 0, baseOffset: 0 });
    expect(await dataObjects()).toHaveLength(2);
    await collectGarbage();
    expect(await dataObjects()).toEqual(await namedObjects(engine, "t"));
    expect(await dataObjects()).toHaveLength(1);
    const page = await engine.fetch({ topic: "t", partition: 0, offset: 0 });
    expect(page.records.map((record) => new TextDecoder().decode(record.value!))).toEqual(["again"]);
  });

  it("refuses a transactional append (a processor's outputs) whose upload outlasted the window, with nothing committed", async () => {
    const engine = new Engine({ objects, metadata, clock });
    await engine.createTopic({ name: "out", partitions: 1 });
    let slow = true;
    const slowObjects: ObjectStore = Object.assign(Object.create(objects) as ObjectStore, {
      put: async (...args: Parameters<ObjectStore["put"]>) => {
        const info = await objects.put(...args);
        if (slow) await clock.sleep(COMMIT_WINDOW_MS + 1);
        return info;
      },
    });
    const writer = new Engine({ objects: slowObjects, metadata, clock });
    const checkpoint = { pk: "checkpoint", sk: "p0" };
    const request = (value: string) => ({
      appends: [
        { topic: "out", records: [{ key: null, value: new TextEncoder().encode(value), partition: 0 }] },
      ],
      operations: [{ kind: "put" as const, item: { ...checkpoint, value } }],
    });
    const refused = await writer.appendTransactional(request("late")).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CommitWindowClosedError);
    expect(await engine.partitionOffsets("out", 0)).toEqual({ logStartOffset: 0, highWatermark: 0 });
    expect(await metadata.get(checkpoint)).toBeUndefined();
    slow = false;
    await writer.appendTransactional(request("again"));
    expect(await metadata.get(checkpoint)).toMatchObject({ value: "again" });
    await collectGarbage();
    expect(await dataObjects()).toEqual(await namedObjects(engine, "out"));
  });

  it("the collector leaves an object whose commit is still in flight, however many runs pass, within the window", async () => {
    let release!: () => void;
    let puts = 0;
    const held: ObjectStore = Object.assign(Object.create(objects) as ObjectStore, {
      put: async (...args: Parameters<ObjectStore["put"]>) => {
        const info = await objects.put(...args);
        // Uploaded, and the commit held back (a paused process) while the collector runs.
        if (puts++ === 0) await new Promise<void>((resume) => (release = resume));
        return info;
      },
    });
    const writer = new Engine({ objects: held, metadata, clock });
    await writer.createTopic({ name: "t", partitions: 1 });
    const appending = writer.append({
      topic: "t",
      records: [{ key: null, value: new TextEncoder().encode("held"), partition: 0 }],
    });
    while (puts === 0) await new Promise((resolve) => setImmediate(resolve));
    const runner = new MaintenanceRunner({
      objects,
      metadata,
      clock,
      settings,
    });
    for (let run = 0; run < 4; run++) {
      expect((await runner.runOnce()).garbage.deleted).toBe(0);
      await clock.advance(MINUTE);
    }
    release();
    expect((await appending).records[0]!.offset).toBe(0);
    const page = await new Engine({ objects, metadata, clock }).fetch({
      topic: "t",
      partition: 0,
      offset: 0,
    });
    expect(page.records.map((record) => new TextDecoder().decode(record.value!))).toEqual(["held"]);
  });

  it("a hedged upload commits the copy that answered first; the late copy is garbage the collector removes", async () => {
    let releaseFirst!: () => void;
    let firstLanded!: Promise<unknown>;
    let puts = 0;
    const heldObjects: ObjectStore = Object.assign(Object.create(objects) as ObjectStore, {
      put: (...args: Parameters<ObjectStore["put"]>) => {
        if (puts++ > 0) return objects.put(...args);
        // The first copy hangs (a slow S3 PUT) until the test lets it land, after the hedge won.
        firstLanded = new Promise<void>((release) => {
          releaseFirst = release;
        }).then(() => objects.put(...args));
        return firstLanded;
      },
    });
    const engine = new Engine({ objects: heldObjects, metadata, clock, uploadHedgeAfterMs: 200 });
    await engine.createTopic({ name: "t", partitions: 1 });
    const appending = engine.append({
      topic: "t",
      records: [{ key: null, value: new TextEncoder().encode("v"), partition: 0 }],
    });
    while (puts === 0) await new Promise((resolve) => setImmediate(resolve));
    await clock.advance(200);
    const appended = await appending;
    expect(appended.records[0]!.offset).toBe(0);
    releaseFirst();
    await firstLanded;
    const [first, second] = await dataObjects();
    // Both copies exist; the index names the second, whose key (and commit window) began at the hedge.
    expect(await namedObjects(engine, "t")).toEqual([second]);
    expect(keys.objectKeyTimeMs(second!)! - keys.objectKeyTimeMs(first!)!).toBe(200);
    await collectGarbage();
    expect(await dataObjects()).toEqual([second]);
    const page = await new Engine({ objects, metadata, clock }).fetch({
      topic: "t",
      partition: 0,
      offset: 0,
    });
    expect(page.records).toHaveLength(1);
  });
});
