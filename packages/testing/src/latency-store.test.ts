import { MemoryObjectStore } from "@sluice/storage/memory";
import { describe, expect, it } from "vitest";
import { drawLatency, LatencyObjectStore } from "./latency-store.js";
import { seededChooser } from "./store-wrappers.js";

describe("latency distributions", () => {
  it("draws a log-normal with the median and 99th percentile asked for", () => {
    const random = seededChooser(7);
    const draws = Array.from({ length: 40_000 }, () => drawLatency({ p50Ms: 20, p99Ms: 120 }, random)).sort(
      (a, b) => a - b,
    );
    expect(draws[20_000]!).toBeGreaterThan(19);
    expect(draws[20_000]!).toBeLessThan(21);
    expect(draws[39_600]!).toBeGreaterThan(110);
    expect(draws[39_600]!).toBeLessThan(130);
    expect(draws[0]!).toBeGreaterThan(0);
  });

  it("waits the drawn latency, then does what the inner store does", async () => {
    const waits: number[] = [];
    const store = new LatencyObjectStore(
      new MemoryObjectStore(),
      {
        put: { p50Ms: 30, p99Ms: 30.0001 },
        get: { p50Ms: 5, p99Ms: 5.0001 },
        other: { p50Ms: 1, p99Ms: 1.0001 },
      },
      { random: seededChooser(1), sleep: async (ms) => void waits.push(Math.round(ms)) },
    );
    await store.put("k", new Uint8Array([1, 2]));
    expect((await store.get("k")).body).toEqual(new Uint8Array([1, 2]));
    expect(waits).toEqual([30, 5]);
  });
});
