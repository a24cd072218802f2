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
 * The condition under which a batch (epoch, sequence) may replace the stored state with the item
 * built from `basis`, the state it was read as: the stored state must still be `basis` (the new
 * item carries basis's recent batches on), and the batch must follow it — the next sequence of
 * the same epoch, or sequence 0 of a new producer or a newer epoch. Checking only the sequence is
 * not enough: two appends of one producer racing in one process both start from the same cached
 * state, and the second would write its item over the first's, forgetting the first batch (whose
 * retry would then be refused instead of answered as a duplicate). A basis that the batch does not
 * follow makes the condition fail, and the failure's current state is classified (duplicate, gap,
 * fenced) or becomes the next basis.
 */
export function producerStateCondition(
  epoch: number,
  sequence: number,
  basis: ProducerState | undefined,
): Condition {
  const unchanged =
    basis === undefined
      ? cond.notExists("pk")
      : cond.and(cond.eq("epoch", basis.epoch), cond.eq("nextSequence", basis.nextSequence));
  const follows =
    basis === undefined || basis.epoch < epoch
      ? sequence === 0
      : basis.epoch === epoch && basis.nextSequence === sequence;
  return follows ? unchanged : cond.and(cond.exists("pk"), cond.notExists("pk"));
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
