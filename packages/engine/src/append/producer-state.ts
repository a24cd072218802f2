import { FencedError, InvalidArgumentError } from "@sluice/core";
import { type AttributeValue, type Condition, cond, type Item } from "@sluice/storage";
import { OutOfOrderSequenceError } from "../errors.js";
import { producerStateKey } from "../keys.js";

/** How many recent batches per producer and partition are remembered for duplicate detection (Kafka keeps 5). */
export const RECENT_BATCHES_KEPT = 5;

export interface RecentBatch {
  sequence: number;
  count: number;
  baseOffset: number;
}

/** Idempotent-producer state of one producer on one partition. */
export interface ProducerState {
  epoch: number;
  nextSequence: number;
  recent: RecentBatch[];
}

export function producerStateFromItem(item: Item | undefined): ProducerState | undefined {
  if (!item) return undefined;
  const recent = Array.isArray(item.recent) ? item.recent : [];
  return {
    epoch: Number(item.epoch),
    nextSequence: Number(item.nextSequence),
    recent: recent.map((entry) => {
      const batch = entry as Record<string, AttributeValue>;
      return {
        sequence: Number(batch.sequence),
        count: Number(batch.count),
        baseOffset: Number(batch.baseOffset),
      };
    }),
  };
}

/**
 * The condition under which a batch (epoch, sequence) may follow the stored state: the next
 * sequence of the same epoch, or sequence 0 of a new producer or a newer epoch.
 */
export function producerStateCondition(epoch: number, sequence: number): Condition {
  const continues = cond.and(cond.eq("epoch", epoch), cond.eq("nextSequence", sequence));
  if (sequence !== 0) return continues;
  return cond.or(cond.notExists("pk"), cond.compare("epoch", "<", epoch), continues);
}

/** The state item after appending `count` records at `baseOffset`. */
export function nextProducerStateItem(
  topicId: string,
  partition: number,
  producerId: number,
  previous: ProducerState | undefined,
  batch: { epoch: number; sequence: number; count: number; baseOffset: number },
): Item {
  const sameEpoch = previous !== undefined && previous.epoch === batch.epoch;
  const recent = [
    ...(sameEpoch ? previous.recent : []),
    { sequence: batch.sequence, count: batch.count, baseOffset: batch.baseOffset },
  ];
  return {
    ...producerStateKey(topicId, partition, producerId),
    producerId,
    epoch: batch.epoch,
    nextSequence: batch.sequence + batch.count,
    recent: recent.slice(-RECENT_BATCHES_KEPT).map((entry) => ({ ...entry })),
  };
}

export type SequenceVerdict = { kind: "duplicate"; baseOffset: number } | { kind: "retry" };

/**
 * Why a producer-state condition failed, given the state as it is now. A duplicate is answered
 * with the original offsets; a stale epoch is fenced; a gap is an error; a stale cache is retried.
 */
export function classifySequenceFailure(
  current: ProducerState | undefined,
  batch: { producerId: number; partition: number; epoch: number; sequence: number; count: number },
): SequenceVerdict {
  const where = `producer ${batch.producerId} partition ${batch.partition}`;
  if (!current) {
    if (batch.sequence === 0) return { kind: "retry" };
    throw new OutOfOrderSequenceError(
      `${where}: no earlier batches are known, so the first sequence must be 0, not ${batch.sequence}`,
    );
  }
  if (current.epoch > batch.epoch) {
    throw new FencedError(`${where}: epoch ${batch.epoch} is fenced by epoch ${current.epoch}`, {
      details: { producerId: batch.producerId, epoch: batch.epoch, currentEpoch: current.epoch },
    });
  }
  if (current.epoch < batch.epoch) {
    if (batch.sequence === 0) return { kind: "retry" };
    throw new OutOfOrderSequenceError(
      `${where}: a new epoch ${batch.epoch} must start at sequence 0, not ${batch.sequence}`,
    );
  }
  if (batch.sequence === current.nextSequence) return { kind: "retry" };
  if (batch.sequence > current.nextSequence) {
    throw new OutOfOrderSequenceError(
      `${where}: sequence ${batch.sequence} skips ahead; the next expected sequence is ${current.nextSequence}`,
      { details: { expected: current.nextSequence, got: batch.sequence } },
    );
  }
  const original = current.recent.find((recent) => recent.sequence === batch.sequence);
  if (original && original.count === batch.count)
    return { kind: "duplicate", baseOffset: original.baseOffset };
  if (original) {
    throw new InvalidArgumentError(
      `${where}: sequence ${batch.sequence} was written with ${original.count} records, now retried with ${batch.count}`,
    );
  }
  throw new OutOfOrderSequenceError(
    `${where}: sequence ${batch.sequence} is older than the last ${RECENT_BATCHES_KEPT} batches remembered; the next expected sequence is ${current.nextSequence}`,
  );
}
