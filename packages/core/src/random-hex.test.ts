import { describe, expect, it } from "vitest";
import { randomHex } from "./random-hex.js";

describe("randomHex", () => {
  it("gives 2n hex digits for n bytes, also across refills of its pool and beyond its size", () => {
    for (const bytes of [1, 6, 8, 12, 4095, 4096, 4097, 10_000]) {
      for (let i = 0; i < 3; i++) expect(randomHex(bytes)).toMatch(new RegExp(`^[0-9a-f]{${2 * bytes}}$`));
    }
  });

  it("never repeats a value, pool refills included", () => {
    const seen = new Set<string>();
    // 20,000 × 8 bytes is about 40 refills of the pool.
    for (let i = 0; i < 20_000; i++) seen.add(randomHex(8));
    expect(seen.size).toBe(20_000);
  });

  it("hands out fresh bytes: no value is a piece of the one before", () => {
    let previous = randomHex(12);
    for (let i = 0; i < 2_000; i++) {
      const next = randomHex(12);
      expect(next).not.toBe(previous);
      expect(previous.includes(next.slice(0, 16))).toBe(false);
      previous = next;
    }
  });
});
