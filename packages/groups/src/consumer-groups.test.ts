import { FencedError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import type { TopicPartition } from "./assignors/assignor.js";
import { ConsumerGroups } from "./consumer-groups.js";
import type { HeartbeatResponse } from "./coordinator.js";

let clock: SimulatedClock;
let engine: Engine;
let metadata: MemoryMetadataStore;
let groups: ConsumerGroups;
const SESSION = 10_000;

beforeEach(async () => {
  clock = new SimulatedClock({ seed: 7 });
  metadata = new MemoryMetadataStore();
  engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  groups = new ConsumerGroups({ engine, metadata, clock, sessionTimeoutMs: SESSION });
  await engine.createTopic({ name: "orders", partitions: 4 });
});

const names = (partitions: TopicPartition[]) => partitions.map((tp) => `${tp.topic}-${tp.partition}`);

async function join(memberId: string, extra: { instanceId?: string } = {}): Promise<HeartbeatResponse> {
  return groups.heartbeat({ groupId: "g", memberId, memberEpoch: 0, subscription: ["orders"], ...extra });
}

async function beat(member: HeartbeatResponse, owned?: TopicPartition[]): Promise<HeartbeatResponse> {
  return groups.heartbeat({
    groupId: "g",
    memberId: member.memberId,
    memberEpoch: member.memberEpoch,
    ownedPartitions: owned ?? member.assignment,
  });
}

describe("consumer groups", () => {
  it("gives a lone member every partition, and a second member half of them only after the first lets go", async () => {
    let a = await join("a");
    expect(names(a.assignment)).toEqual(["orders-0", "orders-1", "orders-2", "orders-3"]);
    expect(a.memberEpoch).toBe(1);

    let b = await join("b");
    // b's share is still a's: pending until a revokes.
    expect(b.assignment).toEqual([]);
    expect(b.pending).toHaveLength(2);

    a = await beat(a);
    expect(a.revoking).toHaveLength(2);
    expect(a.assignment).toHaveLength(2);
    // a stops the revoked partitions and says so; only then can b take them.
    a = await beat(a, a.assignment);
    expect(a.revoking).toEqual([]);
    b = await beat(b);
    expect(b.assignment).toHaveLength(2);
    expect(new Set([...names(a.assignment), ...names(b.assignment)]).size).toBe(4);
    expect((await groups.describe("g")).state).toBe("Stable");
    expect(b.memberEpoch).toBe(b.groupEpoch);
  });

  it("fences commits from a member that does not own the partition, and from a member that is gone", async () => {
    const a = await join("a");
    await groups.commit("g", "a", [{ topic: "orders", partition: 0, offset: 3 }]);
    await expect(
      groups.commit("g", "a", [{ topic: "orders", partition: 7, offset: 1 }]),
    ).rejects.toMatchObject({
      code: "FENCED_MEMBER_EPOCH",
    });
    expect((await groups.committed("g")).map((offset) => offset.offset)).toEqual([3]);
    await expect(
      groups.commit("g", "ghost", [{ topic: "orders", partition: 0, offset: 9 }]),
    ).rejects.toMatchObject({
      code: "UNKNOWN_MEMBER_ID",
    });
    let b = await join("b");
    // a pauses past its session while b keeps heartbeating.
    await clock.advance(SESSION * 0.6);
    b = await beat(b);
    await clock.advance(SESSION * 0.5);
    const taken = await beat(b);
    expect(taken.assignment).toHaveLength(4);
    await expect(
      groups.commit("g", a.memberId, [{ topic: "orders", partition: 0, offset: 9 }]),
    ).rejects.toBeInstanceOf(FencedError);
    await expect(beat(a)).rejects.toMatchObject({ code: "UNKNOWN_MEMBER_ID" });
    expect((await groups.committed("g")).map((offset) => offset.offset)).toEqual([3]);
  });

  it("lets a static member's next incarnation take over its partitions without a rebalance", async () => {
    const first = await join("first", { instanceId: "pod-1" });
    const epoch = first.memberEpoch;
    const second = await join("second", { instanceId: "pod-1" });
    expect(names(second.assignment)).toEqual(names(first.assignment));
    expect(second.groupEpoch).toBe(epoch);
    await expect(
      groups.commit("g", "first", [{ topic: "orders", partition: 1, offset: 1 }]),
    ).rejects.toBeInstanceOf(FencedError);
  });

  it("reports lag, resets offsets only when empty, and deletes the group with its offsets", async () => {
    await engine.append({
      topic: "orders",
      records: Array.from({ length: 5 }, () => ({ key: null, value: new Uint8Array([1]), partition: 2 })),
    });
    const a = await join("a");
    await groups.commit("g", "a", [{ topic: "orders", partition: 2, offset: 1 }]);
    const lag = await groups.lag("g");
    expect(lag.find((entry) => entry.partition === 2)).toMatchObject({
      currentOffset: 1,
      logEndOffset: 5,
      lag: 4,
      memberId: "a",
    });
    await expect(groups.resetOffsets("g", { to: "earliest" }, { dryRun: true })).rejects.toMatchObject({
      code: "NON_EMPTY_GROUP",
    });
    await groups.heartbeat({ groupId: "g", memberId: a.memberId, memberEpoch: -1 });
    expect((await groups.describe("g")).state).toBe("Empty");
    const plan = await groups.resetOffsets("g", { to: "shift", by: 2 }, { dryRun: true });
    expect(plan.find((entry) => entry.partition === 2)).toMatchObject({ previous: 1, next: 3 });
    expect((await groups.committed("g"))[0]!.offset).toBe(1);
    await groups.resetOffsets("g", { to: "latest" }, { dryRun: false });
    expect((await groups.committed("g")).find((offset) => offset.partition === 2)!.offset).toBe(5);
    await groups.delete("g");
    await expect(groups.describe("g")).rejects.toMatchObject({ code: "GROUP_ID_NOT_FOUND" });
    await join("a");
    expect(await groups.committed("g")).toEqual([]);
  });
});
