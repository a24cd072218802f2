import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "./errors.js";
import { choosePartition, createPartitionCounter, partitionForKey } from "./partitioner.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

describe("choosePartition", () => {
  it("honours an explicit partition, even over a key", () => {
    expect(choosePartition({ key: utf8("k"), explicitPartition: 2, partitions: 3 })).toBe(2);
    expect(choosePartition({ key: null, explicitPartition: 0, partitions: 1 })).toBe(0);
  });

  it("refuses explicit partitions that do not exist, naming the partition and the count", () => {
    for (const partition of [3, -1, 1.5, Number.NaN, 2 ** 40]) {
      let thrown: unknown;
      try {
        choosePartition({ key: null, explicitPartition: partition, partitions: 3 });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidArgumentError);
      const error = thrown as InvalidArgumentError;
      expect(error.message).toContain(`partition ${partition}`);
      expect(error.message).toContain("3 partitions");
      expect(error.details).toEqual({ partition, partitions: 3 });
    }
  });

  it("refuses partition counts that are not positive integers", () => {
    for (const partitions of [0, -1, 2.5, Number.NaN]) {
      expect(() => choosePartition({ key: null, partitions })).toThrow(InvalidArgumentError);
      expect(() => partitionForKey(utf8("k"), partitions)).toThrow(InvalidArgumentError);
    }
  });

  it("hashes keys with murmur2, including the empty key", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 50 }), fc.integer({ min: 1, max: 500 }), (key, partitions) => {
        expect(choosePartition({ key, partitions })).toBe(partitionForKey(key, partitions));
        expect(choosePartition({ key, partitions, explicitPartition: null })).toBe(
          partitionForKey(key, partitions),
        );
      }),
    );
    expect(choosePartition({ key: new Uint8Array(0), partitions: 7 })).toBe(
      partitionForKey(new Uint8Array(0), 7),
    );
  });

  it("spreads unkeyed records round-robin from the caller's counter", () => {
    const counter = createPartitionCounter(0);
    const chosen = Array.from({ length: 7 }, () =>
      choosePartition({ key: null, partitions: 3, stickyCounter: counter }),
    );
    expect(chosen).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(counter.next).toBe(7);
  });

  it("stays in range when the counter wraps past 2^31", () => {
    const counter = createPartitionCounter(0x7fffffff - 1);
    for (let i = 0; i < 5; i++) {
      const partition = choosePartition({ key: null, partitions: 5, stickyCounter: counter });
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(5);
    }
  });

  it("reaches every partition with the default counter", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 16; i++) seen.add(choosePartition({ key: null, partitions: 16 }));
    expect(seen.size).toBe(16);
  });

  it("starts fresh counters at a random point unless told otherwise", () => {
    const starts = new Set(Array.from({ length: 20 }, () => createPartitionCounter().next));
    expect(starts.size).toBeGreaterThan(1);
    expect(createPartitionCounter(5).next).toBe(5);
  });
});
