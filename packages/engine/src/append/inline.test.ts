import { DataCorruptionError, decodeRecordBatches, InvalidArgumentError } from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingObjectStore } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { Engine, INDEX_ENTRY_BYTES, INLINE_MAX_BYTES_LIMIT, indexEntryWeight } from "../engine.js";
import { storedIndexEntries } from "../fetch/index-entries.js";
import { indexKey } from "../keys.js";
import { LruCache } from "../lru-cache.js";

const text = new TextEncoder();
const decoded = (records: { value: Uint8Array | null }[]) =>
  records.map((record) => new TextDecoder().decode(record.value!));
/** The values of the records in a batch's bytes. */
const carried = async (bytes: Uint8Array) =>
  decoded((await decodeRecordBatches(bytes)).flatMap((batch) => batch.records));

let objects: CountingObjectStore;
let metadata: MemoryMetadataStore;
let writer: Engine;
/** A reader in another process: empty caches, so it reads what the stores hold. */
let reader: Engine;
let topicId: string;

beforeEach(async () => {
  objects = new CountingObjectStore(new MemoryObjectStore());
  metadata = new MemoryMetadataStore();
  writer = new Engine({ objects, metadata, inlineMaxBytes: 512 });
  reader = new Engine({ objects, metadata });
  topicId = (await writer.createTopic({ name: "events", partitions: 3 })).topicId;
});

async function entriesOf(partition: number) {
  const entries = [];
  for await (const entry of storedIndexEntries(metadata, topicId, partition)) entries.push(entry);
  return entries;
}

describe("small appends carried in the index", () => {
  it("writes no object for an append within the bound: the entry carries its batch, and a fresh reader reads it", async () => {
    const result = await writer.append({
      topic: "events",
      records: [
        { key: null, value: text.encode("one"), partition: 1 },
        { key: null, value: text.encode("two"), partition: 1 },
      ],
    });
    expect(result.records.map((record) => record.offset)).toEqual([0, 1]);
    expect(objects.calls.put).toBe(0);
    expect((await objects.list("topics/")).objects).toEqual([]);
    const [entry] = await entriesOf(1);
    expect(entry?.inline).toBeInstanceOf(Uint8Array);
    expect(entry?.inline?.byteLength).toBe(entry?.length);
    expect(await carried(entry!.inline!)).toEqual(["one", "two"]);
    const fetched = await reader.fetch({ topic: "events", partition: 1, offset: 0 });
    expect(decoded(fetched.records)).toEqual(["one", "two"]);
    expect(fetched.nextOffset).toBe(2);
  });

  it("gives each partition's entry its own batch when one request writes several partitions", async () => {
    await writer.append({
      topic: "events",
      records: [0, 1, 2, 0, 2].map((partition, index) => ({
        key: null,
        value: text.encode(`p${partition}-${index}`),
        partition,
      })),
    });
    expect(objects.calls.put).toBe(0);
    const entries = await Promise.all([0, 1, 2].map(entriesOf));
    // The entries share the request's key, and each carries only its own partition's records.
    expect(new Set(entries.map((list) => list[0]!.objectKey)).size).toBe(1);
    const expected = [["p0-0", "p0-3"], ["p1-1"], ["p2-2", "p2-4"]];
    expect(await Promise.all(entries.map((list) => carried(list[0]!.inline!)))).toEqual(expected);
    for (const partition of [0, 1, 2]) {
      const fetched = await reader.fetch({ topic: "events", partition, offset: 0 });
      expect(decoded(fetched.records)).toEqual(expected[partition]);
    }
  });

  it("uploads an append over the bound, as every append without it", async () => {
    const value = text.encode("x".repeat(600));
    await writer.append({ topic: "events", records: [{ key: null, value, partition: 0 }] });
    expect(objects.calls.put).toBe(1);
    const [entry] = await entriesOf(0);
    expect(entry?.inline).toBeUndefined();
    const fetched = await reader.fetch({ topic: "events", partition: 0, offset: 0 });
    expect(fetched.records[0]?.value).toEqual(value);
  });

  it("reads carried and uploaded entries of one partition in offset order", async () => {
    const sizes = [10, 700, 20, 900, 30];
    for (const size of sizes)
      await writer.append({
        topic: "events",
        records: [{ key: null, value: text.encode("v".repeat(size)), partition: 2 }],
      });
    expect(objects.calls.put).toBe(2);
    expect((await entriesOf(2)).map((entry) => entry.inline !== undefined)).toEqual([
      true,
      false,
      true,
      false,
      true,
    ]);
    const fetched = await reader.fetch({ topic: "events", partition: 2, offset: 0 });
    expect(fetched.records.map((record) => record.value!.byteLength)).toEqual(sizes);
    expect(fetched.records.map((record) => record.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it("refuses a bound that is not a whole number of bytes from 0 to the limit", () => {
    for (const bad of [-1, 1.5, Number.NaN, INLINE_MAX_BYTES_LIMIT + 1]) {
      expect(() => new Engine({ objects, metadata, inlineMaxBytes: bad })).toThrow(InvalidArgumentError);
      expect(() => new Engine({ objects, metadata, inlineMaxBytes: bad })).toThrow(/inlineMaxBytes must be/);
    }
    expect(new Engine({ objects, metadata, inlineMaxBytes: INLINE_MAX_BYTES_LIMIT })).toBeInstanceOf(Engine);
  });

  it("reads an entry whose carried bytes are not its batch's length as a corruption", async () => {
    await writer.append({
      topic: "events",
      records: [{ key: null, value: text.encode("whole"), partition: 0 }],
    });
    const key = indexKey(topicId, 0, 0);
    const item = (await metadata.get(key))!;
    await metadata.put({ ...item, inline: (item.inline as Uint8Array).subarray(0, 10) });
    await expect(reader.fetch({ topic: "events", partition: 0, offset: 0 })).rejects.toThrow(
      DataCorruptionError,
    );
  });

  it("weighs an entry in the index cache by the bytes it carries, so the cache's memory stays bounded", async () => {
    await writer.append({
      topic: "events",
      records: [{ key: null, value: text.encode("v".repeat(400)), partition: 0 }],
    });
    const [carrying] = await entriesOf(0);
    const plain = { ...carrying!, inline: undefined };
    expect(indexEntryWeight(plain)).toBe(1);
    expect(indexEntryWeight(carrying!)).toBe(1 + Math.ceil(carrying!.inline!.byteLength / INDEX_ENTRY_BYTES));
    // A cache of 100 plain entries holds far fewer carrying ones.
    const cache = new LruCache(100, indexEntryWeight);
    for (let i = 0; i < 100; i++) cache.set(`e${i}`, carrying!);
    const kept = Array.from({ length: 100 }, (_, i) => cache.get(`e${i}`)).filter(Boolean).length;
    expect(kept).toBe(Math.floor(100 / indexEntryWeight(carrying!)));
  });
});
