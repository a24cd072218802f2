import { ConflictError, FencedError, InvalidArgumentError } from "@sluice/core";
import { Engine, PENDING_UPLOAD_MS } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock, withPut } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import type { AcknowledgeType } from "./acknowledge.js";
import type { ShareGroupConfigs } from "./configs.js";
import { DEAD_LETTER_HEADERS } from "./dead-letters.js";
import { batchSortKey, sharePartitionPk } from "./keys.js";
import { ShareGroups } from "./share-groups.js";

let clock: SimulatedClock;
let engine: Engine;
let metadata: MemoryMetadataStore;
let objects: MemoryObjectStore;
let queues: ShareGroups;
const LOCK = 10_000;

beforeEach(async () => {
  clock = new SimulatedClock({ seed: 3, sleeps: "wait" });
  metadata = new MemoryMetadataStore();
  objects = new MemoryObjectStore();
  engine = new Engine({ objects, metadata, clock });
  queues = new ShareGroups({ engine, metadata, clock, sessionTimeoutMs: 60_000 });
  await engine.createTopic({ name: "jobs", partitions: 1 });
  await engine.createTopic({ name: "jobs-dlq", partitions: 1 });
});

async function produce(count: number, topic = "jobs"): Promise<void> {
  await engine.append({
    topic,
    records: Array.from({ length: count }, (_, index) => ({
      key: null,
      value: new TextEncoder().encode(`r${index}`),
      partition: 0,
    })),
  });
}

async function join(memberId: string, configs: Partial<ShareGroupConfigs> = {}) {
  return queues.join({
    groupId: "q",
    memberId,
    topics: ["jobs"],
    configs: { autoOffsetReset: "earliest", lockDurationMs: LOCK, ...configs },
  });
}

const offsets = (result: { records: { offset: number }[] }) => result.records.map((record) => record.offset);

function ack(memberId: string, type: AcknowledgeType, ...ackOffsets: number[]) {
  return queues.acknowledge(
    "q",
    memberId,
    ackOffsets.map((offset) => ({ topic: "jobs", partition: 0, offset, type })),
  );
}

async function windowItems(): Promise<number> {
  const topic = await engine.topics.get("jobs");
  const page = await metadata.query({ pk: sharePartitionPk("q", topic.topicId, 0) });
  return page.items.length;
}

describe("share groups", () => {
  it("hands each record to one member at a time, with delivery counts and locks", async () => {
    await join("a");
    await join("b");
    await produce(6);
    const a = await queues.acquire("q", "a", { maxRecords: 4 });
    const b = await queues.acquire("q", "b", { maxRecords: 4 });
    expect(offsets(a)).toEqual([0, 1, 2, 3]);
    expect(offsets(b)).toEqual([4, 5]);
    expect(a.records.every((record) => record.deliveryCount === 1)).toBe(true);
    expect(a.records[0]!.lockDeadlineMs).toBe(clock.now() + LOCK);
    expect(new TextDecoder().decode(a.records[2]!.record.value!)).toBe("r2");
    // Nothing is left for anyone while the locks hold.
    expect(offsets(await queues.acquire("q", "b"))).toEqual([]);
  });

  it("refuses an acknowledgement after the lock passed and redelivers the record with its count raised", async () => {
    await join("a");
    await join("b");
    await produce(2);
    await queues.acquire("q", "a", { maxRecords: 2 });
    await clock.advance(LOCK + 1);
    const [late, other] = await ack("a", "ACCEPT", 0, 1);
    expect(late!.outcome.ok).toBe(false);
    expect(late!.outcome).toMatchObject({ code: "INVALID_RECORD_STATE" });
    expect(!late!.outcome.ok && late!.outcome.message).toMatch(/lock of member a passed 1 ms ago/);
    expect(other!.outcome.ok).toBe(false);
    const again = await queues.acquire("q", "b");
    expect(offsets(again)).toEqual([0, 1]);
    expect(again.records.map((record) => record.deliveryCount)).toEqual([2, 2]);
    // b holds them now: a's acknowledgement is refused as another member's record.
    const [stolen] = await ack("a", "ACCEPT", 0);
    expect(!stolen!.outcome.ok && stolen!.outcome.message).toMatch(/acquired by another member/);
  });

  it("accepts, releases and rejects; an acknowledged record never comes back; the start offset moves past the settled head", async () => {
    await join("a");
    await produce(4);
    await queues.acquire("q", "a", { maxRecords: 4 });
    const results = await queues.acknowledge("q", "a", [
      { topic: "jobs", partition: 0, offset: 0, type: "ACCEPT" },
      { topic: "jobs", partition: 0, offset: 1, type: "RELEASE" },
      { topic: "jobs", partition: 0, offset: 2, type: "REJECT" },
      { topic: "jobs", partition: 0, offset: 3, type: "ACCEPT" },
    ]);
    expect(results.map((result) => result.outcome.ok)).toEqual([true, true, true, true]);
    const again = await queues.acquire("q", "a");
    expect(offsets(again)).toEqual([1]);
    expect(again.records[0]!.deliveryCount).toBe(2);
    let description = await queues.describe("q");
    expect(description.partitions[0]).toMatchObject({ startOffset: 0, endOffset: 4, acquired: 1, lag: 1 });
    await ack("a", "ACCEPT", 1);
    // The next acquisition (nothing to hand out) tidies the settled head away.
    expect(offsets(await queues.acquire("q", "a"))).toEqual([]);
    description = await queues.describe("q");
    expect(description.partitions[0]).toMatchObject({ startOffset: 4, endOffset: 4, lag: 0 });
    expect(await windowItems()).toBe(1);
  });

  it("archives a record once it has had delivery.count.limit deliveries, and dead-letters it with headers naming where it came from", async () => {
    await join("a", { deliveryCountLimit: 2, deadLetterTopic: "jobs-dlq" });
    await produce(1);
    expect((await queues.acquire("q", "a")).records[0]!.deliveryCount).toBe(1);
    await ack("a", "RELEASE", 0);
    expect((await queues.acquire("q", "a")).records[0]!.deliveryCount).toBe(2);
    const [released] = await ack("a", "RELEASE", 0);
    expect(released!.outcome.ok).toBe(true);
    expect(offsets(await queues.acquire("q", "a"))).toEqual([]);
    const dead = await engine.fetch({ topic: "jobs-dlq", partition: 0, offset: 0 });
    expect(dead.records).toHaveLength(1);
    const headers = Object.fromEntries(
      dead.records[0]!.headers.map((header) => [header.key, new TextDecoder().decode(header.value!)]),
    );
    expect(headers).toEqual({
      [DEAD_LETTER_HEADERS.group]: "q",
      [DEAD_LETTER_HEADERS.topic]: "jobs",
      [DEAD_LETTER_HEADERS.partition]: "0",
      [DEAD_LETTER_HEADERS.offset]: "0",
      [DEAD_LETTER_HEADERS.deliveryCount]: "2",
      [DEAD_LETTER_HEADERS.reason]: "delivery-count-limit",
    });
    expect(new TextDecoder().decode(dead.records[0]!.value!)).toBe("r0");
    expect((await queues.describe("q")).partitions[0]).toMatchObject({ startOffset: 1, lag: 0 });
  });

  it("archives a record whose last lock passes without an acknowledgement, and dead-letters a rejected one once", async () => {
    await join("a", { deliveryCountLimit: 1, deadLetterTopic: "jobs-dlq" });
    await produce(2);
    await queues.acquire("q", "a", { maxRecords: 2 });
    await ack("a", "REJECT", 1);
    await clock.advance(LOCK + 1);
    expect(offsets(await queues.acquire("q", "a"))).toEqual([]);
    const dead = await engine.fetch({ topic: "jobs-dlq", partition: 0, offset: 0 });
    const reasons = dead.records.map((record) => {
      const header = record.headers.find((candidate) => candidate.key === DEAD_LETTER_HEADERS.reason);
      const offset = record.headers.find((candidate) => candidate.key === DEAD_LETTER_HEADERS.offset);
      return `${new TextDecoder().decode(offset!.value!)}:${new TextDecoder().decode(header!.value!)}`;
    });
    expect(reasons.sort()).toEqual(["0:delivery-count-limit", "1:rejected"]);
    // Another pass finds nothing due: no second copy.
    await queues.acquire("q", "a");
    expect((await engine.partitionOffsets("jobs-dlq", 0)).highWatermark).toBe(2);
  });

  it("renews a lock while it holds, not after it passed", async () => {
    await join("a");
    await produce(1);
    await queues.acquire("q", "a");
    await clock.advance(LOCK - 1);
    const [renewed] = await ack("a", "RENEW", 0);
    expect(renewed!.outcome).toEqual({ ok: true, lockDeadlineMs: clock.now() + LOCK });
    await clock.advance(LOCK - 1);
    expect((await ack("a", "ACCEPT", 0))[0]!.outcome.ok).toBe(true);
    await produce(1);
    await queues.acquire("q", "a");
    await clock.advance(LOCK + 1);
    expect((await ack("a", "RENEW", 1))[0]!.outcome.ok).toBe(false);
  });

  it("answers a repeated ACCEPT (a retry after a lost answer) as accepted again, and refuses an offset named twice", async () => {
    await join("a");
    await produce(1);
    await queues.acquire("q", "a");
    expect((await ack("a", "ACCEPT", 0))[0]!.outcome.ok).toBe(true);
    expect((await ack("a", "ACCEPT", 0))[0]!.outcome.ok).toBe(true);
    expect((await ack("a", "RELEASE", 0))[0]!.outcome).toMatchObject({ ok: false });
    await expect(ack("a", "ACCEPT", 0, 0)).rejects.toThrow(InvalidArgumentError);
  });

  it("gives a leaving member's records back at once", async () => {
    await join("a");
    await join("b");
    await produce(3);
    await queues.acquire("q", "a", { maxRecords: 3 });
    await queues.leave("q", "a");
    const b = await queues.acquire("q", "b", { maxRecords: 3 });
    expect(offsets(b)).toEqual([0, 1, 2]);
    expect(b.records.map((record) => record.deliveryCount)).toEqual([2, 2, 2]);
    expect((await queues.describe("q")).members.map((member) => member.memberId)).toEqual(["b"]);
    await expect(queues.acquire("q", "a")).rejects.toMatchObject({ code: "UNKNOWN_MEMBER_ID" });
  });

  it("ends a silent member's session; its acquisitions are then refused", async () => {
    await queues.join({ groupId: "q", memberId: "a", topics: ["jobs"], sessionTimeoutMs: 2_000 });
    await clock.advance(2_001);
    await expect(queues.acquire("q", "a")).rejects.toThrow(FencedError);
    expect((await queues.describe("q")).state).toBe("Empty");
  });

  it("starts a window at the end of the log by default, and at its start with auto.offset.reset earliest", async () => {
    await produce(3);
    await queues.join({ groupId: "latest", memberId: "a", topics: ["jobs"] });
    expect(offsets(await queues.acquire("latest", "a"))).toEqual([]);
    await produce(1);
    expect(offsets(await queues.acquire("latest", "a"))).toEqual([3]);
    await join("b");
    expect(offsets(await queues.acquire("q", "b"))).toEqual([0, 1, 2, 3]);
  });

  it("refuses a join with configs other than the group's, unknown topics, and a dead-letter topic that is consumed or missing", async () => {
    await join("a", { deliveryCountLimit: 3 });
    await expect(join("b", { deliveryCountLimit: 4 })).rejects.toThrow(/delivery.count.limit=3, not 4/);
    await expect(join("b", { deliveryCountLimit: 4 })).rejects.toThrow(ConflictError);
    await expect(queues.join({ groupId: "q", memberId: "c", topics: ["nope"] })).rejects.toMatchObject({
      kind: "not_found",
    });
    await expect(
      queues.join({ groupId: "d", memberId: "c", topics: ["jobs"], configs: { deadLetterTopic: "missing" } }),
    ).rejects.toThrow(/dead-letter topic not found: missing/);
    await expect(
      queues.join({
        groupId: "e",
        memberId: "c",
        topics: ["jobs", "jobs-dlq"],
        configs: { deadLetterTopic: "jobs-dlq" },
      }),
    ).rejects.toThrow(/cannot consume it/);
  });

  it("resets the start offset only while the group is empty", async () => {
    await join("a");
    await produce(5);
    await queues.acquire("q", "a", { maxRecords: 2 });
    await expect(queues.resetStartOffsets("q", { to: "latest" }, { dryRun: false })).rejects.toMatchObject({
      code: "NON_EMPTY_GROUP",
    });
    await queues.leave("q", "a");
    const plan = await queues.resetStartOffsets("q", { to: "offset", offset: 3 }, { dryRun: false });
    expect(plan).toEqual([{ topic: "jobs", partition: 0, previous: 0, next: 3 }]);
    await join("a");
    const after = await queues.acquire("q", "a");
    expect(offsets(after)).toEqual([3, 4]);
    expect(after.records.map((record) => record.deliveryCount)).toEqual([1, 1]);
    // Back to the start: the window of the older epoch is gone, its records come again.
    await queues.leave("q", "a");
    await queues.resetStartOffsets("q", { to: "earliest" }, { dryRun: false });
    await join("a");
    expect(offsets(await queues.acquire("q", "a"))).toEqual([0, 1, 2, 3, 4]);
  });

  it("applies an acknowledgement whose batch sits behind garbage of an older epoch (a process died before deleting it)", async () => {
    await join("a");
    await produce(10);
    await queues.leave("q", "a");
    await queues.resetStartOffsets("q", { to: "offset", offset: 6 }, { dryRun: false });
    await queues.resetStartOffsets("q", { to: "earliest" }, { dryRun: false });
    await join("a");
    expect(offsets(await queues.acquire("q", "a", { maxRecords: 10 }))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    // A batch of epoch 1 at offset 4, as an acquisition that died before deleting garbage leaves it:
    // the last batch key at or before offset 7, yet not the live batch holding it.
    const topic = await engine.topics.get("jobs");
    await metadata.put({
      pk: sharePartitionPk("q", topic.topicId, 0),
      sk: batchSortKey(4),
      base: 4,
      count: 6,
      epoch: 1,
      version: 3,
      runs: [[6, "A", 1, "", 0]],
    });
    const results = await ack("a", "ACCEPT", 7, 8);
    expect(results.map((result) => result.outcome.ok)).toEqual([true, true]);
    await queues.leave("q", "a");
    await join("b");
    expect(offsets(await queues.acquire("q", "b", { maxRecords: 10 }))).toEqual([0, 1, 2, 3, 4, 5, 6, 9]);
  });

  it("between window reads takes fresh records only, and hands out records given back in another process within the rescan interval", async () => {
    // Two instances (two servers or Lambdas) over one store; each reads a window on its own schedule.
    const other = new ShareGroups({ engine, metadata, clock, sessionTimeoutMs: 60_000 });
    await join("x");
    await join("y");
    await produce(10);
    expect(offsets(await queues.acquire("q", "x", { maxRecords: 2 }))).toEqual([0, 1]);
    expect(offsets(await other.acquire("q", "y", { maxRecords: 2 }))).toEqual([2, 3]);
    const [released] = await other.acknowledge("q", "y", [
      { topic: "jobs", partition: 0, offset: 2, type: "RELEASE" },
    ]);
    expect(released!.outcome.ok).toBe(true);
    // This instance read the window just now and gave nothing back since: fresh records only.
    expect(offsets(await queues.acquire("q", "x", { maxRecords: 1 }))).toEqual([4]);
    await clock.advance(250);
    const again = await queues.acquire("q", "x", { maxRecords: 1 });
    expect(offsets(again)).toEqual([2]);
    expect(again.records[0]!.deliveryCount).toBe(2);
    // A release served here makes the next acquisition here read the window at once.
    await ack("x", "RELEASE", 0);
    expect(offsets(await queues.acquire("q", "x", { maxRecords: 1 }))).toEqual([0]);
    // The other instance's interval has passed: records given back go first, then fresh ones.
    await ack("x", "RELEASE", 1);
    expect(offsets(await other.acquire("q", "y", { maxRecords: 10 }))).toEqual([1, 5, 6, 7, 8, 9]);
    // With nothing fresh to take, an acquisition reads the window whatever the interval.
    await ack("x", "RELEASE", 0);
    expect(offsets(await other.acquire("q", "y", { maxRecords: 10 }))).toEqual([0]);
  });

  it("acquisitions waiting on one share-partition go to the store together; one whose session ended meanwhile is refused, the others served", async () => {
    // This process's store holds the first acquisition's write until the test lets it go.
    let hold: Promise<void> | undefined;
    let letGo = () => {};
    const written: string[] = [];
    const gated = new Proxy(metadata, {
      get(target, property) {
        if (property === "transactWrite")
          return async (operations: Parameters<MemoryMetadataStore["transactWrite"]>[0]) => {
            const held = hold;
            hold = undefined;
            if (held) await held;
            await target.transactWrite(operations);
            // Who each landed acquisition wrote for (the state item names them).
            for (const operation of operations)
              if (operation.kind === "update" && operation.key.sk === "state")
                written.push(String(operation.changes.set?.writtenBy));
          };
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const local = new ShareGroups({ engine, metadata: gated, clock, sessionTimeoutMs: 60_000 });
    for (const member of ["a", "b", "c", "d"]) await join(member);
    await produce(30);
    hold = new Promise((resolve) => {
      letGo = resolve;
    });
    const first = local.acquire("q", "a", { maxRecords: 5 });
    const [b, c, d] = ["b", "c", "d"].map((member) =>
      local.acquire("q", member, { maxRecords: 5 }).then(
        (result) => result,
        (error: unknown) => error,
      ),
    );
    // White-box: wait until the three wait behind the held write.
    const waiting = (local as unknown as { acquiring: Map<string, unknown[]> }).acquiring;
    for (let turns = 0; [...waiting.values()][0]?.length !== 3; turns++) {
      expect(turns, "three acquisitions wait behind the first").toBeLessThan(1_000);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await queues.leave("q", "c"); // another process ends c's membership
    letGo();
    expect(offsets(await first)).toEqual([0, 1, 2, 3, 4]);
    expect(await c).toBeInstanceOf(FencedError);
    expect(((await c) as FencedError).code).toBe("UNKNOWN_MEMBER_ID");
    // b and d in arrival order, from one write naming both.
    expect(offsets((await b) as { records: { offset: number }[] })).toEqual([5, 6, 7, 8, 9]);
    expect(offsets((await d) as { records: { offset: number }[] })).toEqual([10, 11, 12, 13, 14]);
    expect(written).toEqual(["a", "b,d"]);
    // Each member's records are a batch of its own: their acknowledgements never meet.
    expect((await ack("b", "ACCEPT", 5, 6, 7, 8, 9)).every((result) => result.outcome.ok)).toBe(true);
    expect((await ack("d", "ACCEPT", 10, 11, 12, 13, 14)).every((result) => result.outcome.ok)).toBe(true);
    const description = await queues.describe("q");
    expect(description.partitions[0]).toMatchObject({ acquired: 5, acknowledged: 10 });
  });

  it("keeps a window compact: records that go the same way share one run, settled batches merge", async () => {
    await join("a");
    await produce(50);
    for (let round = 0; round < 10; round++) {
      const got = await queues.acquire("q", "a", { maxRecords: 5 });
      expect(got.records).toHaveLength(5);
    }
    // Everything but the first batch settles: the later batches merge into one.
    await ack("a", "ACCEPT", ...Array.from({ length: 45 }, (_, index) => index + 5));
    await queues.acquire("q", "a");
    expect(await windowItems()).toBe(1 + 2);
    await ack("a", "ACCEPT", 0, 1, 2, 3, 4);
    await queues.acquire("q", "a");
    expect(await windowItems()).toBe(1);
    expect((await queues.describe("q")).partitions[0]).toMatchObject({ startOffset: 50, endOffset: 50 });
  });

  it("waits for records on a long poll, and for a lock to pass", async () => {
    await join("a");
    await join("b");
    const waiting = queues.acquire("q", "a", { timeoutMs: 5_000 });
    await clock.advance(100);
    await produce(1);
    await clock.advance(300);
    expect(offsets(await waiting)).toEqual([0]);
    const second = queues.acquire("q", "b", { timeoutMs: LOCK + 2_000 });
    await clock.advance(LOCK + 2);
    expect(offsets(await second)).toEqual([0]);
  });

  it("passes over offsets that hold no record (a failed parallel commit's gap), archived, and delivers what follows", async () => {
    await join("a");
    // A writer whose second upload fails after its commit: offsets 2 and 3 become a gap.
    let uploads = 0;
    const failing = withPut(objects, async (key, body, options) => {
      if (body.byteLength > 0 && ++uploads === 2) throw new Error("upload failed (test)");
      return objects.put(key, body, options);
    });
    const writer = new Engine({ objects: failing, metadata, clock, parallelCommit: true });
    const write = (values: string[]) =>
      writer.append({
        topic: "jobs",
        records: values.map((value) => ({ key: null, value: new TextEncoder().encode(value), partition: 0 })),
      });
    await write(["r0", "r1"]);
    await expect(write(["lost", "lost too"])).rejects.toThrow(/upload failed/);
    await write(["r4", "r5"]);
    await clock.advance(PENDING_UPLOAD_MS);

    const first = await queues.acquire("q", "a", { maxRecords: 10 });
    expect(offsets(first)).toEqual([0, 1]);
    const second = await queues.acquire("q", "a", { maxRecords: 10 });
    expect(offsets(second)).toEqual([4, 5]);
    await ack("a", "ACCEPT", 0, 1, 4, 5);
    await queues.acquire("q", "a");
    expect((await queues.describe("q")).partitions[0]).toMatchObject({ startOffset: 6, endOffset: 6 });
  });
});
