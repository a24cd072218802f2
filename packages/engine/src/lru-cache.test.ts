import { describe, expect, it } from "vitest";
import { BATCH_CACHE_ENTRY_BYTES, batchWeight } from "./engine.js";
import { LruCache } from "./lru-cache.js";

describe("LruCache", () => {
  it("drops the least recently used entries once over its weight", () => {
    const cache = new LruCache<string, number>(3);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1); // "b" is now the least recently used
    cache.set("d", 4);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c"), cache.get("d")]).toEqual([1, 3, 4]);
    expect(cache.size).toBe(3);
  });

  it("keeps nothing heavier than its whole budget, and replaces a key's weight", () => {
    const cache = new LruCache<string, string>(10, (value) => value.length);
    cache.set("big", "x".repeat(11));
    expect(cache.get("big")).toBeUndefined();
    cache.set("k", "x".repeat(6));
    cache.set("k", "x".repeat(4));
    expect(cache.weight).toBe(4);
    expect(cache.size).toBe(1);
  });
});

describe("the batch cache's weight", () => {
  it("counts each batch's keeping cost, so many small batches stay within the budget", () => {
    const budget = 64 * 1024;
    const cache = new LruCache<string, Uint8Array>(budget, batchWeight);
    for (let i = 0; i < 1_000; i++) cache.set(`object-${i}:0:100`, new Uint8Array(100));
    // By bytes alone 655 batches of 100 bytes would fit; each is counted with its keeping cost.
    expect(cache.size).toBe(Math.floor(budget / (100 + BATCH_CACHE_ENTRY_BYTES)));
    expect(cache.weight).toBeLessThanOrEqual(budget);
  });
});
