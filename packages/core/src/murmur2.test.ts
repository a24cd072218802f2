import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { murmur2 } from "./murmur2.js";
import { partitionForKey } from "./partitioner.js";

// kafkajs's port of the Java murmur2 and default partitioner, as an independent oracle.
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require("kafkajs/src/producer/partitioners/default/murmur2") as (
  key: Buffer,
) => number;
type KafkajsPartitioner = (args: {
  topic: string;
  partitionMetadata: { partitionId: number; leader: number }[];
  message: { key: Buffer | null; partition?: number | null };
}) => number;
const createKafkajsPartitioner =
  require("kafkajs/src/producer/partitioners/default") as () => KafkajsPartitioner;

const utf8 = (s: string) => new TextEncoder().encode(s);

describe("murmur2", () => {
  it("matches the vectors in Kafka's Java UtilsTest", () => {
    expect(murmur2(utf8("21"))).toBe(-973932308);
    expect(murmur2(utf8("foobar"))).toBe(-790332482);
    expect(murmur2(utf8("a-little-bit-long-string"))).toBe(-985981536);
    expect(murmur2(utf8("a-little-bit-longer-string"))).toBe(-1486304829);
    expect(murmur2(utf8("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"))).toBe(-58897971);
    expect(murmur2(Uint8Array.of(0x61, 0x62, 0x63))).toBe(479470107);
  });

  it("returns a signed 32-bit integer equal to kafkajs's for arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (key) => {
        const hash = murmur2(key);
        expect(hash).toBe(hash | 0);
        expect(hash).toBe(kafkajsMurmur2(Buffer.from(key)));
      }),
      { numRuns: 500 },
    );
  });

  it("hashes views at any offset by their own bytes only", () => {
    const backing = utf8("xxfoobarxx");
    expect(murmur2(backing.subarray(2, 8))).toBe(-790332482);
  });
});

describe("partitionForKey", () => {
  it("agrees with kafkajs's default (Java-compatible) partitioner for random keys and counts", () => {
    const kafkajs = createKafkajsPartitioner();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 1, max: 10_000 }),
        (key, partitions) => {
          const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
            partitionId,
            leader: 0,
          }));
          const expected = kafkajs({ topic: "t", partitionMetadata, message: { key: Buffer.from(key) } });
          expect(partitionForKey(key, partitions)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("masks the sign bit rather than taking an absolute value", () => {
    // murmur2("21") is negative: toPositive(-973932308) = -973932308 & 0x7fffffff.
    expect(partitionForKey(utf8("21"), 1000)).toBe((-973932308 & 0x7fffffff) % 1000);
  });
});
