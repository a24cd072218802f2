import {
  type Codec,
  type CompressFunction,
  type EncodableRecord,
  encodeBatch,
  gzip,
  partitionForKey,
} from "./batch-encoder.js";
import type { AppendedBatchReport, SluiceClient } from "./client.js";
import { type ConsumerClock, systemClock } from "./clock.js";
import { type DataInput, dataBytes, type HeaderInput } from "./data.js";
import { SluiceConnectionError, SluiceHttpError } from "./errors.js";

/**
 * A batching producer, like Kafka's: records are gathered per partition into RecordBatch v2
 * batches (up to `batchSizeBytes`, or `lingerMs` after the first), compressed, and sent through
 * the binary produce route with several partitions' batches in one request and up to
 * `maxInFlightRequests` requests at once. Each record's promise settles when the server has
 * acknowledged it (or refused it, or it could not be delivered).
 *
 * Ordering and duplicates (ARCHITECTURE.md, "The batching producer"). With idempotence (the default) every
 * batch carries the producer id, epoch and a sequence number per partition, and the server commits
 * a partition's batches only in sequence order and answers a batch it already has with its
 * original offsets. So whatever the network does — answers lost, requests overtaking each other on
 * different connections, retries — a record is written once and a partition's records keep the
 * order they were produced in. The producer's part is to resend a batch with the same bytes until
 * it gets a definite answer, to send a batch refused as out of order again once the batches before
 * it are written, and never to give a batch a sequence number a copy of another batch may hold:
 * sequences are renumbered only under a new epoch (which fences every request of the old one) and
 * only for batches no copy of which can be in flight. Without idempotence a request is resent with
 * the same Idempotency-Key, and one request per partition is in flight, which keeps the order too.
 */
export interface ProducerOptions {
  /**
   * `linger.ms`: how long a batch waits for more records before it is sent. Default 5. With 0 a
   * batch goes at the end of the turn it was opened in, with the records produced in that turn.
   */
  lingerMs?: number;
  /** `batch.size`: a partition's batch is sent once its records reach this many bytes. Default 256 KiB. */
  batchSizeBytes?: number;
  /** Records per batch at most (the CLI's `--batch-size`). Default no limit. */
  batchRecordsMax?: number;
  /** Bytes of batches in one request at most. Default 4 MiB (the server takes 6 MiB). */
  requestBytesMax?: number;
  /** `compression.type`. gzip is built in; snappy, lz4 and zstd need `codecs`. Default "none". */
  compression?: Codec;
  /** Compression functions writing Kafka's payload format for their codec. */
  codecs?: Partial<Record<Exclude<Codec, "none">, CompressFunction>>;
  /** `enable.idempotence`. Default true. */
  idempotent?: boolean;
  /** `max.in.flight.requests.per.connection`: requests awaiting an answer. Default 5; at most 5 with idempotence. */
  maxInFlightRequests?: number;
  /** `buffer.memory`: bytes of records not yet acknowledged; `produce` waits for room beyond it. Default 32 MiB. */
  bufferBytesMax?: number;
  /** `delivery.timeout.ms`: a record still unacknowledged this long after it was produced fails. Default 120,000. */
  deliveryTimeoutMs?: number;
  /** `request.timeout.ms`: a request unanswered this long counts as failed (outcome unknown). Default 30,000. */
  requestTimeoutMs?: number;
  /** `retries`: resends of a request whose outcome is unknown. Default no limit (bounded by deliveryTimeoutMs). */
  retries?: number;
  /** `retry.backoff.ms` and `retry.backoff.max.ms`: the first resend's delay, doubling up to the max. Default 100 and 1,000. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Time and waits; the system clock by default. */
  clock?: ConsumerClock;
  /** Where unkeyed records start (a number in [0, 1)); random by default, seeded in tests. */
  random?: () => number;
}

export interface ProducerRecord {
  topic: string;
  /** Explicit partition; otherwise murmur2 of the key (as Kafka), or sticky for null keys. */
  partition?: number;
  key?: DataInput | null;
  value?: DataInput | null;
  headers?: HeaderInput;
  /** Epoch milliseconds or a Date; default: when `produce` is called. */
  timestamp?: number | Date;
}

export interface RecordMetadata {
  topicName: string;
  partitionId: number;
  offset: number;
  /** The record's timestamp: its own, or the append time on a LogAppendTime topic. */
  timestamp: number;
}

/** A record buffered for sending; `delivered` settles once the server has answered for it. */
export interface ProduceTicket {
  delivered: Promise<RecordMetadata>;
}

/**
 * Told once how a record ended, like a Kafka producer's callback: `error` is undefined and
 * `metadata` set when it was written. Cheaper than reading `delivered` when records are many: a
 * record whose `delivered` is never read costs no promise. An exception it throws is not the
 * producer's: it is thrown again outside the producer (an uncaught exception), after every record
 * of the batch has been told.
 */
export type DeliveryCallback = (error: unknown, metadata: RecordMetadata | undefined) => void;

/**
 * A record may or may not have been written: its requests got no definite answer before
 * `deliveryTimeoutMs` (or `retries`) ran out, or a request that got none was followed by a refusal
 * that cannot tell (a topic setting changed in between). `cause` is the last failure.
 */
export class DeliveryUnknownError extends Error {
  override readonly name = "DeliveryUnknownError";
}

/** The producer was closed, or stopped by a fatal error (`cause`), before the record was sent. */
export class ProducerClosedError extends Error {
  override readonly name = "ProducerClosedError";
}

const MAX_IN_FLIGHT_IDEMPOTENT = 5;
/** Bytes a record costs beyond its key, value and headers (framing varints), for sizing batches. */
const RECORD_OVERHEAD = 20;

/**
 * A buffered record, and the caller's ticket for it. A record costs one object while it waits:
 * its delivery promise is made only when `delivered` is read, from its batch's outcome (one
 * promise per batch), since a producer buffers tens of thousands of records and every object
 * they keep alive is copied by each garbage collection that finds them still waiting.
 */
class PendingRecord implements EncodableRecord, ProduceTicket {
  /** Set when the record joins a batch: the batch, and the record's place in it. */
  batch: Batch | undefined;
  index = 0;
  private promised: Promise<RecordMetadata> | undefined;

  constructor(
    // Dropped once the batch has ended (endBatch): a caller may keep tickets long after.
    public key: Uint8Array | null,
    public value: Uint8Array | null,
    public headers: readonly { name: Uint8Array; value: Uint8Array | null }[],
    readonly timestamp: number,
    /** Bytes for sizing batches and the buffer. */
    readonly bytes: number,
    readonly onDelivery: DeliveryCallback | undefined,
  ) {}

  get delivered(): Promise<RecordMetadata> {
    if (!this.promised) {
      const batch = this.batch!;
      this.promised = batchOutcome(batch).then((report) => metadataOf(this, batch, report));
      // Marked handled: a caller that never looks at a failed delivery must not crash the process.
      this.promised.catch(ignore);
    }
    return this.promised;
  }
}

type BatchState = "open" | "ready" | "in-flight" | "done" | "failed";

interface Batch {
  topic: TopicState;
  partition: number;
  records: PendingRecord[];
  bytes: number;
  state: BatchState;
  /** The idempotent producer's sequence of the first record; -1 without idempotence. */
  baseSequence: number;
  /** Encoded bytes for the epoch and sequence they were encoded with. */
  encoded?: { epoch: number; baseSequence: number; bytes: Uint8Array };
  createdAt: number;
  /** Some request carrying this batch ended without a definite answer: a copy may be in flight. */
  everUnknown: boolean;
  /** Refused as out of order while earlier batches were in flight: send again once they are written. */
  afterPredecessors: boolean;
  /**
   * Its last request left while an earlier batch of its partition was not yet written. Requests
   * travel on separate connections, so the server may handle this one first and refuse it as out
   * of order, and that answer may still arrive after the earlier batch's: the refusal then
   * predates the write it was waiting for, and the batch is sent again rather than failed.
   */
  sentBehind: boolean;
  /** A request of several batches was refused: send this one alone, to find which one is bad. */
  alone: boolean;
  lingerAbort?: AbortController;
  /** How the batch ended, once it has: the server's report, or why its records failed. */
  result?: { report: AppendedBatchReport } | { error: unknown };
  /** The outcome's promise, made when a record's `delivered` is first read, and its settlers. */
  outcome?: Promise<AppendedBatchReport>;
  settleOutcome?: { resolve: (report: AppendedBatchReport) => void; reject: (error: unknown) => void };
}

interface PartitionState {
  open?: Batch;
  /** Closed batches not yet written, in sequence order. */
  queue: Batch[];
  nextSequence: number;
}

interface TopicState {
  name: string;
  partitions: number;
  recordBytesMax: number;
  parts: Map<number, PartitionState>;
  sticky: number | undefined;
}

interface Request {
  topic: TopicState;
  batches: Batch[];
  epoch: number;
  idempotencyKey?: string;
}

export class Producer {
  private readonly client: SluiceClient;
  private readonly clock: ConsumerClock;
  private readonly lingerMs: number;
  private readonly batchSizeBytes: number;
  private readonly batchRecordsMax: number;
  private readonly requestBytesMax: number;
  private readonly codec: Codec;
  private readonly compress: CompressFunction | undefined;
  private readonly idempotent: boolean;
  private readonly maxInFlight: number;
  private readonly bufferBytesMax: number;
  private readonly deliveryTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly retries: number;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;

  private readonly topics = new Map<string, Promise<TopicState>>();
  /** Topics whose lookup finished (sending is synchronous and needs them at hand). */
  private readonly topicStates = new Map<string, TopicState>();
  private identity: Promise<{ producerId: number; producerEpoch: number }> | undefined;
  private epoch = -1;
  private producerId = -1;
  private inFlight = 0;
  private bufferedBytes = 0;
  private unsettled = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private resetRequested = false;
  private resetting: Promise<void> | undefined;
  private fatal: unknown;
  private closed = false;
  private topicTurn = 0;
  /** Where unkeyed records go next: round robin from a random start, so producers spread out. */
  private stickyTurn: number;
  private requestNumber = 0;
  private readonly run = randomId();

  constructor(client: SluiceClient, options: ProducerOptions = {}) {
    this.client = client;
    this.clock = options.clock ?? systemClock;
    this.stickyTurn = Math.floor((options.random ?? Math.random)() * 0x7fffffff);
    this.lingerMs = nonNegative(options.lingerMs ?? 5, "lingerMs");
    this.batchSizeBytes = positive(options.batchSizeBytes ?? 256 * 1024, "batchSizeBytes");
    this.batchRecordsMax = positive(options.batchRecordsMax ?? Number.POSITIVE_INFINITY, "batchRecordsMax");
    this.requestBytesMax = positive(options.requestBytesMax ?? 4 * 1024 * 1024, "requestBytesMax");
    this.codec = options.compression ?? "none";
    if (!["none", "gzip", "snappy", "lz4", "zstd"].includes(this.codec)) {
      throw new RangeError(`unknown compression ${String(this.codec)}: none, gzip, snappy, lz4 or zstd`);
    }
    this.compress =
      this.codec === "none"
        ? undefined
        : (options.codecs?.[this.codec] ?? (this.codec === "gzip" ? gzip : undefined));
    if (this.codec !== "none" && !this.compress) {
      throw new RangeError(
        `compression ${this.codec} needs a codec: pass codecs.${this.codec}, a function writing Kafka's ${this.codec} payload`,
      );
    }
    this.idempotent = options.idempotent ?? true;
    this.maxInFlight = positive(options.maxInFlightRequests ?? 5, "maxInFlightRequests");
    if (this.idempotent && this.maxInFlight > MAX_IN_FLIGHT_IDEMPOTENT) {
      throw new RangeError(
        `maxInFlightRequests is ${this.maxInFlight}; an idempotent producer allows at most ${MAX_IN_FLIGHT_IDEMPOTENT} (the server remembers the last 5 batches of each partition)`,
      );
    }
    this.bufferBytesMax = positive(options.bufferBytesMax ?? 32 * 1024 * 1024, "bufferBytesMax");
    this.deliveryTimeoutMs = positive(options.deliveryTimeoutMs ?? 120_000, "deliveryTimeoutMs");
    this.requestTimeoutMs = positive(options.requestTimeoutMs ?? 30_000, "requestTimeoutMs");
    this.retries = nonNegative(options.retries ?? Number.POSITIVE_INFINITY, "retries");
    this.retryBackoffMs = nonNegative(options.retryBackoffMs ?? 100, "retryBackoffMs");
    this.retryBackoffMaxMs = nonNegative(options.retryBackoffMaxMs ?? 1_000, "retryBackoffMaxMs");
  }

  /**
   * Buffers a record for sending. Resolves once it is buffered — waiting while the buffer holds
   * `bufferBytesMax` of unacknowledged records (back-pressure) — with its delivery promise. Fails
   * at once for an unknown topic or partition and a record over the topic's max.message.bytes.
   */
  async produce(record: ProducerRecord, onDelivery?: DeliveryCallback): Promise<ProduceTicket> {
    this.checkOpen();
    // Once the topic and the producer id are known, a record costs no waiting (the usual case).
    const topic = this.topicStates.get(record.topic) ?? (await this.topic(record.topic));
    if (this.idempotent && this.producerId < 0) await this.ensureIdentity();
    const pending = toPending(record, this.clock.now(), onDelivery);
    if (pending.bytes - RECORD_OVERHEAD > topic.recordBytesMax) {
      throw new SluiceHttpError(
        413,
        413,
        `record is ${pending.bytes - RECORD_OVERHEAD} bytes (key, value and headers), over the topic's max.message.bytes of ${topic.recordBytesMax}`,
        { code: "RECORD_TOO_LARGE" },
      );
    }
    if (
      record.partition !== undefined &&
      (!Number.isInteger(record.partition) || record.partition < 0 || record.partition >= topic.partitions)
    ) {
      throw new SluiceHttpError(
        404,
        404,
        `partition ${record.partition} does not exist; topic ${topic.name} has ${topic.partitions} partitions`,
      );
    }
    // Waiters go first, in the order they came, so records keep the order produce was called in.
    if (this.roomWaiters.length > 0 || this.full(pending.bytes)) {
      do {
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        this.checkOpen();
      } while (this.full(pending.bytes));
    }
    this.bufferedBytes += pending.bytes;
    this.unsettled++;
    this.append(topic, record, pending);
    return pending;
  }

  private full(bytes: number): boolean {
    return this.bufferedBytes > 0 && this.bufferedBytes + bytes > this.bufferBytesMax;
  }

  /** Produces one record and resolves when it is acknowledged. */
  async send(record: ProducerRecord): Promise<RecordMetadata> {
    return (await this.produce(record)).delivered;
  }

  /** Sends every buffered batch now and resolves once every record produced so far has settled. */
  async flush(): Promise<void> {
    for (const topic of this.topicStates.values()) {
      for (const part of topic.parts.values()) if (part.open) this.closeBatch(part.open, part);
    }
    this.drain();
    if (this.unsettled === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops at once: records not yet sent fail with ProducerClosedError (carrying `reason`), and the
   * producer takes no more; requests already sent finish, and their records settle as answered.
   * Resolves once every record has settled.
   */
  async abort(reason?: unknown): Promise<void> {
    const error = new ProducerClosedError(
      reason === undefined ? "the producer was aborted" : `the producer was aborted: ${describe(reason)}`,
      { cause: reason },
    );
    this.closed = true;
    for (const topic of this.topicStates.values()) {
      for (const part of topic.parts.values()) {
        const batches = [...part.queue, ...(part.open ? [part.open] : [])];
        part.open = undefined;
        for (const batch of batches) {
          if (batch.state !== "open" && batch.state !== "ready") continue;
          batch.lingerAbort?.abort();
          batch.state = "failed";
          this.settle(batch);
          endBatch(batch, { error });
        }
      }
    }
    for (const wake of this.roomWaiters.splice(0)) wake();
    if (this.unsettled === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes, then refuses further records. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }

  // --- buffering ---------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.fatal !== undefined) {
      throw new ProducerClosedError(`the producer stopped: ${describe(this.fatal)}`, { cause: this.fatal });
    }
    if (this.closed) throw new ProducerClosedError("the producer is closed");
  }

  private topic(name: string): Promise<TopicState> {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = (async () => {
        const [info, config] = await Promise.all([
          this.client.describeTopic(name),
          this.client.getTopicConfig(name, "max.message.bytes"),
        ]);
        const state: TopicState = {
          name,
          partitions: info.partitionsCount,
          recordBytesMax: Number(config.value ?? 1_048_576),
          parts: new Map(),
          sticky: undefined,
        };
        this.topicStates.set(name, state);
        return state;
      })();
      this.topics.set(name, topic);
      // A failed lookup is tried again by the next record.
      topic.catch(() => {
        if (this.topics.get(name) === topic) this.topics.delete(name);
      });
    }
    return topic;
  }

  private ensureIdentity(): Promise<unknown> {
    if (!this.identity) {
      const identity = this.withRetries(() => this.client.initProducer()).then((found) => {
        this.producerId = found.producerId;
        this.epoch = found.producerEpoch;
        return found;
      });
      identity.catch(() => {
        if (this.identity === identity) this.identity = undefined;
      });
      this.identity = identity;
    }
    return this.identity;
  }

  private append(topic: TopicState, record: ProducerRecord, pending: PendingRecord): void {
    const partition =
      record.partition ??
      (pending.key === null ? this.stickyPartition(topic) : partitionForKey(pending.key, topic.partitions));
    let part = topic.parts.get(partition);
    if (!part) {
      part = { queue: [], nextSequence: 0 };
      topic.parts.set(partition, part);
    }
    let batch = part.open;
    if (
      batch &&
      (batch.bytes + pending.bytes > this.batchSizeBytes || batch.records.length >= this.batchRecordsMax)
    ) {
      this.closeBatch(batch, part);
      batch = undefined;
    }
    if (!batch) {
      batch = {
        topic,
        partition,
        records: [],
        bytes: 0,
        state: "open",
        baseSequence: -1,
        createdAt: this.clock.now(),
        everUnknown: false,
        afterPredecessors: false,
        sentBehind: false,
        alone: false,
      };
      part.open = batch;
      this.scheduleLinger(batch, part);
    }
    pending.batch = batch;
    pending.index = batch.records.length;
    batch.records.push(pending);
    batch.bytes += pending.bytes;
    if (batch.bytes >= this.batchSizeBytes || batch.records.length >= this.batchRecordsMax)
      this.closeBatch(batch, part);
  }

  /** Kafka's sticky partitioner: unkeyed records fill one partition's batch, then move on. */
  private stickyPartition(topic: TopicState): number {
    if (topic.sticky === undefined || topic.parts.get(topic.sticky)?.open === undefined) {
      topic.sticky = this.stickyTurn++ % topic.partitions;
    }
    return topic.sticky;
  }

  private scheduleLinger(batch: Batch, part: PartitionState): void {
    if (this.lingerMs === 0) {
      // No linger (`linger.ms=0`): the batch goes at the end of this turn, with whatever else was
      // produced in it. A timer of 0 ms would wait a millisecond or more under Node.
      queueMicrotask(() => {
        if (batch.state === "open") this.closeBatch(batch, part);
      });
      return;
    }
    const abort = new AbortController();
    batch.lingerAbort = abort;
    void this.clock
      .sleep(this.lingerMs, abort.signal)
      .catch(() => undefined)
      .then(() => {
        if (!abort.signal.aborted && batch.state === "open") this.closeBatch(batch, part);
      });
  }

  /** Closes the open batch: it gets its sequence numbers and joins the partition's queue. */
  private closeBatch(batch: Batch, part: PartitionState, drain = true): void {
    batch.lingerAbort?.abort();
    batch.lingerAbort = undefined;
    if (part.open === batch) part.open = undefined;
    if (batch.state !== "open") return;
    batch.state = "ready";
    if (this.idempotent) {
      batch.baseSequence = part.nextSequence;
      part.nextSequence += batch.records.length;
    }
    part.queue.push(batch);
    if (batch.topic.sticky === batch.partition) batch.topic.sticky = undefined;
    if (drain) this.drain();
  }

  // --- sending -----------------------------------------------------------------------------

  /** Starts requests while there is room in flight and batches that may go. */
  private drain(): void {
    if (this.fatal !== undefined) return;
    if (this.resetRequested) {
      void this.resetWhenQuiet();
      return;
    }
    this.closeDueBatches();
    while (this.inFlight < this.maxInFlight) {
      const request = this.nextRequest();
      if (!request) return;
      this.inFlight++;
      void this.sendRequest(request).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /**
   * Closes every open batch whose linger has passed: batches opened together go in one request,
   * whichever linger timer fires first (as Kafka's sender looks at every partition when it wakes).
   */
  private closeDueBatches(): void {
    const now = this.clock.now();
    for (const topic of this.topicStates.values()) {
      for (const part of topic.parts.values()) {
        const open = part.open;
        if (open && open.createdAt + this.lingerMs <= now) this.closeBatch(open, part, false);
      }
    }
  }

  /** Batches of one topic that may be sent now, at most one per partition, within requestBytesMax. */
  private nextRequest(): Request | undefined {
    const topics = [...this.topicStates.values()];
    for (let turn = 0; turn < topics.length; turn++) {
      const topic = topics[(this.topicTurn + turn) % topics.length]!;
      const batches: Batch[] = [];
      let bytes = 0;
      for (const part of topic.parts.values()) {
        const batch = this.sendable(part);
        if (!batch) continue;
        if (batch.alone) {
          if (batches.length > 0) continue;
          batches.push(batch);
          break;
        }
        if (batches.length > 0 && (bytes + batch.bytes > this.requestBytesMax || batches[0]!.alone)) continue;
        batches.push(batch);
        bytes += batch.bytes;
      }
      if (batches.length > 0) {
        this.topicTurn = (this.topicTurn + turn + 1) % Math.max(1, topics.length);
        for (const batch of batches) {
          batch.state = "in-flight";
          batch.sentBehind = this.hasUnwrittenPredecessor(batch);
        }
        const request: Request = { topic, batches, epoch: this.epoch };
        if (!this.idempotent) request.idempotencyKey = `sluice-producer-${this.run}-${this.requestNumber++}`;
        return request;
      }
    }
    return undefined;
  }

  /**
   * The partition's next batch to send, if it may go now. Only the first five unwritten batches of
   * a partition may be out at once: the server remembers a partition's last five batches, so a
   * batch sent again after a lost answer is still recognised as written however the others fared.
   */
  private sendable(part: PartitionState): Batch | undefined {
    let inFlight = 0;
    const window = Math.min(
      part.queue.length,
      this.idempotent ? MAX_IN_FLIGHT_IDEMPOTENT : part.queue.length,
    );
    for (let index = 0; index < window; index++) {
      const batch = part.queue[index]!;
      if (batch.state === "in-flight") {
        inFlight++;
        continue;
      }
      if (batch.state === "failed") return undefined; // a gap: wait for the reset
      if (batch.state !== "ready") continue;
      if (!this.idempotent && inFlight > 0) return undefined;
      if (batch.afterPredecessors && inFlight > 0) return undefined;
      return batch;
    }
    return undefined;
  }

  private async sendRequest(request: Request): Promise<void> {
    const { topic, batches } = request;
    const partitions = batches.map((batch) => batch.partition);
    let body: Uint8Array;
    try {
      body = await this.encode(request);
    } catch (error) {
      for (const batch of batches) this.fail(batch, error);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      let answer: AppendedBatchReport[] | undefined;
      let failure: unknown;
      const timeout = new AbortController();
      const timer = new AbortController();
      void this.clock
        .sleep(this.requestTimeoutMs, timer.signal)
        .catch(() => undefined)
        .then(() => {
          if (!timer.signal.aborted) timeout.abort();
        });
      try {
        answer = await this.client.produceRecordBatches(topic.name, partitions, body, {
          ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey } : {}),
          signal: timeout.signal,
        });
      } catch (error) {
        failure = timeout.signal.aborted
          ? new SluiceConnectionError(
              this.client.url,
              new Error(`no answer within ${this.requestTimeoutMs} ms`),
            )
          : error;
      } finally {
        timer.abort();
      }
      if (answer) {
        this.acknowledge(request, answer);
        return;
      }
      if (this.fatal !== undefined) return;
      if (isUnknownOutcome(failure)) {
        for (const batch of batches) batch.everUnknown = true;
        const oldest = Math.min(...batches.map((batch) => batch.createdAt));
        const delay = Math.min(this.retryBackoffMaxMs, this.retryBackoffMs * 2 ** attempt);
        if (attempt >= this.retries || this.clock.now() + delay - oldest > this.deliveryTimeoutMs) {
          const error = new DeliveryUnknownError(
            `no definite answer after ${attempt + 1} attempt${attempt === 0 ? "" : "s"}; the records may or may not have been written: ${describe(failure)}`,
            { cause: failure },
          );
          for (const batch of batches) this.fail(batch, error);
          return;
        }
        await this.clock.sleep(delay).catch(() => undefined);
        continue;
      }
      this.refused(request, failure);
      return;
    }
  }

  /** The request's body: each batch encoded for the current epoch and its sequence. */
  private async encode(request: Request): Promise<Uint8Array> {
    const pieces: Uint8Array[] = [];
    for (const batch of request.batches) {
      const cached = batch.encoded;
      if (cached && cached.epoch === request.epoch && cached.baseSequence === batch.baseSequence) {
        pieces.push(cached.bytes);
        continue;
      }
      const bytes = await encodeBatch(batch.records, {
        producerId: this.idempotent ? this.producerId : -1,
        producerEpoch: this.idempotent ? request.epoch : -1,
        baseSequence: batch.baseSequence,
        codec: this.codec,
        ...(this.compress ? { compress: this.compress } : {}),
      });
      batch.encoded = { epoch: request.epoch, baseSequence: batch.baseSequence, bytes };
      pieces.push(bytes);
    }
    if (pieces.length === 1) return pieces[0]!;
    const body = new Uint8Array(pieces.reduce((total, piece) => total + piece.byteLength, 0));
    let position = 0;
    for (const piece of pieces) {
      body.set(piece, position);
      position += piece.byteLength;
    }
    return body;
  }

  private acknowledge(request: Request, answer: AppendedBatchReport[]): void {
    request.batches.forEach((batch, index) => {
      if (batch.state !== "in-flight") return; // failed meanwhile by a fatal error
      const report = answer[index];
      if (!report || report.partitionId !== batch.partition) {
        this.fail(
          batch,
          new SluiceHttpError(502, 502, "unexpected response from server: batches do not match"),
        );
        return;
      }
      batch.state = "done";
      this.settle(batch);
      endBatch(batch, { report });
    });
  }

  /** A definite refusal: nothing of the request was written. */
  private refused(request: Request, error: unknown): void {
    const batches = request.batches.filter((batch) => batch.state === "in-flight");
    if (batches.length === 0) return;
    const code = error instanceof SluiceHttpError ? error.code : undefined;
    if (
      code === "INVALID_PRODUCER_EPOCH" ||
      (error instanceof SluiceHttpError && error.status === 404 && /producer/.test(error.message))
    ) {
      this.stop(error);
      return;
    }
    if (code === "OUT_OF_ORDER_SEQUENCE") {
      // Out of order because earlier batches are unwritten, or were when this request left (their
      // answers may have overtaken this one's). Sent when nothing before it was unwritten, the
      // refusal means the server has lost track of the sequence, and the batch fails.
      const waiting = batches.filter((batch) => batch.sentBehind || this.hasUnwrittenPredecessor(batch));
      if (waiting.length > 0) {
        // Earlier batches are not written yet (in flight, or resent): this one follows them.
        for (const batch of batches) {
          batch.afterPredecessors = true;
          this.requeue(batch);
        }
        return;
      }
    }
    if (batches.length > 1) {
      // One of them is bad: send each alone, so only the bad one fails.
      for (const batch of batches) {
        batch.alone = true;
        this.requeue(batch);
      }
      return;
    }
    const batch = batches[0]!;
    // This request wrote nothing; an earlier one whose answer never came may have written it.
    this.fail(
      batch,
      batch.everUnknown
        ? new DeliveryUnknownError(
            `refused after an earlier request for these records got no answer, so they may or may not have been written: ${describe(error)}`,
            { cause: error },
          )
        : error,
    );
  }

  private hasUnwrittenPredecessor(batch: Batch): boolean {
    const queue = batch.topic.parts.get(batch.partition)!.queue;
    for (const earlier of queue) {
      if (earlier === batch) return false;
      if (earlier.state !== "done") return true;
    }
    return false;
  }

  private requeue(batch: Batch): void {
    batch.state = "ready";
  }

  /**
   * Fails a batch's records. A failed batch leaves a gap in its partition's sequence, so an
   * idempotent producer renumbers under a new epoch before it sends that partition anything else.
   */
  private fail(batch: Batch, error: unknown): void {
    if (batch.state === "done" || batch.state === "failed") return;
    batch.state = "failed";
    this.settle(batch);
    if (this.idempotent) this.resetRequested = true;
    else {
      const part = batch.topic.parts.get(batch.partition)!;
      part.queue = part.queue.filter((queued) => queued !== batch);
    }
    // Last: a callback may produce again, and finds the producer's state settled.
    endBatch(batch, { error });
  }

  /** A settled batch's records leave the buffer. */
  private settle(batch: Batch): void {
    const part = batch.topic.parts.get(batch.partition)!;
    while (part.queue[0]?.state === "done") part.queue.shift();
    let freed = 0;
    for (const record of batch.records) freed += record.bytes;
    this.bufferedBytes -= freed;
    this.unsettled -= batch.records.length;
    if (this.roomWaiters.length > 0 && this.bufferedBytes < this.bufferBytesMax) {
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
    if (this.unsettled === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * Renumbers every unwritten batch under a new epoch, once no request is in flight. A batch some
   * request of which had no definite answer may have been written by a copy still on its way, so
   * it cannot be renumbered (a renumbered copy would be a second write): it fails as undelivered.
   */
  private resetWhenQuiet(): Promise<void> {
    if (this.resetting || this.inFlight > 0) return this.resetting ?? Promise.resolve();
    this.resetting = (async () => {
      try {
        const bumped = await this.withRetries(() => this.client.initProducer(this.producerId));
        for (const topic of this.topicStates.values()) {
          for (const part of topic.parts.values()) {
            const keep: Batch[] = [];
            for (const batch of part.queue) {
              if (batch.state === "failed" || batch.state === "done") continue;
              if (batch.everUnknown) {
                this.fail(
                  batch,
                  new DeliveryUnknownError(
                    "a request carrying these records got no definite answer before the producer had to renumber its batches; they may or may not have been written",
                  ),
                );
                continue;
              }
              keep.push(batch);
            }
            let sequence = 0;
            for (const batch of keep) {
              batch.baseSequence = sequence;
              sequence += batch.records.length;
              batch.afterPredecessors = false;
              batch.alone = false;
            }
            part.queue = keep;
            part.nextSequence = sequence;
          }
        }
        this.epoch = bumped.producerEpoch;
        this.resetRequested = false;
      } catch (error) {
        this.stop(error);
      } finally {
        this.resetting = undefined;
      }
      this.drain();
    })();
    return this.resetting;
  }

  /**
   * Runs `call` again after failures that may pass (no answer, 503), with backoff, for up to
   * deliveryTimeoutMs. For calls that are safe to repeat: producer ids (an unused id is harmless).
   */
  private async withRetries<T>(call: () => Promise<T>): Promise<T> {
    const started = this.clock.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const delay = Math.min(this.retryBackoffMaxMs, this.retryBackoffMs * 2 ** attempt);
        if (!isUnknownOutcome(error) || this.clock.now() + delay - started > this.deliveryTimeoutMs)
          throw error;
        await this.clock.sleep(delay).catch(() => undefined);
      }
    }
  }

  /** A fatal error: every unacknowledged record fails, and the producer takes no more. */
  private stop(error: unknown): void {
    this.fatal ??= error;
    for (const topic of this.topicStates.values()) {
      for (const part of topic.parts.values()) {
        const batches = [...part.queue, ...(part.open ? [part.open] : [])];
        part.open = undefined;
        for (const batch of batches) {
          if (batch.state === "done" || batch.state === "failed") continue;
          batch.lingerAbort?.abort();
          batch.state = "failed";
          this.settle(batch);
          endBatch(batch, { error });
        }
        part.queue = [];
      }
    }
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }
}

function isUnknownOutcome(error: unknown): boolean {
  if (error instanceof SluiceConnectionError) return true;
  // 5xx and 429: the server may have written before it failed (a 500 after the commit), or will not have.
  return error instanceof SluiceHttpError && (error.retryable || error.status >= 500);
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const NO_HEADERS: readonly { name: Uint8Array; value: Uint8Array | null }[] = Object.freeze([]);
function ignore(): void {}

/** What a written record is told: where it went, and its timestamp (the append time on a LogAppendTime topic). */
function metadataOf(record: PendingRecord, batch: Batch, report: AppendedBatchReport): RecordMetadata {
  return {
    topicName: batch.topic.name,
    partitionId: batch.partition,
    offset: report.baseOffset + record.index,
    timestamp: report.logAppendTime ?? record.timestamp,
  };
}

/** The promise of a batch's outcome, made on first use; settled already if the batch has ended. */
function batchOutcome(batch: Batch): Promise<AppendedBatchReport> {
  if (!batch.outcome) {
    const result = batch.result;
    batch.outcome = result
      ? "report" in result
        ? Promise.resolve(result.report)
        : Promise.reject(result.error)
      : new Promise((resolve, reject) => {
          batch.settleOutcome = { resolve, reject };
        });
    batch.outcome.catch(ignore);
  }
  return batch.outcome;
}

/**
 * Records how a batch ended: its records' callbacks are told, in the order the records were
 * produced, and its outcome's promise settles if anyone asked for it.
 */
function endBatch(batch: Batch, result: { report: AppendedBatchReport } | { error: unknown }): void {
  batch.result = result;
  const report = "report" in result ? result.report : undefined;
  const failure = "error" in result ? result.error : undefined;
  const thrown: unknown[] = [];
  for (const record of batch.records) {
    try {
      if (report) record.onDelivery?.(undefined, metadataOf(record, batch, report));
      else record.onDelivery?.(failure, undefined);
    } catch (error) {
      thrown.push(error);
    }
    // Nothing sends the batch again: tickets kept by the caller keep its records' bytes no longer.
    record.key = null;
    record.value = null;
    record.headers = NO_HEADERS;
  }
  batch.encoded = undefined;
  if (report) batch.settleOutcome?.resolve(report);
  else batch.settleOutcome?.reject(failure);
  batch.settleOutcome = undefined;
  // The producer's state is consistent already; the caller's exceptions surface as its own.
  for (const error of thrown)
    queueMicrotask(() => {
      throw error;
    });
}

function toPending(
  record: ProducerRecord,
  now: number,
  onDelivery: DeliveryCallback | undefined,
): PendingRecord {
  const key = toBytes(record.key);
  const value = toBytes(record.value);
  let headers = NO_HEADERS;
  if (record.headers !== undefined) {
    const list: { name: Uint8Array; value: Uint8Array | null }[] = [];
    const entries = Array.isArray(record.headers)
      ? record.headers.map(({ name, value: headerValue }) => [name, headerValue] as const)
      : Object.entries(record.headers);
    for (const [name, headerValue] of entries) {
      list.push({
        name: utf8.encode(name),
        value:
          headerValue === null
            ? null
            : typeof headerValue === "string"
              ? utf8.encode(headerValue)
              : headerValue,
      });
    }
    headers = list;
  }
  const timestamp = record.timestamp instanceof Date ? record.timestamp.getTime() : (record.timestamp ?? now);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(
      `timestamp must be non-negative epoch milliseconds, got ${String(record.timestamp)}`,
    );
  }
  let bytes = RECORD_OVERHEAD + (key?.byteLength ?? 0) + (value?.byteLength ?? 0);
  for (const header of headers) bytes += header.name.byteLength + (header.value?.byteLength ?? 0);
  return new PendingRecord(key, value, headers, timestamp, bytes, onDelivery);
}

function toBytes(input: DataInput | null | undefined): Uint8Array | null {
  if (input === undefined || input === null) return null;
  if (typeof input === "string") return input.length === 0 ? EMPTY : utf8.encode(input);
  if (input instanceof Uint8Array) return input;
  return dataBytes(input);
}

function positive(value: number, name: string): number {
  if (!(value > 0)) throw new RangeError(`${name} must be positive, got ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!(value >= 0)) throw new RangeError(`${name} must be zero or more, got ${value}`);
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}
