import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError } from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runObjectStoreContract } from "./object-store.contract.js";
import { PackedObjectStore, type PackedObjectStoreOptions } from "./packed.js";

/** Bound three ways: every object in segments (small ones rolling often), and inline in the index. */
const bindings: [string, Omit<PackedObjectStoreOptions, "root">][] = [
  ["segments, fsync", { durability: "fsync", inlineBytesMax: 0, segmentBytesMax: 64 }],
  ["segments, buffered", { durability: "buffered", inlineBytesMax: 0 }],
  ["inline, buffered", { durability: "buffered" }],
];
for (const [name, options] of bindings) {
  runObjectStoreContract({
    name: `packed, ${name}`,
    create: async () => {
      const root = await mkdtemp(join(tmpdir(), "sluice-packed-"));
      const store = new PackedObjectStore({ root, ...options });
      return {
        store,
        cleanup: async () => {
          store.close();
          await rm(root, { recursive: true, force: true });
        },
      };
    },
  });
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("PackedObjectStore", () => {
  let root: string;
  const stores: PackedObjectStore[] = [];
  const open = (options: Omit<PackedObjectStoreOptions, "root"> = {}) => {
    const store = new PackedObjectStore({ root, inlineBytesMax: 4, segmentBytesMax: 32, ...options });
    stores.push(store);
    return store;
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "sluice-packed-extra-"));
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) store.close();
    await rm(root, { recursive: true, force: true });
  });

  it("creates no file per object: small ones live in the index, large ones share segment files", async () => {
    const store = open({ inlineBytesMax: 100, segmentBytesMax: 1 << 20 });
    for (let i = 0; i < 50; i++) await store.put(`small/${i}`, bytes("tiny"));
    for (let i = 0; i < 50; i++) await store.put(`large/${i}`, bytes(`${"x".repeat(200)}${i}`));
    expect((await readdir(join(root, "segments"))).length).toBe(1);
    expect(text((await store.get("large/7")).body)).toBe(`${"x".repeat(200)}7`);
    expect(text((await store.get("large/7", { range: { offset: 199, length: 5 } })).body)).toBe("x7");
  });

  it("lets exactly one of two stores on one root (two processes' worth) win concurrent create-only puts", async () => {
    const [a, b] = [open(), open()];
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).put("race", bytes(`writer ${i} long enough`), { condition: { ifNoneMatch: "*" } }),
      ),
    );
    const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const result of results)
      if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
    expect(text((await a.get("race")).body)).toBe(`writer ${winners[0]} long enough`);
    expect(text((await b.get("race")).body)).toBe(`writer ${winners[0]} long enough`);
  });

  it("deletes a closed segment once none of its objects is left, and keeps the others", async () => {
    const store = open({ inlineBytesMax: 0, segmentBytesMax: 20 });
    for (let i = 0; i < 6; i++) await store.put(`k${i}`, bytes(`value number ${i}`));
    const segments = await readdir(join(root, "segments"));
    expect(segments.length).toBeGreaterThan(2);
    await store.deleteMany(["k0", "k1", "k2"]);
    await store.put("k3", bytes("replaced, in a new segment"));
    const left = await readdir(join(root, "segments"));
    expect(left.length).toBeLessThan(segments.length);
    for (const key of ["k3", "k4", "k5"]) expect((await store.get(key)).size).toBeGreaterThan(0);
  });

  it("reads what an earlier instance on the same root wrote, and writes segments of its own", async () => {
    const first = open({ durability: "fsync" });
    await first.put("a", bytes("written before the restart"));
    first.close();
    const second = open();
    expect(text((await second.get("a")).body)).toBe("written before the restart");
    await second.put("b", bytes("written after the restart"));
    expect((await readdir(join(root, "segments"))).length).toBe(2);
  });

  it("waits for the disk at index checkpoints only in fsync durability: buffered runs with synchronous OFF", () => {
    expect(open({ durability: "fsync" }).synchronousLevel).toBe(1);
    const bufferedRoot = join(root, "buffered");
    const buffered = new PackedObjectStore({ root: bufferedRoot, durability: "buffered" });
    stores.push(buffered);
    expect(buffered.synchronousLevel).toBe(0);
  });

  it("group-commits concurrent puts in fsync durability: fewer syncs than puts", async () => {
    const store = open({ durability: "fsync", inlineBytesMax: 8, segmentBytesMax: 1 << 20 });
    await store.put("warm", bytes("up"));
    const before = store.syncs;
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(`p${i}`, bytes(`payload of put ${i}`))));
    const syncs = store.syncs - before;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(30);
  });
});
