/**
 * The read path over the index layouts maintenance leaves (ARCHITECTURE.md, "The index as a
 * tiling"): a segment entry shadowing the entries it replaced, pieces, entries replaced under a
 * reader's cache, objects deleted under it, and entries whose offsets hold no record.
 */
import { decodeRecordBatches, encodeRecordBatch } from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingObjectStore, SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../engine.js";
import { indexKey, newSegmentObjectKey } from "../keys.js";
import { indexEntryFromItem, indexEntryItem, type StoredIndexEntry } from "./index-entry.js";

const text = new TextEncoder();
let objects: CountingObjectStore;
let metadata: MemoryMetadataStore;
let clock: SimulatedClock;
let engine: Engine;
let topicId: string;
/** The six entries the appends wrote, one record each, offsets 0 to 5. */
let appended: StoredIndexEntry[];

beforeEach(async () => {
  objects = new CountingObjectStore(new MemoryObjectStore());
  metadata = new MemoryMetadataStore();
  clock = new SimulatedClock();
  engine = new Engine({ objects, metadata, clock });
  topicId = (await engine.createTopic({ name: "t", partitions: 1 })).topicId;
  for (let index = 0; index < 6; index++) {
    await engine.append({
      topic: "t",
      records: [{ key: null, value: text.encode(`r${index}`), partition: 0 }],
    });
  }
  appended = [];
  for (let offset = 0; offset < 6; offset++) {
    appended.push(indexEntryFromItem((await metadata.get(indexKey(topicId, 0, offset)))!));
  }
});

/** A segment of the six batches, copied byte for byte, in two pieces of three; put over entry 0. */
async function putSegment(): Promise<StoredIndexEntry> {
  const chunks = await Promise.all(
    appended.map(
      async (entry) =>
        (await objects.get(entry.objectKey, { range: { offset: entry.position, length: entry.length } }))
          .body,
    ),
  );
  const body = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let position = 0;
  const starts: number[] = [];
  for (const chunk of chunks) {
    starts.push(position);
    body.set(chunk, position);
    position += chunk.byteLength;
  }
  const objectKey = newSegmentObjectKey(topicId, 0, clock.now());
  await objects.put(objectKey, body);
  const segment: StoredIndexEntry = {
    baseOffset: 0,
    recordCount: 6,
    offsetCount: 6,
    objectKey,
    position: 0,
    length: body.byteLength,
    firstTimestamp: appended[0]!.firstTimestamp,
    maxTimestamp: appended[5]!.maxTimestamp,
    pieces: [
      { offsetDelta: 0, position: 0, recordCount: 3, maxTimestamp: appended[2]!.maxTimestamp },
      { offsetDelta: 3, position: starts[3]!, recordCount: 3, maxTimestamp: appended[5]!.maxTimestamp },
    ],
  };
  await metadata.put(indexEntryItem(topicId, 0, segment));
  return segment;
}

async function readFrom(reader: Engine, offset: number, maxRecords: number): Promise<number[]> {
  const offsets: number[] = [];
  let next = offset;
  while (next < 6) {
    const page = await reader.fetch({ topic: "t", partition: 0, offset: next, maxRecords });
    offsets.push(...page.records.map((record) => record.offset));
    expect(page.nextOffset).toBeGreaterThan(next);
    next = page.nextOffset;
  }
  return offsets;
}

const fresh = () => new Engine({ objects, metadata, clock });
const range = (from: number) => Array.from({ length: 6 - from }, (_, index) => from + index);

describe("a segment entry shadowing the entries it replaced", () => {
  it("reads every offset once, from anywhere, in pages of any size, as records and as batches", async () => {
    await putSegment();
    for (const from of [0, 1, 3, 4, 5]) {
      for (const size of [1, 2, 4, 10]) expect(await readFrom(fresh(), from, size)).toEqual(range(from));
      const batches = await fresh().fetchBatches({ topic: "t", partition: 0, offset: from });
      const offsets = (await decodeRecordBatches(batches.batches)).flatMap((batch) =>
        batch.records.map((r) => r.offset),
      );
      expect(new Set(offsets).size).toBe(offsets.length);
      expect(offsets.filter((offset) => offset >= from)).toEqual(
        range(from).slice(0, offsets.filter((o) => o >= from).length),
      );
      expect(offsets.filter((offset) => offset >= from).length).toBeGreaterThan(0);
    }
  });

  it("keeps reading right while the shadowed entries are deleted a prefix at a time", async () => {
    await putSegment();
    for (let deleted = 1; deleted < 6; deleted++) {
      await metadata.delete(indexKey(topicId, 0, deleted));
      for (const from of [0, 2, 3, 5]) expect(await readFrom(fresh(), from, 2)).toEqual(range(from));
    }
  });

  it("reads a piece, not the whole segment, from the middle", async () => {
    const segment = await putSegment();
    for (let offset = 1; offset < 6; offset++) await metadata.delete(indexKey(topicId, 0, offset));
    objects.reset();
    const page = await fresh().fetch({ topic: "t", partition: 0, offset: 4, maxRecords: 10 });
    expect(page.records.map((record) => record.offset)).toEqual([4, 5]);
    expect(page.nextOffset).toBe(6);
    expect(objects.calls.get).toBe(1);
    // Adjacent pieces of one object come in one GET.
    objects.reset();
    expect(await readFrom(fresh(), 0, 10)).toEqual(range(0));
    expect(objects.calls.get).toBe(1);
    expect(segment.pieces).toHaveLength(2);
  });
});

describe("a reader whose cache is older than the index", () => {
  it("reads the index again once when its cached entries name deleted objects", async () => {
    const reader = fresh();
    expect(await readFrom(reader, 0, 10)).toEqual(range(0));
    await putSegment();
    for (let offset = 1; offset < 6; offset++) await metadata.delete(indexKey(topicId, 0, offset));
    await objects.deleteMany(appended.map((entry) => entry.objectKey));
    expect(await readFrom(reader, 0, 10)).toEqual(range(0));
    expect(await readFrom(reader, 3, 1)).toEqual(range(3));
  });

  it.each([1, 2, 3, 100])(
    "with room for %i cached entries, never returns a gap or a record twice across the swap",
    async (cacheEntries) => {
      const reader = new Engine({ objects, metadata, clock, indexCacheEntries: cacheEntries });
      for (const from of [0, 2, 4]) expect(await readFrom(reader, from, 2)).toEqual(range(from));
      await putSegment();
      for (let offset = 1; offset < 6; offset++) await metadata.delete(indexKey(topicId, 0, offset));
      // A later entry: a walk that misses an old entry now finds one past it, and stops there.
      await engine.append({ topic: "t", records: [{ key: null, value: text.encode("r6"), partition: 0 }] });
      for (const from of [0, 1, 2, 3, 4, 5]) {
        for (const size of [1, 3, 10]) {
          const offsets: number[] = [];
          let next = from;
          while (next < 7) {
            const page = await reader.fetch({ topic: "t", partition: 0, offset: next, maxRecords: size });
            offsets.push(...page.records.map((record) => record.offset));
            expect(page.nextOffset).toBeGreaterThan(next);
            next = page.nextOffset;
          }
          expect(offsets).toEqual([...range(from), 6]);
        }
      }
    },
  );
});

describe("entries whose offsets hold no record", () => {
  it("moves a reader past offsets without records, at the entry's end", async () => {
    // Offsets 0 to 5 as one entry holding only offsets 1 and 4, as key compaction writes it.
    const batch = await encodeRecordBatch(
      [
        { key: text.encode("k1"), value: text.encode("one"), timestamp: clock.now() },
        { key: text.encode("k4"), value: text.encode("four"), timestamp: clock.now() },
      ],
      { compression: "none", offsetDeltas: [1, 4], lastOffsetDelta: 5 },
    );
    const objectKey = newSegmentObjectKey(topicId, 0, clock.now());
    await objects.put(objectKey, batch);
    await metadata.put(
      indexEntryItem(topicId, 0, {
        baseOffset: 0,
        recordCount: 2,
        offsetCount: 6,
        objectKey,
        position: 0,
        length: batch.byteLength,
        firstTimestamp: clock.now(),
        maxTimestamp: clock.now(),
      }),
    );
    for (let offset = 1; offset < 6; offset++) await metadata.delete(indexKey(topicId, 0, offset));
    expect(await readFrom(fresh(), 0, 10)).toEqual([1, 4]);
    expect(await readFrom(fresh(), 0, 1)).toEqual([1, 4]);
    const tail = await fresh().fetch({ topic: "t", partition: 0, offset: 5 });
    expect(tail).toMatchObject({ records: [], nextOffset: 6 });
    expect(await fresh().offsetForTimestamp("t", 0, clock.now())).toBe(1);
  });

  it("walks past an entry holding no record at all once, after the entries before it", async () => {
    // Offsets 3 to 5 as one empty batch (key compaction removed every record), the last entry.
    const batch = await encodeRecordBatch([], {
      compression: "none",
      lastOffsetDelta: 2,
      timestamp: clock.now(),
    });
    const objectKey = newSegmentObjectKey(topicId, 0, clock.now());
    await objects.put(objectKey, batch);
    await metadata.put(
      indexEntryItem(topicId, 0, {
        baseOffset: 3,
        recordCount: 0,
        offsetCount: 3,
        objectKey,
        position: 0,
        length: batch.byteLength,
        firstTimestamp: clock.now(),
        maxTimestamp: clock.now(),
      }),
    );
    for (let offset = 4; offset < 6; offset++) await metadata.delete(indexKey(topicId, 0, offset));
    const reader = fresh();
    const page = await reader.fetch({ topic: "t", partition: 0, offset: 0, maxBytes: 4096 });
    expect(page.records.map((record) => record.offset)).toEqual([0, 1, 2]);
    expect(page.nextOffset).toBe(6);
    // Each stored batch once: a walk that stood still at the empty entry took it again and again
    // until max_bytes (and with no byte limit, for ever).
    const bytes = await reader.fetchBatches({ topic: "t", partition: 0, offset: 0, maxBytes: 4096 });
    const expected = appended.slice(0, 3).reduce((total, entry) => total + entry.length, batch.byteLength);
    expect(bytes.batches.byteLength).toBe(expected);
    expect(bytes.nextOffset).toBe(6);
  });
});
