/**
 * Model-based scenario suite for the engine, written once and bound to each storage backend
 * (memory, SQLite + filesystem, DynamoDB + S3). fast-check generates concurrent clients — each
 * with its own Engine instance, as separate Lambdas would have — that append to shared stores
 * injecting lost requests and lost answers, retry with idempotency keys or producer sequences,
 * send duplicates, and fetch while others write. Afterwards the log is read back and checked
 * against what was acknowledged: the invariants of ARCHITECTURE.md.
 */
import { isSluiceError, partitionForKey } from "@sluice/core";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import { FaultyMetadataStore, FaultyObjectStore, SimulatedCrashError, seededChooser } from "@sluice/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AppendRequest, AppendResult } from "./append/append-types.js";
import { Engine } from "./engine.js";
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
  seed: number;
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
}

export function runEngineScenarios(options: EngineScenarioOptions): void {
  describe(`scenarios Engine [${options.name}]`, () => {
    it(
      "concurrent writers with lost requests and lost answers keep every invariant",
      async () => {
        await fc.assert(
          fc.asyncProperty(scenarioArbitrary(), async (scenario) => {
            const backend = await options.create();
            try {
              await runScenario(backend, scenario);
            } finally {
              await backend.cleanup?.();
            }
          }),
          // A run that stops making progress (a livelock) fails instead of hanging the suite.
          { numRuns: options.runs, endOnFailure: true, timeout: options.runTimeoutMs ?? 20_000 },
        );
      },
      options.timeoutMs ?? 120_000,
    );
  });
}

/** Runs started in this process, to name each run's topic apart. */
let scenarioRuns = 0;

async function runScenario(backend: EngineBackend, scenario: Scenario): Promise<void> {
  const choose = seededChooser(scenario.seed);
  const plan = {
    failBefore: scenario.failBefore,
    loseAnswer: scenario.loseAnswer,
    crashAfter: scenario.crashAfter,
  };
  const metadata = new FaultyMetadataStore(backend.metadata, plan, choose);
  const objects = new FaultyObjectStore(backend.objects, plan, choose);
  // Runs may share one table (the DynamoDB binding), and generated seeds repeat (fast-check
  // favours boundary values): the run's number keeps each run's topic its own.
  const topic = `scenario-${scenario.seed}-${++scenarioRuns}`;
  await new Engine({ objects: backend.objects, metadata: backend.metadata }).createTopic({
    name: topic,
    partitions: scenario.partitions,
  });

  const sent: Sent[] = [];
  const observed: { partition: number; records: ConsumedRecord[] }[] = [];
  let writing = true;
  // Each client gets a fresh Engine (empty caches) whenever its process "dies", as a Lambda would.
  const writers = scenario.clients.map((client, clientIndex) =>
    runClient(() => new Engine({ objects, metadata }), topic, scenario.partitions, client, clientIndex, sent),
  );
  const reader = (async () => {
    const engine = new Engine({ objects: backend.objects, metadata: backend.metadata });
    const next = new Array<number>(scenario.partitions).fill(0);
    while (writing) {
      for (let partition = 0; partition < scenario.partitions; partition++) {
        const result = await engine.fetch({ topic, partition, offset: next[partition]!, maxRecords: 7 });
        observed.push({ partition, records: result.records });
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

  const log = await readWholeLog(backend, topic, scenario.partitions);
  checkDenseOffsets(log);
  checkAcknowledgedRecords(log, sent, scenario.partitions);
  checkObservedFetches(log, observed);
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
    const entry: Sent = { tags, request, results: [], unknown: false, retried: false };
    sent.push(entry);
    const sendOnce = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          entry.results.push(await engine.append(request));
          return;
        } catch (error) {
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

async function readWholeLog(
  backend: EngineBackend,
  topic: string,
  partitions: number,
): Promise<ConsumedRecord[][]> {
  const engine = new Engine({ objects: backend.objects, metadata: backend.metadata });
  const log: ConsumedRecord[][] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const records: ConsumedRecord[] = [];
    const { highWatermark } = await engine.partitionOffsets(topic, partition);
    let offset = 0;
    while (offset < highWatermark) {
      const result = await engine.fetch({ topic, partition, offset, maxRecords: 5 });
      records.push(...result.records);
      expect(result.nextOffset).toBeGreaterThan(offset);
      offset = result.nextOffset;
    }
    log.push(records);
  }
  return log;
}

/** Invariant 2: a partition's offsets are 0, 1, 2, … with no gap and no repeat. */
function checkDenseOffsets(log: ConsumedRecord[][]): void {
  for (const records of log) {
    records.forEach((record, index) => {
      expect(record.offset).toBe(index);
    });
  }
}

/**
 * Invariants 1 and 5: every acknowledged record is in the log where its acknowledgement says,
 * exactly once, however often it was retried or sent; a request whose outcome stayed unknown
 * appears at most once.
 */
function checkAcknowledgedRecords(log: ConsumedRecord[][], sent: Sent[], partitions: number): void {
  const occurrences = new Map<string, number>();
  for (const records of log) {
    for (const record of records) {
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
      expect(fromText.decode(log[acked.partition]![acked.offset]!.value!)).toBe(tag);
      if (spec.partition === undefined && spec.key !== null) {
        expect(acked.partition).toBe(partitionForKey(spec.key, partitions));
      }
    });
  }
}

/** Invariant 3: whatever a reader saw mid-run was committed, stays where it was, in offset order. */
function checkObservedFetches(
  log: ConsumedRecord[][],
  observed: { partition: number; records: ConsumedRecord[] }[],
): void {
  for (const { partition, records } of observed) {
    records.forEach((record, index) => {
      if (index > 0) expect(record.offset).toBe(records[index - 1]!.offset + 1);
      const committed = log[partition]![record.offset];
      expect(committed && fromText.decode(committed.value!)).toBe(fromText.decode(record.value!));
    });
  }
}
