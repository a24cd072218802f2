/**
 * Model-based scenario suite for the engine, written once and bound to each storage backend
 * (memory, SQLite + filesystem, DynamoDB + S3). fast-check generates concurrent clients — each
 * with its own Engine instance, as separate Lambdas would have — that append to shared stores
 * injecting lost requests and lost answers, retry with idempotency keys or producer sequences,
 * send duplicates, and fetch while others write. Afterwards the log is read back and checked
 * against what was acknowledged: the invariants of ARCHITECTURE.md.
 *
 * A second property runs the same with parallel commit (ARCHITECTURE.md, "Parallel commit") on a
 * simulated clock: uploads also fail after the commit or arrive late, a reader waiting on an
 * upload moves time on, and every offset a reader passed over without a record must be a gap in
 * the final log.
 */
import { isSluiceError, partitionForKey } from "@sluice/core";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import {
  type Chooser,
  FaultyMetadataStore,
  FaultyObjectStore,
  SimulatedClock,
  SimulatedCrashError,
  seededChooser,
  withPut,
} from "@sluice/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AppendRequest, AppendResult } from "./append/append-types.js";
import { UploadTooLateError } from "./append/appender.js";
import { Engine, INLINE_MAX_BYTES_LIMIT } from "./engine.js";
import { storedIndexEntries } from "./fetch/index-entries.js";
import { PENDING_UPLOAD_MS } from "./fetch/missing-objects.js";
import type { ConsumedRecord } from "./fetch/reader.js";

export interface EngineBackend {
  objects: ObjectStore;
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

export interface EngineScenarioOptions {
  name: string;
  create: () => Promise<EngineBackend>;
  /** fast-check runs per property: many in memory, few against a network emulator. */
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. Default 20 s. */
  runTimeoutMs?: number;
}

interface RecordSpec {
  key: string | null;
  partition: number | null;
}

interface CommandSpec {
  records: RecordSpec[];
  withKey: boolean;
  sendTwice: boolean;
}

interface ClientSpec {
  producer: boolean;
  commands: CommandSpec[];
}

interface Scenario {
  partitions: number;
  clients: ClientSpec[];
  failBefore: number;
  loseAnswer: number;
  crashAfter: number;
  /** Parallel commit only: the share of uploads held back for a while (they may arrive too late). */
  holdUpload: number;
  /**
   * Appends whose object is at most this many bytes are carried in the index (0: none; 200: some,
   * by size; the limit: all), so runs mix carried entries and uploaded ones.
   */
  inlineMaxBytes: number;
  seed: number;
}

/** A read while the writers ran: the offsets it covered, and the records it returned among them. */
interface ObservedFetch {
  partition: number;
  from: number;
  next: number;
  records: ConsumedRecord[];
}

/** A partition's final log: records by offset, and the high watermark. */
interface PartitionLog {
  byOffset: Map<number, ConsumedRecord>;
  highWatermark: number;
}

const CLIENT_ATTEMPTS_MAX = 25;
const KEYS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
const text = new TextEncoder();
const fromText = new TextDecoder();

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc.integer({ min: 1, max: 6 }).chain((partitions) =>
    fc.record({
      partitions: fc.constant(partitions),
      clients: fc.array(
        fc.record({
          producer: fc.boolean(),
          commands: fc.array(
            fc.record({
              records: fc.array(
                fc.record({
                  key: fc.option(fc.constantFrom(...KEYS), { nil: null }),
                  partition: fc.option(fc.integer({ min: 0, max: partitions - 1 }), { nil: null, freq: 3 }),
                }),
                { minLength: 1, maxLength: 6 },
              ),
              withKey: fc.boolean(),
              sendTwice: fc.boolean(),
            }),
            { minLength: 1, maxLength: 5 },
          ),
        }),
        { minLength: 2, maxLength: 4 },
      ),
      failBefore: fc.constantFrom(0, 0.1, 0.25),
      loseAnswer: fc.constantFrom(0, 0.1, 0.25),
      crashAfter: fc.constantFrom(0, 0.1, 0.2),
      holdUpload: fc.constantFrom(0, 0.2, 0.5),
      inlineMaxBytes: fc.constantFrom(0, 200, INLINE_MAX_BYTES_LIMIT),
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    }),
  );
}

interface Sent {
  tags: string[];
  request: AppendRequest;
  /** Acknowledged results; two when the request was sent twice. */
  results: AppendResult[];
  /** Whether a failure left the outcome unknown (no retry possible without a key or sequence). */
  unknown: boolean;
  retried: boolean;
  /** A parallel commit's upload that arrived after readers had given its offsets up. */
  lateUpload: boolean;
}

export function runEngineScenarios(options: EngineScenarioOptions): void {
  describe(`scenarios Engine [${options.name}]`, () => {
    it(
      "concurrent writers with lost requests and lost answers keep every invariant",
      async () => {
        const entries = { inline: 0, uploaded: 0 };
        await fc.assert(
          fc.asyncProperty(scenarioArbitrary(), async (scenario) => {
            const backend = await options.create();
            try {
              const run = await runScenario(backend, scenario, false);
              entries.inline += run.inlineEntries;
              entries.uploaded += run.uploadedEntries;
            } finally {
              await backend.cleanup?.();
            }
          }),
          // A run that stops making progress (a livelock) fails instead of hanging the suite.
          { numRuns: options.runs, endOnFailure: true, timeout: options.runTimeoutMs ?? 20_000 },
        );
        // Both kinds of entry were written and read back; a suite that never wrote one checks nothing of it.
        if (options.runs >= 30) {
          expect(entries.inline).toBeGreaterThan(0);
          expect(entries.uploaded).toBeGreaterThan(0);
        }
      },
      options.timeoutMs ?? 120_000,
    );
    it(
      "with parallel commit, uploads failing or arriving late after the commit leave gaps no reader fills later",
      async () => {
        const seen = { gaps: 0, lateUploads: 0 };
        await fc.assert(
          fc.asyncProperty(scenarioArbitrary(), async (scenario) => {
            const backend = await options.create();
            try {
              const run = await runScenario(backend, scenario, true);
              seen.gaps += run.gaps;
              seen.lateUploads += run.lateUploads;
            } finally {
              await backend.cleanup?.();
            }
          }),
          { numRuns: options.runs, endOnFailure: true, timeout: options.runTimeoutMs ?? 20_000 },
        );
        // Enough runs reach both hazards; a suite that never reached them would check nothing.
        if (options.runs >= 30) {
          expect(seen.gaps).toBeGreaterThan(0);
          expect(seen.lateUploads).toBeGreaterThan(0);
        }
      },
      options.timeoutMs ?? 120_000,
    );
  });
}

/**
 * Holds back a share of data-object uploads for a number of event-loop turns, during which
 * readers waiting on them move the simulated clock on: some arrive after readers gave them up.
 */
function holdingUploads(inner: ObjectStore, share: number, choose: Chooser): ObjectStore {
  return withPut(inner, async (key, body, options) => {
    if (body.byteLength > 0 && choose() < share) {
      const turns = Math.floor(choose() * 400);
      for (let turn = 0; turn < turns; turn++) await new Promise((resolve) => setImmediate(resolve));
    }
    return inner.put(key, body, options);
  });
}

/** Runs started in this process, to name each run's topic apart. */
let scenarioRuns = 0;

/** How often a run reached parallel commit's hazards: offsets left a gap, uploads that came too late. */
interface RunOutcome {
  gaps: number;
  lateUploads: number;
  /** Index entries that carry their batch, and entries naming an uploaded object. */
  inlineEntries: number;
  uploadedEntries: number;
}

async function runScenario(
  backend: EngineBackend,
  scenario: Scenario,
  parallelCommit: boolean,
): Promise<RunOutcome> {
  const choose = seededChooser(scenario.seed);
  const plan = {
    failBefore: scenario.failBefore,
    loseAnswer: scenario.loseAnswer,
    crashAfter: scenario.crashAfter,
  };
  const metadata = new FaultyMetadataStore(backend.metadata, plan, choose);
  const objects = new FaultyObjectStore(
    parallelCommit ? holdingUploads(backend.objects, scenario.holdUpload, choose) : backend.objects,
    plan,
    choose,
  );
  // Parallel commit decides gaps by age: its engines share a simulated clock, whose sleeps (a
  // reader waiting on an upload, a writer's backoff) move it on.
  const clock = parallelCommit ? new SimulatedClock({ seed: scenario.seed }) : undefined;
  // Parallel commit's hazards need uploads: its runs carry nothing in the index.
  const engineOptions = clock ? { clock, parallelCommit } : { inlineMaxBytes: scenario.inlineMaxBytes };
  // Runs may share one table (the DynamoDB binding), and generated seeds repeat (fast-check
  // favours boundary values): the run's number keeps each run's topic its own.
  const topic = `scenario-${scenario.seed}-${++scenarioRuns}`;
  await new Engine({ objects: backend.objects, metadata: backend.metadata }).createTopic({
    name: topic,
    partitions: scenario.partitions,
  });

  const sent: Sent[] = [];
  const observed: ObservedFetch[] = [];
  let writing = true;
  // Each client gets a fresh Engine (empty caches) whenever its process "dies", as a Lambda would.
  const writers = scenario.clients.map((client, clientIndex) =>
    runClient(
      () => new Engine({ objects, metadata, ...engineOptions }),
      topic,
      scenario.partitions,
      client,
      clientIndex,
      sent,
    ),
  );
  const reader = (async () => {
    const engine = new Engine({ objects: backend.objects, metadata: backend.metadata, ...engineOptions });
    const next = new Array<number>(scenario.partitions).fill(0);
    while (writing) {
      for (let partition = 0; partition < scenario.partitions; partition++) {
        const from = next[partition]!;
        const result = await engine.fetch({ topic, partition, offset: from, maxRecords: 7 });
        observed.push({ partition, from, next: result.nextOffset, records: result.records });
        next[partition] = result.nextOffset;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  try {
    await Promise.all(writers);
  } finally {
    writing = false;
    await reader;
  }

  // Every upload still missing is now past waiting for: the final read settles each as a gap.
  await clock?.advance(PENDING_UPLOAD_MS);
  const log = await readWholeLog(
    new Engine({ objects: backend.objects, metadata: backend.metadata, ...engineOptions }),
    topic,
    scenario.partitions,
  );
  if (!parallelCommit) checkDenseOffsets(log);
  checkAcknowledgedRecords(log, sent, scenario.partitions);
  checkObservedFetches(log, observed);
  const topicId = (
    await new Engine({ objects: backend.objects, metadata: backend.metadata }).describeTopic(topic)
  ).topicId;
  let inlineEntries = 0;
  let uploadedEntries = 0;
  for (let partition = 0; partition < scenario.partitions; partition++) {
    for await (const entry of storedIndexEntries(backend.metadata, topicId, partition)) {
      if (entry.inline) inlineEntries++;
      else uploadedEntries++;
    }
  }
  return {
    gaps: log.reduce((sum, partition) => sum + partition.highWatermark - partition.byOffset.size, 0),
    lateUploads: sent.filter((entry) => entry.lateUpload).length,
    inlineEntries,
    uploadedEntries,
  };
}

async function runClient(
  newEngine: () => Engine,
  topic: string,
  partitions: number,
  client: ClientSpec,
  clientIndex: number,
  sent: Sent[],
) {
  let engine = newEngine();
  const producer = client.producer ? await retryUnavailable(() => engine.initProducer()) : undefined;
  const sequences = new Map<number, number>();
  for (const [commandIndex, command] of client.commands.entries()) {
    const tags = command.records.map((_, recordIndex) => `c${clientIndex}-m${commandIndex}-r${recordIndex}`);
    // A producer writes one partition per request, so its sequences are known up front.
    const producerPartition = producer
      ? (command.records[0]!.partition ?? commandIndex % partitions)
      : undefined;
    const records = command.records.map((spec, recordIndex) => {
      const partition = producerPartition ?? spec.partition;
      return {
        key: spec.key === null ? null : text.encode(spec.key),
        value: text.encode(tags[recordIndex]!),
        headers: [{ key: "tag", value: text.encode(tags[recordIndex]!) }],
        ...(partition === null ? {} : { partition }),
      };
    });
    const request: AppendRequest = { topic, records };
    if (producer && producerPartition !== undefined) {
      const partition = producerPartition;
      request.producer = { ...producer, baseSequences: { [partition]: sequences.get(partition) ?? 0 } };
      sequences.set(partition, (sequences.get(partition) ?? 0) + records.length);
    } else if (command.withKey) {
      request.idempotencyKey = `key-${clientIndex}-${commandIndex}`;
    }
    const retriable = Boolean(request.producer || request.idempotencyKey);
    const entry: Sent = { tags, request, results: [], unknown: false, retried: false, lateUpload: false };
    sent.push(entry);
    const sendOnce = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          entry.results.push(await engine.append(request));
          return;
        } catch (error) {
          if (error instanceof UploadTooLateError) entry.lateUpload = true;
          if (error instanceof SimulatedCrashError) engine = newEngine();
          else if (!(isSluiceError(error) && error.retryable) && !isInProgress(error)) throw error;
          // Faults are rare enough that a correct engine never needs this many; a broken one loops.
          if (attempt >= CLIENT_ATTEMPTS_MAX)
            throw new Error(`client gave up after ${attempt} attempts`, { cause: error });
          if (!retriable) {
            entry.unknown = true;
            return;
          }
          entry.retried = true;
        }
      }
    };
    // A duplicate send of an idempotent request runs concurrently with the original.
    await Promise.all(command.sendTwice && retriable && !producer ? [sendOnce(), sendOnce()] : [sendOnce()]);
  }
}

function isInProgress(error: unknown): boolean {
  return error instanceof Error && error.message.includes("in progress");
}

async function retryUnavailable<T>(action: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await action();
    } catch (error) {
      if (!(isSluiceError(error) && error.retryable) && !(error instanceof SimulatedCrashError)) throw error;
    }
  }
}

async function readWholeLog(engine: Engine, topic: string, partitions: number): Promise<PartitionLog[]> {
  const log: PartitionLog[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const byOffset = new Map<number, ConsumedRecord>();
    const { highWatermark } = await engine.partitionOffsets(topic, partition);
    let offset = 0;
    while (offset < highWatermark) {
      const result = await engine.fetch({ topic, partition, offset, maxRecords: 5 });
      for (const record of result.records) {
        expect(byOffset.has(record.offset)).toBe(false);
        expect(record.offset).toBeGreaterThanOrEqual(offset);
        byOffset.set(record.offset, record);
      }
      expect(result.nextOffset).toBeGreaterThan(offset);
      offset = result.nextOffset;
    }
    log.push({ byOffset, highWatermark });
  }
  return log;
}

/** Invariant 2: a partition's offsets are 0, 1, 2, … with no gap and no repeat. */
function checkDenseOffsets(log: PartitionLog[]): void {
  for (const { byOffset, highWatermark } of log) {
    expect(byOffset.size).toBe(highWatermark);
    for (let offset = 0; offset < highWatermark; offset++) expect(byOffset.has(offset)).toBe(true);
  }
}

/**
 * Invariants 1 and 5: every acknowledged record is in the log where its acknowledgement says,
 * exactly once, however often it was retried or sent; a request whose outcome stayed unknown
 * appears at most once.
 */
function checkAcknowledgedRecords(log: PartitionLog[], sent: Sent[], partitions: number): void {
  const occurrences = new Map<string, number>();
  for (const { byOffset } of log) {
    for (const record of byOffset.values()) {
      const tag = fromText.decode(record.value!);
      occurrences.set(tag, (occurrences.get(tag) ?? 0) + 1);
      expect(record.headers[0] && fromText.decode(record.headers[0].value!)).toBe(tag);
    }
  }
  for (const entry of sent) {
    const [first, ...others] = entry.results;
    for (const other of others) expect(other.records).toEqual(first?.records);
    if (!first) {
      expect(entry.unknown).toBe(true);
      for (const tag of entry.tags) expect(occurrences.get(tag) ?? 0).toBeLessThanOrEqual(1);
      continue;
    }
    entry.tags.forEach((tag, index) => {
      const acked = first.records[index]!;
      const spec = entry.request.records[index]!;
      expect(occurrences.get(tag)).toBe(1);
      expect(fromText.decode(log[acked.partition]!.byOffset.get(acked.offset)!.value!)).toBe(tag);
      if (spec.partition === undefined && spec.key !== null) {
        expect(acked.partition).toBe(partitionForKey(spec.key, partitions));
      }
    });
  }
}

/**
 * Invariant 3: whatever a reader saw mid-run was committed, stays where it was, in offset order;
 * and an offset it passed over without a record holds none in the end (a gap stays a gap).
 */
function checkObservedFetches(log: PartitionLog[], observed: ObservedFetch[]): void {
  for (const { partition, from, next, records } of observed) {
    expect(next).toBeGreaterThanOrEqual(from);
    const returned = new Set<number>();
    records.forEach((record, index) => {
      if (index > 0) expect(record.offset).toBeGreaterThan(records[index - 1]!.offset);
      const committed = log[partition]!.byOffset.get(record.offset);
      expect(committed && fromText.decode(committed.value!)).toBe(fromText.decode(record.value!));
      returned.add(record.offset);
    });
    for (let offset = from; offset < next; offset++) {
      if (!returned.has(offset)) expect(log[partition]!.byOffset.has(offset)).toBe(false);
    }
  }
}
