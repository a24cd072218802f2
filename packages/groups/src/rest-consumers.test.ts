import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import type { TopicPartition } from "./assignors/assignor.js";
import { ConsumerGroups } from "./consumer-groups.js";
import { instanceKey } from "./keys.js";
import { type PolledRecord, RestConsumers } from "./rest-consumers.js";

let clock: SimulatedClock;
let engine: Engine;
let metadata: MemoryMetadataStore;
let groups: ConsumerGroups;
let consumers: RestConsumers;
const SESSION = 10_000;

beforeEach(async () => {
  clock = new SimulatedClock({ seed: 3 });
  metadata = new MemoryMetadataStore();
  engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  groups = new ConsumerGroups({ engine, metadata, clock });
  consumers = new RestConsumers({ groups, engine, metadata, clock, sessionTimeoutMs: SESSION });
  await engine.createTopic({ name: "orders", partitions: 4 });
});

async function produce(partition: number, values: string[]): Promise<void> {
  await engine.append({
    topic: "orders",
    records: values.map((value) => ({ key: null, value: new TextEncoder().encode(value), partition })),
  });
}

const names = (partitions: TopicPartition[]) => partitions.map((tp) => `${tp.topic}-${tp.partition}`);
const values = (records: PolledRecord[]) =>
  records.map((polled) => `${polled.partition}:${new TextDecoder().decode(polled.record.value!)}`);

/** Lets the poll in flight reach its wait: it has set a timer on the simulated clock. */
async function untilWaiting(): Promise<void> {
  for (let turn = 0; turn < 1_000 && clock.pendingTimers === 0; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(clock.pendingTimers, "the poll never started waiting").toBeGreaterThan(0);
}

describe("REST consumer instances", () => {
  it("keeps the instance in the store: a second RestConsumers over the same store serves it", async () => {
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest" });
    await produce(0, ["x"]);
    const elsewhere = new RestConsumers({ groups, engine, metadata, clock, sessionTimeoutMs: SESSION });
    await elsewhere.subscribe("g", "a", ["orders"]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0 }))).toEqual(["0:x"]);
    // The position moved in the store: the other one goes on from there.
    expect(await elsewhere.poll("g", "a", { timeoutMs: 0 })).toEqual([]);
    expect((await metadata.get(instanceKey("g", "a")))?.positions).toMatchObject({ "orders#0": 1 });
  });

  it("refuses a name in use (40902) and a bad name, and answers 40403 for an unknown instance", async () => {
    await consumers.create("g", { name: "a" });
    await expect(consumers.create("g", { name: "a" })).rejects.toMatchObject({
      kind: "conflict",
      restErrorCode: 40902,
    });
    await expect(consumers.create("g", { name: "no spaces" })).rejects.toMatchObject({
      kind: "invalid_argument",
    });
    await expect(consumers.poll("g", "ghost")).rejects.toMatchObject({
      kind: "not_found",
      restErrorCode: 40403,
    });
    const generated = await consumers.create("g");
    expect(generated.name).toMatch(/^rest-consumer-[0-9a-f]{16}$/);
  });

  it("refuses a poll before a subscription, and a subscription to a topic that does not exist", async () => {
    await consumers.create("g", { name: "a" });
    await expect(consumers.poll("g", "a")).rejects.toMatchObject({
      kind: "conflict",
      restErrorCode: 40903,
      message: expect.stringContaining("not subscribed"),
    });
    await expect(consumers.subscribe("g", "a", ["nope"])).rejects.toMatchObject({
      kind: "not_found",
      restErrorCode: 40401,
    });
    expect((await consumers.get("g", "a")).subscription).toEqual([]);
  });

  it("shares the partitions between two instances, never one partition in both, and moves them when one is deleted", async () => {
    for (let partition = 0; partition < 4; partition++) await produce(partition, [`p${partition}`]);
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest" });
    await consumers.create("g", { name: "b", autoOffsetReset: "earliest" });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.subscribe("g", "b", ["orders"]);
    // a gives up b's share at its next poll; b takes it at its own.
    const fromA = await consumers.poll("g", "a", { timeoutMs: 0 });
    const fromB = await consumers.poll("g", "b", { timeoutMs: 0 });
    const a = await consumers.assignments("g", "a");
    const b = await consumers.assignments("g", "b");
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    expect(new Set([...names(a), ...names(b)]).size).toBe(4);
    expect(fromA.every((polled) => names(a).includes(`orders-${polled.partition}`))).toBe(true);
    expect(fromB.every((polled) => names(b).includes(`orders-${polled.partition}`))).toBe(true);
    expect(values([...fromA, ...fromB]).sort()).toEqual(["0:p0", "1:p1", "2:p2", "3:p3"]);

    await consumers.delete("g", "a");
    await expect(consumers.get("g", "a")).rejects.toMatchObject({ restErrorCode: 40403 });
    // a's auto-commit on close: its partitions continue where it stopped, not from the start.
    expect(await consumers.poll("g", "b", { timeoutMs: 0 })).toEqual([]);
    expect(names(await consumers.assignments("g", "b"))).toEqual([
      "orders-0",
      "orders-1",
      "orders-2",
      "orders-3",
    ]);
  });

  it("auto-commits at the start of a poll what the previous poll returned, and only then", async () => {
    await produce(1, ["a", "b", "c"]);
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest" });
    await consumers.subscribe("g", "a", ["orders"]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0 }))).toEqual(["1:a", "1:b", "1:c"]);
    const committed = async () =>
      (await groups.committed("g")).filter((offset) => offset.partition === 1).map((offset) => offset.offset);
    // Returned but not yet processed: nothing committed until the next poll.
    expect(await committed()).toEqual([]);
    await consumers.poll("g", "a", { timeoutMs: 0 });
    expect(await committed()).toEqual([3]);
  });

  it("commits nothing by itself with auto-commit off; a commit without offsets commits the positions", async () => {
    await produce(2, ["a", "b"]);
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest", autoCommit: false });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.poll("g", "a", { timeoutMs: 0 });
    await consumers.poll("g", "a", { timeoutMs: 0 });
    expect(await groups.committed("g")).toEqual([]);
    const done = await consumers.commit("g", "a");
    expect(done.find((commit) => commit.partition === 2)).toMatchObject({ offset: 2 });
    expect(await consumers.committed("g", "a", [{ topic: "orders", partition: 2 }])).toEqual([
      { topic: "orders", partition: 2, offset: 2, metadata: "" },
    ]);
  });

  it("starts from the committed offset, else auto.offset.reset; none with nothing committed is a 409", async () => {
    await produce(0, ["a", "b", "c"]);
    await consumers.create("g", { name: "latest", autoCommit: false });
    await consumers.subscribe("g", "latest", ["orders"]);
    expect(await consumers.poll("g", "latest", { timeoutMs: 0 })).toEqual([]);
    await produce(0, ["d"]);
    expect(values(await consumers.poll("g", "latest", { timeoutMs: 0 }))).toEqual(["0:d"]);
    await consumers.commit("g", "latest", [{ topic: "orders", partition: 0, offset: 1 }]);
    await consumers.delete("g", "latest");

    await consumers.create("g", { name: "none", autoOffsetReset: "none", autoCommit: false });
    await consumers.subscribe("g", "none", ["orders"]);
    await expect(consumers.poll("g", "none", { timeoutMs: 0 })).rejects.toMatchObject({
      kind: "conflict",
      code: "NO_OFFSET_FOR_PARTITION",
    });
    expect(await consumers.assignments("g", "none")).toHaveLength(4);
  });

  it("seeks to an offset, the beginning and the end, only on its own partitions", async () => {
    await produce(3, ["a", "b", "c", "d"]);
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest", autoCommit: false });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.seek("g", "a", [{ topic: "orders", partition: 3, offset: 2 }]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0 }))).toEqual(["3:c", "3:d"]);
    await consumers.seekToBeginning("g", "a", [{ topic: "orders", partition: 3 }]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0 }))).toEqual(["3:a", "3:b", "3:c", "3:d"]);
    await consumers.seekToEnd("g", "a", [{ topic: "orders", partition: 3 }]);
    await produce(3, ["e"]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0 }))).toEqual(["3:e"]);
    await expect(
      consumers.seek("g", "a", [{ topic: "orders", partition: 9, offset: 0 }]),
    ).rejects.toMatchObject({ kind: "conflict", restErrorCode: 40903 });
  });

  it("returns about max_bytes of keys and values, at least one record, and goes on from there", async () => {
    await produce(0, ["aaaa", "bbbb", "cccc"]);
    await consumers.create("g", { name: "a", autoOffsetReset: "earliest" });
    await consumers.subscribe("g", "a", ["orders"]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0, maxBytes: 2 }))).toEqual(["0:aaaa"]);
    expect(values(await consumers.poll("g", "a", { timeoutMs: 0, maxBytes: 8 }))).toEqual([
      "0:bbbb",
      "0:cccc",
    ]);
  });

  it("refuses a commit of a partition it does not own, writing nothing", async () => {
    await consumers.create("g", { name: "a" });
    await consumers.create("g", { name: "b" });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.subscribe("g", "b", ["orders"]);
    await consumers.poll("g", "a", { timeoutMs: 0 });
    const owned = names(await consumers.assignments("g", "a"));
    const other = [0, 1, 2, 3].find((partition) => !owned.includes(`orders-${partition}`))!;
    await expect(
      consumers.commit("g", "a", [{ topic: "orders", partition: other, offset: 0 }]),
    ).rejects.toMatchObject({ kind: "fenced", code: "FENCED_MEMBER_EPOCH" });
    expect(await groups.committed("g")).toEqual([]);
  });

  it("long-polls: wakes on a commit to one of its partitions, or answers empty at the timeout", async () => {
    await consumers.create("g", { name: "a" });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.poll("g", "a", { timeoutMs: 0 });
    const started = clock.now();
    const woken = consumers.poll("g", "a", { timeoutMs: 5_000 });
    await untilWaiting();
    await produce(2, ["late"]);
    expect(values(await woken)).toEqual(["2:late"]);
    expect(clock.now()).toBe(started);

    let settled = false;
    const idle = consumers.poll("g", "a", { timeoutMs: 2_500 }).finally(() => {
      settled = true;
    });
    await untilWaiting();
    for (let step = 0; step < 20 && !settled; step++) await clock.advance(500);
    expect(await idle).toEqual([]);
    expect(clock.now() - started).toBeGreaterThanOrEqual(2_500);
  });

  it("expires with its session: 40403 afterwards, and its partitions go to the instance that is still polling", async () => {
    await consumers.create("g", { name: "a" });
    await consumers.create("g", { name: "b" });
    await consumers.subscribe("g", "a", ["orders"]);
    await consumers.subscribe("g", "b", ["orders"]);
    await consumers.poll("g", "a", { timeoutMs: 0 });
    await consumers.poll("g", "b", { timeoutMs: 0 });
    // b keeps polling; a goes silent past its session.
    for (let step = 0; step < 4; step++) {
      await clock.advance(SESSION / 3);
      await consumers.poll("g", "b", { timeoutMs: 0 });
    }
    await expect(consumers.get("g", "a")).rejects.toMatchObject({ restErrorCode: 40403 });
    await expect(consumers.poll("g", "a", { timeoutMs: 0 })).rejects.toMatchObject({ restErrorCode: 40403 });
    await consumers.poll("g", "b", { timeoutMs: 0 });
    expect(await consumers.assignments("g", "b")).toHaveLength(4);
    // The name is free again.
    await consumers.create("g", { name: "a" });
  });

  it("unsubscribes: leaves the group and keeps the instance", async () => {
    await consumers.create("g", { name: "a" });
    await consumers.subscribe("g", "a", ["orders"]);
    expect((await groups.describe("g")).members).toHaveLength(1);
    await consumers.unsubscribe("g", "a");
    expect((await groups.describe("g")).members).toHaveLength(0);
    expect(await consumers.get("g", "a")).toMatchObject({ subscription: [], memberId: null, assignment: [] });
  });
});
