/**
 * Model-based scenario suite for processors, written once and bound to each backend (memory,
 * SQLite + filesystem, DynamoDB + S3). fast-check generates a processor (partition or key
 * ordering, batch size, bisection, how its handler fails), a stream of records — good ones,
 * flaky ones that fail a few times and then succeed, poison ones that always fail (by throwing,
 * hanging past the timeout, answering garbage, or being named in `failures`) — and rounds in
 * which runner processes, each with its own Engine over its own fault-injecting view of the
 * shared stores and all on one simulated clock, start runners on partitions, wake them, stop
 * them, crash (every later call of the process fails), freeze past their lease and come back as
 * zombies, while the processor is paused and resumed. Writes are lost before the store, applied
 * with their answer lost, applied by a process that then dies, or held up while the clock moves.
 *
 * Every applied write is seen in the order the store applied it (RecordingMetadataStore) and
 * judged against the items it found (ARCHITECTURE.md, "Processors"):
 * - a partition lease is taken only when free, released or expired, at the next epoch;
 * - a progress commit is made by the lease's current owner, moves the version on by one, never
 *   moves the checkpoint back and never takes a record out of Done.
 * Then the faults stop and fresh runners drain every partition. Checked against the model:
 * - every good and flaky record's outputs are in the output topic exactly once;
 * - every poison record is in the dead-letter topic exactly once, with its partition, offset and
 *   the retry policy's attempt count, and nothing else is;
 * - no record is skipped: every checkpoint reaches its high watermark with nothing pending;
 * - outputs of one key (from one source partition) are in source order;
 * - a poison record that fails once the faults have stopped is dead-lettered within its backoffs
 *   and attempts' timeouts (the stall the retry policy allows), plus the rounds' granularity.
 */
import { isSluiceError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { LEASE_EPOCH, LEASE_EXPIRES_AT, LEASE_OWNER } from "@sluice/leases";
import { defineProcessor, type ProcessorOutput } from "@sluice/processor-sdk";
import type {
  GetOptions,
  Item,
  ItemKey,
  ListOptions,
  MetadataStore,
  ObjectStore,
  PutOptions,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "@sluice/storage";
import {
  type AppliedWrite,
  DelayingMetadataStore,
  type DelayPlan,
  type FaultPlan,
  FaultyMetadataStore,
  FaultyObjectStore,
  leaseWriteViolations,
  RecordingMetadataStore,
  SimulatedClock,
  SimulatedCrashError,
  scenarioSuite,
  seededChooser,
} from "@sluice/testing";
import fc from "fast-check";
import { expect } from "vitest";
import { ProcessorAdmin } from "./admin.js";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";
import { Handlers } from "./handlers/invoker.js";
import { progressKey, progressPk } from "./keys.js";
import { decodeOffsets, progressFromItem } from "./progress.js";
import { retryStallMs } from "./retry.js";
import { PartitionRunner, type RecordFailedEvent, type RunResult } from "./runner.js";
import { ProcessorStore } from "./store.js";
import { readAll, text } from "./test-support.js";

export interface ProcessorsBackend {
  objects: ObjectStore;
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

export interface ProcessorsScenarioOptions {
  name: string;
  create: () => Promise<ProcessorsBackend>;
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. Default 30 s. */
  runTimeoutMs?: number;
}

export type RecordKind = "good" | "flaky" | "poison";
export type FailureStyle = "named" | "throw" | "hang" | "garbage";
type ActionKind = "run" | "run" | "wake" | "stop" | "crash" | "restart" | "freeze" | "idle";

interface Action {
  kind: ActionKind;
  partition: number;
  rounds: number;
}

interface Round {
  advanceMs: number;
  /** Records produced this round: [partition, key index, kind, larger than a small batch's bytes]. */
  produce: [number, number, RecordKind, boolean][];
  actions: Action[];
  admin: "none" | "pause" | "resume";
}

interface Scenario {
  partitions: number;
  ordering: "PARTITION" | "KEY";
  parallelism: number;
  batchSize: number;
  /**
   * Records each process's runners keep in hand above the checkpoint (the drainer's last): small
   * ones fetch in steps, and differing ones meet progress a runner with a longer reach left.
   */
  lookaheads: number[];
  bisect: boolean;
  /** batch_max_bytes at its least (1 KiB), so a large record ends a batch; else the default. */
  smallBatchBytes: boolean;
  maxAttempts: number;
  /** How poison records fail; flaky ones are always named or thrown. */
  styles: FailureStyle[];
  processes: number;
  rounds: Round[];
  faults: FaultPlan;
  delays: DelayPlan;
  seed: number;
}

const KEYS = ["alice", "bob", "carol", "dave"];
const LEASE_TTL_MS = 2_000;
const TIMEOUT_MS = 600;
const BACKOFF_MS = 150;
const DRAIN_ROUNDS_MIN = 100;
const DRAIN_ADVANCE_MS = 100;
/** Past 1 KiB on its own: a large record never shares a batch under the small byte limit. */
const LARGE_PADDING = ".".repeat(1_100);

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc
    .record({ partitions: fc.integer({ min: 1, max: 3 }), processes: fc.integer({ min: 1, max: 3 }) })
    .chain(({ partitions, processes }) =>
      fc.record({
        partitions: fc.constant(partitions),
        ordering: fc.constantFrom<"PARTITION" | "KEY">("PARTITION", "KEY"),
        parallelism: fc.integer({ min: 1, max: 3 }),
        batchSize: fc.integer({ min: 1, max: 6 }),
        lookaheads: fc.array(fc.constantFrom(3, 8, 1_000), {
          minLength: processes + 1,
          maxLength: processes + 1,
        }),
        bisect: fc.boolean(),
        smallBatchBytes: fc.boolean(),
        maxAttempts: fc.integer({ min: 2, max: 4 }),
        styles: fc.subarray<FailureStyle>(["named", "throw", "hang", "garbage"], { minLength: 1 }),
        processes: fc.constant(processes),
        rounds: fc.array(
          fc.record({
            advanceMs: fc.constantFrom(50, 200, 700, 2_500),
            produce: fc.array(
              fc.tuple(
                fc.integer({ min: 0, max: partitions - 1 }),
                fc.integer({ min: 0, max: KEYS.length - 1 }),
                fc.constantFrom<RecordKind>("good", "good", "good", "good", "flaky", "poison"),
                fc.constantFrom(false, false, false, true),
              ),
              { maxLength: 4 },
            ),
            actions: fc.array(
              fc.record({
                kind: fc.constantFrom<ActionKind>(
                  "run",
                  "run",
                  "wake",
                  "stop",
                  "crash",
                  "restart",
                  "freeze",
                  "idle",
                ),
                partition: fc.integer({ min: 0, max: partitions - 1 }),
                rounds: fc.integer({ min: 1, max: 5 }),
              }),
              { minLength: processes, maxLength: processes },
            ),
            admin: fc.constantFrom<"none" | "pause" | "resume">(
              "none",
              "none",
              "none",
              "none",
              "none",
              "pause",
              "resume",
            ),
          }),
          { minLength: 6, maxLength: 24 },
        ),
        faults: fc.record({
          failBefore: fc.constantFrom(0, 0.05, 0.1),
          loseAnswer: fc.constantFrom(0, 0.1, 0.2),
          crashAfter: fc.constantFrom(0, 0.02),
        }),
        delays: fc.record({
          probability: fc.constantFrom(0, 0.1, 0.2),
          maxMs: fc.constantFrom(1_000, 3_000),
        }),
        seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      }),
    );
}

export function runProcessorScenarios(options: ProcessorsScenarioOptions): void {
  scenarioSuite(options, {
    protocol: "Processors",
    property:
      "runners that crash, freeze past their lease, lose answers and meet failing handlers commit every output exactly once",
    scenarios: scenarioArbitrary(),
    run: runScenario,
    runTimeoutMs: 30_000,
    timeoutMs: 120_000,
  });
}

/** A process's view of the stores: it dies (every later call fails) or freezes (calls wait) as a whole. */
export class ProcessStores {
  dead = false;
  private frozen: { until: Promise<void>; thaw: () => void } | undefined;
  readonly metadata: MetadataStore;
  readonly objects: ObjectStore;

  constructor(metadata: MetadataStore, objects: ObjectStore) {
    const gate = <T>(call: () => Promise<T>) => this.gate(call);
    this.metadata = {
      get: (key: ItemKey) => gate(() => metadata.get(key)),
      query: (query: Query) => gate(() => metadata.query(query)),
      put: (item: Item, options?: WriteOptions) => gate(() => metadata.put(item, options)),
      update: (key: ItemKey, changes: UpdateChanges, options?: WriteOptions) =>
        gate(() => metadata.update(key, changes, options)),
      delete: (key: ItemKey, options?: WriteOptions) => gate(() => metadata.delete(key, options)),
      transactWrite: (operations: readonly TransactOperation[]) =>
        gate(() => metadata.transactWrite(operations)),
    };
    this.objects = {
      get: (key: string, options?: GetOptions) => gate(() => objects.get(key, options)),
      head: (key: string) => gate(() => objects.head(key)),
      put: (key: string, body: Uint8Array, options?: PutOptions) =>
        gate(() => objects.put(key, body, options)),
      list: (prefix: string, options?: ListOptions) => gate(() => objects.list(prefix, options)),
      delete: (key: string) => gate(() => objects.delete(key)),
      deleteMany: (keys: readonly string[]) => gate(() => objects.deleteMany(keys)),
    };
  }

  freeze(): void {
    if (this.frozen) return;
    let thaw = () => {};
    const until = new Promise<void>((resolve) => {
      thaw = resolve;
    });
    this.frozen = { until, thaw };
  }

  thaw(): void {
    this.frozen?.thaw();
    this.frozen = undefined;
  }

  private async gate<T>(call: () => Promise<T>): Promise<T> {
    if (this.frozen) await this.frozen.until;
    if (this.dead) throw new SimulatedCrashError("the process is dead");
    try {
      return await call();
    } catch (error) {
      if (error instanceof SimulatedCrashError) this.dead = true;
      throw error;
    }
  }
}

interface Process {
  index: number;
  incarnation: number;
  stores: ProcessStores;
  frozenUntilRound: number;
  running: Map<number, { runner: PartitionRunner; done: Promise<RunResult | undefined> }>;
}

interface Produced {
  id: number;
  partition: number;
  offset: number;
  key: string;
  kind: RecordKind;
}

let runCounter = 0;

async function runScenario(backend: ProcessorsBackend, scenario: Scenario): Promise<void> {
  const run = `r${++runCounter}-${scenario.seed}`;
  const source = `src-${run}`;
  const output = `out-${run}`;
  const dead = `dlq-${run}`;
  const name = `proc-${run}`;
  const clock = new SimulatedClock({ seed: scenario.seed });
  const violations: string[] = [];
  const faults: FaultPlan = { ...scenario.faults };
  const delays: DelayPlan = { ...scenario.delays };
  const choose = seededChooser(scenario.seed);
  const chooseDelay = seededChooser(scenario.seed + 1);
  const chooseStyle = seededChooser(scenario.seed + 2);
  const bisect = scenario.bisect || scenario.styles.some((style) => style !== "named");

  const recorder = new RecordingMetadataStore(backend.metadata, (write) => {
    violations.push(...checkAppliedWrite(write, clock.now(), progressPk(name)));
  });
  const producer = new Engine({ objects: backend.objects, metadata: recorder, clock });
  await producer.createTopic({ name: source, partitions: scenario.partitions });
  await producer.createTopic({ name: output, partitions: 2 });
  await producer.createTopic({ name: dead, partitions: 1 });
  const admin = new ProcessorAdmin({ engine: producer, metadata: recorder, clock });
  await admin.create(
    {
      name,
      topics: [source],
      handler: { type: "module", module: "scenario" },
      output_topics: [output],
      dead_letter_topic: dead,
      starting_position: "EARLIEST",
      batch_size: scenario.batchSize,
      ...(scenario.smallBatchBytes ? { batch_max_bytes: 1_024 } : {}),
      bisect_on_error: bisect,
      ordering: scenario.ordering,
      ...(scenario.ordering === "KEY" ? { parallelism: scenario.parallelism } : {}),
      retry: {
        max_attempts: scenario.maxAttempts,
        backoff_ms: BACKOFF_MS,
        max_backoff_ms: 1_000,
        timeout_ms: TIMEOUT_MS,
      },
    },
    { allowModuleHandlers: true },
  );
  const policy = (await new ProcessorStore(recorder).get(name))!.spec.retry;

  // The model: what was produced, and how often the handler has seen each record fail.
  const produced = new Map<string, Produced>();
  const failuresSeen = new Map<number, number>();
  let nextId = 0;
  const encoder = new TextEncoder();
  const failing = (record: Produced) => {
    if (record.kind === "poison") return true;
    if (record.kind === "good") return false;
    // Flaky: fails its first sightings, fewer than the policy's attempts, then succeeds.
    const seen = failuresSeen.get(record.id) ?? 0;
    return seen < scenario.maxAttempts - 1;
  };
  const handler = defineProcessor(async (batch, ctx) => {
    const records = batch.records.map((record) => produced.get(`${batch.partition}:${record.offset}`)!);
    const failed = records.filter(failing);
    for (const record of failed) failuresSeen.set(record.id, (failuresSeen.get(record.id) ?? 0) + 1);
    const outputs: ProcessorOutput[] = [];
    for (const record of records) {
      outputs.push({ key: record.key, value: `out:${record.id}`, sourceOffset: record.offset });
      if (record.id % 3 === 0)
        outputs.push({ key: record.key, value: `out:${record.id}:b`, sourceOffset: record.offset });
    }
    if (failed.length === 0) return { outputs };
    const poison = failed.some((record) => record.kind === "poison");
    const style = poison
      ? scenario.styles[Math.floor(chooseStyle() * scenario.styles.length)]!
      : bisect
        ? "throw"
        : "named";
    switch (style) {
      case "named":
        return { outputs, failures: failed.map((record) => record.offset) };
      case "throw":
        throw new Error(`record ${failed[0]!.id} failed`);
      case "hang":
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        return { outputs };
      case "garbage":
        return { outputs: "not a list" } as never;
    }
  });
  const handlers = new Handlers({ modules: async () => handler });
  const failureEvents: (RecordFailedEvent & { atMs: number; runnerId: string })[] = [];

  const processes: Process[] = Array.from({ length: scenario.processes }, (_, index) => ({
    index,
    incarnation: 0,
    stores: newStores(),
    frozenUntilRound: -1,
    running: new Map(),
  }));
  function newStores(): ProcessStores {
    const delayed = new DelayingMetadataStore(recorder, clock, delays, chooseDelay);
    return new ProcessStores(
      new FaultyMetadataStore(delayed, faults, choose),
      new FaultyObjectStore(backend.objects, faults, choose),
    );
  }
  const startRunner = async (process: Process, partition: number) => {
    if (process.running.has(partition) || process.stores.dead) return;
    const store = new ProcessorStore(process.stores.metadata);
    let definition: Awaited<ReturnType<ProcessorStore["get"]>>;
    try {
      definition = await store.get(name);
    } catch {
      return;
    }
    if (definition?.state !== "running" || process.running.has(partition)) return;
    const runnerId = `p${process.index}.${process.incarnation}`;
    const runner = new PartitionRunner(
      {
        engine: new Engine({ objects: process.stores.objects, metadata: process.stores.metadata, clock }),
        metadata: process.stores.metadata,
        clock,
        handlers,
        store,
        runnerId,
        leaseTtlMs: LEASE_TTL_MS,
        lingerMs: 0,
        retryHoldMs: 3_000,
        definitionRefreshMs: 300,
        lookaheadRecords: scenario.lookaheads[Math.min(process.index, scenario.processes)]!,
        events: { recordFailed: (event) => failureEvents.push({ ...event, atMs: clock.now(), runnerId }) },
      },
      definition,
      source,
      partition,
    );
    const entry = {
      runner,
      done: runner.run().then(
        (result) => result,
        (error: unknown) => {
          // A dead or faulty process's runner may end with the error that killed it; anything else is a bug.
          if (!(error instanceof SimulatedCrashError) && !(isSluiceError(error) && error.retryable))
            throw error;
          return undefined;
        },
      ),
    };
    process.running.set(partition, entry);
    void entry.done.finally(() => {
      if (process.running.get(partition) === entry) process.running.delete(partition);
    });
  };
  const failures: unknown[] = [];
  const watch = (process: Process) => {
    for (const { done } of process.running.values()) done.catch((error: unknown) => failures.push(error));
  };

  const act = async (process: Process, action: Action, roundIndex: number) => {
    if (process.frozenUntilRound >= 0) {
      if (roundIndex < process.frozenUntilRound) return;
      process.frozenUntilRound = -1;
      process.stores.thaw();
    }
    switch (action.kind) {
      case "run":
        await startRunner(process, action.partition);
        break;
      case "wake":
        for (const { runner } of process.running.values()) runner.wake();
        break;
      case "stop":
        for (const { runner } of process.running.values()) runner.stop();
        break;
      case "crash":
        process.stores.dead = true;
        break;
      case "restart":
        if (!process.stores.dead) break;
        process.incarnation++;
        process.stores = newStores();
        process.running = new Map();
        break;
      case "freeze":
        process.stores.freeze();
        process.frozenUntilRound = roundIndex + 1 + action.rounds;
        break;
      case "idle":
        break;
    }
    watch(process);
  };

  const produce = async (records: [number, number, RecordKind, boolean][]) => {
    for (const [partition, keyIndex, kind, large] of records) {
      const id = nextId++;
      const key = KEYS[keyIndex]!;
      const result = await producer.append({
        topic: source,
        records: [
          {
            key: encoder.encode(key),
            value: encoder.encode(`${kind}:${id}${large ? `:${LARGE_PADDING}` : ""}`),
            partition,
          },
        ],
      });
      const offset = result.records[0]!.offset;
      produced.set(`${partition}:${offset}`, { id, partition, offset, key, kind });
    }
  };

  for (const [roundIndex, round] of scenario.rounds.entries()) {
    await produce(round.produce);
    if (round.admin === "pause") await admin.pause(name);
    if (round.admin === "resume") await admin.resume(name);
    await Promise.all(processes.map((process) => act(process, round.actions[process.index]!, roundIndex)));
    await clock.advance(round.advanceMs);
    if (failures.length > 0) throw failures[0];
    expect(violations, violations.join("\n")).toEqual([]);
  }

  // Faults stop; frozen processes come back (as zombies, if their leases went meanwhile); dead ones stay dead.
  faults.failBefore = 0;
  faults.loseAnswer = 0;
  faults.crashAfter = 0;
  delays.probability = 0;
  for (const process of processes) {
    process.frozenUntilRound = -1;
    process.stores.thaw();
  }
  // Writes held up in flight land now.
  await clock.advance(delays.maxMs);
  await admin.resume(name);
  // Stall: a poison record first failing after the faults stopped is dead-lettered within what
  // its retry policy allows (backoffs, and each attempt's timeout), plus the rounds' granularity.
  // Each attempt may take a timeout; narrowing a batch down takes a call per halving, once per record.
  const calls = scenario.maxAttempts + Math.ceil(Math.log2(scenario.batchSize));
  const allowedMs = retryStallMs(policy) + calls * (TIMEOUT_MS + DRAIN_ADVANCE_MS) + 2 * DRAIN_ADVANCE_MS;
  const drainStartedAtMs = clock.now();
  const drainer: Process = {
    index: 99,
    incarnation: 0,
    stores: newStores(),
    frozenUntilRound: -1,
    running: new Map(),
  };
  const drained = async () => {
    for (let partition = 0; partition < scenario.partitions; partition++) {
      const item = await backend.metadata.get(progressKey(name, source, partition));
      const progress = progressFromItem(item);
      const { highWatermark } = await producer.partitionOffsets(source, partition);
      if (progress.checkpoint !== highWatermark || progress.pending.length > 0 || progress.retries.size > 0)
        return false;
    }
    return true;
  };
  // Room for every failing record's retries, one after another, and for leases of dead runners to expire.
  const failingRecords = [...produced.values()].filter((record) => record.kind !== "good").length;
  const drainRoundsMax =
    DRAIN_ROUNDS_MIN + Math.ceil((failingRecords * allowedMs + 2 * LEASE_TTL_MS) / DRAIN_ADVANCE_MS);
  let drainRounds = 0;
  while (!(await drained())) {
    expect(drainRounds++, "the processor drains every partition once the faults stop").toBeLessThan(
      drainRoundsMax,
    );
    for (let partition = 0; partition < scenario.partitions; partition++)
      await startRunner(drainer, partition);
    watch(drainer);
    // Time moves on only once every runner waits for it, so simulated time never outruns real I/O.
    await Promise.all(
      [...processes, drainer].flatMap((process) =>
        [...process.running.values()].map(({ runner }) => runner.whenParked()),
      ),
    );
    await clock.advance(DRAIN_ADVANCE_MS);
    if (failures.length > 0) throw failures[0];
  }
  expect(violations, violations.join("\n")).toEqual([]);
  // Every runner still going finishes (drained, fenced or dead) before the log is read.
  for (const process of [...processes, drainer])
    for (const { runner } of process.running.values()) runner.stop();
  for (
    let settle = 0;
    settle < 200 && [...processes, drainer].some((process) => process.running.size > 0);
    settle++
  ) {
    await clock.advance(DRAIN_ADVANCE_MS);
  }

  // Exactly once: every good and flaky record's outputs once; nothing else.
  const expected = new Map<string, number>();
  for (const record of produced.values()) {
    if (record.kind === "poison") continue;
    expected.set(`out:${record.id}`, 0);
    if (record.id % 3 === 0) expected.set(`out:${record.id}:b`, 0);
  }
  const outputs = await readAll(producer, output);
  for (const record of outputs) {
    const value = text(record.value)!;
    expect(expected.has(value), `output ${value} belongs to a record that should have one`).toBe(true);
    expected.set(value, expected.get(value)! + 1);
  }
  for (const [value, count] of expected) expect(count, `output ${value} appended exactly once`).toBe(1);

  // The counters each commit adds: every record counted once, as processed or as dead-lettered.
  let processedCount = 0;
  let deadLetteredCount = 0;
  for (let partition = 0; partition < scenario.partitions; partition++) {
    const progress = progressFromItem(await backend.metadata.get(progressKey(name, source, partition)));
    processedCount += progress.processed;
    deadLetteredCount += progress.deadLettered;
  }
  const poisonCount = [...produced.values()].filter((record) => record.kind === "poison").length;
  expect(processedCount, "records counted as processed").toBe(produced.size - poisonCount);
  expect(deadLetteredCount, "records counted as dead-lettered").toBe(poisonCount);

  // Poison records: dead-lettered once each, with where they came from and the attempts spent.
  const deadLetters = await readAll(producer, dead);
  const poison = [...produced.values()].filter((record) => record.kind === "poison");
  const header = (record: (typeof deadLetters)[number], key: string) =>
    text(record.headers.find((candidate) => candidate.key === key)?.value ?? null);
  expect(
    deadLetters
      .map(
        (record) =>
          `${header(record, DEAD_LETTER_HEADERS.partition)}:${header(record, DEAD_LETTER_HEADERS.offset)}`,
      )
      .sort(),
    "the dead-letter topic holds each poison record once, and nothing else",
  ).toEqual(poison.map((record) => `${record.partition}:${record.offset}`).sort());
  for (const record of deadLetters) {
    const attempts = Number(header(record, DEAD_LETTER_HEADERS.attempts));
    expect(header(record, DEAD_LETTER_HEADERS.processor)).toBe(name);
    expect(header(record, DEAD_LETTER_HEADERS.topic)).toBe(source);
    // Dead-lettered once its attempts were spent: exactly the policy's, whatever crashed meanwhile.
    expect(attempts, `attempts of dead letter ${header(record, DEAD_LETTER_HEADERS.offset)}`).toBe(
      scenario.maxAttempts,
    );
    expect(text(record.value)).toMatch(/^poison:/);
  }

  // Order: one key's outputs from one source partition are in source order.
  const sourceOffsetOf = new Map([...produced.values()].map((record) => [record.id, record]));
  const lastOffset = new Map<string, number>();
  for (const record of outputs) {
    const value = text(record.value)!;
    if (value.endsWith(":b")) continue;
    const source = sourceOffsetOf.get(Number(value.slice("out:".length)))!;
    const chain = `${source.partition}:${source.key}`;
    expect(
      source.offset,
      `outputs of key ${source.key} of partition ${source.partition} in source order`,
    ).toBeGreaterThan(lastOffset.get(chain) ?? -1);
    lastOffset.set(chain, source.offset);
  }

  for (const record of poison) {
    const events = failureEvents.filter(
      (event) => event.partition === record.partition && event.offset === record.offset,
    );
    const first = events.find((event) => event.attempts === 1);
    const spent = events.find((event) => event.spent);
    // Only a record the fault-free drainer handled from its first failure to its dead letter (a
    // zombie thawed at the drain may have started it, and a takeover costs a lease expiry).
    if (!first || !spent || first.atMs < drainStartedAtMs || first.runnerId !== spent.runnerId) continue;
    // Under key ordering, retries of several blocked keys share the runner's retry slots.
    const sharing =
      scenario.ordering === "PARTITION"
        ? 1
        : poison.filter((other) => other.partition === record.partition && true).length;
    expect(
      spent.atMs - first.atMs,
      `poison record ${record.offset} of partition ${record.partition} stalled`,
    ).toBeLessThanOrEqual(allowedMs * sharing);
  }
}

/** Ground truth: each applied write to the processor's items, judged against what it found. */
function checkAppliedWrite(write: AppliedWrite, nowMs: number, pk: string): string[] {
  const violations = leaseWriteViolations(
    write,
    nowMs,
    { owner: LEASE_OWNER, epoch: LEASE_EPOCH, expiresAt: LEASE_EXPIRES_AT },
    (key) => key.pk === pk,
  );
  for (const operation of write.operations) {
    if (operation.kind !== "update" || operation.key.pk !== pk) continue;
    const committer = operation.changes.set?.committedBy;
    if (committer === undefined) continue;
    const before = write.before.get(`${operation.key.pk}\u0000${operation.key.sk}`);
    const after = write.after.get(`${operation.key.pk}\u0000${operation.key.sk}`);
    const where = `#${write.sequence} commit of ${operation.key.sk} by ${String(committer)}`;
    if (before?.[LEASE_OWNER] !== committer) {
      violations.push(`${where}: the lease was held by ${String(before?.[LEASE_OWNER] ?? "nobody")}`);
    }
    if (Number(after?.version) !== Number(before?.version ?? 0) + 1) {
      violations.push(`${where}: version ${String(before?.version)} → ${String(after?.version)}`);
    }
    if (before && after && before.uid === after.uid && before.topicId === after.topicId) {
      if (Number(after.checkpoint) < Number(before.checkpoint)) {
        violations.push(
          `${where}: the checkpoint went back from ${String(before.checkpoint)} to ${String(after.checkpoint)}`,
        );
      }
      const wasDone = doneSet(before);
      const isDone = doneSet(after);
      for (let offset = wasDone.checkpoint; offset < wasDone.frontier; offset++) {
        if (wasDone.pending.has(offset)) continue;
        if (offset >= isDone.frontier || isDone.pending.has(offset)) {
          violations.push(`${where}: offset ${offset} was done and is not any more`);
          break;
        }
      }
    }
  }
  return violations;
}

function doneSet(item: Item): { checkpoint: number; frontier: number; pending: Set<number> } {
  const checkpoint = Number(item.checkpoint ?? 0);
  return {
    checkpoint,
    frontier: Number(item.frontier ?? checkpoint),
    pending: new Set(item.pending instanceof Uint8Array ? decodeOffsets(item.pending, checkpoint) : []),
  };
}
