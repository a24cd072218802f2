import { Engine, type ProduceRecord, type RecordOutcome } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppendCoalescer } from "./append-coalescer.js";

const PARTITIONS = 3;

/** A coalescer over a real engine; each append waits for `gate` first (open unless a test holds it). */
async function setUp(gate: () => Promise<void> = async () => undefined) {
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() });
  await engine.createTopic({ name: "t", partitions: PARTITIONS });
  const appends: number[] = [];
  const coalescer = new AppendCoalescer(async (topic, records) => {
    appends.push(records.length);
    await gate();
    return engine.appendInChunks({ topic, records });
  });
  return { engine, coalescer, appends };
}

const text = new TextEncoder();
const record = (value: string, partition?: number): ProduceRecord => ({
  key: null,
  value: text.encode(value),
  ...(partition === undefined ? {} : { partition }),
});

/** Every record of every partition, as partition → offset → value. */
async function stored(engine: Engine): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const page = await engine.fetch({ topic: "t", partition, offset: 0, maxRecords: 10_000 });
    for (const each of page.records) {
      found.set(`${partition}:${each.offset}`, new TextDecoder().decode(each.value ?? new Uint8Array()));
    }
  }
  return found;
}

/** Resolves in a later turn of the event loop. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function where(outcome: RecordOutcome): string {
  if (!outcome.ok) throw new Error(`expected a written record, got ${String(outcome.error)}`);
  return `${outcome.appended.partition}:${outcome.appended.offset}`;
}

describe("AppendCoalescer", () => {
  it("joins requests of at most 100 records", () => {
    const records = (count: number) => Array.from({ length: count }, () => record("x"));
    expect(AppendCoalescer.joins(records(1))).toBe(true);
    expect(AppendCoalescer.joins(records(100))).toBe(true);
    expect(AppendCoalescer.joins(records(101))).toBe(false);
  });

  it("appends a request alone when no other arrives beside it", async () => {
    const { engine, coalescer, appends } = await setUp();
    const outcomes = await coalescer.appendRecords("t", [record("a", 1), record("b", 1)]);
    expect(appends).toEqual([2]);
    expect(outcomes.map(where)).toEqual(["1:0", "1:1"]);
    expect(await stored(engine)).toEqual(
      new Map([
        ["1:0", "a"],
        ["1:1", "b"],
      ]),
    );
  });

  it("appends at once, waiting for nothing, while requests come one at a time", async () => {
    const { coalescer, appends } = await setUp();
    for (let request = 1; request <= 3; request++) {
      await nextTurn(); // the next request comes in a later turn, as one producer's do
      const outcome = coalescer.appendRecords("t", [record(`r${request}`, 0)]);
      // Handed to the engine before this call returned: no turn of the event loop waited for.
      expect(appends).toHaveLength(request);
      expect((await outcome)[0]!.ok).toBe(true);
    }
  });

  it("waits for the turn's end once requests came side by side, until eight appends in a row were alone", async () => {
    const { coalescer, appends } = await setUp();
    // "a" is appended at once; "b", asked for in the same turn, waits for its end: an append of one.
    await Promise.all([
      coalescer.appendRecords("t", [record("a", 0)]),
      coalescer.appendRecords("t", [record("b", 0)]),
    ]);
    expect(appends).toEqual([1, 1]);
    // Seven more appends of one request, each waiting for its turn's end: eight in a row.
    for (let request = 0; request < 7; request++) {
      await nextTurn();
      const outcome = coalescer.appendRecords("t", [record(`late ${request}`, 0)]);
      expect(appends).toHaveLength(2 + request);
      await outcome;
      expect(appends).toHaveLength(3 + request);
    }
    await nextTurn();
    void coalescer.appendRecords("t", [record("at once again", 0)]);
    expect(appends).toHaveLength(10);
  });

  it("keeps joining while requests keep coming side by side", async () => {
    const { coalescer, appends } = await setUp();
    for (let turn = 0; turn < 12; turn++) {
      await nextTurn();
      await Promise.all(["a", "b", "c"].map((value) => coalescer.appendRecords("t", [record(value, 0)])));
    }
    // The first turn shows requests side by side (its first is appended at once); every later
    // turn's three go together.
    expect(appends).toEqual([1, 2, ...Array.from({ length: 11 }, () => 3)]);
  });

  it("appends the first request of a turn at once and joins the ones beside it, each answered with its own records", async () => {
    const { engine, coalescer, appends } = await setUp();
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, request) =>
        coalescer.appendRecords(
          "t",
          Array.from({ length: request + 1 }, (_, index) =>
            record(`r${request}.${index}`, request % PARTITIONS),
          ),
        ),
      ),
    );
    expect(appends).toEqual([1, 20]);
    const found = await stored(engine);
    expect(found.size).toBe(21);
    answers.forEach((outcomes, request) => {
      expect(outcomes).toHaveLength(request + 1);
      outcomes.forEach((outcome, index) => {
        expect(found.get(where(outcome))).toBe(`r${request}.${index}`);
      });
    });
  });

  it("holds the requests that arrive while an append is in flight, then appends them together", async () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { engine, coalescer, appends } = await setUp(() => opened);
    const first = coalescer.appendRecords("t", [record("first", 0)]);
    // The first append has started (and waits at the gate) once this turn's I/O has run.
    await new Promise((resolve) => setImmediate(resolve));
    expect(appends).toEqual([1]);
    const later = ["a", "b", "c"].map((value) => coalescer.appendRecords("t", [record(value, 1)]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(appends).toEqual([1]);
    open();
    const answers = await Promise.all([first, ...later]);
    expect(appends).toEqual([1, 3]);
    const found = await stored(engine);
    expect(answers.map((outcomes) => found.get(where(outcomes[0]!)))).toEqual(["first", "a", "b", "c"]);
  });

  it("bounds a joined append by records and bytes, the rest going in the next", async () => {
    const { engine, coalescer, appends } = await setUp();
    const many = Array.from({ length: 102 }, (_, request) =>
      coalescer.appendRecords(
        "t",
        Array.from({ length: 10 }, (_, index) => record(`${request}.${index}`, 0)),
      ),
    );
    await Promise.all(many);
    // The first request alone (nothing had come side by side yet), then 1,000 records, then the rest.
    expect(appends).toEqual([10, 1000, 10]);
    appends.length = 0;
    const big = "x".repeat(400 * 1024);
    const large = Array.from({ length: 5 }, () => coalescer.appendRecords("t", [record(big, 1)]));
    const outcomes = await Promise.all(large);
    expect(appends).toEqual([2, 2, 1]);
    expect(outcomes.every((each) => each[0]!.ok)).toBe(true);
    expect((await engine.partitionOffsets("t", 0)).highWatermark).toBe(1020);
    expect((await engine.partitionOffsets("t", 1)).highWatermark).toBe(5);
    // A request over the bound on its own still goes (alone), and is answered.
    appends.length = 0;
    const [alone] = await coalescer.appendRecords("t", [record("x".repeat(1100 * 1024), 2)]);
    expect(appends).toEqual([1]);
    expect(alone!.ok).toBe(false);
  });

  it("appends each joined request again on its own when the engine refuses the joined append", async () => {
    const { engine, coalescer, appends } = await setUp();
    const first = coalescer.appendRecords("t", [record("first", 0)]);
    const good = coalescer.appendRecords("t", [record("good", 1)]);
    // Partition 7 does not exist: the engine refuses the whole append before it writes anything.
    const bad = coalescer.appendRecords("t", [record("bad", 7)]);
    const alsoGood = coalescer.appendRecords("t", [record("also good", 2)]);
    const [, goodOutcomes, badOutcomes, alsoGoodOutcomes] = await Promise.all([first, good, bad, alsoGood]);
    expect(appends).toEqual([1, 3, 1, 1, 1]);
    const badOutcome = badOutcomes[0]!;
    expect(badOutcome.ok).toBe(false);
    // The refusal names the request's own record (its first), not its place in the joined append.
    expect(String(!badOutcome.ok && badOutcome.error)).toMatch(/^.*record 0: partition 7 does not exist/);
    const found = await stored(engine);
    expect([...found.values()].sort()).toEqual(["also good", "first", "good"]);
    expect(found.get(where(goodOutcomes[0]!))).toBe("good");
    expect(found.get(where(alsoGoodOutcomes[0]!))).toBe("also good");
  });

  it("tells every joined request of a failure that is not about its records", async () => {
    const { coalescer, appends } = await setUp();
    const answers = await Promise.all(
      ["a", "b", "c", "d"].map((value) => coalescer.appendRecords("missing", [record(value)])),
    );
    expect(appends).toEqual([1, 3]);
    for (const outcomes of answers) {
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]!.ok).toBe(false);
      expect(String(!outcomes[0]!.ok && outcomes[0]!.error)).toMatch(/missing/);
    }
  });

  it("loses, repeats and misplaces no record, whatever requests run side by side", async () => {
    let joinedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            records: fc.integer({ min: 1, max: 4 }),
            partition: fc.option(fc.integer({ min: 0, max: PARTITIONS }), { nil: undefined }),
            startAfter: fc.integer({ min: 0, max: 3 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (requests) => {
          const { engine, coalescer, appends } = await setUp();
          // Requests start in waves (after 0–3 earlier appends ended), so some find an append in
          // flight and some an idle topic.
          const answers: Promise<RecordOutcome[]>[] = [];
          for (let wave = 0; wave <= 3; wave++) {
            requests.forEach((request, index) => {
              if (request.startAfter !== wave) return;
              answers[index] = coalescer.appendRecords(
                "t",
                Array.from({ length: request.records }, (_, at) =>
                  record(`${index}.${at}`, request.partition),
                ),
              );
            });
            await Promise.all(answers.filter(Boolean));
          }
          const outcomes = await Promise.all(answers);
          const found = await stored(engine);
          let written = 0;
          requests.forEach((request, index) => {
            expect(outcomes[index]).toHaveLength(request.records);
            outcomes[index]!.forEach((outcome, at) => {
              if (request.partition === PARTITIONS) {
                // The partition that does not exist: refused, and nothing of it stored.
                expect(outcome.ok).toBe(false);
                return;
              }
              expect(found.get(where(outcome))).toBe(`${index}.${at}`);
              written++;
            });
          });
          expect(found.size).toBe(written);
          if (appends.length < requests.length) joinedRuns++;
        },
      ),
      { numRuns: 150 },
    );
    // The runs reached what the property is about: requests joined into fewer appends.
    expect(joinedRuns).toBeGreaterThan(15);
  });
});
