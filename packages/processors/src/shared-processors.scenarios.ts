/**
 * Model-based scenarios for shared processors (ARCHITECTURE.md, "Shared processors"), bound beside
 * the ordered processors' suite to memory, SQLite + filesystem and DynamoDB + S3. fast-check
 * generates a shared processor (parallelism, batch size, attempts, backoff, how poison records
 * fail), a stream of good, flaky and poison records, and rounds in which runtime processes — each
 * with its own Engine and ShareGroups over its own fault-injecting view of the shared stores, all
 * on one simulated clock — start their runner, wake it, stop it, crash (every later call fails),
 * freeze past their locks and come back, restart as a new member, while the processor is paused
 * and resumed. Writes are lost before the store, applied with their answer lost, applied by a
 * process that then dies, or held up while the clock moves.
 *
 * Then the faults stop and a fresh runtime drains the group. Checked against the model:
 * - nothing is lost: the group settles (every share-partition's start reaches its high
 *   watermark), and every record ended accepted with all its outputs in the output topic, or
 *   dead-lettered;
 * - a poison record never has outputs and is dead-lettered; with the processor's headers at most
 *   once (the dead letter's idempotency key), with the policy's attempt count;
 * - outputs are at least once, and duplicated only by deliveries: no record's output is in the
 *   output topic more often than the handler answered its record with success.
 */
import { isSluiceError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { defineProcessor, type ProcessorOutput } from "@sluice/processor-sdk";
import { DEAD_LETTER_HEADERS as QUEUE_DEAD_LETTER_HEADERS, ShareGroups } from "@sluice/queues";
import {
  DelayingMetadataStore,
  type DelayPlan,
  type FaultPlan,
  FaultyMetadataStore,
  FaultyObjectStore,
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
import {
  type FailureStyle,
  type ProcessorsBackend,
  type ProcessorsScenarioOptions,
  ProcessStores,
  type RecordKind,
} from "./processors.scenarios.js";
import type { RunOutcome } from "./runner.js";
import { sharedGroupId } from "./shared-group.js";
import { SharedRunner } from "./shared-runner.js";
import { ProcessorStore } from "./store.js";
import { readAll, text } from "./test-support.js";

/** The ordered suite's backend and options: the shared one is bound the same way. */
export type SharedProcessorsBackend = ProcessorsBackend;
export type SharedProcessorsScenarioOptions = ProcessorsScenarioOptions;

type ActionKind = "run" | "run" | "wake" | "stop" | "crash" | "restart" | "freeze" | "idle";

interface Action {
  kind: ActionKind;
  rounds: number;
}

interface Round {
  advanceMs: number;
  /** Records produced this round: [partition, kind]. */
  produce: [number, RecordKind][];
  actions: Action[];
  admin: "none" | "pause" | "resume";
}

interface Scenario {
  partitions: number;
  parallelism: number;
  batchSize: number;
  maxAttempts: number;
  backoffMs: number;
  styles: FailureStyle[];
  processes: number;
  rounds: Round[];
  faults: FaultPlan;
  delays: DelayPlan;
  seed: number;
}

const TIMEOUT_MS = 600;
const SESSION_TIMEOUT_MS = 5_000;
const DRAIN_ADVANCE_MS = 500;
/** Past the locks of dead and frozen processes (timeout + 30 s) several times over. */
const DRAIN_ROUNDS_MAX = 1_000;

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc
    .record({ partitions: fc.integer({ min: 1, max: 3 }), processes: fc.integer({ min: 1, max: 3 }) })
    .chain(({ partitions, processes }) =>
      fc.record({
        partitions: fc.constant(partitions),
        parallelism: fc.integer({ min: 1, max: 4 }),
        batchSize: fc.integer({ min: 1, max: 5 }),
        maxAttempts: fc.integer({ min: 2, max: 4 }),
        backoffMs: fc.constantFrom(0, 150),
        styles: fc.subarray<FailureStyle>(["named", "throw", "hang", "garbage"], { minLength: 1 }),
        processes: fc.constant(processes),
        rounds: fc.array(
          fc.record({
            advanceMs: fc.constantFrom(50, 200, 700, 2_500),
            produce: fc.array(
              fc.tuple(
                fc.integer({ min: 0, max: partitions - 1 }),
                fc.constantFrom<RecordKind>("good", "good", "good", "flaky", "poison"),
              ),
              { maxLength: 5 },
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
                rounds: fc.integer({ min: 1, max: 5 }),
              }),
              { minLength: processes, maxLength: processes },
            ),
            admin: fc.constantFrom<"none" | "pause" | "resume">(
              "none",
              "none",
              "none",
              "none",
              "pause",
              "resume",
            ),
          }),
          { minLength: 6, maxLength: 20 },
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

export function runSharedProcessorScenarios(options: SharedProcessorsScenarioOptions): void {
  scenarioSuite(options, {
    protocol: "Shared processors",
    property:
      "runtimes that crash, freeze past their locks, lose answers and meet failing handlers lose no record: each ends accepted with its outputs, or dead-lettered",
    scenarios: scenarioArbitrary(),
    run: runScenario,
    runTimeoutMs: 60_000,
    timeoutMs: 240_000,
  });
}

interface Runtime {
  index: number;
  incarnation: number;
  stores: ProcessStores;
  shareGroups: ShareGroups;
  engine: Engine;
  frozenUntilRound: number;
  runner: { runner: SharedRunner; done: Promise<RunOutcome | undefined> } | undefined;
}

interface Produced {
  id: number;
  partition: number;
  offset: number;
  kind: RecordKind;
}

let runCounter = 0;

async function runScenario(backend: SharedProcessorsBackend, scenario: Scenario): Promise<void> {
  const run = `s${++runCounter}-${scenario.seed}`;
  const source = `ssrc-${run}`;
  const output = `sout-${run}`;
  const dead = `sdlq-${run}`;
  const name = `sproc-${run}`;
  const clock = new SimulatedClock({ seed: scenario.seed });
  const faults: FaultPlan = { ...scenario.faults };
  const delays: DelayPlan = { ...scenario.delays };
  const choose = seededChooser(scenario.seed);
  const chooseDelay = seededChooser(scenario.seed + 1);
  const chooseStyle = seededChooser(scenario.seed + 2);

  const recorder = new RecordingMetadataStore(backend.metadata, () => {});
  const producer = new Engine({ objects: backend.objects, metadata: recorder, clock });
  await producer.createTopic({ name: source, partitions: scenario.partitions });
  await producer.createTopic({ name: output, partitions: 2 });
  await producer.createTopic({ name: dead, partitions: 1 });
  const adminGroups = new ShareGroups({ engine: producer, metadata: recorder, clock });
  const admin = new ProcessorAdmin({ engine: producer, metadata: recorder, clock, shareGroups: adminGroups });
  await admin.create(
    {
      name,
      topics: [source],
      handler: { type: "module", module: "scenario" },
      output_topics: [output],
      dead_letter_topic: dead,
      starting_position: "EARLIEST",
      batch_size: scenario.batchSize,
      ordering: "SHARED",
      parallelism: scenario.parallelism,
      retry: {
        max_attempts: scenario.maxAttempts,
        backoff_ms: scenario.backoffMs,
        max_backoff_ms: 1_000,
        timeout_ms: TIMEOUT_MS,
      },
    },
    { allowModuleHandlers: true },
  );
  const uid = (await new ProcessorStore(recorder).get(name))!.uid;

  // The model: what was produced, how often the handler failed each record, and how often it
  // answered a record with success (each such answer may append its outputs once).
  const produced = new Map<string, Produced>();
  const failuresSeen = new Map<number, number>();
  const successes = new Map<number, number>();
  let nextId = 0;
  const encoder = new TextEncoder();
  const failing = (record: Produced) => {
    if (record.kind === "poison") return true;
    if (record.kind === "good") return false;
    const seen = failuresSeen.get(record.id) ?? 0;
    return seen < scenario.maxAttempts - 1;
  };
  const handler = defineProcessor(async (batch, ctx) => {
    const records = batch.records.map((record) => produced.get(`${batch.partition}:${record.offset}`)!);
    const failed = records.filter(failing);
    for (const record of failed) failuresSeen.set(record.id, (failuresSeen.get(record.id) ?? 0) + 1);
    const outputs: ProcessorOutput[] = [];
    for (const record of records) {
      if (failed.includes(record)) continue;
      outputs.push({ value: `out:${record.id}`, sourceOffset: record.offset });
      if (record.id % 3 === 0) outputs.push({ value: `out:${record.id}:b`, sourceOffset: record.offset });
    }
    const style =
      failed.length === 0
        ? "none"
        : failed.some((record) => record.kind === "poison")
          ? scenario.styles[Math.floor(chooseStyle() * scenario.styles.length)]!
          : "named";
    switch (style) {
      case "none":
      case "named":
        for (const record of records)
          if (!failed.includes(record)) successes.set(record.id, (successes.get(record.id) ?? 0) + 1);
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
  const failures: unknown[] = [];
  const runnerError = (event: { error: unknown }) => {
    // A dead or faulty process's worker may end with the error that killed it; anything else is a bug.
    if (
      !(event.error instanceof SimulatedCrashError) &&
      !(isSluiceError(event.error) && event.error.retryable)
    )
      failures.push(event.error);
  };

  function newStores(): ProcessStores {
    const delayed = new DelayingMetadataStore(recorder, clock, delays, chooseDelay);
    return new ProcessStores(
      new FaultyMetadataStore(delayed, faults, choose),
      new FaultyObjectStore(backend.objects, faults, choose),
    );
  }
  function newRuntime(index: number, incarnation: number): Runtime {
    const stores = newStores();
    const engine = new Engine({ objects: stores.objects, metadata: stores.metadata, clock });
    return {
      index,
      incarnation,
      stores,
      engine,
      shareGroups: new ShareGroups({
        engine,
        metadata: stores.metadata,
        clock,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
      }),
      frozenUntilRound: -1,
      runner: undefined,
    };
  }
  const runtimes = Array.from({ length: scenario.processes }, (_, index) => newRuntime(index, 0));

  const startRunner = async (runtime: Runtime) => {
    if (runtime.runner || runtime.stores.dead) return;
    const store = new ProcessorStore(runtime.stores.metadata);
    let definition: Awaited<ReturnType<ProcessorStore["get"]>>;
    try {
      definition = await store.get(name);
    } catch {
      return;
    }
    if (!definition || runtime.runner) return;
    const runner = new SharedRunner(
      {
        engine: runtime.engine,
        clock,
        handlers,
        store,
        shareGroups: runtime.shareGroups,
        memberId: `p${runtime.index}.${runtime.incarnation}`,
        lingerMs: 0,
        definitionRefreshMs: 300,
        events: { runnerError },
      },
      definition,
    );
    const entry = {
      runner,
      done: runner.run().then(
        (outcome) => outcome,
        (error: unknown) => {
          runnerError({ error });
          return undefined;
        },
      ),
    };
    runtime.runner = entry;
    void entry.done.finally(() => {
      if (runtime.runner === entry) runtime.runner = undefined;
    });
  };

  const act = async (runtime: Runtime, action: Action, roundIndex: number): Promise<Runtime> => {
    if (runtime.frozenUntilRound >= 0) {
      if (roundIndex < runtime.frozenUntilRound) return runtime;
      runtime.frozenUntilRound = -1;
      runtime.stores.thaw();
    }
    switch (action.kind) {
      case "run":
        await startRunner(runtime);
        break;
      case "wake":
        runtime.runner?.runner.wake();
        break;
      case "stop":
        runtime.runner?.runner.stop();
        break;
      case "crash":
        runtime.stores.dead = true;
        break;
      case "restart":
        // A new process: a new member; the dead one's records come back when its locks pass.
        if (runtime.stores.dead) return newRuntime(runtime.index, runtime.incarnation + 1);
        break;
      case "freeze":
        runtime.stores.freeze();
        runtime.frozenUntilRound = roundIndex + 1 + action.rounds;
        break;
      case "idle":
        break;
    }
    return runtime;
  };

  const produce = async (records: [number, RecordKind][]) => {
    for (const [partition, kind] of records) {
      const id = nextId++;
      const result = await producer.append({
        topic: source,
        records: [{ key: null, value: encoder.encode(`${kind}:${id}`), partition }],
      });
      const offset = result.records[0]!.offset;
      produced.set(`${partition}:${offset}`, { id, partition, offset, kind });
    }
  };

  for (const [roundIndex, round] of scenario.rounds.entries()) {
    await produce(round.produce);
    if (round.admin === "pause") await admin.pause(name);
    if (round.admin === "resume") await admin.resume(name);
    const next = await Promise.all(
      runtimes.map((runtime) => act(runtime, round.actions[runtime.index]!, roundIndex)),
    );
    runtimes.splice(0, runtimes.length, ...next);
    await clock.advance(round.advanceMs);
    if (failures.length > 0) throw failures[0];
  }

  // Faults stop; frozen processes come back; dead ones stay dead (their locks pass).
  faults.failBefore = 0;
  faults.loseAnswer = 0;
  faults.crashAfter = 0;
  delays.probability = 0;
  for (const runtime of runtimes) {
    runtime.frozenUntilRound = -1;
    runtime.stores.thaw();
  }
  await clock.advance(delays.maxMs);
  await admin.resume(name);
  const drainer = newRuntime(99, 0);
  let lastSeen = "";
  const settled = async () => {
    const described = await adminGroups.describe(sharedGroupId(uid));
    lastSeen = JSON.stringify({
      members: described.members.map((member) => [member.memberId, member.acquired]),
      partitions: described.partitions,
      drainer: drainer.runner ? drainer.runner.runner.activeWorkers : "not running",
    });
    return described.partitions.every(
      (partition) => partition.startOffset === partition.highWatermark && partition.lag === 0,
    );
  };
  let drainRounds = 0;
  while (!(await settled())) {
    expect(drainRounds++, `the group settles once the faults stop; last seen ${lastSeen}`).toBeLessThan(
      DRAIN_ROUNDS_MAX,
    );
    await startRunner(drainer);
    drainer.runner?.runner.wake();
    // Real I/O (SQLite, the emulator) gets its turn before simulated time moves on.
    await new Promise((resolve) => setImmediate(resolve));
    await clock.advance(DRAIN_ADVANCE_MS);
    if (failures.length > 0) throw failures[0];
  }
  for (const runtime of [...runtimes, drainer]) runtime.runner?.runner.stop();
  for (let settle = 0; settle < 200 && [...runtimes, drainer].some((runtime) => runtime.runner); settle++) {
    await clock.advance(DRAIN_ADVANCE_MS);
  }
  if (failures.length > 0) throw failures[0];

  // Outputs: counted per value.
  const outputCounts = new Map<string, number>();
  for (const record of await readAll(producer, output)) {
    const value = text(record.value)!;
    outputCounts.set(value, (outputCounts.get(value) ?? 0) + 1);
  }
  // Dead letters: the processor's (its headers) and the group's backstop (the queue's headers).
  const deadLetters = await readAll(producer, dead);
  const header = (record: (typeof deadLetters)[number], key: string) =>
    text(record.headers.find((candidate) => candidate.key === key)?.value ?? null);
  const processorLetters = new Map<string, number>();
  const backstopLetters = new Set<string>();
  for (const record of deadLetters) {
    const fromProcessor = header(record, DEAD_LETTER_HEADERS.offset);
    if (fromProcessor !== null) {
      const where = `${header(record, DEAD_LETTER_HEADERS.partition)}:${fromProcessor}`;
      processorLetters.set(where, (processorLetters.get(where) ?? 0) + 1);
      expect(header(record, DEAD_LETTER_HEADERS.processor)).toBe(name);
      expect(header(record, DEAD_LETTER_HEADERS.topic)).toBe(source);
      expect(Number(header(record, DEAD_LETTER_HEADERS.attempts)), `attempts of dead letter ${where}`).toBe(
        scenario.maxAttempts,
      );
    } else {
      const where = `${header(record, QUEUE_DEAD_LETTER_HEADERS.partition)}:${header(record, QUEUE_DEAD_LETTER_HEADERS.offset)}`;
      expect(
        header(record, QUEUE_DEAD_LETTER_HEADERS.offset),
        "a dead letter names its source",
      ).not.toBeNull();
      backstopLetters.add(where);
    }
  }

  for (const record of produced.values()) {
    const where = `${record.partition}:${record.offset}`;
    const values = [`out:${record.id}`, ...(record.id % 3 === 0 ? [`out:${record.id}:b`] : [])];
    const deadLettered = processorLetters.has(where) || backstopLetters.has(where);
    expect(
      processorLetters.get(where) ?? 0,
      `record ${where} dead-lettered by the processor at most once`,
    ).toBeLessThanOrEqual(1);
    if (record.kind === "poison") {
      for (const value of values)
        expect(outputCounts.get(value) ?? 0, `poison record ${where} has no outputs`).toBe(0);
      expect(deadLettered, `poison record ${where} is dead-lettered`).toBe(true);
      continue;
    }
    const complete = values.every((value) => (outputCounts.get(value) ?? 0) >= 1);
    expect(
      complete || deadLettered,
      `record ${where} (${record.kind}) ended with its outputs or dead-lettered`,
    ).toBe(true);
    // At least once, duplicated only by deliveries the handler answered.
    for (const value of values) {
      expect(
        outputCounts.get(value) ?? 0,
        `output ${value} appended at most once per successful handler answer`,
      ).toBeLessThanOrEqual(successes.get(record.id) ?? 0);
    }
  }
  // Nothing else in the output topic.
  const known = new Set(
    [...produced.values()].flatMap((record) => [`out:${record.id}`, `out:${record.id}:b`]),
  );
  for (const value of outputCounts.keys())
    expect(known.has(value), `output ${value} belongs to a record`).toBe(true);
}
