import { NotFoundError, UnavailableError } from "@sluice/core";
import {
  type ConsumedRecord,
  Engine,
  keys,
  OffsetOutOfRangeError,
  PENDING_UPLOAD_MS,
  storedIndexEntries,
  type Topic,
} from "@sluice/engine";
import { ConsumerGroups } from "@sluice/groups";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { PrometheusMetrics } from "@sluice/telemetry/prometheus";
import {
  CountingMetadataStore,
  CountingObjectStore,
  FaultyMetadataStore,
  parsePrometheusText,
  SimulatedClock,
  sampleValue,
  seededChooser,
  withPut,
} from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { planSegments, segmentsSettleAt } from "./compaction.js";
import { tryAcquire } from "./job-context.js";
import { MaintenanceRunner, type RunReport } from "./runner.js";
import { type MaintenanceSettings, maintenanceSettings } from "./settings.js";

const text = new TextEncoder();
const decode = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const MINUTE = 60_000;

let objects: CountingObjectStore;
let metadata: MemoryMetadataStore;
let clock: SimulatedClock;
let engine: Engine;

const defaults: Partial<MaintenanceSettings> = {
  segmentBytes: 4096,
  segmentPieceBytes: 1024,
  segmentSettleMs: 0,
  gcMinAgeMs: 10 * MINUTE,
  objectGraceMs: MINUTE,
  gcIntervalMs: 0,
};
let settings: Partial<MaintenanceSettings>;

function runner(overrides: Partial<MaintenanceSettings> = {}, owner?: string): MaintenanceRunner {
  return new MaintenanceRunner({
    objects,
    metadata,
    clock,
    settings: { ...settings, ...overrides },
    ...(owner ? { owner } : {}),
  });
}

async function runOnce(overrides: Partial<MaintenanceSettings> = {}): Promise<RunReport> {
  const report = await runner(overrides).runOnce();
  expect(report.failures.map((failure) => String(failure.error))).toEqual([]);
  return report;
}

/** A fresh process's view: nothing cached. */
const otherEngine = () => new Engine({ objects, metadata, clock });

async function readAll(
  topic: string,
  partition = 0,
  from?: number,
  reader = otherEngine(),
): Promise<ConsumedRecord[]> {
  const { logStartOffset, highWatermark } = await reader.partitionOffsets(topic, partition);
  const records: ConsumedRecord[] = [];
  let offset = from ?? logStartOffset;
  while (offset < highWatermark) {
    const page = await reader.fetch({ topic, partition, offset, maxRecords: 7 });
    records.push(...page.records);
    expect(page.nextOffset).toBeGreaterThan(offset);
    offset = page.nextOffset;
  }
  return records;
}

async function append(
  topic: string,
  values: string[],
  options: { key?: string; partition?: number; timestamp?: number } = {},
) {
  return engine.append({
    topic,
    records: values.map((value) => ({
      key: options.key === undefined ? null : text.encode(options.key),
      value: text.encode(value),
      partition: options.partition ?? 0,
      ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    })),
  });
}

async function indexEntries(topic: string, partition = 0) {
  const { topicId } = await engine.describeTopic(topic);
  const entries = [];
  for await (const entry of storedIndexEntries(metadata, topicId, partition)) entries.push(entry);
  return entries;
}

beforeEach(() => {
  settings = { ...defaults };
  objects = new CountingObjectStore(new MemoryObjectStore());
  metadata = new MemoryMetadataStore();
  clock = new SimulatedClock();
  engine = new Engine({ objects, metadata, clock });
});

describe("retention", () => {
  it("deletes whole batches older than retention.ms from the start and moves the log start past them", async () => {
    settings.segmentSettleMs = 60 * MINUTE; // no merging in this test: entries expire one by one
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": String(10 * MINUTE) } });
    await append("t", ["a", "b"]);
    await clock.advance(5 * MINUTE);
    await append("t", ["c"]);
    await clock.advance(5 * MINUTE);
    await append("t", ["d", "e"]);
    // The first batch is exactly 10 minutes old: not yet past retention.ms (Kafka: strictly older).
    await runOnce();
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 0, highWatermark: 5 });
    await clock.advance(1);
    const report = await runOnce();
    expect(report.retention.entriesDeleted).toBe(1);
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 2, highWatermark: 5 });
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["c", "d", "e"]);
    await expect(otherEngine().fetch({ topic: "t", partition: 0, offset: 1 })).rejects.toBeInstanceOf(
      OffsetOutOfRangeError,
    );
    expect((await indexEntries("t")).map((entry) => entry.baseOffset)).toEqual([2, 3]);
    await clock.advance(10 * MINUTE);
    await runOnce();
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 5, highWatermark: 5 });
    expect(await indexEntries("t")).toEqual([]);
    // The log goes on from where it was.
    expect((await append("t", ["f"])).records[0]!.offset).toBe(5);
  });

  it("a consumer group whose committed offset fell below the log start starts from its auto.offset.reset", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": String(10 * MINUTE) } });
    await append("t", ["old-1", "old-2"]);
    await clock.advance(11 * MINUTE);
    await append("t", ["new"]);
    const groups = new ConsumerGroups({ engine, metadata, clock });
    const joined = await groups.heartbeat({
      groupId: "g",
      memberId: "m",
      memberEpoch: 0,
      subscription: ["t"],
    });
    expect(joined.assignment.map((tp) => tp.partition)).toEqual([0]);
    await groups.commit("g", "m", [{ topic: "t", partition: 0, offset: 1 }]);
    const tp = { topic: "t", partition: 0 };
    expect(await groups.startOffset("g", tp, "earliest")).toBe(1);
    await runOnce({ segmentSettleMs: 60 * MINUTE });
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 2, highWatermark: 3 });
    expect(await groups.startOffset("g", tp, "earliest")).toBe(2);
    expect(await groups.startOffset("g", tp, "latest")).toBe(3);
    await expect(groups.startOffset("g", tp, "none")).rejects.toThrow(
      /committed offset 1 .* is outside the log \(2 to 3\)/,
    );
  });

  it("keeps at least retention.bytes: deletes the oldest batches while the rest still reaches it", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.bytes": "1" } });
    for (const value of ["one", "two", "three", "four"]) await append("t", [value]);
    const sizes = (await indexEntries("t")).map((entry) => entry.length);
    await engine.updateTopicConfigs("t", { "retention.bytes": String(sizes[2]! + sizes[3]!) });
    await runOnce();
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["three", "four"]);
    await engine.updateTopicConfigs("t", { "retention.bytes": String(sizes[3]! + 1) });
    await runOnce();
    // Without "three" the log would be smaller than retention.bytes: it stays.
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["three", "four"]);
  });

  it("leaves compact-only topics and retention -1 alone, and records every partition's size", async () => {
    await engine.createTopic({ name: "keep", partitions: 2, configs: { "retention.ms": "-1" } });
    await engine.createTopic({
      name: "compacted",
      partitions: 1,
      configs: { "cleanup.policy": "compact", "retention.ms": "1" },
    });
    await append("keep", ["a"], { timestamp: 1 });
    await append("compacted", ["a"], { key: "k", timestamp: 1 });
    await runOnce();
    expect(await engine.partitionOffsets("keep", 0)).toEqual({ logStartOffset: 0, highWatermark: 1 });
    expect(await engine.partitionOffsets("compacted", 0)).toEqual({ logStartOffset: 0, highWatermark: 1 });
    const storage = await engine.topicStorage("keep");
    const [entry] = await indexEntries("keep");
    expect(storage.partitions[0]).toMatchObject({ sizeBytes: entry!.length, indexEntries: 1, records: 1 });
    expect(storage.partitions[1]).toMatchObject({ sizeBytes: 0, indexEntries: 0, records: 0 });
    expect(storage.sizeBytes).toBe(entry!.length);
    expect(storage.objectCount).toBe(1);
    expect(storage.maintenanceLastRunAt).toBe(clock.now());
  });
});

describe("compaction into segments", () => {
  it("merges small entries into segments of about the target size; reads are the same before and after", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    for (let index = 0; index < 60; index++)
      await append("t", [`record-${index}-${"x".repeat(100)}`, `second-${index}`]);
    const before = await readAll("t");
    const entriesBefore = await indexEntries("t");
    const report = await runOnce();
    expect(report.compaction.segments).toBeGreaterThan(0);
    const after = await indexEntries("t");
    expect(after.length).toBeLessThan(entriesBefore.length / 10);
    for (const entry of after) expect(keys.isSegmentObjectKey(entry.objectKey)).toBe(true);
    expect(after.slice(0, -1).every((entry) => entry.length >= 4096)).toBe(true);
    expect(await readAll("t")).toEqual(before);
    // From the middle of a segment, a fetch starts at the piece holding the offset.
    expect((await readAll("t", 0, 77)).map((record) => record.offset)).toEqual(
      before.slice(77).map((r) => r.offset),
    );
  });

  it("waits segmentSettleMs before merging a short run, then merges it once", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    for (let index = 0; index < 5; index++) await append("t", [`r${index}`]);
    await runOnce({ segmentSettleMs: 10 * MINUTE });
    expect(await indexEntries("t")).toHaveLength(5);
    await clock.advance(10 * MINUTE);
    await runOnce({ segmentSettleMs: 10 * MINUTE });
    expect(await indexEntries("t")).toHaveLength(1);
    const again = await runOnce({ segmentSettleMs: 10 * MINUTE });
    expect(again.compaction.segments).toBe(0);
  });

  it("garbage-collects the replaced objects only after the age bound and the grace period", async () => {
    await engine.createTopic({ name: "t", partitions: 2 });
    // One request writes both partitions: its object is named by two partitions' entries.
    for (let index = 0; index < 10; index++) {
      await engine.append({
        topic: "t",
        records: [
          { key: null, value: text.encode(`p0-${index}`), partition: 0 },
          { key: null, value: text.encode(`p1-${index}`), partition: 1 },
        ],
      });
    }
    const { topicId } = await engine.describeTopic("t");
    const listed = async () => (await objects.list(keys.topicObjectsPrefix(topicId))).objects.length;
    expect(await listed()).toBe(10);
    // Only partition 0 is compacted: every old object is still named by partition 1.
    const only = runner();
    await only.runPartition(await engine.describeTopic("t"), 0, undefined, ["compaction"]);
    await clock.advance(11 * MINUTE);
    await only.runTopicGarbage(await engine.describeTopic("t"));
    await clock.advance(2 * MINUTE);
    await only.runTopicGarbage(await engine.describeTopic("t"));
    expect(await listed()).toBe(11);
    // Now partition 1 too: the old objects are named by no entry; marked, then deleted after the grace.
    await only.runPartition(await engine.describeTopic("t"), 1, undefined, ["compaction"]);
    const marking = await only.runTopicGarbage(await engine.describeTopic("t"));
    expect(marking.garbage).toEqual({ marked: 10, deleted: 0 });
    expect(await listed()).toBe(12);
    await clock.advance(MINUTE);
    const sweeping = await only.runTopicGarbage(await engine.describeTopic("t"));
    expect(sweeping.garbage).toEqual({ marked: 0, deleted: 10 });
    expect(await listed()).toBe(2);
    expect((await readAll("t", 0)).map((record) => decode(record.value))).toEqual(
      Array.from({ length: 10 }, (_, index) => `p0-${index}`),
    );
    expect((await engine.topicStorage("t")).objectCount).toBe(2);
  });

  it("collects a topic at most every gcIntervalMs, and sooner when marked objects are due", async () => {
    settings.gcIntervalMs = 15 * MINUTE;
    await engine.createTopic({ name: "t", partitions: 1 });
    for (let index = 0; index < 4; index++) await append("t", [`r${index}`]);
    const first = await runOnce();
    expect(first.compaction.segments).toBe(1);
    expect(first.garbage).toEqual({ marked: 0, deleted: 0 });
    await clock.advance(11 * MINUTE);
    objects.reset();
    const skipped = await runOnce();
    expect(skipped.garbage).toEqual({ marked: 0, deleted: 0 });
    expect(objects.calls.list).toBe(0);
    await clock.advance(4 * MINUTE);
    expect((await runOnce()).garbage).toEqual({ marked: 4, deleted: 0 });
    // The marks fall due after the grace period (a minute), well inside the interval.
    await clock.advance(MINUTE);
    expect((await runOnce()).garbage).toEqual({ marked: 0, deleted: 4 });
    await clock.advance(MINUTE);
    objects.reset();
    await runOnce();
    expect(objects.calls.list).toBe(0);
  });

  it("a reader whose cached entries name objects compaction replaced and GC deleted reads the index again", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    for (let index = 0; index < 20; index++) await append("t", [`r${index}`]);
    const reader = otherEngine();
    const before = await readAll("t", 0, 0, reader); // caches the small entries
    await runOnce();
    await clock.advance(11 * MINUTE);
    await runOnce();
    await clock.advance(2 * MINUTE);
    const report = await runOnce();
    expect(report.garbage.deleted).toBe(20);
    expect(await readAll("t", 0, 0, reader)).toEqual(before);
  });
});

describe("planning segments", () => {
  const entry = (baseOffset: number, length: number, ageMs = 60 * MINUTE, segment = false) => ({
    baseOffset,
    recordCount: 1,
    offsetCount: 1,
    objectKey: segment
      ? keys.newSegmentObjectKey("t", 0, clock.now() - ageMs)
      : `${keys.topicDataPrefix("t")}${(clock.now() - ageMs).toString(36).padStart(9, "0")}-0123456789abcdef.batches`,
    position: 0,
    length,
    firstTimestamp: 0,
    maxTimestamp: 0,
  });
  const plan = (entries: ReturnType<typeof entry>[], settleMs = 10 * MINUTE) =>
    planSegments(entries, {
      clock,
      settings: { ...maintenanceSettings(), segmentBytes: 1000, segmentSettleMs: settleMs },
    }).map((run) => run.map((item) => item.baseOffset));

  it("fills runs to the target, lets a small settled remainder join the last full run, and leaves large entries alone", () => {
    const small = Array.from({ length: 12 }, (_, index) => entry(index, 250));
    expect(plan(small)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10, 11],
    ]);
    const withRemainder = Array.from({ length: 9 }, (_, index) => entry(index, 250));
    expect(plan(withRemainder)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7, 8],
    ]);
    // Half the target or more stays a segment of its own.
    const halfLeft = Array.from({ length: 10 }, (_, index) => entry(index, 250));
    expect(plan(halfLeft)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect(plan([entry(0, 300), entry(1, 5000), entry(2, 300), entry(3, 300)])).toEqual([[2, 3]]);
  });

  it("merges a short run only once settled, and only if it holds two entries that are not segments", () => {
    const fresh = [entry(0, 100, MINUTE), entry(1, 100, MINUTE)];
    expect(plan(fresh)).toEqual([]);
    expect(plan(fresh, 0)).toEqual([[0, 1]]);
    expect(plan([entry(0, 400, 60 * MINUTE, true), entry(1, 100)])).toEqual([]);
  });
});

describe("key compaction", () => {
  const compacted = { "cleanup.policy": "compact", "delete.retention.ms": String(30 * MINUTE) };

  it("keeps the latest record per key at its offset, with gaps where others were", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: compacted });
    await append("t", ["a1", "a2"], { key: "a" });
    await append("t", ["b1"], { key: "b" });
    await append("t", ["a3"], { key: "a" });
    await append("t", ["c1"], { key: "c" });
    const report = await runOnce();
    expect(report.compaction.recordsRemoved).toBe(2);
    const records = await readAll("t");
    expect(records.map((record) => [record.offset, decode(record.key), decode(record.value)])).toEqual([
      [2, "b", "b1"],
      [3, "a", "a3"],
      [4, "c", "c1"],
    ]);
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 0, highWatermark: 5 });
    // A read from an offset that no longer holds a record starts at the next one that does.
    const page = await otherEngine().fetch({ topic: "t", partition: 0, offset: 0, maxRecords: 1 });
    expect(page.records.map((record) => record.offset)).toEqual([2]);
    expect(page.nextOffset).toBe(3);
    // Later records supersede compacted ones in a later run.
    await append("t", ["b2"], { key: "b" });
    await runOnce();
    expect((await readAll("t")).map((record) => [record.offset, decode(record.value)])).toEqual([
      [3, "a3"],
      [4, "c1"],
      [5, "b2"],
    ]);
  });

  it("keeps tombstones for delete.retention.ms after the run that cleaned them, then removes them", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: compacted });
    await append("t", ["a1"], { key: "a" });
    await engine.append({ topic: "t", records: [{ key: text.encode("a"), value: null, partition: 0 }] });
    await append("t", ["b1"], { key: "b" });
    await runOnce();
    expect((await readAll("t")).map((record) => [record.offset, decode(record.value)])).toEqual([
      [1, null],
      [2, "b1"],
    ]);
    await clock.advance(29 * MINUTE);
    await runOnce();
    expect((await readAll("t")).map((record) => record.offset)).toEqual([1, 2]);
    await clock.advance(MINUTE);
    await runOnce();
    expect((await readAll("t")).map((record) => [record.offset, decode(record.value)])).toEqual([[2, "b1"]]);
  });

  it("never compacts records newer than min.compaction.lag.ms", async () => {
    await engine.createTopic({
      name: "t",
      partitions: 1,
      configs: { ...compacted, "min.compaction.lag.ms": String(5 * MINUTE) },
    });
    await append("t", ["a1"], { key: "a" });
    await append("t", ["a2"], { key: "a" });
    await runOnce();
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["a1", "a2"]);
    await clock.advance(5 * MINUTE + 1);
    await runOnce();
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["a2"]);
  });

  it("an all-tombstone log keeps its offsets in an empty batch; compact,delete also applies retention", async () => {
    await engine.createTopic({
      name: "t",
      partitions: 1,
      configs: {
        "cleanup.policy": "compact,delete",
        "delete.retention.ms": "0",
        "retention.ms": String(60 * MINUTE),
      },
    });
    await append("t", ["a1"], { key: "a" });
    await engine.append({ topic: "t", records: [{ key: text.encode("a"), value: null, partition: 0 }] });
    await runOnce();
    await clock.advance(1);
    await runOnce();
    expect(await readAll("t")).toEqual([]);
    const page = await otherEngine().fetch({ topic: "t", partition: 0, offset: 0 });
    expect(page).toMatchObject({ records: [], nextOffset: 2, highWatermark: 2 });
    await clock.advance(60 * MINUTE);
    await runOnce();
    expect(await engine.partitionOffsets("t", 0)).toEqual({ logStartOffset: 2, highWatermark: 2 });
  });

  it("refuses records without a key on a compacted topic", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: compacted });
    await expect(append("t", ["x"])).rejects.toThrow(/has no key; topic t has cleanup.policy compact/);
  });
});

describe("the time index", () => {
  it("finds the first offset at or after a timestamp from the index, across retention and compaction", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": String(100 * MINUTE) } });
    const base = clock.now();
    // Timestamps that go back and forth, as producers' own may.
    const stamps = [0, 5, 3, 9, 8, 12, 11, 20, 15, 25].map((minutes) => base + minutes * MINUTE);
    for (const [index, timestamp] of stamps.entries()) await append("t", [`r${index}`], { timestamp });
    const expected = (timestamp: number, from = 0) => {
      const offset = stamps.findIndex((stamp, index) => index >= from && stamp >= timestamp);
      return offset < 0 ? null : offset;
    };
    await runOnce({ segmentBytes: 1 << 20, segmentSettleMs: 600 * MINUTE });
    const { topicId } = await engine.describeTopic("t");
    const items = await metadata.query({
      pk: keys.partitionPk(topicId, 0),
      sk: { kind: "begins_with", prefix: "time#" },
    });
    expect(items.items.map((item) => Number(item.baseOffset))).toEqual([0, 1, 3, 5, 7, 9]);
    for (const minutes of [-1, 0, 4, 6, 10, 13, 16, 21, 25, 26]) {
      expect(await otherEngine().offsetForTimestamp("t", 0, base + minutes * MINUTE)).toBe(
        expected(base + minutes * MINUTE),
      );
    }
    // Retention removes the first five entries (timestamps up to minute 9): the generation built
    // from offset 0 still answers right (a hit below the log start reads from the log start).
    await clock.advance(109 * MINUTE + 1);
    await runOnce({ segmentBytes: 1 << 20, segmentSettleMs: 600 * MINUTE });
    expect((await engine.partitionOffsets("t", 0)).logStartOffset).toBe(5);
    for (const minutes of [0, 6, 8, 10, 13, 21, 26]) {
      expect(await otherEngine().offsetForTimestamp("t", 0, base + minutes * MINUTE)).toBe(
        expected(base + minutes * MINUTE, 5),
      );
    }
    // Past half of what it covers, a new generation is built from the log start and put in use;
    // the old one's items go.
    await clock.advance(3 * MINUTE);
    await runOnce({ segmentBytes: 1 << 20, segmentSettleMs: 600 * MINUTE });
    expect((await engine.partitionOffsets("t", 0)).logStartOffset).toBe(7);
    const rebuilt = await metadata.query({
      pk: keys.partitionPk(topicId, 0),
      sk: { kind: "begins_with", prefix: "time#" },
    });
    expect(
      rebuilt.items.map((item) => [keys.timeIndexGenerationOf(item.sk), Number(item.baseOffset)]),
    ).toEqual([
      [1, 7],
      [1, 9],
    ]);
    for (const minutes of [0, 8, 13, 16, 21, 25, 26]) {
      expect(await otherEngine().offsetForTimestamp("t", 0, base + minutes * MINUTE)).toBe(
        expected(base + minutes * MINUTE, 7),
      );
    }
    // Merged into a segment, the answers stay the same.
    await runOnce({ segmentBytes: 1 << 20, segmentSettleMs: 0 });
    expect(await indexEntries("t")).toHaveLength(1);
    for (const minutes of [0, 8, 13, 16, 21, 26]) {
      expect(await otherEngine().offsetForTimestamp("t", 0, base + minutes * MINUTE)).toBe(
        expected(base + minutes * MINUTE, 7),
      );
    }
  });
});

describe("the time index lookup", () => {
  it("costs a few reads however long the log: one query finds where to start, not a walk from the log start", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    const base = clock.now();
    const entries = 1000;
    for (let index = 0; index < entries; index++)
      await append("t", [`r${index}`], { timestamp: base + index * MINUTE });
    await runOnce({ segmentSettleMs: 600 * MINUTE, segmentBytes: 1 << 30 }); // indexed, not merged
    expect(await indexEntries("t")).toHaveLength(entries);
    const reads = new CountingMetadataStore(metadata);
    const reader = new Engine({ objects, metadata: reads, clock });
    await reader.describeTopic("t");
    for (const index of [0, 1, 499, 998, 999]) {
      reads.reset();
      expect(await reader.offsetForTimestamp("t", 0, base + index * MINUTE - 1)).toBe(index);
      // The head, the maintenance item, the time-index query, the entry holding the start (a walk
      // from the log start would read the index 100 entries a query: ten queries to the end).
      expect(reads.reads).toBeLessThanOrEqual(4);
    }
  });
});

describe("topic deletion", () => {
  it("purges a deleted topic's items and objects in steps, finishing after the age bound", async () => {
    await engine.createTopic({ name: "t", partitions: 3 });
    const { topicId } = await engine.describeTopic("t");
    for (let partition = 0; partition < 3; partition++) await append("t", ["a", "b"], { partition });
    await runOnce();
    await engine.deleteTopic("t");
    await engine.createTopic({ name: "t", partitions: 1 });
    await append("t", ["new"]);
    const first = await runOnce();
    expect(first.purges).toMatchObject({ finished: 0, objectsDeleted: 3 });
    expect((await objects.list(keys.topicObjectsPrefix(topicId))).objects).toEqual([]);
    for (let partition = 0; partition < 3; partition++) {
      expect((await metadata.query({ pk: keys.partitionPk(topicId, partition) })).items).toEqual([]);
    }
    expect(await metadata.get(keys.deletionKey(topicId))).toBeDefined();
    await clock.advance(11 * MINUTE);
    const last = await runOnce();
    expect(last.purges.finished).toBe(1);
    expect(await metadata.get(keys.deletionKey(topicId))).toBeUndefined();
    expect((await metadata.query({ pk: keys.topicMaintenancePk(topicId) })).items).toEqual([]);
    expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["new"]);
  });

  it("a purge cut short by its time budget goes on where it stopped", async () => {
    await engine.createTopic({ name: "t", partitions: 4 });
    const { topicId } = await engine.describeTopic("t");
    for (let partition = 0; partition < 4; partition++) await append("t", ["a"], { partition });
    await engine.deleteTopic("t");
    const stepping = runner();
    let steps = 0;
    // A budget of two steps: the purge stops every other partition, and in the middle of its later steps.
    const { purgeTopic, listDeletionJobs } = await import("./purge.js");
    const { tryAcquire } = await import("./job-context.js");
    for (;;) {
      const [job] = await listDeletionJobs(stepping.context);
      if (!job) break;
      const lease = (await tryAcquire(stepping.context, keys.deletionKey(topicId)))!;
      let allowed = 2;
      await purgeTopic(stepping.context, lease, job, () => allowed-- > 0);
      await lease.release();
      steps++;
      expect(steps).toBeLessThan(10);
      if (steps === 3) {
        expect((await objects.list(keys.topicObjectsPrefix(topicId))).objects).toEqual([]);
        await clock.advance(11 * MINUTE);
      }
    }
    expect(steps).toBe(4);
    expect((await metadata.get(keys.deletionKey(topicId))) ?? null).toBeNull();
    expect((await objects.list(keys.topicObjectsPrefix(topicId))).objects).toEqual([]);
    await expect(engine.describeTopic("t")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("topic deletion under faults", () => {
  it.each([1, 2, 3, 4, 5])(
    "a purge whose runners crash, fail and lose answers at any step is finished by the next (seed %i)",
    async (seed) => {
      await engine.createTopic({ name: "t", partitions: 3 });
      const { topicId } = await engine.describeTopic("t");
      for (let partition = 0; partition < 3; partition++) {
        await append("t", ["a", "b"], { partition });
        await append("t", ["c"], { partition });
      }
      await engine.deleteTopic("t");
      await engine.createTopic({ name: "t", partitions: 1 });
      await append("t", ["new"]);
      const choose = seededChooser(seed);
      let late = false;
      for (let attempt = 0; attempt < 60; attempt++) {
        if (!(await metadata.get(keys.deletionKey(topicId)))) break;
        // Each run is a new process over a store that fails writes, loses answers or dies after one.
        const faulty = new FaultyMetadataStore(
          metadata,
          { failBefore: 0.1, loseAnswer: 0.1, crashAfter: 0.15 },
          choose,
        );
        await new MaintenanceRunner({ objects, metadata: faulty, clock, settings }).runPurges();
        if (attempt === 1) {
          // An append that uploaded before the deletion and lost its commit leaves an object behind.
          await objects.put(keys.newDataObjectKey(topicId, clock.now() - MINUTE), text.encode("late"));
          late = true;
        }
        await clock.advance(MINUTE + 1); // past a dead runner's lease
      }
      expect(late).toBe(true);
      expect(await metadata.get(keys.deletionKey(topicId))).toBeUndefined();
      expect((await objects.list(keys.topicObjectsPrefix(topicId))).objects).toEqual([]);
      for (let partition = 0; partition < 3; partition++)
        expect((await metadata.query({ pk: keys.partitionPk(topicId, partition) })).items).toEqual([]);
      expect((await metadata.query({ pk: keys.topicMaintenancePk(topicId) })).items).toEqual([]);
      expect((await readAll("t")).map((record) => decode(record.value))).toEqual(["new"]);
    },
  );
});

describe("quiet partitions", () => {
  it("skips a partition where nothing changed and nothing fell due, for two reads; wakes it for an append, an expiry or a config", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": String(30 * MINUTE) } });
    await append("t", ["a"]);
    const metadataReads = new CountingMetadataStore(metadata);
    const quiet = new MaintenanceRunner({
      objects,
      metadata: metadataReads,
      clock,
      settings: { ...settings, segmentSettleMs: 600 * MINUTE, gcIntervalMs: 15 * MINUTE },
    });
    expect((await quiet.runOnce()).partitionsQuiet).toBe(0);
    metadataReads.reset();
    const skipped = await quiet.runOnce();
    expect(skipped).toMatchObject({ partitions: 1, partitionsQuiet: 1 });
    // The topic list, the partition's head and maintenance item, the garbage collector's lease and
    // state (collected less than gcIntervalMs ago), and the pending deletions.
    expect(metadataReads.reads).toBe(6);
    await clock.advance(10 * MINUTE);
    await append("t", ["b"]);
    expect((await quiet.runOnce()).partitionsQuiet).toBe(0);
    expect((await quiet.runOnce()).partitionsQuiet).toBe(1);
    // Retention falls due 30 minutes after the newest record of the first entry.
    await clock.advance(20 * MINUTE + 1);
    const expired = await quiet.runOnce();
    expect(expired).toMatchObject({ partitionsQuiet: 0, retention: { entriesDeleted: 1 } });
    expect((await quiet.runOnce()).partitionsQuiet).toBe(1);
    await engine.updateTopicConfigs("t", { "retention.ms": "1" });
    await clock.advance(5_001); // the topic cache
    const reconfigured = await quiet.runOnce();
    expect(reconfigured).toMatchObject({ partitionsQuiet: 0, retention: { entriesDeleted: 1 } });
  });
});

describe("quiet partitions wake", () => {
  it("for a layout another runner changed, and for a short run settling", async () => {
    await engine.createTopic({ name: "t", partitions: 1 });
    await append("t", ["a"]);
    await append("t", ["b"]);
    const slow = runner({ segmentSettleMs: 30 * MINUTE, gcIntervalMs: 15 * MINUTE }, "slow");
    await slow.runOnce();
    expect((await slow.runOnce()).partitionsQuiet).toBe(1);
    // Another runner (settling at once) merges the two entries by its compaction job alone.
    const eager = runner({}, "eager");
    const [topic] = await engine.listTopics();
    expect((await eager.runPartition(topic!, 0, undefined, ["compaction"])).compaction.segments).toBe(1);
    expect((await slow.runOnce()).partitionsQuiet).toBe(0);
    expect((await slow.runOnce()).partitionsQuiet).toBe(1);
    // Two fresh entries after the segment: quiet until they settle, then merged.
    await clock.advance(MINUTE);
    await append("t", ["c"]);
    await append("t", ["d"]);
    expect((await slow.runOnce()).compaction.segments).toBe(0);
    await clock.advance(30 * MINUTE - 1);
    expect((await slow.runOnce()).partitionsQuiet).toBe(1);
    await clock.advance(1);
    expect(await slow.runOnce()).toMatchObject({ partitionsQuiet: 0, compaction: { segments: 1 } });
  });

  it("sleep until the first short run settles, not the newest entry of the partition", () => {
    const at = (ageMs: number, segment = false) =>
      segment
        ? keys.newSegmentObjectKey("t", 0, clock.now() - ageMs)
        : `${keys.topicDataPrefix("t")}${(clock.now() - ageMs).toString(36).padStart(9, "0")}-0123456789abcdef.batches`;
    const entry = (baseOffset: number, length: number, objectKey: string) => ({
      baseOffset,
      recordCount: 1,
      offsetCount: 1,
      objectKey,
      position: 0,
      length,
      firstTimestamp: 0,
      maxTimestamp: 0,
    });
    const context = {
      clock,
      settings: { ...maintenanceSettings(), segmentBytes: 1000, segmentSettleMs: 10 * MINUTE },
    };
    const tiling = [
      entry(0, 100, at(8 * MINUTE)),
      entry(1, 100, at(7 * MINUTE)),
      entry(2, 5000, at(60 * MINUTE, true)),
      entry(3, 100, at(2 * MINUTE)),
      entry(4, 100, at(MINUTE)),
    ];
    expect(planSegments(tiling, context)).toEqual([]);
    expect(segmentsSettleAt(tiling, context)).toBe(clock.now() + 3 * MINUTE);
    // A lone fresh entry behind a segment never settles into a run of its own.
    expect(segmentsSettleAt([entry(0, 400, at(MINUTE, true)), entry(1, 100, at(MINUTE))], context)).toBe(
      undefined,
    );
  });
});

describe("metrics", () => {
  it("counts each job's runs by result, their durations, reclaimed bytes and removed records", async () => {
    const metrics = new PrometheusMetrics();
    const measured = new MaintenanceRunner({ objects, metadata, clock, settings, metrics });
    const value = (name: string, labels: Record<string, string>) =>
      metrics.exposition().then((text) => sampleValue(parsePrometheusText(text), name, labels) ?? 0);
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": String(MINUTE) } });
    await engine.createTopic({ name: "k", partitions: 1, configs: { "cleanup.policy": "compact" } });
    await append("t", ["a", "b"]);
    await append("t", ["c"]);
    await append("k", ["k1", "k2"], { key: "x" });
    await measured.runOnce();
    expect(await value("sluice_maintenance_runs_total", { job: "retention", result: "ok" })).toBe(2);
    expect(await value("sluice_maintenance_runs_total", { job: "compaction", result: "ok" })).toBe(1);
    expect(await value("sluice_maintenance_runs_total", { job: "key-compaction", result: "ok" })).toBe(1);
    expect(
      await value("sluice_maintenance_records_removed_total", { job: "key-compaction", topic: "k" }),
    ).toBe(1);
    expect(await value("sluice_maintenance_run_duration_seconds_count", { job: "gc" })).toBe(2);
    // Retention removes the three records of t; the collector then reclaims their objects' bytes.
    await clock.advance(MINUTE + 1);
    await measured.runOnce();
    expect(await value("sluice_maintenance_records_removed_total", { job: "retention", topic: "t" })).toBe(3);
    const { topicId } = await engine.describeTopic("t");
    const before = (await objects.list(`topics/${topicId}/`)).objects;
    await clock.advance(settings.gcMinAgeMs! + 1);
    await measured.runOnce();
    await clock.advance(settings.objectGraceMs! + 1);
    await measured.runOnce();
    const reclaimed = before.reduce((sum, object) => sum + object.size, 0);
    expect(reclaimed).toBeGreaterThan(0);
    expect(await value("sluice_maintenance_reclaimed_bytes_total", { job: "gc", topic: "t" })).toBe(
      reclaimed,
    );
    // A job whose lease another runner holds is skipped; a purge's objects are reclaimed too.
    const [k] = (await engine.listTopics()).filter((topic) => topic.name === "k");
    const held = await tryAcquireFor(runner({}, "holder"), k!);
    expect(held).toBeDefined();
    await measured.runPartition(k!, 0, undefined, ["compaction"]);
    expect(await value("sluice_maintenance_runs_total", { job: "key-compaction", result: "skipped" })).toBe(
      1,
    );
    await held!.release();
    const kObjects = (await objects.list(`topics/${k!.topicId}/`)).objects;
    await engine.deleteTopic("k");
    await clock.advance(settings.gcMinAgeMs! + 1);
    await measured.runOnce();
    expect(await value("sluice_maintenance_runs_total", { job: "purge", result: "ok" })).toBeGreaterThan(0);
    expect(await value("sluice_maintenance_reclaimed_bytes_total", { job: "purge", topic: "k" })).toBe(
      kObjects.reduce((sum, object) => sum + object.size, 0),
    );
  });
});

/** Takes the compaction lease of partition 0 of `topic` as `holder` would while it works. */
function tryAcquireFor(holder: MaintenanceRunner, topic: Topic) {
  return tryAcquire(holder.context, keys.partitionJobLeaseKey(topic.topicId, 0, "compaction"), topic);
}

describe("runners and leases", () => {
  it("a runner skips the jobs another runner's lease holds", async () => {
    await engine.createTopic({ name: "t", partitions: 1, configs: { "retention.ms": "0" } });
    await append("t", ["a"]);
    await clock.advance(1);
    const { tryAcquire } = await import("./job-context.js");
    const holder = runner({}, "holder");
    const { topicId } = await engine.describeTopic("t");
    const held = await tryAcquire(holder.context, keys.partitionJobLeaseKey(topicId, 0, "retention"));
    expect(held).toBeDefined();
    const report = await runner({}, "other").runOnce();
    expect(report.leasesHeld).toBe(1);
    expect(report.retention.entriesDeleted).toBe(0);
    await clock.advance(61_000);
    // The holder went silent: once its lease expired, another runner takes the job over.
    const later = await runner({}, "other").runOnce();
    expect(later.retention.entriesDeleted).toBe(1);
    // And the old holder can write nothing under its lost lease.
    await expect(metadata.transactWrite([held!.guard()])).rejects.toThrow();
  });
});

describe("parallel commit", () => {
  /** A writer with parallel commit whose next upload fails after its commit, when told to. */
  function parallelWriter() {
    const control = { failNextUpload: false };
    const failing = withPut(objects, async (key, body, options) => {
      if (control.failNextUpload && body.byteLength > 0) {
        control.failNextUpload = false;
        throw new UnavailableError("upload failed (test)");
      }
      return objects.put(key, body, options);
    });
    return { control, writer: new Engine({ objects: failing, metadata, clock, parallelCommit: true }) };
  }

  for (const [policy, configs] of [
    ["delete", {}],
    ["compact", { "cleanup.policy": "compact" }],
  ] as const) {
    it(`${policy}: waits for an upload on its way, then copies its gap into a segment as an empty batch`, async () => {
      await engine.createTopic({ name: "t", partitions: 1, configs });
      const { control, writer } = parallelWriter();
      const write = (value: string) =>
        writer.append({
          topic: "t",
          records: [{ key: text.encode(value), value: text.encode(value), partition: 0 }],
        });
      for (let index = 0; index < 3; index++) await write(`before-${index}`);
      control.failNextUpload = true;
      await expect(write("lost")).rejects.toBeInstanceOf(UnavailableError);
      for (let index = 0; index < 3; index++) await write(`after-${index}`);

      const waiting = await runOnce();
      expect(waiting.compaction.segments).toBe(0);
      expect(await indexEntries("t")).toHaveLength(7);

      await clock.advance(PENDING_UPLOAD_MS);
      const merged = await runOnce();
      expect(merged.compaction.segments).toBeGreaterThan(0);
      const entries = await indexEntries("t");
      expect(entries.every((entry) => keys.isSegmentObjectKey(entry.objectKey))).toBe(true);
      expect(entries.reduce((sum, entry) => sum + entry.offsetCount, 0)).toBe(7);
      expect((await readAll("t")).map((record) => [record.offset, decode(record.value)])).toEqual([
        [0, "before-0"],
        [1, "before-1"],
        [2, "before-2"],
        [4, "after-0"],
        [5, "after-1"],
        [6, "after-2"],
      ]);
    });
  }
});
