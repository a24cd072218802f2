/**
 * Which partition a record goes to. Keyed records must agree with Kafka's Java default
 * partitioner bit for bit, so that a key keeps its partition (and its ordering) whether it was
 * produced through Sluice or through a Kafka client: `toPositive(murmur2(key)) % partitions`,
 * over all partitions.
 *
 * Unkeyed records are spread round-robin from a caller-owned counter. Kafka's Java producer
 * instead "sticks" to one partition until a batch fills (KIP-480, and KIP-794's adaptive variant
 * since 3.3) to get larger batches. A serverless producer has no long-lived batch to fill, so the
 * equivalent here is the caller's choice: call once per produce request and use that partition
 * for all of its unkeyed records (sticky per request), or once per record (round-robin).
 */
import { InvalidArgumentError } from "./errors.js";
import { murmur2 } from "./murmur2.js";

/** Mutable state for spreading unkeyed records; `choosePartition` advances `next`. */
export interface PartitionCounter {
  next: number;
}

/**
 * A counter starting at `start`, or at a random point so that many short-lived producers do not
 * all begin on partition 0 (kafkajs and the Java client randomise the start for the same reason).
 */
export function createPartitionCounter(start?: number): PartitionCounter {
  return { next: start ?? Math.floor(Math.random() * 0x7fffffff) };
}

const defaultCounter = createPartitionCounter();

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

export interface ChoosePartitionInput {
  /** The record key; null means unkeyed. An empty key is a key and is hashed. */
  key: Uint8Array | null;
  /** A partition the producer asked for; honoured when given and in range. */
  explicitPartition?: number | null;
  /** The topic's partition count. */
  partitions: number;
  /** State for unkeyed records; a process-wide counter when omitted. */
  stickyCounter?: PartitionCounter;
}

/** Explicit partition if given, else murmur2 of the key, else round-robin from the counter. */
export function choosePartition(input: ChoosePartitionInput): number {
  const { key, explicitPartition, partitions } = input;
  checkPartitionCount(partitions);
  if (explicitPartition !== undefined && explicitPartition !== null) {
    if (!Number.isInteger(explicitPartition) || explicitPartition < 0 || explicitPartition >= partitions) {
      throw new InvalidArgumentError(
        `partition ${explicitPartition} does not exist: the topic has ${partitions} partitions (0..${partitions - 1})`,
        { details: { partition: explicitPartition, partitions } },
      );
    }
    return explicitPartition;
  }
  if (key !== null) return toPositive(murmur2(key)) % partitions;
  const counter = input.stickyCounter ?? defaultCounter;
  const partition = toPositive(counter.next) % partitions;
  counter.next = (counter.next + 1) | 0;
  return partition;
}
