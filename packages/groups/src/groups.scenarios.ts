/**
 * Model-based scenario suite for consumer groups, written once and bound to each backend (memory,
 * SQLite + filesystem, DynamoDB + S3). fast-check generates members — each with its own Engine and
 * ConsumerGroups over its own fault-injecting view of shared stores, as separate Lambdas would
 * have, all on one simulated clock — while a producer appends to a topic of a few partitions.
 * Members join, heartbeat (client-side members report what they own and honour `revoking` by
 * committing, then dropping; server-side members omit it and give revoked partitions up at once),
 * fetch their partitions from their positions, process (each delivery goes into a history),
 * commit, leave, crash, pause past their session and come back (their first calls then are a
 * zombie's: a fetch and a commit before any heartbeat), and rejoin under a new member id. Writes
 * are lost before the store, applied with their answer lost, applied by a process that then dies,
 * or held up in flight while the clock and the group move on.
 *
 * Every applied write is seen in the order the store applied it (RecordingMetadataStore) and
 * checked against the state it met (ARCHITECTURE.md, "Consumer groups"):
 * - a partition lease is taken only when free, released or expired, at the next epoch;
 * - a member's offset commit lands only while that member holds the partition's lease, so no two
 *   members can ever commit one partition at the same time;
 * - committed offsets never move backwards (there is no operator reset in the suite);
 * - a committed offset was delivered first: committed ≤ highest delivered + 1;
 * - a heartbeat answer's assignment is what the member holds when the answer arrives.
 * Then the faults stop: the group must settle (Stable, every partition owned by exactly one live
 * member, as the members themselves believe), drain (every produced record delivered at least
 * once, committed = high watermark), and every duplicate delivery must be covered by a record in
 * flight when its member lost the partition (fetched after its last acknowledged commit).
 */
import { FencedError, NotFoundError, UnavailableError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { LEASE_EPOCH, LEASE_EXPIRES_AT, LEASE_OWNER } from "@sluice/leases";
import type { Item, MetadataStore, ObjectStore } from "@sluice/storage";
import {
  type AppliedWrite,
  DelayingMetadataStore,
  type DelayPlan,
  type FaultPlan,
  FaultyMetadataStore,
  itemId,
  leaseWriteViolations,
  RecordingMetadataStore,
  SimulatedClock,
  SimulatedCrashError,
  scenarioSuite,
  seededChooser,
} from "@sluice/testing";
import fc from "fast-check";
import { expect } from "vitest";
import { ConsumerGroups } from "./consumer-groups.js";
import { LEAVE_EPOCH } from "./coordinator.js";
import { LEASE_PREFIX, OFFSET_PREFIX, parsePartitionSortKey, partitionLeaseKey } from "./keys.js";

export interface GroupsBackend {
  objects: ObjectStore;
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

export interface GroupsScenarioOptions {
  name: string;
  create: () => Promise<GroupsBackend>;
  /** fast-check runs: many in memory, few against a network emulator. */
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. Default 30 s. */
  runTimeoutMs?: number;
}

type ActionKind =
  | "step"
  | "step-commit"
  | "heartbeat"
  | "commit"
  | "idle"
  | "leave"
  | "crash"
  | "pause"
  | "rejoin";

interface Action {
  kind: ActionKind;
  /** Rounds a pause lasts. */
  rounds: number;
}

interface Round {
  advanceMs: number;
  /** Partitions the producer appends one record to this round. */
  produce: number[];
  /** One action per member, run concurrently. */
  actions: Action[];
}

interface Scenario {
  partitions: number;
  members: ("client" | "server")[];
  rounds: Round[];
  faults: FaultPlan;
  delays: DelayPlan;
  seed: number;
}

const SESSION_MS = 3_000;
const FETCH_RECORDS_MAX = 4;
const SETTLE_ROUNDS_MAX = 80;
const DRAIN_ROUNDS_MAX = 200;

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc
    .record({
      partitions: fc.integer({ min: 2, max: 4 }),
      members: fc.array(fc.constantFrom<"client" | "server">("client", "client", "server"), {
        minLength: 2,
        maxLength: 4,
      }),
    })
    .chain(({ partitions, members }) =>
      fc.record({
        partitions: fc.constant(partitions),
        members: fc.constant(members),
        rounds: fc.array(
          fc.record({
            advanceMs: fc.constantFrom(100, 300, 800, 2_500),
            produce: fc.array(fc.integer({ min: 0, max: partitions - 1 }), { maxLength: 3 }),
            actions: fc.array(
              fc.record({
                kind: fc.constantFrom<ActionKind>(
                  "step",
                  "step",
                  "step",
                  "step-commit",
                  "step-commit",
                  "heartbeat",
                  "commit",
                  "idle",
                  "leave",
                  "crash",
                  "pause",
                  "rejoin",
                ),
                rounds: fc.integer({ min: 1, max: 4 }),
              }),
              { minLength: members.length, maxLength: members.length },
            ),
          }),
          { minLength: 8, maxLength: 30 },
        ),
        faults: fc.record({
          failBefore: fc.constantFrom(0, 0.05, 0.1),
          loseAnswer: fc.constantFrom(0, 0.1, 0.2),
          crashAfter: fc.constantFrom(0, 0.03),
        }),
        delays: fc.record({
          probability: fc.constantFrom(0, 0.1, 0.2),
          maxMs: fc.constantFrom(1_000, 4_000),
        }),
        seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      }),
    );
}

export function runGroupScenarios(options: GroupsScenarioOptions): void {
  scenarioSuite(options, {
    protocol: "ConsumerGroups",
    property:
      "members that join, crash, pause, leave and lose answers never commit a partition they do not own",
    scenarios: scenarioArbitrary(),
    run: runScenario,
    runTimeoutMs: 30_000,
    timeoutMs: 120_000,
  });
}

interface Owned {
  /** The next offset to fetch. */
  position: number;
  /** Where the member started or last had a commit acknowledged: what a successor restarts from. */
  acked: number;
}

interface Member {
  index: number;
  kind: "client" | "server";
  incarnation: number;
  id: string;
  joined: boolean;
  epoch: number;
  owned: Map<number, Owned>;
  state: "active" | "paused" | "crashed" | "left";
  pausedUntilRound: number;
  /** Just back from a pause: its first calls are a zombie's, before it hears of the group. */
  resumed: boolean;
  groups: ConsumerGroups;
  engine: Engine;
  lastAnswer: { assignment: number[]; pending: number; revoking: number } | undefined;
  busy: Promise<void> | undefined;
  signalHeld: () => void;
}

/** Records a member fetched after its last acknowledged commit, then lost with the partition. */
interface LostWindow {
  partition: number;
  from: number;
  to: number;
}

let runCounter = 0;

async function runScenario(backend: GroupsBackend, scenario: Scenario): Promise<void> {
  const run = `r${++runCounter}-${scenario.seed}`;
  const topic = `orders-${run}`;
  const groupId = `group-${run}`;
  const clock = new SimulatedClock({ seed: scenario.seed });
  const violations: string[] = [];
  /** Highest offset delivered to the group per partition (-1: none yet). */
  const delivered = new Array<number>(scenario.partitions).fill(-1);
  const deliveries = new Map<string, number>();
  const lostWindows: LostWindow[] = [];
  const produced: number[][] = Array.from({ length: scenario.partitions }, () => []);

  const isGroupItem = (key: { pk: string }) => key.pk === `group#${groupId}`;
  const recorder = new RecordingMetadataStore(backend.metadata, (write) => {
    violations.push(...checkAppliedWrite(write, clock.now(), isGroupItem, delivered, recorder.mirror));
  });
  const faults: FaultPlan = { ...scenario.faults };
  const delays: DelayPlan = { ...scenario.delays };
  const choose = seededChooser(scenario.seed);
  const chooseDelay = seededChooser(scenario.seed + 1);

  const producer = new Engine({ objects: backend.objects, metadata: backend.metadata, clock });
  await producer.createTopic({ name: topic, partitions: scenario.partitions });

  const members: Member[] = scenario.members.map((kind, index) => {
    const member = { signalHeld: () => {} } as Member;
    const delayed = new DelayingMetadataStore(recorder, clock, delays, chooseDelay, () =>
      member.signalHeld(),
    );
    const metadata = new FaultyMetadataStore(delayed, faults, choose);
    const engine = new Engine({ objects: backend.objects, metadata, clock });
    return Object.assign(member, {
      index,
      kind,
      incarnation: 0,
      id: `m${index}.0`,
      joined: false,
      epoch: 0,
      owned: new Map(),
      state: "active" as const,
      pausedUntilRound: -1,
      resumed: false,
      groups: new ConsumerGroups({ engine, metadata, clock, sessionTimeoutMs: SESSION_MS }),
      engine,
      lastAnswer: undefined,
      busy: undefined,
    });
  });

  const lose = (member: Member, partition: number) => {
    const owned = member.owned.get(partition);
    if (!owned) return;
    if (owned.position > owned.acked) lostWindows.push({ partition, from: owned.acked, to: owned.position });
    member.owned.delete(partition);
  };
  const loseAll = (member: Member) => {
    for (const partition of [...member.owned.keys()]) lose(member, partition);
  };
  // A new incarnation: a new member id, nothing owned, not yet joined.
  const restart = (member: Member) => {
    loseAll(member);
    member.incarnation += 1;
    member.id = `m${member.index}.${member.incarnation}`;
    member.joined = false;
    member.epoch = 0;
    member.state = "active";
    member.resumed = false;
    member.lastAnswer = undefined;
  };
  const crash = (member: Member) => {
    loseAll(member);
    member.state = "crashed";
  };
  /** Faults a member's call may meet: lost (true: carry on), or its process died. Others are bugs. */
  const tolerate = (member: Member, error: unknown): void => {
    if (error instanceof UnavailableError) return;
    if (error instanceof SimulatedCrashError) {
      crash(member);
      return;
    }
    throw error;
  };

  const heartbeat = async (member: Member) => {
    const request = member.joined
      ? {
          groupId,
          memberId: member.id,
          memberEpoch: member.epoch,
          ...(member.kind === "client"
            ? { ownedPartitions: [...member.owned.keys()].map((partition) => ({ topic, partition })) }
            : {}),
        }
      : { groupId, memberId: member.id, memberEpoch: 0, subscription: [topic] };
    const id = member.id;
    let answer: Awaited<ReturnType<ConsumerGroups["heartbeat"]>>;
    try {
      answer = await member.groups.heartbeat(request);
    } catch (error) {
      // A concurrent call of the same member already found it gone and started it again.
      if (member.id !== id) return;
      if (error instanceof FencedError) {
        // Expired or fenced: everything it held is gone; it joins again under a new id.
        expect(["UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH"]).toContain(error.code);
        restart(member);
        return;
      }
      tolerate(member, error);
      return;
    }
    if (member.id !== id || member.state !== "active") return;
    member.joined = true;
    member.epoch = answer.memberEpoch;
    const assignment = answer.assignment.map((tp) => tp.partition);
    const revoking = answer.revoking.map((tp) => tp.partition);
    member.lastAnswer = { assignment, pending: answer.pending.length, revoking: revoking.length };
    // The answer's assignment is held by this member now (unless it already expired again).
    const now = clock.now();
    for (const partition of assignment) {
      const lease = recorder.mirror.get(itemId(partitionLeaseKey(groupId, topic, partition)));
      if (lease?.[LEASE_OWNER] !== member.id && Number(lease?.[LEASE_EXPIRES_AT] ?? 0) >= now) {
        violations.push(
          `${member.id} was assigned partition ${partition}, whose lease is held by ${String(lease?.[LEASE_OWNER])}`,
        );
      }
    }
    for (const partition of [...member.owned.keys()]) {
      if (!assignment.includes(partition) && !revoking.includes(partition)) lose(member, partition);
    }
    for (const partition of assignment) {
      if (member.owned.has(partition)) continue;
      const start = await member.groups.startOffset(groupId, { topic, partition }, "earliest");
      member.owned.set(partition, { position: start, acked: start });
    }
    // Revoking: stop, commit what was processed, then stop reporting the partition.
    for (const partition of revoking) {
      await commit(member, [partition]);
      if (member.state !== "active") return;
      lose(member, partition);
    }
  };

  const fetch = async (member: Member) => {
    for (const [partition, owned] of member.owned) {
      const result = await member.engine.fetch({
        topic,
        partition,
        offset: owned.position,
        maxRecords: FETCH_RECORDS_MAX,
      });
      for (const record of result.records) {
        const key = `${partition}:${record.offset}`;
        deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
        delivered[partition] = Math.max(delivered[partition]!, record.offset);
      }
      if (member.owned.get(partition) === owned) owned.position = result.nextOffset;
      // Dropped by a concurrent heartbeat while fetching: what it fetched was in flight, and lost.
      else lostWindows.push({ partition, from: owned.position, to: result.nextOffset });
    }
  };

  /**
   * Commits each partition's position (`snapshot`: positions taken earlier, as a request another
   * function instance is still carrying out while this member's heartbeat moves on).
   */
  const commit = async (
    member: Member,
    partitions = [...member.owned.keys()],
    snapshot?: Map<number, number>,
  ) => {
    const id = member.id;
    // One partition per call, so a fence names exactly the partition lost.
    for (const partition of partitions) {
      if (member.id !== id || member.state !== "active") return;
      const offset = snapshot?.get(partition) ?? member.owned.get(partition)?.position;
      if (offset === undefined) continue;
      try {
        await member.groups.commit(groupId, id, [{ topic, partition, offset }]);
        const owned = member.owned.get(partition);
        if (owned && member.id === id) owned.acked = Math.max(owned.acked, offset);
      } catch (error) {
        if (member.id !== id) return;
        if (error instanceof FencedError) {
          if (error.code === "UNKNOWN_MEMBER_ID") {
            restart(member);
            return;
          }
          expect(error.code).toBe("FENCED_MEMBER_EPOCH");
          lose(member, partition);
          continue;
        }
        tolerate(member, error);
      }
    }
  };

  const leave = async (member: Member) => {
    await commit(member);
    if (member.state !== "active") return;
    try {
      await member.groups.heartbeat({ groupId, memberId: member.id, memberEpoch: LEAVE_EPOCH });
    } catch (error) {
      if (!(error instanceof FencedError)) tolerate(member, error);
    }
    loseAll(member);
    if (member.state === "active") member.state = "left";
  };

  const act = async (member: Member, action: Action, roundIndex: number) => {
    if (member.state === "paused") {
      if (roundIndex < member.pausedUntilRound) return;
      member.state = "active";
      member.resumed = true;
    }
    if (member.state === "crashed" || member.state === "left") {
      if (action.kind === "rejoin") restart(member);
      return;
    }
    if (member.resumed) {
      // Back from a pause, it carries on where it was before it hears from the group.
      member.resumed = false;
      await fetch(member);
      await commit(member);
      if (member.state !== "active") return;
    }
    switch (action.kind) {
      case "idle":
      case "rejoin":
        return;
      case "pause":
        member.state = "paused";
        member.pausedUntilRound = roundIndex + 1 + action.rounds;
        return;
      case "crash":
        crash(member);
        return;
      case "leave":
        await leave(member);
        return;
      case "heartbeat":
        await heartbeat(member);
        return;
      case "commit":
        await commit(member);
        return;
      case "step":
      case "step-commit":
        if (member.kind === "server") {
          // A server-side consumer's poll and its heartbeat may reach two function instances at
          // once: the poll fetches and commits what it believed owned while the heartbeat may
          // give those partitions away.
          const snapshot = new Map(
            [...member.owned].map(([partition, owned]) => [partition, owned.position]),
          );
          await Promise.all([
            heartbeat(member),
            (async () => {
              await fetch(member);
              if (action.kind !== "step-commit") return;
              // Still owned: the position after this fetch; given away meanwhile: the one believed.
              for (const [partition, owned] of member.owned) snapshot.set(partition, owned.position);
              await commit(member, [...snapshot.keys()], snapshot);
            })(),
          ]);
          return;
        }
        await heartbeat(member);
        if (member.state !== "active") return;
        await fetch(member);
        if (action.kind === "step-commit") await commit(member);
        return;
    }
  };

  // A round starts every idle member's action and waits until each has finished or is held up in
  // the store; held ones go on when the clock passes their delay, rounds later.
  const failures: unknown[] = [];
  const start = (member: Member, action: Action, roundIndex: number): Promise<void> => {
    const held = new Promise<void>((resolve) => {
      member.signalHeld = resolve;
    });
    const work = act(member, action, roundIndex).finally(() => {
      member.busy = undefined;
    });
    member.busy = work.catch((error) => {
      failures.push(error);
    });
    return Promise.race([work, held]);
  };
  const produce = async (partitions: number[]) => {
    for (const partition of partitions) {
      const result = await producer.append({
        topic,
        records: [{ key: null, value: new TextEncoder().encode(`p${partition}`), partition }],
      });
      for (const record of result.records) produced[record.partition]!.push(record.offset);
    }
  };
  const round = async (actions: (member: Member) => Action, roundIndex: number, advanceMs: number) => {
    await Promise.all(
      members.filter((member) => !member.busy).map((member) => start(member, actions(member), roundIndex)),
    );
    await clock.advance(advanceMs);
    if (failures.length > 0) throw failures[0];
    expect(violations, violations.join("\n")).toEqual([]);
  };

  for (const [roundIndex, spec] of scenario.rounds.entries()) {
    await Promise.all([produce(spec.produce), round((member) => spec.actions[member.index]!, roundIndex, 0)]);
    await clock.advance(spec.advanceMs);
  }

  // Settle: faults and hold-ups stop, held writes land, and every member is back (a crashed or
  // departed one as a new incarnation) and keeps heartbeating until the group is stable.
  faults.failBefore = 0;
  faults.loseAnswer = 0;
  faults.crashAfter = 0;
  delays.probability = 0;
  while (members.some((member) => member.busy)) {
    await clock.advance(delays.maxMs);
    // Work released by the advance may have finished already; wait only for what has not.
    const pending = members.map((member) => member.busy).filter((busy) => busy !== undefined);
    if (pending.length > 0) await Promise.race(pending);
  }
  if (failures.length > 0) throw failures[0];
  for (const member of members) {
    if (member.state !== "active") restart(member);
  }
  const settled = async () => {
    // No member may have got in yet (the group is created by the first join).
    const description = await members[0]!.groups.describe(groupId).catch((error) => {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    });
    if (description?.state !== "Stable" || description.members.length !== members.length) return false;
    return members.every(
      (member) =>
        member.lastAnswer !== undefined &&
        member.lastAnswer.pending === 0 &&
        member.lastAnswer.revoking === 0 &&
        sameSet(member.lastAnswer.assignment, [...member.owned.keys()]),
    );
  };
  let settleRounds = 0;
  const base = scenario.rounds.length;
  while (!(await settled())) {
    expect(settleRounds++, "the group settles once the faults stop").toBeLessThan(SETTLE_ROUNDS_MAX);
    await round(() => ({ kind: "step", rounds: 0 }), base + settleRounds, 500);
  }
  const description = await members[0]!.groups.describe(groupId);
  const owners = new Map<number, string[]>();
  for (const described of description.members) {
    for (const tp of described.assignment)
      owners.set(tp.partition, [...(owners.get(tp.partition) ?? []), described.memberId]);
  }
  for (let partition = 0; partition < scenario.partitions; partition++) {
    const owner = owners.get(partition) ?? [];
    expect(owner, `partition ${partition} has exactly one live owner`).toHaveLength(1);
    const believer = members.filter((member) => member.owned.has(partition)).map((member) => member.id);
    expect(believer, `partition ${partition}: the members agree who owns it`).toEqual(owner);
  }

  // Drain: no more records; members fetch and commit until the group has everything.
  const highWatermarks = await Promise.all(
    Array.from({ length: scenario.partitions }, (_, partition) =>
      producer.partitionOffsets(topic, partition).then((range) => range.highWatermark),
    ),
  );
  const drained = async () => {
    const committed = await members[0]!.groups.committed(groupId);
    return highWatermarks.every(
      (end, partition) => (committed.find((offset) => offset.partition === partition)?.offset ?? 0) === end,
    );
  };
  let drainRounds = 0;
  while (!(await drained())) {
    expect(drainRounds++, "the group drains the topic").toBeLessThan(DRAIN_ROUNDS_MAX);
    await round(() => ({ kind: "step-commit", rounds: 0 }), base + settleRounds + drainRounds, 200);
  }

  // At least once: every produced record was delivered.
  for (const [partition, offsets] of produced.entries()) {
    for (const offset of offsets) {
      expect(
        deliveries.get(`${partition}:${offset}`) ?? 0,
        `record ${offset} of partition ${partition} delivered`,
      ).toBeGreaterThan(0);
    }
  }
  // Duplicates only where a member lost a partition with records in flight.
  for (const [key, count] of deliveries) {
    if (count === 1) continue;
    const [partition, offset] = key.split(":").map(Number) as [number, number];
    const covering = lostWindows.filter(
      (window) => window.partition === partition && window.from <= offset && offset < window.to,
    ).length;
    expect(
      count - 1,
      `record ${offset} of partition ${partition} delivered ${count} times, in flight at ${covering} losses`,
    ).toBeLessThanOrEqual(covering);
  }
}

/** Ground truth: each applied write of the group judged against the items as it found them. */
function checkAppliedWrite(
  write: AppliedWrite,
  nowMs: number,
  isGroupItem: (key: { pk: string }) => boolean,
  delivered: number[],
  mirror: ReadonlyMap<string, Item>,
): string[] {
  const violations = leaseWriteViolations(
    write,
    nowMs,
    { owner: LEASE_OWNER, epoch: LEASE_EPOCH, expiresAt: LEASE_EXPIRES_AT },
    (key) => isGroupItem(key) && key.sk.startsWith(LEASE_PREFIX),
  );
  for (const operation of write.operations) {
    if (
      operation.kind !== "put" ||
      !isGroupItem(operation.item) ||
      !operation.item.sk.startsWith(OFFSET_PREFIX)
    )
      continue;
    const { topic, partition } = parsePartitionSortKey(operation.item.sk, OFFSET_PREFIX);
    const committer = String(operation.item.committedBy);
    const offset = Number(operation.item.offset);
    const where = `#${write.sequence} commit of partition ${partition} at ${offset} by ${committer}`;
    if (committer === "") continue;
    const leaseKey = partitionLeaseKey(operation.item.pk.slice("group#".length), topic, partition);
    // The lease as the commit found it (a commit that does not check it leaves it unchanged).
    const lease = write.before.get(itemId(leaseKey)) ?? mirror.get(itemId(leaseKey));
    if (lease?.[LEASE_OWNER] !== committer) {
      violations.push(`${where}: the lease was held by ${String(lease?.[LEASE_OWNER] ?? "nobody")}`);
    }
    const previous = write.before.get(itemId(operation.item));
    if (previous && previous.groupUid === operation.item.groupUid && Number(previous.offset) > offset) {
      violations.push(`${where}: the committed offset went back from ${Number(previous.offset)}`);
    }
    if (offset > delivered[partition]! + 1) {
      violations.push(`${where}: only offsets up to ${delivered[partition]} were delivered`);
    }
  }
  return violations;
}

function sameSet(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((value) => b.includes(value));
}
