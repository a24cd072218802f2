import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "./errors.js";
import { murmur2 } from "./murmur2.js";
import { partitionForKey } from "./partitioner.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

describe("partitionForKey", () => {
  it("refuses partition counts that are not positive integers", () => {
    for (const partitions of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => partitionForKey(utf8("k"), partitions)).toThrow(InvalidArgumentError);
    }
  });

  it("masks the sign bit of murmur2, as Kafka's toPositive does, including the empty key", () => {
    for (const key of [utf8(""), utf8("a"), utf8("customer-42"), new Uint8Array([0xff, 0x00, 0x80])]) {
      for (const partitions of [1, 3, 7, 16, 1000]) {
        expect(partitionForKey(key, partitions)).toBe((murmur2(key) & 0x7fffffff) % partitions);
      }
    }
  });
});
