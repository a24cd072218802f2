/**
 * Which partition a keyed record goes to. It must agree with Kafka's Java default partitioner bit
 * for bit, so that a key keeps its partition (and its ordering) whether it was produced through
 * Sluice or through a Kafka client: `toPositive(murmur2(key)) % partitions`, over all partitions.
 * Unkeyed records are the appender's choice (sticky per request, packages/engine/src/append).
 */
import { InvalidArgumentError } from "./errors.js";
import { murmur2 } from "./murmur2.js";

/** Kafka's `Utils.toPositive`: masks the sign bit (not `Math.abs`, which fails on -2^31). */
function toPositive(n: number): number {
  return n & 0x7fffffff;
}

function checkPartitionCount(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 0x7fffffff) {
    throw new InvalidArgumentError(`partition count must be a positive integer, got ${partitions}`, {
      details: { partitions },
    });
  }
}

/** The partition Kafka's default partitioner picks for a non-null key. */
export function partitionForKey(keyBytes: Uint8Array, partitions: number): number {
  checkPartitionCount(partitions);
  return toPositive(murmur2(keyBytes)) % partitions;
}
