import { ConflictError, FencedError, NotFoundError, UnavailableError } from "@sluice/core";
import { cond, type Item, type MetadataStore, type TransactOperation } from "@sluice/storage";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingMetadataStore, CountingObjectStore, SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../engine.js";
import { TransactionTooLargeError } from "../errors.js";

const text = new TextEncoder();
const decode = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const record = (value: string, key: string | null = null, partition?: number) => ({
  key: key === null ? null : text.encode(key),
  value: text.encode(value),
  ...(partition === undefined ? {} : { partition }),
});

const checkpointKey = { pk: "caller", sk: "checkpoint" };
/** The caller's own operation: move its checkpoint item from `version` to `version + 1`. */
const moveCheckpoint = (version: number, commitId: string): TransactOperation => ({
  kind: "update",
  key: checkpointKey,
  changes: { set: { version: version + 1, commitId } },
  condition: version === 0 ? cond.notExists("version") : cond.eq("version", version),
});
const judgeBy = (commitId: string) => (failures: { current: Item | undefined }[]) =>
  failures[0]?.current?.commitId === commitId
    ? ("committed" as const)
    : new ConflictError(`checkpoint moved to ${String(failures[0]?.current?.version)}`);

/** Applies the first `count` transactions and then loses their answers (a timeout after the write). */
class LosingAnswers implements MetadataStore {
  lost = 0;
  constructor(
    private readonly inner: MetadataStore,
    private count: number,
  ) {}
  get = (key: Parameters<MetadataStore["get"]>[0]) => this.inner.get(key);
  put = (...args: Parameters<MetadataStore["put"]>) => this.inner.put(...args);
  update = (...args: Parameters<MetadataStore["update"]>) => this.inner.update(...args);
  delete = (...args: Parameters<MetadataStore["delete"]>) => this.inner.delete(...args);
  query = (...args: Parameters<MetadataStore["query"]>) => this.inner.query(...args);
  async transactWrite(operations: readonly TransactOperation[]) {
    await this.inner.transactWrite(operations);
    if (this.count > 0) {
      this.count--;
      this.lost++;
      throw new UnavailableError("answer lost");
    }
  }
}

let objects: CountingObjectStore;
let metadata: CountingMetadataStore;
let clock: SimulatedClock;
let engine: Engine;

beforeEach(async () => {
  objects = new CountingObjectStore(new MemoryObjectStore());
  metadata = new CountingMetadataStore(new MemoryMetadataStore());
  clock = new SimulatedClock();
  engine = new Engine({ objects, metadata, clock });
  await engine.createTopic({ name: "enriched", partitions: 4 });
  await engine.createTopic({ name: "dead", partitions: 1 });
});

async function values(topic: string, partition: number): Promise<(string | null)[]> {
  const fetched = await new Engine({ objects, metadata, clock }).fetch({ topic, partition, offset: 0 });
  return fetched.records.map((consumed) => decode(consumed.value));
}

describe("appendTransactional", () => {
  it("appends to several topics and applies the caller's operations in one transaction", async () => {
    metadata.reset();
    const result = await engine.appendTransactional({
      appends: [
        { topic: "enriched", records: [record("a", null, 1), record("b", null, 1), record("c", null, 3)] },
        { topic: "dead", records: [record("poison")] },
        { topic: "enriched", records: [record("d", null, 1)] },
      ],
      operations: [moveCheckpoint(0, "c1")],
    });
    expect(metadata.calls.transactWrite).toBe(1);
    expect(result.appends.map((append) => append.records.map((r) => `${r.partition}:${r.offset}`))).toEqual([
      ["1:0", "1:1", "3:0"],
      ["0:0"],
      ["1:2"],
    ]);
    expect(await values("enriched", 1)).toEqual(["a", "b", "d"]);
    expect(await values("enriched", 3)).toEqual(["c"]);
    expect(await values("dead", 0)).toEqual(["poison"]);
    expect(await metadata.get(checkpointKey)).toMatchObject({ version: 1, commitId: "c1" });
  });

  it("writes nothing when a caller condition fails, and throws the judge's error", async () => {
    await engine.appendTransactional({ appends: [], operations: [moveCheckpoint(0, "first")] });
    const fenced = new FencedError("lost the lease");
    await expect(
      engine.appendTransactional({
        appends: [{ topic: "enriched", records: [record("x", null, 0)] }],
        operations: [moveCheckpoint(0, "second")],
        judge: () => fenced,
      }),
    ).rejects.toBe(fenced);
    expect((await engine.partitionOffsets("enriched", 0)).highWatermark).toBe(0);
    expect(await metadata.get(checkpointKey)).toMatchObject({ version: 1, commitId: "first" });
  });

  it("recognises its own commit after a lost answer by the object key in the index entry", async () => {
    const losing = new LosingAnswers(metadata, 1);
    const lossy = new Engine({ objects, metadata: losing, clock });
    const appendTime = clock.now();
    const result = await lossy.appendTransactional({
      appends: [{ topic: "enriched", records: [record("once", null, 2)] }],
      operations: [moveCheckpoint(0, "c1")],
      judge: () => new ConflictError("the judge is not asked: the index entry decides first"),
    });
    expect(losing.lost).toBe(1);
    expect(result.appends[0]!.records).toEqual([{ partition: 2, offset: 0, timestamp: appendTime }]);
    expect(await values("enriched", 2)).toEqual(["once"]);
  });

  it("recognises its own commit after a lost answer through the judge when it appends nothing", async () => {
    const losing = new LosingAnswers(metadata, 1);
    const lossy = new Engine({ objects, metadata: losing, clock });
    await lossy.appendTransactional({
      appends: [],
      operations: [moveCheckpoint(0, "c1")],
      judge: judgeBy("c1"),
    });
    expect(losing.lost).toBe(1);
    expect(await metadata.get(checkpointKey)).toMatchObject({ version: 1, commitId: "c1" });
  });

  it("retries with the current head when another process appended meanwhile, uploading once", async () => {
    await engine.appendTransactional({
      appends: [{ topic: "enriched", records: [record("a", null, 0)] }],
      operations: [],
    });
    // Another process moves the head; this engine's cached head is now stale.
    await new Engine({ objects, metadata, clock }).append({
      topic: "enriched",
      records: [record("b", null, 0)],
    });
    objects.reset();
    metadata.reset();
    const result = await engine.appendTransactional({
      appends: [{ topic: "enriched", records: [record("c", null, 0)] }],
      operations: [moveCheckpoint(0, "c1")],
    });
    expect(result.appends[0]!.records[0]!.offset).toBe(2);
    expect(objects.calls.put).toBe(1);
    expect(metadata.calls.transactWrite).toBe(2);
    expect(await values("enriched", 0)).toEqual(["a", "b", "c"]);
  });

  it("routes keyed records as the plain append does", async () => {
    const plain = await engine.append({ topic: "enriched", records: [record("p", "customer-7")] });
    const result = await engine.appendTransactional({
      appends: [{ topic: "enriched", records: [record("t", "customer-7")] }],
      operations: [],
    });
    expect(result.appends[0]!.records[0]!.partition).toBe(plain.records[0]!.partition);
  });

  it("refuses a transaction over 100 operations before uploading anything", async () => {
    await engine.createTopic({ name: "wide", partitions: 60 });
    objects.reset();
    metadata.reset();
    const records = Array.from({ length: 50 }, (_, partition) => record(`r${partition}`, null, partition));
    const error = await engine
      .appendTransactional({ appends: [{ topic: "wide", records }], operations: [moveCheckpoint(0, "c1")] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransactionTooLargeError);
    expect((error as TransactionTooLargeError).details).toEqual({ operations: 102, limit: 100 });
    expect(objects.writes).toBe(0);
    expect(metadata.writes).toBe(0);
    // 49 partitions and the caller's operation fit exactly.
    await expect(
      engine.appendTransactional({
        appends: [{ topic: "wide", records: records.slice(0, 49) }],
        operations: [moveCheckpoint(0, "c1")],
      }),
    ).resolves.toBeDefined();
  });

  it("names an output topic deleted while appending", async () => {
    const stale = new Engine({ objects, metadata, clock });
    await stale.describeTopic("dead"); // cached by the stale process
    await engine.deleteTopic("dead");
    await engine.createTopic({ name: "dead", partitions: 1 });
    const error = await stale
      .appendTransactional({ appends: [{ topic: "dead", records: [record("x")] }], operations: [] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).details).toEqual({ topic: "dead" });
    expect((await engine.partitionOffsets("dead", 0)).highWatermark).toBe(0);
  });

  it("refuses an unknown topic and a record over the topic's limit, naming the topic", async () => {
    await expect(
      engine.appendTransactional({ appends: [{ topic: "nope", records: [record("x")] }], operations: [] }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await engine.updateTopicConfigs("dead", { "max.message.bytes": "10" });
    await expect(
      engine.appendTransactional({
        appends: [{ topic: "dead", records: [record("far too long for it")] }],
        operations: [],
      }),
    ).rejects.toThrow(/records for topic dead: record 0 is 19 bytes/);
  });

  it("hedges a late upload as the plain append does: the second upload's object is the one committed", async () => {
    const memory = new MemoryObjectStore();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const keys: string[] = [];
    // The first upload answers only when released; later ones at once.
    const slowFirst = Object.assign(Object.create(memory) as MemoryObjectStore, {
      put: async (...args: Parameters<MemoryObjectStore["put"]>) => {
        keys.push(args[0]);
        if (keys.length === 1) await held;
        return memory.put(...args);
      },
    });
    const hedging = new Engine({ objects: slowFirst, metadata, clock, uploadHedgeAfterMs: 50 });
    await hedging.createTopic({ name: "hedged", partitions: 1 });
    const appending = hedging.appendTransactional({
      appends: [{ topic: "hedged", records: [record("a", null, 0)] }],
      operations: [moveCheckpoint(0, "h1")],
    });
    await clock.advance(49);
    expect(keys).toHaveLength(1);
    await clock.advance(1);
    const result = await appending;
    expect(keys).toHaveLength(2);
    expect(result.appends[0]!.records.map((r) => `${r.partition}:${r.offset}`)).toEqual(["0:0"]);
    // Committed and readable while the first upload is still unanswered: the index names the second.
    const fetched = await new Engine({ objects: memory, metadata, clock }).fetch({
      topic: "hedged",
      partition: 0,
      offset: 0,
    });
    expect(fetched.records.map((consumed) => decode(consumed.value))).toEqual(["a"]);
    await expect(memory.get(keys[0]!)).rejects.toBeInstanceOf(NotFoundError);
    release();
  });

  it("tells commit listeners of every partition it moved", async () => {
    const seen: string[] = [];
    const stop = engine.onCommit((topicId, partition, highWatermark) =>
      seen.push(`${topicId}:${partition}:${highWatermark}`),
    );
    const enriched = await engine.describeTopic("enriched");
    await engine.appendTransactional({
      appends: [
        { topic: "enriched", records: [record("a", null, 1), record("b", null, 1), record("c", null, 2)] },
      ],
      operations: [],
    });
    await engine.append({ topic: "enriched", records: [record("d", null, 2)] });
    stop();
    await engine.append({ topic: "enriched", records: [record("e", null, 2)] });
    expect(seen).toEqual([`${enriched.topicId}:1:2`, `${enriched.topicId}:2:1`, `${enriched.topicId}:2:2`]);
  });
});
