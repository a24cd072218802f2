import { type Clock, InvalidArgumentError, NotFoundError, repeatEvery, systemClock } from "@sluice/core";
import { cond, type MetadataStore, type ObjectStore } from "@sluice/storage";
import { type Metrics, noopMetrics, RecentActivity } from "@sluice/telemetry";
import type { AppendRequest, AppendResult, RecordOutcome } from "./append/append-types.js";
import { Appender } from "./append/appender.js";
import type { ProducerState } from "./append/producer-state.js";
import type { AppendBatchesRequest, AppendBatchesResult } from "./append/raw-batches.js";
import {
  TransactionalAppender,
  type TransactionalAppendRequest,
  type TransactionalAppendResult,
} from "./append/transactional.js";
import { CommitNotifier } from "./commit-notifier.js";
import { EngineMeter } from "./engine-meter.js";
import { type IndexEntry, IndexReader } from "./fetch/index-entries.js";
import {
  type FetchBatchesResult,
  type FetchRequest,
  type FetchResult,
  type PartitionOffsets,
  Reader,
  StaleIndexError,
} from "./fetch/reader.js";
import { offsetForTimestamp } from "./fetch/time-index.js";
import { headKey, producerCounterKey, producerKey } from "./keys.js";
import { LruCache } from "./lru-cache.js";
import { readTopicStorage, type TopicStorage } from "./maintenance-state.js";
import { type CreateTopicRequest, type Topic, TopicRegistry } from "./topics/topic-registry.js";

/**
 * What one cached batch costs beyond its bytes: its key, the map's entry, the typed array and its
 * buffer. Measured with heap snapshots: about 470 bytes per single-record produce's batch. Counted
 * so a cache of small batches stays within its budget: by bytes alone, 64 MiB of 170-byte batches
 * held about 250 MB of heap.
 */
export const BATCH_CACHE_ENTRY_BYTES = 512;

/** A batch's weight in the batch cache. */
/** About what a plain index entry takes in memory: an entry's carried bytes count in these. */
export const INDEX_ENTRY_BYTES = 256;

/** An index entry's weight in the index cache: 1, plus 1 per `INDEX_ENTRY_BYTES` it carries. */
export function indexEntryWeight(entry: IndexEntry): number {
  return entry.inline ? 1 + Math.ceil(entry.inline.byteLength / INDEX_ENTRY_BYTES) : 1;
}

export function batchWeight(bytes: Uint8Array): number {
  return bytes.byteLength + BATCH_CACHE_ENTRY_BYTES;
}

/**
 * The largest `inlineMaxBytes`: far under an index item's limit (400 KB in DynamoDB) and a
 * transaction's (4 MB), and small enough that carrying the bytes in the index stays cheaper than
 * an upload (DynamoDB bills writes per KB).
 */
export const INLINE_MAX_BYTES_LIMIT = 64 * 1024;

function checkedInlineMaxBytes(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > INLINE_MAX_BYTES_LIMIT) {
    throw new InvalidArgumentError(
      `inlineMaxBytes must be a whole number of bytes from 0 (off) to ${INLINE_MAX_BYTES_LIMIT}, got ${value}`,
    );
  }
  return value;
}

export interface EngineOptions {
  objects: ObjectStore;
  metadata: MetadataStore;
  clock?: Clock;
  /**
   * Memory for recently written or read batches: their bytes plus what keeping each costs
   * (`BATCH_CACHE_ENTRY_BYTES`). Default 64 MiB.
   */
  batchCacheBytes?: number;
  /**
   * Index entries kept in memory. Default 100,000. An entry that carries its batch counts once more
   * per `INDEX_ENTRY_BYTES` of the batch, so carried bytes cannot grow the cache past about what
   * that many plain entries take.
   */
  indexCacheEntries?: number;
  /** How often a waiting reader re-reads the head, for commits made by other processes. Default 250 ms. */
  pollIntervalMs?: number;
  /**
   * Hedged uploads: when an object upload has not answered after this long, a second starts under
   * another key and the first to succeed is used (append/hedged-upload.ts). For object stores
   * with a long latency tail (S3); default off.
   */
  uploadHedgeAfterMs?: number;
  /**
   * Upload and commit at once the appends that carry neither producer sequences nor an
   * idempotency key, and acknowledge when both succeeded: the slower of the two rather than their
   * sum. For object stores about as fast as the metadata store (S3 Express One Zone). A writer
   * that fails between the two leaves a gap of offsets (ARCHITECTURE.md, "Parallel commit").
   * Default off.
   */
  parallelCommit?: boolean;
  /**
   * Appends whose object would be at most this many bytes are not uploaded: each partition's index
   * entry carries its batch, and the commit is the only write (ARCHITECTURE.md, "Small appends
   * carried in the index"). At most `INLINE_MAX_BYTES_LIMIT`. Default 0: every append uploads.
   */
  inlineMaxBytes?: number;
  /** Where produce and fetch are measured (docs/operations.md). Default: nowhere. */
  metrics?: Metrics;
}

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
}

/**
 * The log engine: topics, append, fetch and idempotent producers over the two storage ports.
 * One instance per process; it holds only caches, so any number of instances may share a store.
 */
export class Engine {
  readonly topics: TopicRegistry;
  private readonly metadata: MetadataStore;
  /** The engine's time: the HTTP apps' own waits (SSE streams) run on it too. */
  readonly clock: Clock;
  private readonly appender: Appender;
  private readonly transactional: TransactionalAppender;
  private readonly reader: Reader;
  private readonly index: IndexReader;
  private readonly notifier = new CommitNotifier();
  private readonly pollIntervalMs: number;
  private readonly meter: EngineMeter;
  /**
   * What each topic did over the last seconds in this process (records and bytes in and out,
   * p99 latencies, errors): the topic resources' rates.
   */
  readonly activity: RecentActivity;

  constructor(options: EngineOptions) {
    this.metadata = options.metadata;
    this.clock = options.clock ?? systemClock;
    this.activity = new RecentActivity({ clock: this.clock });
    this.meter = new EngineMeter(options.metrics ?? noopMetrics, this.activity);
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.topics = new TopicRegistry(options.metadata, this.clock);
    const batches = new LruCache<string, Uint8Array>(
      options.batchCacheBytes ?? 64 * 1024 * 1024,
      batchWeight,
    );
    this.index = new IndexReader(
      options.metadata,
      new LruCache<string, IndexEntry>(options.indexCacheEntries ?? 100_000, indexEntryWeight),
    );
    this.reader = new Reader(options.objects, this.index, batches, this.clock, this.pollIntervalMs);
    const heads = new LruCache<string, number>(1_000_000);
    const onCommit = (topicId: string, partition: number, highWatermark: number) =>
      this.notifier.notify(topicId, partition, highWatermark);
    this.appender = new Appender({
      objects: options.objects,
      metadata: options.metadata,
      clock: this.clock,
      topics: this.topics,
      heads,
      producerStates: new LruCache<string, ProducerState>(100_000),
      batches,
      onCommit,
      ...(options.uploadHedgeAfterMs === undefined ? {} : { uploadHedgeAfterMs: options.uploadHedgeAfterMs }),
      ...(options.parallelCommit ? { parallelCommit: true } : {}),
      inlineMaxBytes: checkedInlineMaxBytes(options.inlineMaxBytes ?? 0),
    });
    this.transactional = new TransactionalAppender({
      objects: options.objects,
      metadata: options.metadata,
      clock: this.clock,
      topics: this.topics,
      heads,
      batches,
      onCommit,
      ...(options.uploadHedgeAfterMs === undefined ? {} : { uploadHedgeAfterMs: options.uploadHedgeAfterMs }),
    });
  }

  createTopic(request: CreateTopicRequest): Promise<Topic> {
    return this.topics.create(request);
  }

  describeTopic(name: string): Promise<Topic> {
    return this.topics.describe(name);
  }

  listTopics(): Promise<Topic[]> {
    return this.topics.list();
  }

  /**
   * Deletes the topic at once: it is gone for every reader and writer, and a topic of the same
   * name may be created right away. Its data is purged afterwards by the maintenance purge job.
   */
  async deleteTopic(name: string): Promise<void> {
    const topic = await this.topics.delete(name);
    this.index.forgetTopic(topic.topicId);
    this.activity.forget(name);
    this.notifier.notifyDeleted(topic.topicId);
  }

  updateTopicConfigs(name: string, changes: Record<string, string | null>): Promise<Topic> {
    return this.topics.updateConfigs(name, changes);
  }

  increasePartitions(name: string, partitions: number): Promise<Topic> {
    return this.topics.increasePartitions(name, partitions);
  }

  /**
   * A new idempotent producer (epoch 0), or — given an existing id — the same producer with its
   * epoch bumped, which fences every earlier incarnation.
   */
  async initProducer(producerId?: number): Promise<ProducerIdentity> {
    if (producerId === undefined) {
      const counter = await this.metadata.update(producerCounterKey, { add: { value: 1 } });
      const id = Number(counter.value) - 1;
      await this.metadata.put({ ...producerKey(id), epoch: 0 }, { condition: cond.notExists("pk") });
      return { producerId: id, producerEpoch: 0 };
    }
    const current = await this.metadata.get(producerKey(producerId));
    if (!current) throw new NotFoundError(`unknown producer id ${producerId}`);
    const bumped = await this.metadata.update(producerKey(producerId), { add: { epoch: 1 } });
    return { producerId, producerEpoch: Number(bumped.epoch) };
  }

  /** Appends at most RECORDS_PER_REQUEST_MAX records, all or nothing per partition. */
  append(request: AppendRequest): Promise<AppendResult> {
    return this.meter.append(request.topic, request.records, () => this.appender.append(request));
  }

  /**
   * Appends any number of records as consecutive appends of at most RECORDS_PER_REQUEST_MAX,
   * with one outcome per record; the idempotency key and producer sequences cover every chunk.
   */
  appendInChunks(request: AppendRequest): Promise<RecordOutcome[]> {
    return this.meter.appendInChunks(request.topic, request.records, () =>
      this.appender.appendInChunks(request),
    );
  }

  /**
   * Appends Kafka RecordBatch v2 batches as a producer encoded them, one per partition, checked
   * and stored as sent (ARCHITECTURE.md, "Append"); committed like `append`.
   */
  appendBatches(request: AppendBatchesRequest): Promise<AppendBatchesResult> {
    return this.meter.appendBatches(request.topic, request.batches, () =>
      this.appender.appendBatches(request),
    );
  }

  /**
   * Appends records to any number of topics and commits them in one metadata transaction together
   * with the caller's own operations (a processor's checkpoint and lease guard): all or nothing.
   * At most 100 operations: TransactionTooLargeError, before anything is written, otherwise.
   */
  appendTransactional(request: TransactionalAppendRequest): Promise<TransactionalAppendResult> {
    return this.transactional.append(request);
  }

  /**
   * Calls `listener` after every commit this engine makes (any topic, any partition) with the
   * partition's new high watermark, until the returned function is called. Commits by other
   * processes are not seen here.
   */
  onCommit(listener: (topicId: string, partition: number, highWatermark: number) => void): () => void {
    return this.notifier.subscribeAll(listener);
  }

  fetch(request: FetchRequest): Promise<FetchResult> {
    return this.meter.fetch(request, () => this.fetchUnmetered(request));
  }

  private async fetchUnmetered(request: FetchRequest): Promise<FetchResult> {
    const topic = await this.topicWithPartition(request.topic, request.partition);
    return this.readFresh(topic, request.partition, (offsets, retried) =>
      this.reader.fetch(topic, request, offsets, retried),
    );
  }

  /**
   * What `fetch` reads, as the stored RecordBatch v2 bytes (CRC-checked, base offsets set) rather
   * than decoded records; see FetchBatchesResult.
   */
  fetchBatches(request: FetchRequest): Promise<FetchBatchesResult> {
    return this.meter.fetchBatches(request, () => this.fetchBatchesUnmetered(request));
  }

  private async fetchBatchesUnmetered(request: FetchRequest): Promise<FetchBatchesResult> {
    const topic = await this.topicWithPartition(request.topic, request.partition);
    return this.readFresh(topic, request.partition, (offsets, retried) =>
      this.reader.fetchBatches(topic, request, offsets, retried),
    );
  }

  /**
   * Reads with the current head; when maintenance changed the index under the read (the log
   * start moved past the offset, or a cached entry's object was compacted away), forgets the
   * partition's cached entries and reads once more with a fresh head (ARCHITECTURE.md, "Fetch").
   */
  private async readFresh<T>(
    topic: Topic,
    partition: number,
    read: (offsets: PartitionOffsets, retried: boolean) => Promise<T>,
  ): Promise<T> {
    try {
      return await read(await this.offsetsOf(topic, partition), false);
    } catch (error) {
      if (!(error instanceof StaleIndexError)) throw error;
      this.index.forgetPartition(topic.topicId, partition);
      return read(await this.offsetsOf(topic, partition), true);
    }
  }

  async partitionOffsets(topicName: string, partition: number): Promise<PartitionOffsets> {
    const topic = await this.topicWithPartition(topicName, partition);
    return this.offsetsOf(topic, partition);
  }

  /**
   * The first offset whose timestamp is at or after `timestamp`, or null when there is none yet.
   * One time-index query, then a walk over what the index does not cover yet.
   */
  async offsetForTimestamp(topicName: string, partition: number, timestamp: number): Promise<number | null> {
    const topic = await this.topicWithPartition(topicName, partition);
    return this.readFresh(topic, partition, (offsets, retried) =>
      offsetForTimestamp(
        { metadata: this.metadata, index: this.index, reader: this.reader },
        topic,
        partition,
        timestamp,
        offsets,
        retried,
      ),
    );
  }

  /**
   * Each partition's log start offset and high watermark, with its size, entry and record counts
   * and the topic's object count as of the last maintenance runs, and when those ran.
   */
  async topicStorage(name: string): Promise<TopicStorage> {
    return readTopicStorage(this.metadata, await this.topics.describe(name));
  }

  /**
   * The timestamp of the record at `offset`, or null when no record is there (at or past the high
   * watermark, or before the log start). Consumer-group lag in time is now minus this, for the
   * first record a group has not consumed. Not measured as a fetch.
   */
  async timestampAt(topicName: string, partition: number, offset: number): Promise<number | null> {
    const topic = await this.topicWithPartition(topicName, partition);
    return this.readFresh(topic, partition, async ({ logStartOffset, highWatermark }, retried) => {
      if (offset < logStartOffset || offset >= highWatermark) return null;
      const entry = await this.index.entryHolding(topic.topicId, partition, offset);
      if (!entry) return null;
      const records = await this.reader.readEntry(topic, partition, entry, retried);
      // Still on its way (parallel commit): its entry knows when its records begin.
      if (records === undefined) return entry.firstTimestamp;
      return records.find((record) => record.offset >= offset)?.timestamp ?? null;
    });
  }

  /**
   * Resolves with the high watermark once it is above `offset`, or with the current one when
   * `timeoutMs` passes first (or `signal` aborts). Commits in this process wake it at once;
   * others are seen by re-reading the head every poll interval. Rejects with NotFoundError at once
   * when this process deletes the topic meanwhile.
   */
  async waitForRecords(
    topicName: string,
    partition: number,
    offset: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<number> {
    const topic = await this.topicWithPartition(topicName, partition);
    const current = await this.offsetsOf(topic, partition);
    if (current.highWatermark > offset || timeoutMs <= 0 || signal?.aborted) return current.highWatermark;
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const finish = (highWatermark: number | NotFoundError) => {
        if (settled) return;
        settled = true;
        unsubscribe();
        deadline.cancel();
        poll.cancel();
        signal?.removeEventListener("abort", onAbort);
        if (highWatermark instanceof NotFoundError) reject(highWatermark);
        else resolve(highWatermark);
      };
      const unsubscribe = this.notifier.subscribe(
        topic.topicId,
        partition,
        (highWatermark) => {
          if (highWatermark > offset) finish(highWatermark);
        },
        // Deleted here: waiting on would only end in "not found" at the deadline, so say it now.
        () => finish(deletedWhileWaiting()),
      );
      const onAbort = () => finish(current.highWatermark);
      signal?.addEventListener("abort", onAbort);
      const deadline = this.clock.setTimer(timeoutMs, () => {
        void this.offsetsOf(topic, partition).then(
          (latest) => finish(latest.highWatermark),
          () => finish(current.highWatermark),
        );
      });
      const deletedWhileWaiting = () =>
        new NotFoundError(`topic not found: ${topicName} (deleted while waiting for records)`);
      let polls = 0;
      const poll = repeatEvery(this.clock, this.pollIntervalMs, () => {
        void this.offsetsOf(topic, partition).then(
          (latest) => {
            if (latest.highWatermark > offset) finish(latest.highWatermark);
          },
          () => undefined,
        );
        // A deletion by another process (another Lambda) is not notified here: look at the topic
        // every fourth poll, so such a wait ends within about a second rather than at its timeout.
        if (++polls % 4 === 0) {
          void this.topics.describe(topicName).then(
            (now) => {
              if (now.topicId !== topic.topicId) finish(deletedWhileWaiting());
            },
            (error: unknown) => {
              if (error instanceof NotFoundError) finish(deletedWhileWaiting());
            },
          );
        }
      });
    });
  }

  private async topicWithPartition(name: string, partition: number): Promise<Topic> {
    let topic = await this.topics.get(name);
    if (!Number.isInteger(partition) || partition < 0) {
      throw new InvalidArgumentError(`invalid partition ${partition} for topic ${name}`);
    }
    if (partition >= topic.partitions) topic = await this.topics.describe(name);
    if (partition >= topic.partitions) {
      throw new NotFoundError(
        `partition ${partition} not found: topic ${name} has ${topic.partitions} partitions`,
        {
          details: { topic: name, partition },
        },
      );
    }
    return topic;
  }

  private async offsetsOf(topic: Topic, partition: number): Promise<PartitionOffsets> {
    const head = await this.metadata.get(headKey(topic.topicId, partition));
    return {
      logStartOffset: Number(head?.logStartOffset ?? 0),
      highWatermark: Number(head?.nextOffset ?? 0),
    };
  }
}
