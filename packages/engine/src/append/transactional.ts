import type { Clock } from "@sluice/core";
import {
  backoffMs,
  encodeRecordBatch,
  NotFoundError,
  partitionForKey,
  readBatchHeader,
  UnavailableError,
} from "@sluice/core";
import {
  cond,
  type Item,
  type MetadataStore,
  type ObjectStore,
  TRANSACTION_OPERATIONS_MAX,
  TransactionCanceledError,
  type TransactOperation,
} from "@sluice/storage";
import { TransactionTooLargeError } from "../errors.js";
import { headKey, newDataObjectKey, objectKeyTimeMs, topicKey } from "../keys.js";
import type { LruCache } from "../lru-cache.js";
import type { Topic, TopicRegistry } from "../topics/topic-registry.js";
import { type AppendedRecord, type ProduceRecord, RECORDS_PER_REQUEST_MAX } from "./append-types.js";
import { batchCacheKey } from "./appender.js";
import { headCacheKey } from "./commit.js";
import { withinCommitWindow } from "./commit-window.js";
import { hedgedUpload } from "./hedged-upload.js";
import { type IndexedBatch, partitionCommitOperations } from "./partition-commit.js";
import { recordPayloadBytes, validateAppend } from "./validate-append.js";

/** Records for one topic; a record names its partition, or its key chooses it. */
export interface TopicAppend {
  topic: string;
  records: ProduceRecord[];
}

/** One of the caller's operations whose condition failed, with its item as it is now. */
export interface CallerConditionFailure {
  /** Index into `operations`. */
  index: number;
  current: Item | undefined;
}

export interface TransactionalAppendRequest {
  /** Records to append, any number of topics; may be empty. */
  appends: TopicAppend[];
  /** The caller's own operations, committed in the same transaction as the records. */
  operations: readonly TransactOperation[];
  /**
   * Judges the caller's failed conditions: "committed" when the current items show that this
   * very transaction was applied by an earlier attempt whose answer was lost (the caller's items
   * carry something unique to it), otherwise the error to throw. Without it, any failure of the
   * caller's conditions is a ConflictError naming the operation.
   */
  judge?: (failures: CallerConditionFailure[]) => "committed" | Error;
}

export interface TransactionalAppendResult {
  /** Per append, in request order: one entry per record, in record order. */
  appends: { topic: string; records: AppendedRecord[] }[];
}

export interface TransactionalAppenderDependencies {
  objects: ObjectStore;
  metadata: MetadataStore;
  clock: Clock;
  topics: TopicRegistry;
  heads: LruCache<string, number>;
  batches: LruCache<string, Uint8Array>;
  onCommit: (topicId: string, partition: number, highWatermark: number) => void;
  /** Start a second upload under another key when the first has not answered by then (hedged-upload.ts). */
  uploadHedgeAfterMs?: number;
}

/** A topic's share of the transaction: its uploaded object and one batch per partition. */
interface TopicWrite {
  topic: Topic;
  objectKey: string;
  partitions: { partition: number; batch: IndexedBatch }[];
  /** Per record of the merged list: its partition. */
  recordPartitions: Uint16Array;
  timestamps: number[];
}

type Role =
  | { role: "topic"; write: number }
  | { role: "head"; write: number; partition: number }
  | { role: "index"; write: number; partition: number }
  | { role: "caller"; index: number };

const CONFLICT_ATTEMPTS_MAX = 50;
const UNAVAILABLE_ATTEMPTS_MAX = 8;

/**
 * Appends records to several topics and commits them in ONE metadata transaction together with
 * the caller's own operations (ARCHITECTURE.md, "Processors", "The exactly-once commit"): either
 * every record and every caller operation lands, or nothing does. The commit keeps the engine's
 * protocol — objects uploaded once before the transaction; a stale head retried with the current
 * one; an index entry carrying our object key recognised as our own earlier, answer-lost commit —
 * and asks the caller to judge failures of its own conditions.
 */
export class TransactionalAppender {
  constructor(private readonly deps: TransactionalAppenderDependencies) {}

  /** Operations the transaction would hold: the caller's, plus per topic 1 and per partition 2. */
  static operationCount(partitionsPerTopic: readonly number[], callerOperations: number): number {
    return callerOperations + partitionsPerTopic.reduce((total, partitions) => total + 1 + 2 * partitions, 0);
  }

  async append(request: TransactionalAppendRequest): Promise<TransactionalAppendResult> {
    const merged = mergeByTopic(request.appends);
    const topics = await Promise.all(merged.map((append) => this.deps.topics.get(append.topic)));
    for (const [index, append] of merged.entries()) {
      const topic = topics[index]!;
      // The usual records pass a check without allocations; otherwise the append's own rules
      // run, for their message.
      if (usualRecords(append.records, topic)) continue;
      try {
        validateAppend({ topic: topic.name, records: append.records }, topic);
      } catch (error) {
        if (error instanceof Error) error.message = `records for topic ${topic.name}: ${error.message}`;
        throw error;
      }
    }
    const appendTime = this.deps.clock.now();
    const planned = merged.map((append, index) =>
      planTopic(topics[index]!, append.records, appendTime, this.deps.clock),
    );
    const operations = TransactionalAppender.operationCount(
      planned.map((plan) => plan.byPartition.size),
      request.operations.length,
    );
    if (operations > TRANSACTION_OPERATIONS_MAX) {
      throw new TransactionTooLargeError(
        `the transaction would hold ${operations} operations (${request.operations.length} of the caller's, and per topic 1 plus 2 per partition written), over the limit of ${TRANSACTION_OPERATIONS_MAX}`,
        { details: { operations, limit: TRANSACTION_OPERATIONS_MAX } },
      );
    }
    const writes = await Promise.all(
      planned.map((plan, index) =>
        this.encodeAndUpload(topics[index]!, merged[index]!.records, plan, appendTime),
      ),
    );
    const baseOffsets = await this.commit(writes, request);
    for (const [index, write] of writes.entries()) {
      for (const { partition, batch } of write.partitions) {
        const base = baseOffsets[index]!.get(partition)!;
        this.deps.heads.set(headCacheKey(write.topic.topicId, partition), base + batch.recordCount);
        this.deps.onCommit(write.topic.topicId, partition, base + batch.recordCount);
      }
    }
    return { appends: splitResults(request.appends, merged, writes, baseOffsets) };
  }

  private async encodeAndUpload(
    topic: Topic,
    records: ProduceRecord[],
    plan: Plan,
    appendTime: number,
  ): Promise<TopicWrite> {
    const logAppendTime = topic.settings.timestampType === "LogAppendTime";
    const compression =
      topic.settings.compressionType === "producer" || topic.settings.compressionType === "uncompressed"
        ? "none"
        : topic.settings.compressionType;
    const partitions = [...plan.byPartition.keys()].sort((a, b) => a - b);
    const batches = await Promise.all(
      partitions.map((partition) =>
        encodeRecordBatch(
          plan.byPartition.get(partition)!.map((index) => records[index]!),
          {
            compression,
            defaultTimestamp: appendTime,
            ...(logAppendTime ? { timestamp: appendTime } : {}),
            timestampType: logAppendTime ? "log_append" : "create",
          },
        ),
      ),
    );
    const body = new Uint8Array(batches.reduce((total, batch) => total + batch.byteLength, 0));
    let position = 0;
    for (const batch of batches) {
      body.set(batch, position);
      position += batch.byteLength;
    }
    // The key is the upload's that answered first (with hedging, there may be two), else a fresh
    // one nothing is written under when no partition has records.
    const objectKey =
      partitions.length > 0
        ? await hedgedUpload(this.deps.clock, this.deps.uploadHedgeAfterMs, async () => {
            // A fresh random key per upload: a collision is as unlikely as in the plain append.
            const key = newDataObjectKey(topic.topicId, this.deps.clock.now());
            await this.deps.objects.put(key, body, { condition: { ifNoneMatch: "*" } });
            return key;
          })
        : newDataObjectKey(topic.topicId, this.deps.clock.now());
    const written: TopicWrite["partitions"] = [];
    position = 0;
    partitions.forEach((partition, order) => {
      const batch = batches[order]!;
      const header = readBatchHeader(batch);
      written.push({
        partition,
        batch: {
          objectKey,
          position,
          length: batch.byteLength,
          recordCount: header.recordCount,
          firstTimestamp: header.firstTimestamp,
          maxTimestamp: header.maxTimestamp,
        },
      });
      position += batch.byteLength;
    });
    for (const { batch } of written) {
      this.deps.batches.set(
        batchCacheKey(objectKey, batch.position, batch.length),
        body.subarray(batch.position, batch.position + batch.length),
      );
    }
    return {
      topic,
      objectKey,
      partitions: written,
      recordPartitions: plan.recordPartitions,
      timestamps: plan.timestamps,
    };
  }

  /** The transaction loop; returns the base offset of every partition written, per topic write. */
  private async commit(
    writes: TopicWrite[],
    request: TransactionalAppendRequest,
  ): Promise<Map<number, number>[]> {
    const expected = await this.expectedHeads(writes);
    // No entry may name an object after its commit window (garbage collection relies on it): the
    // earliest upload sets the deadline for the whole transaction.
    const earliest = writes
      .map((write) => write.objectKey)
      .sort((a, b) => (objectKeyTimeMs(a) ?? 0) - (objectKeyTimeMs(b) ?? 0))[0];
    const metadata =
      earliest === undefined
        ? this.deps.metadata
        : withinCommitWindow(this.deps.metadata, this.deps.clock, earliest);
    let conflicts = 0;
    let unavailable = 0;
    for (;;) {
      const { operations, roles } = buildTransaction(writes, expected, request.operations);
      if (operations.length === 0) return expected;
      try {
        await metadata.transactWrite(operations);
        return expected;
      } catch (error) {
        if (error instanceof UnavailableError) {
          // Unknown outcome: expectations stay as they were, so the retry either commits or
          // recognises its own commit.
          if (++unavailable >= UNAVAILABLE_ATTEMPTS_MAX) throw error;
          await this.deps.clock.sleep(backoffMs(this.deps.clock, unavailable));
          continue;
        }
        if (!(error instanceof TransactionCanceledError)) throw error;
        const verdict = this.interpret(error, roles, writes, expected, request);
        if (verdict === "committed") return expected;
        if (++conflicts >= CONFLICT_ATTEMPTS_MAX) {
          throw new UnavailableError(`transactional append gave up after ${conflicts} conflicting attempts`, {
            cause: error,
          });
        }
        if (conflicts > 3) await this.deps.clock.sleep(backoffMs(this.deps.clock, conflicts - 3));
      }
    }
  }

  private interpret(
    error: TransactionCanceledError,
    roles: Role[],
    writes: TopicWrite[],
    expected: Map<number, number>[],
    request: TransactionalAppendRequest,
  ): "committed" | "retry" {
    // Our own index entry: an earlier attempt whose answer was lost committed everything.
    for (const failure of error.failures) {
      const role = roles[failure.index];
      if (role?.role === "index" && failure.current?.objectKey === writes[role.write]!.objectKey)
        return "committed";
    }
    const callerFailures: CallerConditionFailure[] = [];
    for (const failure of error.failures) {
      const role = roles[failure.index];
      if (role?.role === "caller") callerFailures.push({ index: role.index, current: failure.current });
    }
    if (callerFailures.length > 0) {
      const verdict = request.judge
        ? request.judge(callerFailures)
        : new TransactionCanceledError(
            `the condition of operation ${callerFailures[0]!.index} of the transactional append failed`,
            callerFailures,
            { cause: error },
          );
      if (verdict === "committed") return "committed";
      throw verdict;
    }
    for (const failure of error.failures) {
      const role = roles[failure.index];
      if (role?.role === "topic") {
        const name = writes[role.write]!.topic.name;
        throw new NotFoundError(`topic not found: ${name} (deleted while appending)`, {
          cause: error,
          details: { topic: name },
        });
      }
      if (role?.role === "head") {
        const current = Number(failure.current?.nextOffset ?? 0);
        expected[role.write]!.set(role.partition, current);
        this.deps.heads.set(headCacheKey(writes[role.write]!.topic.topicId, role.partition), current);
      }
    }
    return "retry";
  }

  private async expectedHeads(writes: TopicWrite[]): Promise<Map<number, number>[]> {
    return Promise.all(
      writes.map(async (write) => {
        const expected = new Map<number, number>();
        await Promise.all(
          write.partitions.map(async ({ partition }) => {
            const cacheKey = headCacheKey(write.topic.topicId, partition);
            let head = this.deps.heads.get(cacheKey);
            if (head === undefined) {
              const item = await this.deps.metadata.get(headKey(write.topic.topicId, partition));
              head = Number(item?.nextOffset ?? 0);
              this.deps.heads.set(cacheKey, head);
            }
            expected.set(partition, head);
          }),
        );
        return expected;
      }),
    );
  }
}

/** Whether every record is within the limits validateAppend checks: bytes or null, sizes, partitions, timestamps. */
function usualRecords(records: ProduceRecord[], topic: Topic): boolean {
  if (records.length === 0 || records.length > RECORDS_PER_REQUEST_MAX) return false;
  const limit = topic.settings.maxMessageBytes;
  for (const record of records) {
    if (record.key !== null && !(record.key instanceof Uint8Array)) return false;
    if (record.value !== null && !(record.value instanceof Uint8Array)) return false;
    const partition = record.partition;
    if (
      partition !== undefined &&
      !(Number.isInteger(partition) && partition >= 0 && partition < topic.partitions)
    )
      return false;
    const timestamp = record.timestamp;
    if (timestamp !== undefined && !(Number.isSafeInteger(timestamp) && timestamp >= 0)) return false;
    if (record.headers !== undefined) {
      for (const header of record.headers) {
        if (
          typeof header.key !== "string" ||
          (header.value !== null && !(header.value instanceof Uint8Array))
        )
          return false;
      }
    }
    if (recordPayloadBytes(record) > limit) return false;
  }
  return true;
}

interface Plan {
  byPartition: Map<number, number[]>;
  recordPartitions: Uint16Array;
  timestamps: number[];
}

function planTopic(topic: Topic, records: ProduceRecord[], appendTime: number, clock: Clock): Plan {
  const recordPartitions = new Uint16Array(records.length);
  const byPartition = new Map<number, number[]>();
  let sticky: number | undefined;
  const timestamps: number[] = new Array(records.length);
  const logAppendTime = topic.settings.timestampType === "LogAppendTime";
  let runPartition = -1;
  let runList: number[] | undefined;
  records.forEach((record, index) => {
    let partition = record.partition;
    if (partition === undefined && record.key !== null)
      partition = partitionForKey(record.key, topic.partitions);
    if (partition === undefined) {
      sticky ??= Math.floor(clock.random() * topic.partitions);
      partition = sticky;
    }
    recordPartitions[index] = partition;
    // Records mostly come in runs to one partition: its list is looked up once per run.
    if (partition !== runPartition) {
      runPartition = partition;
      runList = byPartition.get(partition);
      if (!runList) {
        runList = [];
        byPartition.set(partition, runList);
      }
    }
    runList!.push(index);
    timestamps[index] = logAppendTime ? appendTime : (record.timestamp ?? appendTime);
  });
  return { byPartition, recordPartitions, timestamps };
}

function buildTransaction(
  writes: TopicWrite[],
  expected: Map<number, number>[],
  callerOperations: readonly TransactOperation[],
): { operations: TransactOperation[]; roles: Role[] } {
  const operations: TransactOperation[] = [];
  const roles: Role[] = [];
  writes.forEach((write, index) => {
    if (write.partitions.length === 0) return;
    operations.push({
      kind: "condition_check",
      key: topicKey(write.topic.name),
      condition: cond.eq("topicId", write.topic.topicId),
    });
    roles.push({ role: "topic", write: index });
    for (const { partition, batch } of write.partitions) {
      const { head, index: entry } = partitionCommitOperations(
        write.topic.topicId,
        partition,
        expected[index]!.get(partition)!,
        batch,
      );
      operations.push(head, entry);
      roles.push({ role: "head", write: index, partition }, { role: "index", write: index, partition });
    }
  });
  callerOperations.forEach((operation, index) => {
    operations.push(operation);
    roles.push({ role: "caller", index });
  });
  return { operations, roles };
}

/**
 * Appends to one topic become one list (one object per topic); `splitResults` undoes it. A topic
 * with one append keeps the caller's list (it is only read); several are joined into a new one.
 */
function mergeByTopic(appends: TopicAppend[]): TopicAppend[] {
  const merged = new Map<string, ProduceRecord[][]>();
  for (const append of appends) {
    if (append.records.length === 0) continue;
    const lists = merged.get(append.topic);
    if (lists) lists.push(append.records);
    else merged.set(append.topic, [append.records]);
  }
  return [...merged].map(([topic, lists]) => ({
    topic,
    records: lists.length === 1 ? lists[0]! : lists.flat(),
  }));
}

/**
 * Each append's records with their partitions and offsets. Worked out when first read: a caller
 * that only needs the commit (a processor's) makes no object per record.
 */
function splitResults(
  appends: TopicAppend[],
  merged: TopicAppend[],
  writes: TopicWrite[],
  baseOffsets: Map<number, number>[],
): TransactionalAppendResult["appends"] {
  let split: AppendedRecord[][] | undefined;
  const all = () => {
    split ??= splitRecords(appends, merged, writes, baseOffsets);
    return split;
  };
  return appends.map((append, index) => ({
    topic: append.topic,
    get records() {
      return all()[index]!;
    },
  }));
}

function splitRecords(
  appends: TopicAppend[],
  merged: TopicAppend[],
  writes: TopicWrite[],
  baseOffsets: Map<number, number>[],
): AppendedRecord[][] {
  const cursors = new Map<string, { write: number; record: number; next: Map<number, number> }>();
  for (const [index, append] of merged.entries()) {
    cursors.set(append.topic, { write: index, record: 0, next: new Map(baseOffsets[index]) });
  }
  return appends.map((append) => {
    const records: AppendedRecord[] = [];
    const cursor = cursors.get(append.topic);
    for (let i = 0; i < append.records.length && cursor; i++) {
      const write = writes[cursor.write]!;
      const partition = write.recordPartitions[cursor.record]!;
      const offset = cursor.next.get(partition)!;
      cursor.next.set(partition, offset + 1);
      records.push({ partition, offset, timestamp: write.timestamps[cursor.record]! });
      cursor.record++;
    }
    return records;
  });
}
