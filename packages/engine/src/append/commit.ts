import type { Clock } from "@sluice/core";
import { backoffMs, ConflictError, FencedError, NotFoundError, UnavailableError } from "@sluice/core";
import { cond, type MetadataStore, TransactionCanceledError, type TransactOperation } from "@sluice/storage";
import { headKey, producerKey, producerStateKey, topicKey } from "../keys.js";
import type { LruCache } from "../lru-cache.js";
import type { Topic } from "../topics/topic-registry.js";
import {
  doneItem,
  type IdempotencyClaim,
  type IdempotencyRecord,
  idempotencyKeyFree,
  idempotencyRecordFromItem,
} from "./idempotency.js";
import { type IndexedBatch, partitionCommitOperations } from "./partition-commit.js";
import {
  classifySequenceFailure,
  nextProducerStateItem,
  type ProducerState,
  producerStateCondition,
  producerStateFromItem,
} from "./producer-state.js";

/** One partition's share of an uploaded object: where its batch lies and what it holds. */
export interface PartitionWrite {
  partition: number;
  recordCount: number;
  position: number;
  length: number;
  firstTimestamp: number;
  maxTimestamp: number;
  /** The producer's base sequence for this partition, for idempotent producers. */
  sequence?: number;
}

export interface CommitGroup {
  topic: Topic;
  objectKey: string;
  writes: PartitionWrite[];
  producer?: { producerId: number; producerEpoch: number };
  idempotency?: IdempotencyClaim;
  /** The object's upload runs beside this commit (ARCHITECTURE.md, "Parallel commit"). */
  parallelCommit?: boolean;
  /**
   * The object's bytes, never uploaded: each entry carries its write's range of them
   * (ARCHITECTURE.md, "Small appends carried in the index").
   */
  inline?: Uint8Array;
}

export type CommitOutcome =
  | { kind: "committed"; baseOffsets: Map<number, number>; duplicatePartitions: Set<number> }
  | { kind: "idempotent-replay"; record: IdempotencyRecord };

export interface CommitDependencies {
  metadata: MetadataStore;
  clock: Clock;
  /** Expected next offset per `${topicId}:${partition}`. */
  heads: LruCache<string, number>;
  /** Producer state per `${topicId}:${partition}:${producerId}`. */
  producerStates: LruCache<string, ProducerState>;
}

/** Fixed operations per transaction: the topic check, the producer epoch check, the idempotency outcome. */
export function fixedOperations(group: Pick<CommitGroup, "producer" | "idempotency">): number {
  return 1 + (group.producer ? 1 : 0) + (group.idempotency ? 1 : 0);
}

/** Operations per partition: the head move, the index entry, and the producer state. */
export function operationsPerPartition(group: Pick<CommitGroup, "producer">): number {
  return group.producer ? 3 : 2;
}

const CONFLICT_ATTEMPTS_MAX = 50;
const UNAVAILABLE_ATTEMPTS_MAX = 8;

type Role =
  | { role: "topic" }
  | { role: "producer-epoch" }
  | { role: "idempotency" }
  | { role: "head"; partition: number }
  | { role: "index"; partition: number }
  | { role: "producer-state"; partition: number };

/**
 * Commits one group of partitions in one transaction (ARCHITECTURE.md, "Append", steps 5–6).
 * Offsets are only ever assigned by moving a head from its expected value under a condition, so
 * a stale expectation fails and is retried with the current head; the upload is never repeated.
 * Expectations change only after a definite failure, so after an unknown outcome (a timeout) the
 * retry either commits or finds its own object key in the index entry it meant to write.
 */
export async function commitGroup(deps: CommitDependencies, group: CommitGroup): Promise<CommitOutcome> {
  const { topic } = group;
  const expected = await expectedHeads(deps, group);
  const producerStates = await knownProducerStates(deps, group);
  const duplicates = new Map<number, number>();
  let conflicts = 0;
  let unavailable = 0;
  for (;;) {
    const pending = group.writes.filter((write) => !duplicates.has(write.partition));
    if (pending.length === 0) return committed(duplicates, new Set(duplicates.keys()));
    const { operations, roles } = buildTransaction(deps, group, pending, expected, producerStates);
    try {
      await deps.metadata.transactWrite(operations);
    } catch (error) {
      if (error instanceof UnavailableError) {
        if (++unavailable >= UNAVAILABLE_ATTEMPTS_MAX) throw error;
        await backoff(deps.clock, unavailable);
        continue;
      }
      if (!(error instanceof TransactionCanceledError)) throw error;
      const verdict = interpretFailures(deps, group, error, roles, expected, producerStates, duplicates);
      if (verdict.kind === "already-committed") {
        return finish(deps, group, pending, expected, producerStates, duplicates);
      }
      if (verdict.kind === "idempotent-replay") return verdict;
      if (++conflicts >= CONFLICT_ATTEMPTS_MAX) {
        throw new UnavailableError(
          `commit to topic ${topic.name} gave up after ${conflicts} conflicting attempts`,
          {
            cause: error,
          },
        );
      }
      if (conflicts > 3) await backoff(deps.clock, conflicts - 3);
      continue;
    }
    return finish(deps, group, pending, expected, producerStates, duplicates);
  }
}

function buildTransaction(
  deps: CommitDependencies,
  group: CommitGroup,
  pending: PartitionWrite[],
  expected: Map<number, number>,
  producerStates: Map<number, ProducerState | undefined>,
): { operations: TransactOperation[]; roles: Role[] } {
  const { topic, producer } = group;
  const operations: TransactOperation[] = [];
  const roles: Role[] = [];
  const add = (operation: TransactOperation, role: Role) => {
    operations.push(operation);
    roles.push(role);
  };
  add(
    { kind: "condition_check", key: topicKey(topic.name), condition: cond.eq("topicId", topic.topicId) },
    { role: "topic" },
  );
  if (producer) {
    add(
      {
        kind: "condition_check",
        key: producerKey(producer.producerId),
        condition: cond.eq("epoch", producer.producerEpoch),
      },
      { role: "producer-epoch" },
    );
  }
  if (group.idempotency) {
    const baseOffsets = new Map(pending.map((write) => [write.partition, expected.get(write.partition)!]));
    add(
      {
        kind: "put",
        item: doneItem(group.idempotency, baseOffsets),
        condition: idempotencyKeyFree(deps.clock.now()),
      },
      { role: "idempotency" },
    );
  }
  for (const write of pending) {
    const base = expected.get(write.partition)!;
    const { partition } = write;
    // Field by field, not `{ ...write, objectKey }`: spreading an object and adding properties
    // makes V8 keep the result through a young collection (docs/benchmarks.md, "Object spreads
    // on the produce path").
    const batch: IndexedBatch = {
      objectKey: group.objectKey,
      position: write.position,
      length: write.length,
      recordCount: write.recordCount,
      firstTimestamp: write.firstTimestamp,
      maxTimestamp: write.maxTimestamp,
    };
    if (group.parallelCommit) batch.parallelCommit = true;
    if (group.inline) batch.inline = group.inline.subarray(write.position, write.position + write.length);
    const { head, index } = partitionCommitOperations(topic.topicId, partition, base, batch);
    add(head, { role: "head", partition });
    add(index, { role: "index", partition });
    if (producer && write.sequence !== undefined) {
      const item = nextProducerStateItem(
        topic.topicId,
        partition,
        producer.producerId,
        producerStates.get(partition),
        {
          epoch: producer.producerEpoch,
          sequence: write.sequence,
          count: write.recordCount,
          baseOffset: base,
        },
      );
      add(
        {
          kind: "put",
          item,
          condition: producerStateCondition(
            producer.producerEpoch,
            write.sequence,
            producerStates.get(partition),
          ),
        },
        { role: "producer-state", partition },
      );
    }
  }
  return { operations, roles };
}

type FailureVerdict =
  | { kind: "retry" }
  | { kind: "already-committed" }
  | { kind: "idempotent-replay"; record: IdempotencyRecord };

function interpretFailures(
  deps: CommitDependencies,
  group: CommitGroup,
  error: TransactionCanceledError,
  roles: Role[],
  expected: Map<number, number>,
  producerStates: Map<number, ProducerState | undefined>,
  duplicates: Map<number, number>,
): FailureVerdict {
  const { topic } = group;
  // Our own index entry means an earlier attempt whose answer was lost did commit.
  for (const failure of error.failures) {
    const role = roles[failure.index];
    if (role?.role === "index" && failure.current?.objectKey === group.objectKey)
      return { kind: "already-committed" };
  }
  for (const failure of error.failures) {
    const role = roles[failure.index];
    const current = failure.current;
    switch (role?.role) {
      case "topic":
        throw new NotFoundError(`topic not found: ${topic.name} (deleted while appending)`, { cause: error });
      case "producer-epoch":
        if (!current) {
          throw new NotFoundError(
            `unknown producer id ${group.producer?.producerId}; initialise a producer first`,
            {
              cause: error,
            },
          );
        }
        throw fencedProducer(group, Number(current.epoch), error);
      case "idempotency": {
        const record = idempotencyRecordFromItem(current);
        if (
          record &&
          current?.state === "done" &&
          record.requestHash === group.idempotency?.record.requestHash
        ) {
          return { kind: "idempotent-replay", record };
        }
        if (current?.state === "pending") {
          throw new ConflictError(
            `a request with idempotency key ${group.idempotency?.key} is still in progress`,
            {
              cause: error,
            },
          );
        }
        throw new ConflictError(
          `idempotency key ${group.idempotency?.key} was already used for a different request`,
          { cause: error },
        );
      }
      case "head":
        expected.set(role.partition, Number(current?.nextOffset ?? 0));
        deps.heads.set(headCacheKey(topic.topicId, role.partition), Number(current?.nextOffset ?? 0));
        break;
      case "producer-state": {
        const state = producerStateFromItem(current);
        producerStates.set(role.partition, state);
        const write = group.writes.find((candidate) => candidate.partition === role.partition)!;
        const verdict = classifySequenceFailure(state, {
          producerId: group.producer!.producerId,
          partition: role.partition,
          epoch: group.producer!.producerEpoch,
          sequence: write.sequence!,
          count: write.recordCount,
        });
        if (verdict.kind === "duplicate") duplicates.set(role.partition, verdict.baseOffset);
        break;
      }
      default:
        break;
    }
  }
  return { kind: "retry" };
}

function fencedProducer(group: CommitGroup, currentEpoch: number, cause: unknown): FencedError {
  return new FencedError(
    `producer ${group.producer?.producerId} epoch ${group.producer?.producerEpoch} is fenced by epoch ${currentEpoch}`,
    {
      cause,
      code: "INVALID_PRODUCER_EPOCH",
      details: { producerId: group.producer?.producerId, currentEpoch },
    },
  );
}

function finish(
  deps: CommitDependencies,
  group: CommitGroup,
  pending: PartitionWrite[],
  expected: Map<number, number>,
  producerStates: Map<number, ProducerState | undefined>,
  duplicates: Map<number, number>,
): CommitOutcome {
  const { topic, producer } = group;
  const baseOffsets = new Map(duplicates);
  for (const write of pending) {
    const base = expected.get(write.partition)!;
    baseOffsets.set(write.partition, base);
    deps.heads.set(headCacheKey(topic.topicId, write.partition), base + write.recordCount);
    if (producer && write.sequence !== undefined) {
      const item = nextProducerStateItem(
        topic.topicId,
        write.partition,
        producer.producerId,
        producerStates.get(write.partition),
        {
          epoch: producer.producerEpoch,
          sequence: write.sequence,
          count: write.recordCount,
          baseOffset: base,
        },
      );
      deps.producerStates.set(
        producerCacheKey(topic.topicId, write.partition, producer.producerId),
        producerStateFromItem(item)!,
      );
    }
  }
  return committed(baseOffsets, new Set(duplicates.keys()));
}

function committed(baseOffsets: Map<number, number>, duplicatePartitions: Set<number>): CommitOutcome {
  return { kind: "committed", baseOffsets, duplicatePartitions };
}

async function expectedHeads(deps: CommitDependencies, group: CommitGroup): Promise<Map<number, number>> {
  const expected = new Map<number, number>();
  const misses: number[] = [];
  for (const write of group.writes) {
    const cached = deps.heads.get(headCacheKey(group.topic.topicId, write.partition));
    if (cached === undefined) misses.push(write.partition);
    else expected.set(write.partition, cached);
  }
  // A cold cache costs one read per partition, once per process; afterwards appends read nothing.
  const heads = await Promise.all(
    misses.map((partition) => deps.metadata.get(headKey(group.topic.topicId, partition))),
  );
  misses.forEach((partition, index) => {
    const next = Number(heads[index]?.nextOffset ?? 0);
    expected.set(partition, next);
    deps.heads.set(headCacheKey(group.topic.topicId, partition), next);
  });
  return expected;
}

async function knownProducerStates(
  deps: CommitDependencies,
  group: CommitGroup,
): Promise<Map<number, ProducerState | undefined>> {
  const states = new Map<number, ProducerState | undefined>();
  const { producer, topic } = group;
  if (!producer) return states;
  const misses: number[] = [];
  for (const write of group.writes) {
    const cached = deps.producerStates.get(
      producerCacheKey(topic.topicId, write.partition, producer.producerId),
    );
    if (cached) states.set(write.partition, cached);
    else misses.push(write.partition);
  }
  const items = await Promise.all(
    misses.map((partition) =>
      deps.metadata.get(producerStateKey(topic.topicId, partition, producer.producerId)),
    ),
  );
  misses.forEach((partition, index) => {
    states.set(partition, producerStateFromItem(items[index]));
  });
  return states;
}

export function headCacheKey(topicId: string, partition: number): string {
  return `${topicId}:${partition}`;
}

export function producerCacheKey(topicId: string, partition: number, producerId: number): string {
  return `${topicId}:${partition}:${producerId}`;
}

function backoff(clock: Clock, attempt: number): Promise<void> {
  return clock.sleep(backoffMs(clock, attempt));
}
