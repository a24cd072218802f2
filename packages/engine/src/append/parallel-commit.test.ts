import { decodeRecordBatches, NotFoundError, UnavailableError } from "@sluice/core";
import type { ObjectStore, PutOptions } from "@sluice/storage";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../engine.js";
import { PENDING_UPLOAD_MS } from "../fetch/missing-objects.js";
import { StaleIndexError } from "../fetch/reader.js";
import { indexKey } from "../keys.js";
import { UploadTooLateError } from "./appender.js";

const text = new TextEncoder();
const values = (records: { value: Uint8Array | null }[]) =>
  records.map((record) => new TextDecoder().decode(record.value!));
const record = (value: string) => ({ key: null, value: text.encode(value), partition: 0 });

/** Uploads of data objects that the test lets through, fails, or holds until it says so. */
class GatedObjectStore {
  readonly puts: string[] = [];
  mode: "pass" | "hold" | "fail" = "pass";
  private readonly held: (() => void)[] = [];

  constructor(readonly inner: ObjectStore) {}

  get: ObjectStore["get"] = (key, options) => this.inner.get(key, options);
  head: ObjectStore["head"] = (key) => this.inner.head(key);
  list: ObjectStore["list"] = (prefix, options) => this.inner.list(prefix, options);
  delete: ObjectStore["delete"] = (key) => this.inner.delete(key);
  deleteMany: ObjectStore["deleteMany"] = (keys) => this.inner.deleteMany(keys);

  async put(key: string, body: Uint8Array, options?: PutOptions) {
    if (body.byteLength > 0) {
      this.puts.push(key);
      if (this.mode === "fail") throw new UnavailableError("upload failed (test)");
      if (this.mode === "hold") await new Promise<void>((release) => this.held.push(release));
    }
    return this.inner.put(key, body, options);
  }

  /** Lets every held upload go on, and waits until they have been written or refused. */
  async release(): Promise<void> {
    for (const release of this.held.splice(0)) release();
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  }
}

let objects: GatedObjectStore;
let metadata: MemoryMetadataStore;
let clock: SimulatedClock;
let writer: Engine;
/** A reader in another process: empty caches, as another Lambda would have. */
let reader: Engine;

beforeEach(async () => {
  objects = new GatedObjectStore(new MemoryObjectStore());
  metadata = new MemoryMetadataStore();
  clock = new SimulatedClock();
  writer = new Engine({ objects, metadata, clock, parallelCommit: true });
  reader = new Engine({ objects, metadata, clock });
  await writer.createTopic({ name: "events", partitions: 1 });
});

/** Until the promise settles, turns of the event loop; whether it settled. */
async function settles(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe("parallel commit", () => {
  it("commits while the upload is on its way, and acknowledges only once both are done", async () => {
    objects.mode = "hold";
    const append = writer.append({ topic: "events", records: [record("a"), record("b")] });
    expect(await settles(append)).toBe(false);
    // Committed: the head moved, and the entry, marked, names an object that is not there yet.
    expect((await reader.partitionOffsets("events", 0)).highWatermark).toBe(2);
    const { topicId } = await writer.describeTopic("events");
    const entry = await metadata.get(indexKey(topicId, 0, 0));
    expect(entry).toMatchObject({ objectKey: objects.puts[0], parallelCommit: true });
    await expect(objects.head(objects.puts[0]!)).rejects.toBeInstanceOf(NotFoundError);
    await objects.release();
    const result = await append;
    expect(result.records.map((appended) => appended.offset)).toEqual([0, 1]);
    expect(values((await reader.fetch({ topic: "events", partition: 0, offset: 0 })).records)).toEqual([
      "a",
      "b",
    ]);
  });

  it("keeps the upload first for producer sequences and idempotency keys", async () => {
    const producer = await writer.initProducer();
    objects.mode = "hold";
    const sequenced = writer.append({
      topic: "events",
      records: [record("p")],
      producer: { ...producer, baseSequences: { 0: 0 } },
    });
    const keyed = writer.append({ topic: "events", records: [record("k")], idempotencyKey: "key-1" });
    expect(await settles(sequenced)).toBe(false);
    expect((await reader.partitionOffsets("events", 0)).highWatermark).toBe(0);
    await objects.release();
    await Promise.all([sequenced, keyed]);
    expect((await reader.partitionOffsets("events", 0)).highWatermark).toBe(2);
  });

  it("makes a reader wait for an upload on its way: nothing skipped, nothing served from the writer's memory", async () => {
    await writer.append({ topic: "events", records: [record("first")] });
    objects.mode = "hold";
    const append = writer.append({ topic: "events", records: [record("second")] });
    await settles(append);
    for (const engine of [reader, writer]) {
      const read = await engine.fetch({ topic: "events", partition: 0, offset: 0 });
      expect(values(read.records)).toEqual(["first"]);
      expect(read.nextOffset).toBe(1);
      const waiting = await engine.fetch({ topic: "events", partition: 0, offset: 1 });
      expect(waiting.records).toEqual([]);
      expect(waiting.nextOffset).toBe(1);
      expect(waiting.highWatermark).toBe(2);
    }
    await objects.release();
    await append;
    expect(values((await reader.fetch({ topic: "events", partition: 0, offset: 1 })).records)).toEqual([
      "second",
    ]);
  });

  it("gives an upload that never lands up as a gap once it is PENDING_UPLOAD_MS old, with an empty object under its key", async () => {
    objects.mode = "fail";
    const failed = writer.append({ topic: "events", records: [record("lost"), record("lost too")] });
    await expect(failed).rejects.toThrow(/committed \(partition 0 offsets 0 to 1\) but their upload failed/);
    await expect(failed).rejects.toBeInstanceOf(UnavailableError);
    await expect(failed).rejects.toMatchObject({
      code: "UPLOAD_FAILED_AFTER_COMMIT",
      details: { topic: "events", committed: [{ partition: 0, baseOffset: 0, recordCount: 2 }] },
    });
    objects.mode = "pass";
    await writer.append({ topic: "events", records: [record("after")] });
    const lostKey = objects.puts[0]!;

    const early = await reader.fetch({ topic: "events", partition: 0, offset: 0 });
    expect(early.records).toEqual([]);
    expect(early.nextOffset).toBe(0);
    await expect(objects.head(lostKey)).rejects.toBeInstanceOf(NotFoundError);

    await clock.advance(PENDING_UPLOAD_MS);
    const late = await reader.fetch({ topic: "events", partition: 0, offset: 0 });
    expect(late.records.map((consumed) => [consumed.offset, values([consumed])[0]])).toEqual([[2, "after"]]);
    expect(late.nextOffset).toBe(3);
    expect((await objects.head(lostKey)).size).toBe(0);

    // As bytes, the gap is one empty batch spanning its two offsets, then the next batch.
    const bytes = await reader.fetchBatches({ topic: "events", partition: 0, offset: 0 });
    const batches = await decodeRecordBatches(bytes.batches);
    expect(batches.map((batch) => [batch.baseOffset, batch.lastOffset, batch.recordCount])).toEqual([
      [0, 1, 0],
      [2, 2, 1],
    ]);
    expect(await reader.offsetForTimestamp("events", 0, 0)).toBe(2);
  });

  it("fails an upload that arrives after a reader gave its offsets up, and the gap stays", async () => {
    objects.mode = "hold";
    const append = writer.append({ topic: "events", records: [record("slow")] });
    await settles(append);
    await clock.advance(PENDING_UPLOAD_MS);
    const read = await reader.fetch({ topic: "events", partition: 0, offset: 0 });
    expect(read.records).toEqual([]);
    expect(read.nextOffset).toBe(1);
    await objects.release();
    await expect(append).rejects.toBeInstanceOf(UploadTooLateError);
    const again = await new Engine({ objects, metadata, clock }).fetch({
      topic: "events",
      partition: 0,
      offset: 0,
    });
    expect(again.records).toEqual([]);
    expect(again.nextOffset).toBe(1);
  });

  it("hedges an upload under the same key: the second PUT wins, the first is refused and recognised", async () => {
    const hedgeClock = new SimulatedClock({ sleeps: "wait" });
    const hedging = new Engine({
      objects,
      metadata,
      clock: hedgeClock,
      parallelCommit: true,
      uploadHedgeAfterMs: 8,
    });
    objects.mode = "hold";
    const append = hedging.append({ topic: "events", records: [record("hedged")] });
    await settles(append);
    objects.mode = "pass";
    await hedgeClock.advance(8);
    const result = await append;
    expect(result.records[0]!.offset).toBe(0);
    await objects.release();
    expect(objects.puts).toHaveLength(2);
    expect(objects.puts[1]).toBe(objects.puts[0]);
    expect(values((await reader.fetch({ topic: "events", partition: 0, offset: 0 })).records)).toEqual([
      "hedged",
    ]);
  });

  it("answers lookups by time and the time at an offset from the entry of an upload on its way", async () => {
    objects.mode = "hold";
    const append = writer.append({
      topic: "events",
      records: [{ ...record("timed"), timestamp: 5_000 }],
    });
    await settles(append);
    expect(await reader.offsetForTimestamp("events", 0, 4_000)).toBe(0);
    expect(await reader.timestampAt("events", 0, 0)).toBe(5_000);
    await objects.release();
    await append;
  });

  it("never takes the missing object of an entry committed after its upload for a gap", async () => {
    const sequential = new Engine({ objects, metadata, clock });
    await sequential.append({ topic: "events", records: [record("kept")] });
    const key = objects.puts[0]!;
    await objects.inner.delete(key);
    await clock.advance(PENDING_UPLOAD_MS * 2);
    await expect(reader.fetch({ topic: "events", partition: 0, offset: 0 })).rejects.toBeInstanceOf(
      StaleIndexError,
    );
    await expect(objects.head(key)).rejects.toBeInstanceOf(NotFoundError);
  });
});
