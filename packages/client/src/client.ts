import { checkLoopPollOptions } from "@sluice/loop-polling";
import { toPartitionActivity, toTopicActivity } from "./activity.js";
import { type Data, type DataType, fromBase64, RangeDecoder, toData, toWireHeaders } from "./data.js";
import { decodedPage } from "./decoded-page.js";
import { errorFromResponse, SluiceConnectionError, SluiceHttpError } from "./errors.js";
import { GroupConsumer, type GroupConsumerOptions } from "./group-consumer.js";
import { parseConcatenatedJson } from "./json-stream.js";
import { type BytesResponse, nodeRequestBytes, type RequestBytes } from "./node-transport.js";
import type {
  ProcessorDefinition,
  ProcessorDetails,
  ProcessorInfo,
  ProcessorPartition,
  ProcessorResetTarget,
} from "./processor-types.js";
import { Producer, type ProducerOptions } from "./producer.js";
import { QueueConsumer, type QueueConsumerOptions } from "./queue-consumer.js";
import type {
  AcknowledgementResult,
  AcknowledgeType,
  AcquireOptions,
  AcquireResponse,
  RecordAcknowledgement,
  ShareGroupConfigs,
  ShareGroupInfo,
  ShareGroupJoinRequest,
  ShareGroupJoinResponse,
  ShareGroupMember,
  SharePartitionInfo,
  StartOffsetResetResult,
  StartOffsetResetTarget,
} from "./queue-types.js";
import {
  RecordBatchFormatError,
  type VisitedBatches,
  visitRecordBatches,
  type WalkStart,
} from "./record-batch.js";
import {
  ANSWER_POLL_BUDGET_DEFAULT,
  ANSWER_POLL_MAX_US_DEFAULT,
  socketRequestBytes,
} from "./socket-transport.js";
import { parseServerSentEvents } from "./sse.js";
import type {
  BatchEntry,
  BatchPage,
  BatchResult,
  Cluster,
  CommittedGroupOffset,
  ConsumedRecord,
  ConsumerGroupInfo,
  ConsumerGroupLag,
  ConsumerGroupLagSummary,
  ConsumerGroupMember,
  CreateTopicOptions,
  DeliveryReport,
  GroupHeartbeatRequest,
  GroupHeartbeatResponse,
  OffsetResetOptions,
  OffsetResetResult,
  OffsetResetTarget,
  OffsetSpec,
  OffsetToCommit,
  PartitionInfo,
  PartitionOffsetForTimestamp,
  ProduceOptions,
  ProduceOutcome,
  ProduceRecord,
  ProducerIdentity,
  ReadOptions,
  ReadResult,
  TailOptions,
  TopicConfig,
  TopicConfigChange,
  TopicInfo,
  TopicPartition,
  TopicStorage,
} from "./types.js";

export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface SluiceClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The cluster to address; discovered with GET /v3/clusters (the first one) when absent. */
  clusterId?: string;
  /** Replaces the global fetch, e.g. to call a Hono app in-process: `(url, init) => app.request(url, init)`. */
  fetch?: FetchFunction;
  /** Sent with every request (e.g. Authorization). */
  headers?: Record<string, string>;
  /**
   * On a plain `http:` URL under Node: the longest time, in microseconds, the event loop keeps
   * turning while a request awaits its answer, instead of sleeping at once (answer polling; see
   * socket-transport.ts). It adapts to how soon answers come and turns itself off for a distant
   * server. Default 1000 µs; 0 turns it off. With `https:` or a `fetch` of the caller's, nothing
   * polls (the value is still checked).
   */
  answerPollUs?: number;
  /** The share of time answer polling may take, (0, 1]. Default 0.9. */
  answerPollBudget?: number;
}

/** Where one batch of `produceRecordBatches` was written. */
export interface AppendedBatchReport {
  partitionId: number;
  /** The offset of the batch's first record. */
  baseOffset: number;
  recordCount: number;
  /** An earlier request had written this batch (same producer sequence); nothing new was written. */
  duplicate: boolean;
  /** On a LogAppendTime topic: the time every record got, epoch milliseconds. */
  logAppendTime?: number;
}

interface RequestSpec {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

type Json = Record<string, unknown>;

/** The binary form of a partition read: the stored Kafka RecordBatch v2 batches. */
export const RECORD_BATCH_MEDIA_TYPE = "application/vnd.kafka.record-batch.v2";

/** Where a binary page came from and what its answer said, for decoding it later. */
interface PageOffsets {
  topic: string;
  partition: number;
  clusterId: string;
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/** The read route's own limit on records per read, which the binary form counts in whole batches. */
const READ_MAX_RECORDS_DEFAULT = 10_000;

/** The longest `timeout_ms` the API takes for one long-poll or event stream. */
const STREAM_TIMEOUT_MAX_MS = 30_000;

/**
 * A client for the Sluice HTTP API (Confluent REST v3 shapes plus Sluice's read extensions; see
 * docs/http-api-contract.md). It has no dependencies beyond `fetch`. Errors answered by the server
 * are thrown as `SluiceHttpError`; failures to reach it as `SluiceConnectionError`.
 */
export class SluiceClient {
  readonly url: string;
  private readonly fetchFn: FetchFunction;
  /**
   * Binary reads' and JSON requests' transport under Node when no `fetch` was given: HTTP/1.1 on
   * a socket for `http:` (socket-transport.ts), `node:https` for `https:` (node-transport.ts).
   */
  private readonly requestBytes: RequestBytes | undefined;
  private readonly headers: Record<string, string>;
  private clusterIdPromise: Promise<string> | undefined;

  constructor(options: SluiceClientOptions) {
    // Checked whatever the transport, so a bad value is refused even where nothing polls.
    checkLoopPollOptions({
      maxUs: options.answerPollUs ?? ANSWER_POLL_MAX_US_DEFAULT,
      budget: options.answerPollBudget ?? ANSWER_POLL_BUDGET_DEFAULT,
      name: "answer poll",
    });
    this.url = options.url.replace(/\/+$/, "");
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.requestBytes = options.fetch
      ? undefined
      : (socketRequestBytes(this.url, {
          ...(options.answerPollUs === undefined ? {} : { answerPollUs: options.answerPollUs }),
          ...(options.answerPollBudget === undefined ? {} : { answerPollBudget: options.answerPollBudget }),
        }) ?? nodeRequestBytes(this.url));
    this.headers = options.headers ?? {};
    if (options.clusterId !== undefined) this.clusterIdPromise = Promise.resolve(options.clusterId);
  }

  // --- clusters ---------------------------------------------------------------------------

  /** The cluster this client addresses (discovered on first use unless given). */
  clusterId(): Promise<string> {
    if (!this.clusterIdPromise) {
      const discovery = this.listClusters().then((clusters) => {
        const first = clusters[0];
        if (!first) throw new SluiceHttpError(404, 404, `no cluster at ${this.url}`);
        return first.clusterId;
      });
      // Forget a failed discovery so the next call tries again.
      discovery.catch(() => {
        if (this.clusterIdPromise === discovery) this.clusterIdPromise = undefined;
      });
      this.clusterIdPromise = discovery;
    }
    return this.clusterIdPromise;
  }

  async listClusters(): Promise<Cluster[]> {
    const items = await this.list("/v3/clusters");
    return items.map((item) => ({ clusterId: String(item.cluster_id) }));
  }

  async getCluster(): Promise<Cluster> {
    const body = await this.json("GET", await this.clusterPath());
    return { clusterId: String(body.cluster_id) };
  }

  // --- topics -----------------------------------------------------------------------------

  async listTopics(): Promise<TopicInfo[]> {
    const items = await this.list(`${await this.clusterPath()}/topics`);
    return items.map(toTopicInfo);
  }

  async createTopic(name: string, options: CreateTopicOptions = {}): Promise<TopicInfo> {
    const json: Json = { topic_name: name };
    if (options.partitions !== undefined) json.partitions_count = options.partitions;
    if (options.replicationFactor !== undefined) json.replication_factor = options.replicationFactor;
    if (options.configs) {
      json.configs = Object.entries(options.configs).map(([configName, value]) => ({
        name: configName,
        value,
      }));
    }
    return toTopicInfo(await this.json("POST", `${await this.clusterPath()}/topics`, { json }));
  }

  async describeTopic(name: string): Promise<TopicInfo> {
    return toTopicInfo(await this.json("GET", await this.topicPath(name)));
  }

  async deleteTopic(name: string): Promise<void> {
    await this.send("DELETE", await this.topicPath(name));
  }

  /** Raises the topic's partition count to `partitions` (it can only grow). */
  async increasePartitions(name: string, partitions: number): Promise<TopicInfo> {
    const json = { partitions_count: partitions };
    return toTopicInfo(await this.json("PATCH", await this.topicPath(name), { json }));
  }

  async getTopicConfigs(name: string): Promise<TopicConfig[]> {
    const items = await this.list(`${await this.topicPath(name)}/configs`);
    return items.map(toTopicConfig);
  }

  async getTopicConfig(name: string, configName: string): Promise<TopicConfig> {
    return toTopicConfig(await this.json("GET", `${await this.topicPath(name)}/configs/${enc(configName)}`));
  }

  async setTopicConfig(name: string, configName: string, value: string): Promise<void> {
    await this.send("PUT", `${await this.topicPath(name)}/configs/${enc(configName)}`, { json: { value } });
  }

  /** Resets a config to its default. */
  async resetTopicConfig(name: string, configName: string): Promise<void> {
    await this.send("DELETE", `${await this.topicPath(name)}/configs/${enc(configName)}`);
  }

  /** Several config changes in one request, applied together. */
  async alterTopicConfigs(name: string, changes: TopicConfigChange[]): Promise<void> {
    const data = changes.map((change) => {
      const entry: Json = { name: change.name };
      if (change.value !== undefined) entry.value = change.value;
      if (change.operation !== undefined) entry.operation = change.operation;
      return entry;
    });
    await this.send("POST", `${await this.topicPath(name)}/configs:alter`, { json: { data } });
  }

  // --- partitions -------------------------------------------------------------------------

  async listPartitions(topic: string): Promise<PartitionInfo[]> {
    const items = await this.list(`${await this.topicPath(topic)}/partitions`);
    return items.map(toPartitionInfo);
  }

  async getPartition(topic: string, partition: number): Promise<PartitionInfo> {
    return toPartitionInfo(await this.json("GET", await this.partitionPath(topic, partition)));
  }

  /** Per partition, the first offset whose timestamp is at or after `timestamp`. */
  async offsetsForTimestamp(
    topic: string,
    timestamp: number | Date | string,
  ): Promise<PartitionOffsetForTimestamp[]> {
    const value = timestamp instanceof Date ? timestamp.getTime() : timestamp;
    const body = await this.json("GET", `${await this.topicPath(topic)}/offsets`, {
      query: { timestamp: value },
    });
    return asArray(body.data).map((item) => ({
      partitionId: Number(item.partition_id),
      offset: item.offset === null || item.offset === undefined ? null : Number(item.offset),
    }));
  }

  // --- produce ----------------------------------------------------------------------------

  /** Produces one record; throws SluiceHttpError when it is refused. */
  async produce(topic: string, record: ProduceRecord, options: ProduceOptions = {}): Promise<DeliveryReport> {
    const body = await this.json("POST", `${await this.topicPath(topic)}/records`, {
      body: JSON.stringify(toWireRecord(record)),
      headers: { "content-type": "application/json", ...produceHeaders(options) },
      signal: options.signal,
    });
    const outcome = toOutcome(body);
    if (!outcome.ok) throw new SluiceHttpError(outcome.errorCode, outcome.errorCode, outcome.message);
    return outcome.report;
  }

  /**
   * Produces many records in one request (streaming mode: JSON objects one after another). Each
   * record gets its own outcome, in order; a record the server refuses does not stop the others.
   * An async iterable is streamed as the request body while it is produced. A failure of the
   * whole request (unknown topic, body too large, …) throws.
   */
  async produceMany(
    topic: string,
    records: Iterable<ProduceRecord> | AsyncIterable<ProduceRecord>,
    options: ProduceOptions = {},
  ): Promise<ProduceOutcome[]> {
    const path = `${await this.topicPath(topic)}/records`;
    const headers = { "content-type": "application/json", ...produceHeaders(options) };
    let body: string | ReadableStream<Uint8Array>;
    if (Symbol.asyncIterator in records) {
      const iterator = records[Symbol.asyncIterator]();
      const encoder = new TextEncoder();
      body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await iterator.next();
          if (next.done) controller.close();
          else controller.enqueue(encoder.encode(`${JSON.stringify(toWireRecord(next.value))}\n`));
        },
        async cancel() {
          await iterator.return?.();
        },
      });
    } else {
      const lines: string[] = [];
      for (const record of records) lines.push(JSON.stringify(toWireRecord(record)));
      body = lines.join("\n");
    }
    const response = await this.send("POST", path, { body, headers, signal: options.signal });
    const text = await response.text();
    return parseConcatenatedJson(text).map((item) => toOutcome(asObject(item)));
  }

  /**
   * Produces records as one batch (one write on the server). Entries the server refuses are
   * listed in `failures`; the valid ones are written.
   */
  async produceBatch(
    topic: string,
    entries: BatchEntry[],
    options: ProduceOptions = {},
  ): Promise<BatchResult> {
    const body = await this.json("POST", `${await this.topicPath(topic)}/records:batch`, {
      body: JSON.stringify({ entries: entries.map((entry) => ({ id: entry.id, ...toWireRecord(entry) })) }),
      headers: { "content-type": "application/json", ...produceHeaders(options) },
      signal: options.signal,
    });
    return {
      successes: asArray(body.successes).map((item) => ({ id: String(item.id), ...toReport(item) })),
      failures: asArray(body.failures).map((item) => ({
        id: String(item.id),
        errorCode: Number(item.error_code),
        message: String(item.message),
      })),
    };
  }

  /**
   * Produces Kafka RecordBatch v2 batches as they are (the binary route, `POST …/record-batches`),
   * one per partition in `partitions`, and answers where each was written. The batching
   * `Producer` (`client.producer()`) builds these for you.
   */
  async produceRecordBatches(
    topic: string,
    partitions: readonly number[],
    batches: Uint8Array,
    options: { idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<AppendedBatchReport[]> {
    const headers: Record<string, string> = {
      "content-type": RECORD_BATCH_MEDIA_TYPE,
      "sluice-partitions": partitions.join(","),
    };
    if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
    const body = await this.json("POST", `${await this.topicPath(topic)}/record-batches`, {
      body: batches,
      headers,
      signal: options.signal,
    });
    return asArray(body.batches).map((batch) => ({
      partitionId: Number(batch.partition_id),
      baseOffset: Number(batch.base_offset),
      recordCount: Number(batch.record_count),
      duplicate: batch.duplicate === true,
      ...(typeof batch.log_append_time === "string"
        ? { logAppendTime: toMillis(batch.log_append_time) }
        : {}),
    }));
  }

  /** A batching producer over the binary produce route (see Producer). */
  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this, options);
  }

  /** A new idempotent producer, or, given an id, the same producer with its epoch bumped (fencing older ones). */
  async initProducer(producerId?: number): Promise<ProducerIdentity> {
    const json = producerId === undefined ? {} : { producer_id: producerId };
    const body = await this.json("POST", `${await this.clusterPath()}/producers`, { json });
    return { producerId: Number(body.producer_id), producerEpoch: Number(body.producer_epoch) };
  }

  // --- consume ----------------------------------------------------------------------------

  /** Reads records of one partition from `offset`; with `timeoutMs`, waits for records to arrive. */
  async readPartition(topic: string, partition: number, options: ReadOptions = {}): Promise<ReadResult> {
    const body = await this.json("GET", `${await this.partitionPath(topic, partition)}/records`, {
      query: readQuery(options),
      signal: options.signal,
    });
    return toReadResult(body, partition);
  }

  /**
   * `readPartition` over the binary form of the read: the server sends the stored record batches
   * as they are and this client decodes them, which spares both sides the JSON. The result is the
   * same as `readPartition`'s. A page holding a compressed batch (which this client does not
   * decompress) is read again as JSON, from where that page starts; so is a server that answers
   * JSON.
   */
  async readPartitionBatches(
    topic: string,
    partition: number,
    options: ReadOptions = {},
  ): Promise<ReadResult> {
    const page = await this.fetchPartitionBatches(topic, partition, options);
    return page.decode(options.maxRecords ?? READ_MAX_RECORDS_DEFAULT);
  }

  /**
   * The binary read of `readPartitionBatches`, with its records not yet decoded: `decode()` checks
   * and decodes them when they are needed. A reader that keeps pages ahead of its loop (the group
   * consumer) holds bytes, not a million record objects, until it hands them out.
   */
  async fetchPartitionBatches(
    topic: string,
    partition: number,
    options: ReadOptions = {},
  ): Promise<BatchPage> {
    const path = `${await this.partitionPath(topic, partition)}/records`;
    const spec: RequestSpec = {
      query: readQuery({ ...options, keyType: undefined, valueType: undefined }),
      headers: { accept: RECORD_BATCH_MEDIA_TYPE },
      ...optional("signal", options.signal),
    };
    const answer = this.requestBytes
      ? answerOfBytes(await this.sendForBytes(path, spec))
      : answerOfResponse(await this.send("GET", path, spec));
    if (!(answer.header("content-type") ?? "").startsWith(RECORD_BATCH_MEDIA_TYPE)) {
      const result = toReadResult(asObject(await answer.json()), partition);
      return decodedPage(result);
    }
    const bytes = await answer.bytes();
    const header = answer.header;
    const offsets = {
      nextOffset: offsetHeader(header, "sluice-next-offset"),
      highWatermark: offsetHeader(header, "sluice-high-watermark"),
      logStartOffset: offsetHeader(header, "sluice-log-start-offset"),
    };
    const clusterId = await this.clusterId();
    const page = { topic, partition, clusterId, ...offsets };
    // Where the last decode stopped, so the next one from there skips what was walked.
    let resume: { offset: number; start: WalkStart } | undefined;
    return {
      ...offsets,
      empty: bytes.byteLength === 0,
      decode: async (maxRecords = Number.POSITIVE_INFINITY, fromOffset?: number) => {
        const start = resume && resume.offset === fromOffset ? resume.start : undefined;
        const decoded = await this.decodeBatchPage(bytes, page, options, maxRecords, fromOffset, start);
        const last = decoded.result.records[decoded.result.records.length - 1];
        resume = last && decoded.resume ? { offset: last.offset + 1, start: decoded.resume } : undefined;
        return decoded.result;
      },
    };
  }

  private async decodeBatchPage(
    bytes: Uint8Array,
    page: {
      topic: string;
      partition: number;
      clusterId: string;
      nextOffset: number;
      highWatermark: number;
      logStartOffset: number;
    },
    options: ReadOptions,
    maxRecords: number,
    fromOffset: number | undefined,
    start: WalkStart | undefined,
  ): Promise<{ result: ReadResult; resume: WalkStart | undefined }> {
    const { topic, partition, logStartOffset } = page;
    // The first batch holds the offset read from. For `earliest` or `latest` the server chose that
    // offset: a batch boundary at or after the log start, so the log start bounds what to skip.
    const explicitFrom = fromOffset ?? (typeof options.offset === "number" ? options.offset : undefined);
    const keyType = options.keyType ?? "JSON";
    const valueType = options.valueType ?? "JSON";
    const fields = new RangeDecoder(bytes);
    const records: ConsumedRecord[] = [];
    let from = explicitFrom;
    let visited: VisitedBatches;
    try {
      visited = visitRecordBatches(
        bytes,
        (offset, timestamp, keyStart, keyLength, valueStart, valueLength, headers) => {
          from ??= Math.max(logStartOffset, offset);
          if (offset < from) return true;
          records.push({
            topicName: topic,
            partitionId: partition,
            offset,
            timestamp,
            key: fields.data(keyStart, keyLength, keyType),
            value: fields.data(valueStart, valueLength, valueType),
            headers,
          });
          return records.length < maxRecords;
        },
        start,
      );
    } catch (error) {
      if (!(error instanceof RecordBatchFormatError)) throw error;
      // The server checks every CRC before it sends: damage happened on the way, so may not next time.
      throw new SluiceHttpError(502, 502, `unexpected response from server: ${error.message}`);
    }
    if (visited.compressed) {
      const offset = explicitFrom ?? Math.max(logStartOffset, visited.firstBaseOffset ?? logStartOffset);
      // Resumed at the compressed batch, the next decode goes straight to its JSON read.
      return {
        result: await this.readRangeAsJson(page, offset, options, maxRecords),
        resume: visited.resume,
      };
    }
    // The batches may run past max_records, which is exact here as in the JSON form.
    const last = records[records.length - 1];
    return {
      result: {
        clusterId: page.clusterId,
        topicName: topic,
        partitionId: partition,
        records,
        nextOffset: last && records.length >= maxRecords ? last.offset + 1 : page.nextOffset,
        highWatermark: page.highWatermark,
        logStartOffset,
      },
      resume: visited.resume,
    };
  }

  /**
   * The records of a binary page from `offset` to the page's end, read again as JSON (the page
   * holds a compressed batch). A JSON read may stop sooner (its own limits), so it reads on until
   * the page's end: whoever holds the page has already fetched on from there.
   */
  private async readRangeAsJson(
    page: PageOffsets,
    offset: number,
    options: ReadOptions,
    maxRecords: number,
  ): Promise<ReadResult> {
    const records: ConsumedRecord[] = [];
    let at = offset;
    let highWatermark = page.highWatermark;
    let logStartOffset = page.logStartOffset;
    while (at < page.nextOffset && records.length < maxRecords) {
      const left = maxRecords - records.length;
      const part = await this.readPartition(page.topic, page.partition, {
        ...options,
        offset: at,
        timeoutMs: 0,
        ...(Number.isFinite(left) ? { maxRecords: Math.min(left, READ_MAX_RECORDS_DEFAULT) } : {}),
      });
      for (const record of part.records) if (record.offset < page.nextOffset) records.push(record);
      ({ highWatermark, logStartOffset } = part);
      if (part.records.length === 0) break;
      at = part.nextOffset;
    }
    const last = records[records.length - 1];
    return {
      clusterId: page.clusterId,
      topicName: page.topic,
      partitionId: page.partition,
      records,
      nextOffset: last && records.length >= maxRecords ? last.offset + 1 : Math.max(page.nextOffset, offset),
      highWatermark,
      logStartOffset,
    };
  }

  /**
   * Tails one partition: yields records as they are committed, over server-sent events. When the
   * stream ends or fails it reconnects, resuming after the last record seen (Last-Event-ID), unless
   * `timeoutMs` was given or `reconnect` is false. Aborting `signal` (or breaking out of the loop)
   * ends the iteration without an error. If the server answers without an event stream, the tail
   * falls back to long-polling reads.
   */
  async *tailPartition(
    topic: string,
    partition: number,
    options: TailOptions = {},
  ): AsyncGenerator<ConsumedRecord> {
    const reconnect = options.reconnect ?? options.timeoutMs === undefined;
    const path = `${await this.partitionPath(topic, partition)}/records`;
    const internal = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, internal.signal]) : internal.signal;
    let retryDelayMs = options.retryDelayMs ?? 1_000;
    let lastEventId = options.lastEventId;
    let offset: OffsetSpec = options.offset ?? "latest";
    if (lastEventId !== undefined && /^\d+$/.test(lastEventId)) offset = Number(lastEventId) + 1;
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    try {
      if (options.transport === "poll") {
        const first =
          typeof offset === "number" ? offset : await this.resolveOffset(topic, partition, offset);
        yield* this.pollPartition(topic, partition, first, options, signal, deadline);
        return;
      }
      while (!signal.aborted) {
        try {
          const headers: Record<string, string> = { accept: "text/event-stream" };
          if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
          const response = await this.send("GET", path, {
            query: {
              ...readQuery({ offset, keyType: options.keyType, valueType: options.valueType }),
              // The server bounds one stream to 30 s; a longer window takes several streams.
              timeout_ms:
                deadline === undefined
                  ? undefined
                  : Math.min(STREAM_TIMEOUT_MAX_MS, Math.max(0, deadline - Date.now())),
            },
            headers,
            signal,
          });
          if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
            // No event stream: long-poll instead.
            const first = toReadResult(asObject(await response.json()), partition);
            yield* first.records;
            yield* this.pollPartition(topic, partition, first.nextOffset, options, signal, deadline);
            return;
          }
          if (!response.body) return;
          let received = 0;
          for await (const event of parseServerSentEvents(response.body)) {
            if (event.retry !== undefined) retryDelayMs = event.retry;
            if (event.event === "error") throw errorFromEvent(event.data);
            if (event.event !== "record" && event.event !== "message") continue;
            const record = toConsumedRecord(asObject(JSON.parse(event.data)), topic, partition);
            lastEventId = event.id ?? String(record.offset);
            offset = record.offset + 1;
            received++;
            yield record;
          }
          if (deadline !== undefined) {
            if (Date.now() >= deadline) return;
            continue; // the window is not over: open the next stream
          }
          if (!reconnect) return;
          // A stream that ended without a record: do not reconnect in a tight loop.
          if (received === 0) await delay(retryDelayMs, signal);
        } catch (error) {
          if (signal.aborted) return;
          if (!reconnect || (error instanceof SluiceHttpError && !error.retryable)) throw error;
          await delay(retryDelayMs, signal);
        }
      }
    } finally {
      internal.abort();
    }
  }

  private async resolveOffset(
    topic: string,
    partition: number,
    spec: "earliest" | "latest",
  ): Promise<number> {
    const info = await this.getPartition(topic, partition);
    return spec === "earliest" ? info.earliestOffset : info.latestOffset;
  }

  private async *pollPartition(
    topic: string,
    partition: number,
    from: number,
    options: TailOptions,
    signal: AbortSignal,
    deadline: number | undefined,
  ): AsyncGenerator<ConsumedRecord> {
    let offset = from;
    const reconnect = options.reconnect ?? options.timeoutMs === undefined;
    const pollTimeoutMs = Math.min(options.pollTimeoutMs ?? STREAM_TIMEOUT_MAX_MS, STREAM_TIMEOUT_MAX_MS);
    while (!signal.aborted) {
      const remaining =
        deadline === undefined ? pollTimeoutMs : Math.min(pollTimeoutMs, deadline - Date.now());
      if (remaining <= 0) return;
      try {
        const result = await this.readPartition(topic, partition, {
          offset,
          timeoutMs: remaining,
          ...(options.keyType ? { keyType: options.keyType } : {}),
          ...(options.valueType ? { valueType: options.valueType } : {}),
          signal,
        });
        yield* result.records;
        offset = result.nextOffset;
      } catch (error) {
        if (signal.aborted) return;
        if (!reconnect || (error instanceof SluiceHttpError && !error.retryable)) throw error;
        await delay(options.retryDelayMs ?? 1_000, signal);
      }
    }
  }

  // --- consumer groups --------------------------------------------------------------------

  /**
   * A member of consumer group `groupId` reading `topics`: `for await (const batch of consumer)`
   * yields batches of the partitions the group gives it. See GroupConsumer.
   */
  groupConsumer(options: GroupConsumerOptions): GroupConsumer {
    return new GroupConsumer(this, options);
  }

  async listGroups(): Promise<ConsumerGroupInfo[]> {
    const items = await this.list(`${await this.clusterPath()}/consumer-groups`);
    return items.map(toGroupInfo);
  }

  async describeGroup(groupId: string): Promise<ConsumerGroupInfo> {
    return toGroupInfo(await this.json("GET", await this.groupPath(groupId)));
  }

  async listGroupMembers(groupId: string): Promise<ConsumerGroupMember[]> {
    const items = await this.list(`${await this.groupPath(groupId)}/consumers`);
    return items.map(toGroupMember);
  }

  /** Lag per partition: committed offset, log end, lag and the owning member. */
  async getGroupLags(groupId: string): Promise<ConsumerGroupLag[]> {
    const items = await this.list(`${await this.groupPath(groupId)}/lags`);
    return items.map((item) => ({
      ...toTopicPartition(item),
      currentOffset: numberOrNull(item.current_offset),
      logEndOffset: Number(item.log_end_offset),
      lag: Number(item.lag),
      consumerId: stringOrNull(item.consumer_id),
    }));
  }

  async getGroupLagSummary(groupId: string): Promise<ConsumerGroupLagSummary> {
    const body = await this.json("GET", `${await this.groupPath(groupId)}/lag-summary`);
    return {
      maxLag: Number(body.max_lag ?? 0),
      totalLag: Number(body.total_lag ?? 0),
      maxLagTopicName: stringOrNull(body.max_lag_topic_name),
      maxLagPartitionId: numberOrNull(body.max_lag_partition_id),
      maxLagConsumerId: stringOrNull(body.max_lag_consumer_id),
    };
  }

  /** Deletes an empty group and its committed offsets (409 NON_EMPTY_GROUP while it has members). */
  async deleteGroup(groupId: string): Promise<void> {
    await this.send("DELETE", await this.groupPath(groupId));
  }

  /**
   * Moves the committed offsets of an empty group, as `kafka-consumer-groups --reset-offsets`
   * does. A dry run (the default) only returns the plan.
   */
  async resetGroupOffsets(
    groupId: string,
    target: OffsetResetTarget,
    options: OffsetResetOptions = {},
  ): Promise<OffsetResetResult> {
    const json: Json = { to: target.to, dry_run: options.dryRun ?? true };
    if (target.to === "offset") json.offset = target.offset;
    if (target.to === "shift-by") json.shift_by = target.shiftBy;
    if (target.to === "datetime") json.datetime = new Date(target.datetime).toISOString();
    if (options.topics !== undefined) json.topic_names = options.topics;
    const body = await this.json("POST", `${await this.groupPath(groupId)}/offsets:reset`, { json });
    return {
      dryRun: body.dry_run !== false,
      data: asArray(body.data).map((item) => ({
        ...toTopicPartition(item),
        previousOffset: numberOrNull(item.previous_offset),
        newOffset: Number(item.new_offset),
      })),
    };
  }

  /** The group's committed offsets. */
  async getGroupOffsets(groupId: string): Promise<CommittedGroupOffset[]> {
    const items = await this.list(`${await this.groupPath(groupId)}/offsets`);
    return items.map((item) => ({
      ...toTopicPartition(item),
      offset: Number(item.offset),
      metadata: stringOrNull(item.metadata),
      committedAt:
        item.committed_at === undefined || item.committed_at === null ? null : toMillis(item.committed_at),
    }));
  }

  /**
   * Commits offsets as member `memberId`, which must own each partition (else 409
   * FENCED_MEMBER_EPOCH, and nothing is committed). The group consumer calls this for you.
   */
  async commitGroupOffsets(groupId: string, memberId: string, offsets: OffsetToCommit[]): Promise<void> {
    const json = {
      member_id: memberId,
      offsets: offsets.map((offset) => ({
        topic_name: offset.topicName,
        partition_id: offset.partitionId,
        offset: offset.offset,
        ...(offset.metadata === undefined ? {} : { metadata: offset.metadata }),
      })),
    };
    await this.send("POST", `${await this.groupPath(groupId)}/offsets`, { json });
  }

  /** One heartbeat of the client-side group protocol; the group consumer sends these for you. */
  async groupHeartbeat(groupId: string, request: GroupHeartbeatRequest): Promise<GroupHeartbeatResponse> {
    const json: Json = { member_id: request.memberId, member_epoch: request.memberEpoch };
    if (request.subscribedTopicNames !== undefined)
      json.subscribed_topic_names = request.subscribedTopicNames;
    if (request.ownedPartitions !== undefined) json.owned_partitions = request.ownedPartitions.map(toWireTp);
    if (request.instanceId !== undefined) json.instance_id = request.instanceId;
    if (request.clientId !== undefined) json.client_id = request.clientId;
    if (request.sessionTimeoutMs !== undefined) json.session_timeout_ms = request.sessionTimeoutMs;
    if (request.assignor !== undefined) json.assignor = request.assignor;
    const body = await this.json("POST", `${await this.groupPath(groupId)}/heartbeat`, { json });
    return {
      memberId: String(body.member_id),
      memberEpoch: Number(body.member_epoch),
      groupEpoch: Number(body.group_epoch),
      heartbeatIntervalMs: Number(body.heartbeat_interval_ms),
      sessionRemainingMs: Number(body.session_remaining_ms ?? 0),
      assignment: asArray(body.assignment).map(toTopicPartition),
      revoking: asArray(body.revoking).map(toTopicPartition),
      pending: asArray(body.pending).map(toTopicPartition),
    };
  }

  // --- share groups (queues) -------------------------------------------------------------

  /**
   * A member of a share group that iterates records, each handed to it alone under a lock (see
   * QueueConsumer): `for await (const record of client.queueConsumer({ groupId, topics }))`.
   */
  queueConsumer(options: QueueConsumerOptions): QueueConsumer {
    return new QueueConsumer(this, options);
  }

  /** Joins a share group (creating it, with `configs`, when it does not exist). The queue consumer calls this for you. */
  async joinShareGroup(groupId: string, request: ShareGroupJoinRequest): Promise<ShareGroupJoinResponse> {
    const json: Json = { member_id: request.memberId, topic_names: request.topics };
    if (request.configs) json.configs = shareConfigsToWire(request.configs);
    if (request.sessionTimeoutMs !== undefined) json.session_timeout_ms = request.sessionTimeoutMs;
    if (request.clientId !== undefined) json.client_id = request.clientId;
    const body = await this.json("POST", `${await this.shareGroupPath(groupId)}/members`, { json });
    return {
      memberId: String(body.member_id),
      topics: asStrings(body.topic_names),
      sessionTimeoutMs: Number(body.session_timeout_ms),
      sessionRemainingMs: Number(body.session_remaining_ms),
      groupCreated: body.group_created === true,
      configs: configMap(body.configs),
    };
  }

  /** Keeps a share-group member's session alive. */
  async shareGroupHeartbeat(groupId: string, memberId: string): Promise<{ sessionRemainingMs: number }> {
    const body = await this.json("POST", `${await this.shareMemberPath(groupId, memberId)}/heartbeat`);
    return { sessionRemainingMs: Number(body.session_remaining_ms) };
  }

  /** Leaves a share group: the member's records are released at once. */
  async leaveShareGroup(groupId: string, memberId: string): Promise<void> {
    await this.send("DELETE", await this.shareMemberPath(groupId, memberId));
  }

  /** Acquires records as a share-group member (after applying `acknowledgements`, when given). */
  async acquireRecords(
    groupId: string,
    memberId: string,
    options: AcquireOptions = {},
  ): Promise<AcquireResponse> {
    const json: Json = {};
    if (options.maxRecords !== undefined) json.max_records = options.maxRecords;
    if (options.maxBytes !== undefined) json.max_bytes = options.maxBytes;
    if (options.timeoutMs !== undefined) json.timeout_ms = options.timeoutMs;
    if (options.keyType !== undefined) json.key_type = options.keyType;
    if (options.valueType !== undefined) json.value_type = options.valueType;
    if (options.acknowledgements && options.acknowledgements.length > 0)
      json.acknowledgements = acknowledgementsToWire(options.acknowledgements);
    const body = await this.json("POST", `${await this.shareMemberPath(groupId, memberId)}/records:acquire`, {
      json,
      signal: options.signal,
    });
    return {
      records: asArray(body.records).map((record) => ({
        ...toConsumedRecord(record, String(record.topic_name), Number(record.partition_id)),
        deliveryCount: Number(record.delivery_count),
        lockRemainingMs: Number(record.lock_remaining_ms),
      })),
      sessionRemainingMs: Number(body.session_remaining_ms),
      acknowledgements: asArray(body.acknowledgements).map(toAcknowledgementResult),
    };
  }

  /** Acknowledges records as a share-group member; one result per offset, in order. */
  async acknowledgeRecords(
    groupId: string,
    memberId: string,
    acknowledgements: RecordAcknowledgement[],
  ): Promise<AcknowledgementResult[]> {
    const body = await this.json(
      "POST",
      `${await this.shareMemberPath(groupId, memberId)}/records:acknowledge`,
      {
        json: { acknowledgements: acknowledgementsToWire(acknowledgements) },
      },
    );
    return asArray(body.data).map(toAcknowledgementResult);
  }

  async listShareGroups(): Promise<ShareGroupInfo[]> {
    const items = await this.list(`${await this.clusterPath()}/share-groups`);
    return items.map(toShareGroupInfo);
  }

  async describeShareGroup(groupId: string): Promise<ShareGroupInfo> {
    return toShareGroupInfo(await this.json("GET", await this.shareGroupPath(groupId)));
  }

  async listShareGroupMembers(groupId: string): Promise<ShareGroupMember[]> {
    const items = await this.list(`${await this.shareGroupPath(groupId)}/members`);
    return items.map((item) => ({
      memberId: String(item.member_id),
      clientId: stringOrNull(item.client_id),
      topicNames: asStrings(item.topic_names),
      acquiredRecords: Number(item.acquired_records ?? 0),
    }));
  }

  /** Each share-partition's window: start and end offsets, records by state, lag. */
  async getSharePartitions(groupId: string): Promise<SharePartitionInfo[]> {
    const items = await this.list(`${await this.shareGroupPath(groupId)}/partitions`);
    return items.map((item) => ({
      ...toTopicPartition(item),
      initialized: item.initialized === true,
      startOffset: Number(item.start_offset),
      endOffset: Number(item.end_offset),
      highWatermark: Number(item.high_watermark),
      acquiredRecords: Number(item.acquired_records),
      availableRecords: Number(item.available_records),
      acknowledgedRecords: Number(item.acknowledged_records),
      archivedRecords: Number(item.archived_records),
      deadLettersDue: Number(item.dead_letters_due),
      lag: Number(item.lag),
    }));
  }

  /** Moves the start offset of an empty share group; a dry run (the default) only returns the plan. */
  async resetShareGroupStartOffsets(
    groupId: string,
    target: StartOffsetResetTarget,
    options: { dryRun?: boolean; topics?: string[] } = {},
  ): Promise<StartOffsetResetResult> {
    const json: Json = { to: target.to, dry_run: options.dryRun ?? true };
    if (target.to === "offset") json.offset = target.offset;
    if (target.to === "datetime") json.datetime = new Date(target.datetime).toISOString();
    if (options.topics !== undefined) json.topic_names = options.topics;
    const body = await this.json("POST", `${await this.shareGroupPath(groupId)}/start-offsets:reset`, {
      json,
    });
    return {
      dryRun: body.dry_run !== false,
      data: asArray(body.data).map((item) => ({
        ...toTopicPartition(item),
        previousStartOffset: numberOrNull(item.previous_start_offset),
        newStartOffset: Number(item.new_start_offset),
      })),
    };
  }

  private async shareGroupPath(groupId: string): Promise<string> {
    return `${await this.clusterPath()}/share-groups/${enc(groupId)}`;
  }

  private async shareMemberPath(groupId: string, memberId: string): Promise<string> {
    return `${await this.shareGroupPath(groupId)}/members/${enc(memberId)}`;
  }

  // --- processors (docs/processors.md) ---------------------------------------------------------

  /** Creates a processor; a definition the server refuses is a 400 naming the field. */
  async createProcessor(definition: ProcessorDefinition): Promise<ProcessorInfo> {
    return toProcessorInfo(
      await this.json("POST", `${await this.clusterPath()}/processors`, { json: definition }),
    );
  }

  async listProcessors(): Promise<ProcessorInfo[]> {
    return (await this.list(`${await this.clusterPath()}/processors`)).map(toProcessorInfo);
  }

  /** The processor with each partition's checkpoint, lag, blocked keys and last error. */
  async describeProcessor(name: string): Promise<ProcessorDetails> {
    return toProcessorDetails(await this.json("GET", await this.processorPath(name)));
  }

  /** Its runners finish the batches in flight, commit them and stop. */
  async pauseProcessor(name: string): Promise<ProcessorInfo> {
    return toProcessorInfo(await this.json("POST", `${await this.processorPath(name)}/pause`));
  }

  async resumeProcessor(name: string): Promise<ProcessorInfo> {
    return toProcessorInfo(await this.json("POST", `${await this.processorPath(name)}/resume`));
  }

  /** Moves a paused processor's checkpoints (409 while it runs or a runner still holds a partition). */
  async resetProcessor(name: string, target: ProcessorResetTarget): Promise<ProcessorDetails> {
    const json: Json = { to: target.to };
    if (target.to === "datetime") json.datetime = new Date(target.datetime).toISOString();
    if (target.to === "offsets") {
      json.offsets = target.offsets.map((entry) => ({
        topic_name: entry.topicName,
        partition_id: entry.partitionId,
        offset: entry.offset,
      }));
    }
    return toProcessorDetails(await this.json("POST", `${await this.processorPath(name)}/reset`, { json }));
  }

  async deleteProcessor(name: string): Promise<void> {
    await this.send("DELETE", await this.processorPath(name));
  }

  // --- plumbing ---------------------------------------------------------------------------

  private async processorPath(name: string): Promise<string> {
    return `${await this.clusterPath()}/processors/${enc(name)}`;
  }

  private async groupPath(groupId: string): Promise<string> {
    return `${await this.clusterPath()}/consumer-groups/${enc(groupId)}`;
  }

  private async clusterPath(): Promise<string> {
    return `/v3/clusters/${enc(await this.clusterId())}`;
  }

  private async topicPath(topic: string): Promise<string> {
    return `${await this.clusterPath()}/topics/${enc(topic)}`;
  }

  private async partitionPath(topic: string, partition: number): Promise<string> {
    return `${await this.topicPath(topic)}/partitions/${partition}`;
  }

  /** A list resource's `data`, following `metadata.next` links. */
  private async list(path: string): Promise<Json[]> {
    const items: Json[] = [];
    let next: string | undefined = path;
    for (let pages = 0; next !== undefined && pages < 1_000; pages++) {
      const body: Json = await this.json("GET", next);
      items.push(...asArray(body.data));
      const link = asObjectOrUndefined(body.metadata)?.next;
      next = typeof link === "string" && link !== "" ? link : undefined;
    }
    return items;
  }

  private async json(method: string, path: string, spec: RequestSpec = {}): Promise<Json> {
    if (this.requestBytes && !(spec.body instanceof ReadableStream)) {
      const answer = await this.sendForBytes(path, spec, method);
      return asObject(parseJsonAnswer(answer.bytes));
    }
    const response = await this.send(method, path, spec);
    return asObject(await response.json());
  }

  /** A request over the Node transport, with `send`'s headers, query, body and errors. */
  private async sendForBytes(path: string, spec: RequestSpec, method = "GET"): Promise<BytesResponse> {
    let response: BytesResponse;
    const headers = this.headersOf(spec);
    let body: string | Uint8Array | undefined;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers["content-type"] = "application/json";
    } else if (spec.body !== undefined && !(spec.body instanceof ReadableStream)) {
      body = spec.body;
    }
    try {
      response = await (this.requestBytes as RequestBytes)(
        method,
        this.urlOf(path, spec),
        headers,
        body,
        spec.signal,
      );
    } catch (error) {
      if (spec.signal?.aborted) throw error;
      throw new SluiceConnectionError(this.url, error);
    }
    if (response.status < 200 || response.status > 299) {
      const retryAfter = response.header("retry-after");
      throw await errorFromResponse(
        new Response(response.bytes, {
          status: response.status,
          headers: retryAfter === undefined ? {} : { "retry-after": retryAfter },
        }),
      );
    }
    return response;
  }

  /**
   * The request's URL: `path` under the client's URL (or a whole URL), with the spec's query.
   * Paths without a query are parsed once (a producer asks for the same one over and over); the
   * URLs remembered are never changed, as nothing the transports do changes a URL.
   */
  private urlOf(path: string, spec: RequestSpec): URL {
    const query = spec.query;
    if (query === undefined) {
      const known = this.parsedUrls.get(path);
      if (known) return known;
    }
    const url = new URL(path.startsWith("http") ? path : `${this.url}${path}`);
    if (query === undefined) {
      if (this.parsedUrls.size >= PARSED_URLS_MAX) this.parsedUrls.clear();
      this.parsedUrls.set(path, url);
      return url;
    }
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    return url;
  }

  /** `urlOf`'s query-less URLs by path, at most `PARSED_URLS_MAX`. */
  private readonly parsedUrls = new Map<string, URL>();

  private headersOf(spec: RequestSpec): Record<string, string> {
    return { accept: "application/json", ...this.headers, ...spec.headers };
  }

  /** Sends a request; answers other than 2xx are thrown as SluiceHttpError. */
  private async send(method: string, path: string, spec: RequestSpec = {}): Promise<Response> {
    const url = this.urlOf(path, spec);
    const headers = this.headersOf(spec);
    const init: RequestInit & { duplex?: "half" } = { method, headers };
    if (spec.json !== undefined) {
      init.body = JSON.stringify(spec.json);
      headers["content-type"] = "application/json";
    } else if (spec.body !== undefined) {
      init.body = spec.body as RequestInit["body"];
      if (spec.body instanceof ReadableStream) init.duplex = "half";
    }
    if (spec.signal) init.signal = spec.signal;
    let response: Response;
    try {
      response = await this.fetchFn(url.toString(), init);
    } catch (error) {
      if (spec.signal?.aborted) throw error;
      throw new SluiceConnectionError(this.url, error);
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }
}

// --- wire mapping -------------------------------------------------------------------------

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function asObject(value: unknown): Json {
  if (value && typeof value === "object" && !Array.isArray(value)) return value as Json;
  throw new SluiceHttpError(
    502,
    502,
    `unexpected response from server: ${JSON.stringify(value)?.slice(0, 200)}`,
  );
}

function asObjectOrUndefined(value: unknown): Json | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Json) : undefined;
}

function asArray(value: unknown): Json[] {
  return Array.isArray(value) ? value.map(asObject) : [];
}

function toTopicInfo(body: Json): TopicInfo {
  const storage = body.storage;
  return {
    clusterId: String(body.cluster_id),
    topicName: String(body.topic_name),
    isInternal: body.is_internal === true,
    replicationFactor: Number(body.replication_factor ?? 0),
    partitionsCount: Number(body.partitions_count),
    ...(storage && typeof storage === "object" && !Array.isArray(storage)
      ? { storage: toTopicStorage(storage as Json) }
      : {}),
    ...optional("activity", toTopicActivity(body.activity)),
  };
}

function toTopicStorage(body: Json): TopicStorage {
  const count = (value: unknown) => (typeof value === "number" ? value : null);
  const time = (value: unknown) => (typeof value === "string" ? Date.parse(value) : null);
  const partitions = Array.isArray(body.partitions) ? (body.partitions as Json[]) : [];
  return {
    sizeBytes: count(body.size_bytes),
    objectCount: count(body.object_count),
    objectBytes: count(body.object_bytes),
    maintenanceLastRunAt: time(body.maintenance_last_run_at),
    garbageCollectedAt: time(body.garbage_collected_at),
    partitions: partitions.map((partition) => {
      const runs = (partition.maintenance_last_run_at ?? {}) as Json;
      return {
        partitionId: Number(partition.partition_id),
        logStartOffset: Number(partition.log_start_offset),
        highWatermark: Number(partition.high_watermark),
        sizeBytes: count(partition.size_bytes),
        indexEntries: count(partition.index_entries),
        records: count(partition.records),
        maintenanceLastRunAt: {
          retention: time(runs.retention),
          compaction: time(runs.compaction),
          timeIndex: time(runs.time_index),
        },
      };
    }),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [key in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [key in K]?: V };
}

function toTopicConfig(body: Json): TopicConfig {
  return {
    name: String(body.name),
    value: body.value === null || body.value === undefined ? null : String(body.value),
    isDefault: body.is_default === true,
    isReadOnly: body.is_read_only === true,
    isSensitive: body.is_sensitive === true,
    source: String(body.source ?? ""),
  };
}

function toPartitionInfo(body: Json): PartitionInfo {
  return {
    clusterId: String(body.cluster_id),
    topicName: String(body.topic_name),
    partitionId: Number(body.partition_id),
    earliestOffset: Number(body.earliest_offset ?? 0),
    latestOffset: Number(body.latest_offset ?? 0),
    ...optional("activity", toPartitionActivity(body.activity)),
  };
}

function toTopicPartition(body: Json): TopicPartition {
  return { topicName: String(body.topic_name), partitionId: Number(body.partition_id) };
}

function toWireTp(tp: TopicPartition): Json {
  return { topic_name: tp.topicName, partition_id: tp.partitionId };
}

function toProcessorInfo(body: Json): ProcessorInfo {
  return {
    name: String(body.processor_name),
    uid: String(body.uid),
    state: body.state === "PAUSED" ? "PAUSED" : "RUNNING",
    definition: asObject(body.definition) as unknown as ProcessorDefinition,
    createdAt: toMillis(body.created_at),
    updatedAt: toMillis(body.updated_at),
  };
}

function toProcessorDetails(body: Json): ProcessorDetails {
  return {
    ...toProcessorInfo(body),
    lag: Number(body.lag),
    partitions: asArray(body.partitions).map(
      (item): ProcessorPartition => ({
        topicName: String(item.topic_name),
        partitionId: Number(item.partition_id),
        checkpoint: numberOrNull(item.checkpoint),
        highWatermark: Number(item.high_watermark),
        lag: Number(item.lag),
        pending: Number(item.pending),
        blockedKeys: asArray(item.blocked_keys).map((blocked) => ({
          offset: Number(blocked.offset),
          attempts: Number(blocked.attempts),
          firstFailedAt: toMillis(blocked.first_failed_at),
          nextAttemptAt: toMillis(blocked.next_attempt_at),
          error: String(blocked.error),
        })),
        lastError: lastErrorOf(item.last_error),
        owner: stringOrNull(item.owner),
        processed: Number(item.processed),
        deadLettered: Number(item.dead_lettered),
        filtered: Number(item.filtered),
      }),
    ),
    ...(body.shared ? { shared: toProcessorShared(asObject(body.shared)) } : {}),
  };
}

function toProcessorShared(shared: Json): NonNullable<ProcessorDetails["shared"]> {
  return {
    shareGroupId: String(shared.share_group_id),
    members: Number(shared.members),
    partitions: asArray(shared.partitions).map((item) => ({
      topicName: String(item.topic_name),
      partitionId: Number(item.partition_id),
      startOffset: Number(item.start_offset),
      endOffset: Number(item.end_offset),
      highWatermark: Number(item.high_watermark),
      inFlight: Number(item.in_flight),
      available: Number(item.available),
      lag: Number(item.lag),
    })),
  };
}

function lastErrorOf(value: unknown): ProcessorPartition["lastError"] {
  if (value === null || value === undefined) return null;
  const error = asObject(value);
  return { message: String(error.message), offset: Number(error.offset), at: toMillis(error.at) };
}

function toGroupInfo(body: Json): ConsumerGroupInfo {
  return {
    groupId: String(body.consumer_group_id),
    state: String(body.state ?? ""),
    partitionAssignor: String(body.partition_assignor ?? ""),
    groupEpoch: numberOrNull(body.group_epoch),
  };
}

function toGroupMember(body: Json): ConsumerGroupMember {
  return {
    consumerId: String(body.consumer_id),
    instanceId: stringOrNull(body.instance_id),
    clientId: stringOrNull(body.client_id),
    assignments: asArray(body.assigned_partitions).map(toTopicPartition),
  };
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined || value === "" ? null : Number(value);
}

function stringOrNull(value: unknown): string | null {
  return value === null || value === undefined || value === "" ? null : String(value);
}

function toWireRecord(record: ProduceRecord): Json {
  const wire: Json = {};
  if (record.partitionId !== undefined) wire.partition_id = record.partitionId;
  if (record.headers !== undefined) wire.headers = toWireHeaders(record.headers);
  if (record.key !== undefined) wire.key = record.key === null ? null : toData(record.key);
  if (record.value !== undefined) wire.value = record.value === null ? null : toData(record.value);
  if (record.timestamp !== undefined) {
    wire.timestamp = record.timestamp instanceof Date ? record.timestamp.getTime() : record.timestamp;
  }
  return wire;
}

function produceHeaders(options: ProduceOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
  if (options.producer) {
    headers["sluice-producer-id"] = String(options.producer.producerId);
    headers["sluice-producer-epoch"] = String(options.producer.producerEpoch);
    headers["sluice-producer-sequence"] = String(options.producer.sequence);
  }
  return headers;
}

function toOutcome(body: Json): ProduceOutcome {
  const errorCode = body.error_code === undefined ? 200 : Number(body.error_code);
  if (errorCode >= 200 && errorCode < 300 && body.offset !== undefined)
    return { ok: true, report: toReport(body) };
  return { ok: false, errorCode, message: String(body.message ?? "record refused") };
}

function toReport(body: Json): DeliveryReport {
  return {
    clusterId: String(body.cluster_id),
    topicName: String(body.topic_name),
    partitionId: Number(body.partition_id),
    offset: Number(body.offset),
    timestamp: toMillis(body.timestamp),
    key: toSize(body.key),
    value: toSize(body.value),
  };
}

function toSize(value: unknown): { type: DataType; size: number } | null {
  const object = asObjectOrUndefined(value);
  return object ? { type: object.type as DataType, size: Number(object.size) } : null;
}

function toMillis(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    // The reports of one request mostly share their timestamp: parse it once.
    if (value !== lastTimestampText) {
      const parsed = Date.parse(value);
      lastTimestampText = value;
      lastTimestampMillis = Number.isNaN(parsed) ? Number(value) : parsed;
    }
    return lastTimestampMillis;
  }
  return Number.NaN;
}

let lastTimestampText: string | undefined;
let lastTimestampMillis = Number.NaN;

function readQuery(
  options: Pick<ReadOptions, "offset" | "maxBytes" | "maxRecords" | "timeoutMs" | "keyType" | "valueType">,
) {
  return {
    offset: options.offset,
    max_bytes: options.maxBytes,
    max_records: options.maxRecords,
    timeout_ms: options.timeoutMs,
    key_type: options.keyType,
    value_type: options.valueType,
  };
}

/** A read's answer, from either transport. */
interface ReadAnswer {
  header(name: string): string | undefined;
  json(): Promise<unknown>;
  bytes(): Promise<Uint8Array>;
}

function answerOfResponse(response: Response): ReadAnswer {
  return {
    header: (name) => response.headers.get(name) ?? undefined,
    json: () => response.json(),
    bytes: async () => new Uint8Array(await response.arrayBuffer()),
  };
}

const utf8Text = new TextDecoder();

function answerOfBytes(response: BytesResponse): ReadAnswer {
  return {
    header: (name) => response.header(name),
    json: async () => JSON.parse(utf8Text.decode(response.bytes)) as unknown,
    bytes: async () => response.bytes,
  };
}

function offsetHeader(header: (name: string) => string | undefined, name: string): number {
  const value = Number(header(name) ?? Number.NaN);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SluiceHttpError(
      502,
      502,
      `unexpected response from server: header ${name} is missing or not an offset`,
    );
  }
  return value;
}

function toReadResult(body: Json, partition: number): ReadResult {
  const topicName = String(body.topic_name);
  const partitionId = body.partition_id === undefined ? partition : Number(body.partition_id);
  return {
    clusterId: String(body.cluster_id),
    topicName,
    partitionId,
    records: asArray(body.records).map((record) => toConsumedRecord(record, topicName, partitionId)),
    nextOffset: Number(body.next_offset),
    highWatermark: Number(body.high_watermark),
    logStartOffset: Number(body.log_start_offset ?? 0),
  };
}

function toConsumedRecord(body: Json, topicName: string, partition: number): ConsumedRecord {
  return {
    topicName: typeof body.topic_name === "string" ? body.topic_name : topicName,
    partitionId: body.partition_id === undefined ? partition : Number(body.partition_id),
    offset: Number(body.offset),
    timestamp: body.timestamp_ms === undefined ? toMillis(body.timestamp) : Number(body.timestamp_ms),
    key: toDataOrNull(body.key),
    value: toDataOrNull(body.value),
    headers: asArray(body.headers).map((header) => ({
      name: String(header.name),
      value: typeof header.value === "string" ? fromBase64(header.value) : null,
    })),
  };
}

function toDataOrNull(value: unknown): Data | null {
  const object = asObjectOrUndefined(value);
  return object ? (object as unknown as Data) : null;
}

function errorFromEvent(data: string): SluiceHttpError {
  try {
    const body = asObject(JSON.parse(data));
    const status = Number(body.error_code ?? 500);
    return new SluiceHttpError(
      status,
      status,
      String(body.message ?? data),
      typeof body.code === "string" ? { code: body.code } : {},
    );
  } catch {
    return new SluiceHttpError(500, 500, data);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function configMap(value: unknown): Record<string, string> {
  return Object.fromEntries(asArray(value).map((entry) => [String(entry.name), String(entry.value ?? "")]));
}

function shareConfigsToWire(configs: ShareGroupConfigs): Json[] {
  const entries: Json[] = [];
  if (configs.deliveryCountLimit !== undefined)
    entries.push({ name: "delivery.count.limit", value: String(configs.deliveryCountLimit) });
  if (configs.lockDurationMs !== undefined)
    entries.push({ name: "record.lock.duration.ms", value: String(configs.lockDurationMs) });
  if (configs.autoOffsetReset !== undefined)
    entries.push({ name: "auto.offset.reset", value: configs.autoOffsetReset });
  if (configs.deadLetterTopic !== undefined)
    entries.push({ name: "dead.letter.topic.name", value: configs.deadLetterTopic });
  return entries;
}

/** Groups acknowledgements into the wire's entries: one per topic, partition and type. */
function acknowledgementsToWire(acknowledgements: RecordAcknowledgement[]): Json[] {
  const entries = new Map<string, Json>();
  for (const ack of acknowledgements) {
    const key = `${ack.topicName}\u0000${ack.partitionId}\u0000${ack.type}`;
    let entry = entries.get(key);
    if (!entry) {
      entry = { topic_name: ack.topicName, partition_id: ack.partitionId, offsets: [], type: ack.type };
      entries.set(key, entry);
    }
    (entry.offsets as number[]).push(ack.offset);
  }
  return [...entries.values()];
}

function toAcknowledgementResult(item: Json): AcknowledgementResult {
  return {
    ...toTopicPartition(item),
    offset: Number(item.offset),
    type: String(item.type) as AcknowledgeType,
    acknowledged: item.acknowledged === true,
    code: stringOrNull(item.code),
    message: stringOrNull(item.message),
    lockRemainingMs: numberOrNull(item.lock_remaining_ms),
  };
}

function toShareGroupInfo(body: Json): ShareGroupInfo {
  return {
    groupId: String(body.share_group_id),
    state: String(body.state ?? ""),
    memberCount: Number(body.member_count ?? 0),
    topicNames: asStrings(body.topic_names),
    configs: configMap(body.configs),
  };
}

const utf8Decoder = new TextDecoder();

/** How many query-less request URLs a client keeps parsed; when full it starts again. */
const PARSED_URLS_MAX = 256;

/** A JSON answer's bytes, parsed; an answer that is not JSON is the server's fault (502), as one of the wrong shape is. */
function parseJsonAnswer(bytes: Uint8Array): unknown {
  const text = utf8Decoder.decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new SluiceHttpError(502, 502, `unexpected response from server: ${text.slice(0, 200)}`);
  }
}
