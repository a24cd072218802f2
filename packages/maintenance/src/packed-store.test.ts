import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine, storedIndexEntries } from "@sluice/engine";
import { PackedObjectStore } from "@sluice/storage/packed";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { SimulatedClock } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MaintenanceRunner } from "./runner.js";

/**
 * Maintenance on the packed object store the local server uses by default, where many logical
 * objects share pack files: compaction's reads, garbage collection's listing by age and deletes,
 * and purges work on its keys; a pack file goes once nothing in it is live and it is closed.
 */
const MINUTE = 60_000;
const settings = {
  segmentBytes: 64 * 1024,
  segmentSettleMs: 0,
  gcMinAgeMs: 10 * MINUTE,
  objectGraceMs: MINUTE,
  gcIntervalMs: 0,
};

let dir: string;
let objects: PackedObjectStore;
let metadata: SqliteMetadataStore;
let clock: SimulatedClock;
let engine: Engine;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sluice-maintenance-packed-"));
  // Objects above 1 KiB go to pack files, closed past 32 KiB, so the test sees several.
  objects = new PackedObjectStore({
    root: join(dir, "packed"),
    durability: "buffered",
    inlineBytesMax: 1024,
    segmentBytesMax: 32 * 1024,
  });
  metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite") });
  clock = new SimulatedClock();
  engine = new Engine({ objects, metadata, clock });
});

afterEach(async () => {
  metadata.close();
  objects.close();
  await rm(dir, { recursive: true, force: true });
});

const packFiles = async () => (await readdir(join(dir, "packed", "segments"))).length;
const listed = async (prefix: string) => (await objects.list(prefix)).objects.map((object) => object.key);

/** Partition 0 of `topic` from its start, through an engine with cold caches (every byte read from the store). */
const readFresh = (topic: string) =>
  new Engine({ objects, metadata, clock }).fetch({ topic, partition: 0, offset: 0, maxRecords: 100 });

async function runPast(ms: number, runner: MaintenanceRunner) {
  await clock.advance(ms);
  const report = await runner.runOnce();
  expect(report.failures.map((failure) => String(failure.error))).toEqual([]);
  return report;
}

describe("maintenance on the packed object store", () => {
  it("compacts, collects the replaced objects and purges a deleted topic; dead pack files go", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    const value = new Uint8Array(3000).fill(7);
    for (let request = 0; request < 40; request++)
      await engine.append({ topic: "t", records: [{ key: null, value, partition: 0 }] });
    const { topicId } = await engine.describeTopic("t");
    expect(await listed(`topics/${topicId}/`)).toHaveLength(40);
    const filesBefore = await packFiles();
    expect(filesBefore).toBeGreaterThan(2);

    const runner = new MaintenanceRunner({ objects, metadata, clock, settings });
    const compacted = await runPast(0, runner);
    expect(compacted.compaction.entriesReplaced).toBe(40);
    await runPast(settings.gcMinAgeMs + 1, runner);
    const collected = await runPast(settings.objectGraceMs + 1, runner);
    expect(collected.garbage.deleted).toBe(40);
    const named: string[] = [];
    for await (const entry of storedIndexEntries(metadata, topicId, 0)) named.push(entry.objectKey);
    expect((await listed(`topics/${topicId}/`)).sort()).toEqual([...new Set(named)].sort());
    const records = await readFresh("t");
    expect(records.records.map((record) => record.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // Closed pack files that held only the small objects are gone.
    expect(await packFiles()).toBeLessThan(filesBefore);

    await engine.deleteTopic("t");
    await runPast(settings.gcMinAgeMs + 5 * MINUTE + 1, runner);
    const purged = await runPast(1, runner);
    expect(purged.failures).toEqual([]);
    expect(await listed(`topics/${topicId}/`)).toEqual([]);
  });

  it("frees the pack files a short-kept topic shared with a kept one, once retention has taken it", async () => {
    // Objects of both topics interleave in the same pack files; retention and garbage collection
    // delete the short-kept topic's, leaving each file a quarter live — kept, until reclaimed.
    await engine.createTopic({
      name: "short",
      partitions: 1,
      configs: { "retention.ms": String(60 * MINUTE) },
    });
    await engine.createTopic({ name: "kept", partitions: 1 });
    const value = new Uint8Array(3000).fill(9);
    const old = clock.now() - 24 * 60 * MINUTE;
    for (let request = 0; request < 40; request++) {
      if (request % 4 === 0)
        await engine.append({ topic: "kept", records: [{ key: null, value, partition: 0 }] });
      else
        await engine.append({
          topic: "short",
          records: [{ key: null, value, partition: 0, timestamp: old }],
        });
    }
    // No compaction (entries never settle here): it would rewrite the kept objects on its own.
    const runner = new MaintenanceRunner({
      objects,
      metadata,
      clock,
      settings: { ...settings, segmentSettleMs: 1_000 * 24 * 60 * MINUTE },
    });
    const retained = await runPast(0, runner);
    expect(retained.retention.entriesDeleted).toBe(30);
    await runPast(settings.gcMinAgeMs + 1, runner);
    await runPast(settings.objectGraceMs + 1, runner);
    const { topicId: shortId } = await engine.describeTopic("short");
    expect(await listed(`topics/${shortId}/`)).toEqual([]);
    const filesBefore = await packFiles();
    expect(filesBefore).toBeGreaterThan(2);

    const reclaimed = await objects.reclaimSegments();
    expect(reclaimed.objects).toBeGreaterThan(0);
    expect(await packFiles()).toBeLessThanOrEqual(filesBefore - reclaimed.segments + 1);
    expect(reclaimed.segments).toBeGreaterThanOrEqual(2);
    const kept = await readFresh("kept");
    expect(kept.records.map((record) => record.offset)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(kept.records.every((record) => record.value?.every((byte) => byte === 9))).toBe(true);
  });
});
