import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { ConsumerGroups } from "@sluice/groups";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SluiceClient } from "./client.js";
import { SluiceHttpError } from "./errors.js";
import type { GroupConsumer, GroupConsumerOptions } from "./group-consumer.js";
import type { ConsumedRecord, TopicPartition } from "./types.js";

const CLUSTER = "test-cluster";
const BASE_URL = "http://sluice.test";
const SESSION_MS = 10_000;

/**
 * Two clocks: the server's (sessions, long-poll timeouts) and the consumers' (heartbeat timers).
 * Each moves only when a test advances it, so a member misses its session only when a test says.
 */
let serverClock: SimulatedClock;
let clientClock: SimulatedClock;
let client: SluiceClient;
let consumers: GroupConsumer[];
/** The form of every partition read the app answered, by the Accept header it came with. */
let readAccepts: string[];

beforeEach(async () => {
  serverClock = new SimulatedClock({ seed: 3 });
  clientClock = new SimulatedClock({ sleeps: "wait" });
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock: serverClock });
  const groups = new ConsumerGroups({ engine, metadata, clock: serverClock, sessionTimeoutMs: SESSION_MS });
  const app = createApp({
    engine,
    metadata,
    clock: serverClock,
    groups,
    clusterId: CLUSTER,
    logger: { error: () => undefined },
  });
  readAccepts = [];
  client = new SluiceClient({
    url: BASE_URL,
    fetch: async (url, init) => {
      if (/\/partitions\/\d+\/records/.test(url))
        readAccepts.push(new Headers(init.headers).get("accept") ?? "");
      return app.request(url, init);
    },
  });
  consumers = [];
  await client.createTopic("orders", { partitions: 4 });
});

afterEach(async () => {
  await Promise.all(consumers.map((consumer) => consumer.close().catch(() => undefined)));
});

interface Running {
  consumer: GroupConsumer;
  /** `partition:offset` of every record yielded, in order. */
  seen: string[];
  events: string[];
  done: Promise<void>;
}

/** A group consumer on the test's clock, iterated in the background. */
function start(
  options: Partial<GroupConsumerOptions> = {},
  body?: (running: Running) => Promise<void>,
): Running {
  const events: string[] = [];
  const consumer = client.groupConsumer({
    groupId: "g",
    topics: ["orders"],
    autoOffsetReset: "earliest",
    autoCommitIntervalMs: 60_000,
    clock: clientClock,
    onAssigned: (partitions) => {
      events.push(`assigned ${names(partitions)}`);
    },
    onRevoked: (partitions) => {
      events.push(`revoked ${names(partitions)}`);
    },
    ...options,
  });
  consumers.push(consumer);
  const running: Running = { consumer, seen: [], events, done: Promise.resolve() };
  running.done = (async () => {
    for await (const batch of consumer) {
      for (const record of batch.records) running.seen.push(`${batch.partitionId}:${record.offset}`);
      await body?.(running);
    }
  })();
  return running;
}

/** What `assigned` events gave, less what `revoked` events took, in the `names` form. */
function announced(events: string[]): string {
  const owned = new Set<string>();
  for (const event of events) {
    const [kind, list = ""] = event.split(" ");
    for (const name of list.split(",").filter(Boolean)) {
      if (kind === "assigned") owned.add(name);
      else owned.delete(name);
    }
  }
  return [...owned].sort().join(",");
}

function names(partitions: TopicPartition[]): string {
  return partitions.map((tp) => `${tp.topicName}-${tp.partitionId}`).join(",");
}

/**
 * Moves the consumers' clock in heartbeat-sized steps until `condition` holds. Each step runs the
 * heartbeats that fall due and lets their requests finish; the bound turns a stuck protocol into
 * a failure instead of a hang.
 */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let step = 0; step < 400; step++) {
    if (await condition()) return;
    await clientClock.advance(50);
  }
  throw new Error(`never happened: ${what}`);
}

async function produce(perPartition: number, partitions = [0, 1, 2, 3]): Promise<void> {
  for (const partitionId of partitions) {
    const outcomes = await client.produceMany(
      "orders",
      // An explicit timestamp: the server's simulated clock may stand at a fraction of a
      // millisecond after a jittered backoff, which is no valid record timestamp.
      Array.from({ length: perPartition }, (_, i) => ({
        partitionId,
        value: `p${partitionId}-${i}`,
        timestamp: Math.floor(serverClock.now()),
      })),
    );
    const refused = outcomes.find((outcome) => !outcome.ok);
    if (refused) throw new Error(`produce refused: ${JSON.stringify(refused)}`);
  }
}

/** The group's state; "none" before anyone joined. */
async function groupState(): Promise<string> {
  try {
    return (await client.describeGroup("g")).state;
  } catch (error) {
    if (error instanceof SluiceHttpError && error.status === 404) return "none";
    throw error;
  }
}

const all = (perPartition: number, partitions = [0, 1, 2, 3]) =>
  partitions.flatMap((p) => Array.from({ length: perPartition }, (_, i) => `${p}:${i}`)).sort();

describe("group consumer", () => {
  it("splits the partitions between two members with no overlap, and together they see every record once", async () => {
    const a = start();
    const b = start();
    await until(
      async () =>
        a.consumer.assignment().length === 2 &&
        b.consumer.assignment().length === 2 &&
        (await groupState()) === "STABLE",
      "two members with two partitions each",
    );
    const ownedByA = a.consumer.assignment().map((tp) => tp.partitionId);
    const ownedByB = b.consumer.assignment().map((tp) => tp.partitionId);
    expect([...ownedByA, ...ownedByB].sort()).toEqual([0, 1, 2, 3]);

    await produce(5);
    await until(() => a.seen.length + b.seen.length >= 20, "every record delivered");
    expect([...a.seen, ...b.seen].sort()).toEqual(all(5));
    expect(a.seen.every((entry) => ownedByA.includes(Number(entry.split(":")[0])))).toBe(true);
    expect(b.seen.every((entry) => ownedByB.includes(Number(entry.split(":")[0])))).toBe(true);
    // The callbacks told each member exactly what it owns: assigned minus revoked.
    for (const member of [a, b])
      expect(announced(member.events)).toEqual(names(member.consumer.assignment()));
  });

  it("hands a page out in parts of at most maxPollRecords, each partition's records in order, once", async () => {
    await produce(23);
    const sizes: number[] = [];
    for (const readFormat of ["record-batch", "json"] as const) {
      sizes.length = 0;
      const member = start(
        { groupId: `parts-${readFormat}`, maxPollRecords: 4, readFormat },
        async (running) => {
          sizes.push(running.seen.length - sizes.reduce((sum, size) => sum + size, 0));
        },
      );
      await until(() => member.seen.length >= 4 * 23, `every record delivered (${readFormat})`);
      expect([...member.seen].sort(), readFormat).toEqual(all(23));
      for (const partition of [0, 1, 2, 3]) {
        const offsets = member.seen
          .filter((entry) => entry.startsWith(`${partition}:`))
          .map((entry) => Number(entry.split(":")[1]));
        expect(offsets, `${readFormat} partition ${partition}`).toEqual(
          offsets.slice().sort((a, b) => a - b),
        );
      }
      // Each partition's 23 records came as one page, handed out as five parts of 4 and one of 3.
      expect(Math.max(...sizes), readFormat).toBe(4);
      expect(sizes.length, readFormat).toBe(4 * 6);
      await member.consumer.close();
    }
  });

  it("on close commits, leaves, and the other member takes over every partition from there", async () => {
    const a = start();
    const b = start();
    await until(
      async () => (await groupState()) === "STABLE" && b.consumer.assignment().length === 2,
      "a stable group of two",
    );
    await produce(3);
    await until(() => a.seen.length + b.seen.length === 12, "the first records delivered");
    const leftBehind = a.consumer.assignment();

    await a.consumer.close();
    await a.done;
    expect(a.events.at(-1)).toBe(`revoked ${names(leftBehind)}`);
    const committed = await client.getGroupOffsets("g");
    for (const tp of leftBehind) {
      expect(committed).toContainEqual(expect.objectContaining({ ...tp, offset: 3 }));
    }
    expect((await client.listGroupMembers("g")).map((member) => member.consumerId)).toEqual([
      b.consumer.memberId,
    ]);

    await until(() => b.consumer.assignment().length === 4, "b owns all four partitions");
    await produce(2);
    await until(() => b.seen.length === 12 - a.seen.length + 8, "the new records delivered to b");
    // b starts a's old partitions at a's committed offsets: nothing a saw comes again.
    expect([...a.seen, ...b.seen].sort()).toEqual(all(5));
  });

  it("commits a revoked partition (after onRevoked) before it moves to its new owner", async () => {
    await produce(4);
    const committedAtRevoke: string[] = [];
    const a = start({
      onRevoked: async (partitions) => {
        const offsets = await client.getGroupOffsets("g");
        for (const tp of partitions) {
          const found = offsets.find((offset) => offset.partitionId === tp.partitionId);
          committedAtRevoke.push(`${tp.partitionId}:${found?.offset ?? "none"}`);
        }
      },
    });
    await until(() => a.seen.length === 16, "a alone reads everything");
    expect(await client.getGroupOffsets("g")).toEqual([]);

    const b = start();
    await until(
      async () => b.consumer.assignment().length === 2 && (await groupState()) === "STABLE",
      "b gets its half",
    );
    // onRevoked ran before the commit; the commit landed before b could take the partitions.
    expect(committedAtRevoke.sort()).toEqual(
      b.consumer
        .assignment()
        .map((tp) => `${tp.partitionId}:none`)
        .sort(),
    );
    const committed = await client.getGroupOffsets("g");
    for (const tp of b.consumer.assignment()) {
      expect(committed).toContainEqual(expect.objectContaining({ ...tp, offset: 4 }));
    }
    await produce(1);
    await until(() => a.seen.length + b.seen.length === 20, "the new records delivered");
    expect(b.seen.sort()).toEqual(b.consumer.assignment().map((tp) => `${tp.partitionId}:4`));
  });

  it("with autoCommit off, commits what was yielded on commit() only, or the offsets given", async () => {
    await produce(3, [0]);
    let batches = 0;
    const a = start({ autoCommit: false, topics: ["orders"] }, async (running) => {
      batches++;
      if (batches === 1) await running.consumer.commit();
    });
    await until(() => a.seen.length === 3, "the first batch");
    await until(async () => (await client.getGroupOffsets("g")).length === 1, "the commit");
    expect(await client.getGroupOffsets("g")).toEqual([
      expect.objectContaining({ topicName: "orders", partitionId: 0, offset: 3 }),
    ]);

    await produce(2, [0]);
    await until(() => a.seen.length === 5, "the second batch");
    expect(await a.consumer.commit([{ topicName: "orders", partitionId: 0, offset: 4 }])).toEqual([
      { topicName: "orders", partitionId: 0, offset: 4 },
    ]);
    // A partition this member does not own: fenced, with the server's code, and nothing commits.
    const b = start({ autoCommit: false });
    await until(() => b.consumer.assignment().length > 0, "b gets partitions");
    const theirs = b.consumer.assignment()[0] as TopicPartition;
    const refused = await a.consumer.commit([{ ...theirs, offset: 1 }]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SluiceHttpError);
    expect(refused).toMatchObject({ status: 409, code: "FENCED_MEMBER_EPOCH" });

    await a.consumer.close();
    await b.consumer.close();
    // close() with autoCommit off commits nothing more: offset 4, not 5.
    expect((await client.getGroupOffsets("g")).find((offset) => offset.partitionId === 0)?.offset).toBe(4);
  });

  it("seek moves where a partition continues and what commit() commits", async () => {
    await produce(5, [0]);
    let sought = false;
    const a = start({ autoCommit: false }, async (running) => {
      if (!sought) {
        sought = true;
        running.consumer.seek("orders", 0, 1);
      }
    });
    await until(() => a.seen.length >= 9, "the partition read, then again from 1");
    expect(a.seen.filter((entry) => entry.startsWith("0:"))).toEqual([
      "0:0",
      "0:1",
      "0:2",
      "0:3",
      "0:4",
      "0:1",
      "0:2",
      "0:3",
      "0:4",
    ]);
    expect(() => a.consumer.seek("orders", 9, 0)).toThrow(/not assigned/);
  });

  it("when fenced (its session ended), drops its partitions and rejoins under a new member id", async () => {
    await produce(2);
    const lost: string[] = [];
    const a = start({
      sessionTimeoutMs: 5_000,
      autoCommit: false,
      onLost: (partitions) => {
        lost.push(names(partitions));
      },
    });
    await until(() => a.seen.length === 8, "a reads everything");
    await a.consumer.commit();
    const first = a.consumer.memberId;

    // The server hears nothing for longer than the session: the member is gone.
    await serverClock.advance(6_000);
    await until(() => a.consumer.memberId !== first && a.consumer.assignment().length === 4, "a rejoins");
    expect(lost).toEqual(["orders-0,orders-1,orders-2,orders-3"]);
    expect((await client.listGroupMembers("g")).map((member) => member.consumerId)).toEqual([
      a.consumer.memberId,
    ]);
    // The new incarnation starts from the committed offsets: nothing is read twice.
    await produce(1);
    await until(() => a.seen.length === 12, "the new records");
    expect(a.seen.sort()).toEqual(all(3));
  });

  it("an aborted signal ends the iteration between batches: the batch in hand still commits, then it leaves", async () => {
    await produce(2, [0]);
    const controller = new AbortController();
    const a = start({ autoCommit: false, signal: controller.signal }, async (running) => {
      controller.abort();
      // Still a member while it handles the batch: the commit lands.
      await running.consumer.commit();
    });
    await a.done;
    expect(a.seen).toEqual(["0:0", "0:1"]);
    expect(await client.getGroupOffsets("g")).toEqual([
      expect.objectContaining({ topicName: "orders", partitionId: 0, offset: 2 }),
    ]);
    expect(await client.listGroupMembers("g")).toEqual([]);
  });

  it("yields the same records whether it reads record batches (the default) or JSON", async () => {
    await client.produceMany("orders", [
      {
        partitionId: 0,
        key: "k",
        value: { type: "JSON", data: { n: 1 } },
        headers: { h: "v" },
        timestamp: 5,
      },
      { partitionId: 1, value: Uint8Array.of(0xff), timestamp: 6 },
      { partitionId: 2, value: "text", timestamp: 7 },
      { partitionId: 3, value: null, timestamp: 8 },
    ]);
    const read = async (readFormat: "record-batch" | "json" | undefined) => {
      readAccepts = [];
      const records: ConsumedRecord[] = [];
      const consumer = client.groupConsumer({
        groupId: `g-${readFormat ?? "default"}`,
        topics: ["orders"],
        autoOffsetReset: "earliest",
        clock: clientClock,
        ...(readFormat === undefined ? {} : { readFormat }),
      });
      consumers.push(consumer);
      const done = (async () => {
        for await (const batch of consumer) {
          records.push(...batch.records);
          if (records.length === 4) break;
        }
      })();
      await until(() => records.length === 4, `every record read (${readFormat ?? "default"})`);
      await done;
      return {
        records: records.sort((a, b) => a.partitionId - b.partitionId),
        accepts: new Set(readAccepts),
      };
    };
    const byDefault = await read(undefined);
    const json = await read("json");
    expect(byDefault.accepts).toEqual(new Set(["application/vnd.kafka.record-batch.v2"]));
    expect(json.accepts).toEqual(new Set(["application/json"]));
    expect(byDefault.records).toEqual(json.records);
    expect(json.records.map((record) => [record.partitionId, record.value])).toEqual([
      [0, { type: "JSON", data: { n: 1 } }],
      [1, { type: "BINARY", data: "/w==" }],
      [2, { type: "STRING", data: "text" }],
      [3, null],
    ]);
  });

  it("exposes the server's code on errors", async () => {
    const error = await client.describeGroup("nope").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SluiceHttpError);
    expect(error).toMatchObject({ status: 404, code: "GROUP_ID_NOT_FOUND" });
    const unknown = await client
      .groupHeartbeat("g", { memberId: "ghost", memberEpoch: 3 })
      .catch((caught: unknown) => caught);
    expect(unknown).toMatchObject({ status: 409, code: "UNKNOWN_MEMBER_ID" });
  });
});
