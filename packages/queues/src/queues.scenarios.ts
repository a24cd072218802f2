/**
 * Model-based scenario suite for share groups, written once and bound to each backend (memory,
 * SQLite + filesystem, DynamoDB + S3). fast-check generates members in processes — each process
 * with its own Engine and ShareGroups over its own fault-injecting view of shared stores, as
 * separate Lambdas would have, all on one simulated clock; members of one process that poll in the
 * same round go to the store as one combined acquisition — while a producer appends to a topic of
 * a few partitions. Members
 * join, acquire, accept, release, reject and renew what they hold, crash (and come back as a new
 * incarnation), pause past their locks and sessions (then, back, acknowledge what they held as if
 * nothing happened), and leave. Writes are lost before the store, applied with their answer lost,
 * applied by a process that then dies, or held up in flight while the clock and the others move on.
 *
 * Every applied write is judged against the windows it found (WindowChecker): never two holders
 * of one record's lock, no acknowledged or archived record delivered again, delivery counts moving
 * by exactly one per acquisition, the start offset never passing an unsettled record. Each answer
 * is checked against the writes: a record handed out was acquired for that member with that count;
 * an acknowledgement made after the member's lock had passed is refused. Then the faults stop and
 * the members drain the topic: every produced record must end settled exactly once — acknowledged,
 * or archived (and with a dead-letter topic, in it exactly once, with the right headers) — after at
 * most `delivery.count.limit` deliveries, and every window must close at its partition's end.
 */
import { FencedError, UnavailableError } from "@sluice/core";
import { Engine } from "@sluice/engine";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import {
  DelayingMetadataStore,
  type DelayPlan,
  type FaultPlan,
  FaultyMetadataStore,
  RecordingMetadataStore,
  SimulatedClock,
  SimulatedCrashError,
  scenarioSuite,
  seededChooser,
} from "@sluice/testing";
import fc from "fast-check";
import { expect } from "vitest";
import type { AcknowledgeType } from "./acknowledge.js";
import { DEAD_LETTER_HEADERS } from "./dead-letters.js";
import { ShareGroups } from "./share-groups.js";
import { WindowChecker } from "./window-checker.js";

export interface QueuesBackend {
  objects: ObjectStore;
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

export interface QueuesScenarioOptions {
  name: string;
  create: () => Promise<QueuesBackend>;
  /** fast-check runs: many in memory, few against a network emulator. */
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. Default 30 s. */
  runTimeoutMs?: number;
}

type ActionKind =
  | "poll"
  | "poll-accept"
  | "accept"
  | "release"
  | "reject"
  | "renew"
  | "mixed"
  | "idle"
  | "crash"
  | "pause"
  | "leave"
  | "rejoin";

interface Action {
  kind: ActionKind;
  /** Records to acquire or acknowledge. */
  count: number;
  /** Rounds a pause lasts. */
  rounds: number;
}

interface Round {
  advanceMs: number;
  produce: number[];
  actions: Action[];
}

interface Scenario {
  partitions: number;
  members: number;
  /** Member i runs in process i % processes (one ShareGroups each): members of one process share it. */
  processes: number;
  deliveryCountLimit: number;
  deadLetter: boolean;
  rounds: Round[];
  faults: FaultPlan;
  delays: DelayPlan;
  seed: number;
}

const LOCK_MS = 2_000;
const SESSION_MS = 5_000;
const DRAIN_ROUNDS_MAX = 300;

function scenarioArbitrary(): fc.Arbitrary<Scenario> {
  return fc
    .record({
      partitions: fc.integer({ min: 1, max: 3 }),
      members: fc.integer({ min: 2, max: 4 }),
    })
    .chain(({ partitions, members }) =>
      fc.record({
        partitions: fc.constant(partitions),
        members: fc.constant(members),
        processes: fc.integer({ min: 1, max: members }),
        deliveryCountLimit: fc.integer({ min: 1, max: 4 }),
        deadLetter: fc.boolean(),
        rounds: fc.array(
          fc.record({
            advanceMs: fc.constantFrom(100, 400, 1_200, 2_500),
            produce: fc.array(fc.integer({ min: 0, max: partitions - 1 }), { maxLength: 4 }),
            actions: fc.array(
              fc.record({
                kind: fc.constantFrom<ActionKind>(
                  "poll",
                  "poll",
                  "poll-accept",
                  "poll-accept",
                  "accept",
                  "release",
                  "reject",
                  "renew",
                  "mixed",
                  "idle",
                  "crash",
                  "pause",
                  "leave",
                  "rejoin",
                ),
                count: fc.integer({ min: 1, max: 4 }),
                rounds: fc.integer({ min: 1, max: 4 }),
              }),
              { minLength: members, maxLength: members },
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

export function runQueueScenarios(options: QueuesScenarioOptions): void {
  scenarioSuite(options, {
    protocol: "ShareGroups",
    property:
      "members that acquire, acknowledge, crash, pause past their locks and lose answers never share a record, and settle every record once",
    scenarios: scenarioArbitrary(),
    run: runScenario,
    runTimeoutMs: 30_000,
    timeoutMs: 120_000,
  });
}

interface Held {
  partition: number;
  offset: number;
  deliveryCount: number;
  /** The lock's end as the member was told (the suite's one clock). */
  deadlineMs: number;
}

interface Member {
  index: number;
  incarnation: number;
  id: string;
  joined: boolean;
  state: "active" | "paused" | "crashed" | "left";
  pausedUntilRound: number;
  resumed: boolean;
  queues: ShareGroups;
  held: Map<string, Held>;
  busy: Promise<void> | undefined;
  signalHeld: () => void;
  /** The members of its process (itself included). */
  peers: Member[];
}

let runCounter = 0;

async function runScenario(backend: QueuesBackend, scenario: Scenario): Promise<void> {
  const run = `r${++runCounter}-${scenario.seed}`;
  const topic = `jobs-${run}`;
  const deadLetterTopic = `jobs-dlq-${run}`;
  const groupId = `queue-${run}`;
  const clock = new SimulatedClock({ seed: scenario.seed });
  const checker = new WindowChecker({
    groupId,
    deliveryCountLimit: scenario.deliveryCountLimit,
    lockDurationMs: LOCK_MS,
    deadLetter: scenario.deadLetter,
  });
  const violations = checker.violations;
  const recorder = new RecordingMetadataStore(backend.metadata, (write) => {
    checker.onApplied(write, recorder.mirror);
  });
  const faults: FaultPlan = { ...scenario.faults };
  const delays: DelayPlan = { ...scenario.delays };
  const choose = seededChooser(scenario.seed);
  const chooseDelay = seededChooser(scenario.seed + 1);

  const producer = new Engine({ objects: backend.objects, metadata: backend.metadata, clock });
  const created = await producer.createTopic({ name: topic, partitions: scenario.partitions });
  if (scenario.deadLetter) await producer.createTopic({ name: deadLetterTopic, partitions: 1 });
  const topicId = created.topicId;
  const observer = new ShareGroups({
    engine: producer,
    metadata: recorder,
    clock,
    sessionTimeoutMs: SESSION_MS,
  });
  const produced: { partition: number; offset: number }[] = [];
  /** Deliveries each member was handed, per record key. */
  const handed = new Map<string, number>();
  const configs = {
    deliveryCountLimit: scenario.deliveryCountLimit,
    lockDurationMs: LOCK_MS,
    autoOffsetReset: "earliest" as const,
    deadLetterTopic: scenario.deadLetter ? deadLetterTopic : null,
  };

  // A call held up in a process's store may be any of its members' (a combined acquisition is all
  // of theirs): each of them counts as held, so the round moves on.
  const processes = Array.from({ length: scenario.processes }, () => {
    const process = { members: [] as Member[], queues: undefined as unknown as ShareGroups };
    const delayed = new DelayingMetadataStore(recorder, clock, delays, chooseDelay, () => {
      for (const member of process.members) member.signalHeld();
    });
    const metadata = new FaultyMetadataStore(delayed, faults, choose);
    const engine = new Engine({ objects: backend.objects, metadata, clock });
    process.queues = new ShareGroups({ engine, metadata, clock, sessionTimeoutMs: SESSION_MS });
    return process;
  });
  const members: Member[] = Array.from({ length: scenario.members }, (_, index) => {
    const member = { signalHeld: () => {} } as Member;
    const process = processes[index % scenario.processes]!;
    process.members.push(member);
    return Object.assign(member, {
      peers: process.members,
      index,
      incarnation: 0,
      id: `m${index}.0`,
      joined: false,
      state: "active" as const,
      pausedUntilRound: -1,
      resumed: false,
      queues: process.queues,
      held: new Map<string, Held>(),
      busy: undefined,
    });
  });

  const recordKey = (partition: number, offset: number) => `${topicId}:${partition}:${offset}`;
  const restart = (member: Member) => {
    member.held.clear();
    member.incarnation += 1;
    member.id = `m${member.index}.${member.incarnation}`;
    member.joined = false;
    member.state = "active";
    member.resumed = false;
  };
  const crash = (member: Member) => {
    member.held.clear();
    member.state = "crashed";
  };
  /** Faults a call may meet: lost (carry on), or its process died. Anything else is a bug. */
  const tolerate = (member: Member, error: unknown): void => {
    if (error instanceof UnavailableError) return;
    if (error instanceof SimulatedCrashError) {
      crash(member);
      return;
    }
    throw error;
  };

  const join = async (member: Member) => {
    try {
      await member.queues.join({ groupId, memberId: member.id, topics: [topic], configs });
      member.joined = true;
    } catch (error) {
      tolerate(member, error);
    }
  };

  const poll = async (member: Member, count: number) => {
    if (!member.joined) await join(member);
    if (!member.joined || member.state !== "active") return;
    const id = member.id;
    let answer: Awaited<ReturnType<ShareGroups["acquire"]>>;
    try {
      answer = await member.queues.acquire(groupId, id, { maxRecords: count });
    } catch (error) {
      if (member.id !== id || member.state !== "active") return;
      if (error instanceof FencedError) {
        // Its session ended: it joins again under the same id; its locks stand or pass on their own.
        expect(error.code).toBe("UNKNOWN_MEMBER_ID");
        member.joined = false;
        return;
      }
      tolerate(member, error);
      return;
    }
    if (member.id !== id || member.state !== "active") return;
    for (const record of answer.records) {
      const key = recordKey(record.partition, record.offset);
      const acquisitions = checker.trail(topicId, record.partition, record.offset).acquisitions;
      // Handed out only what a write that landed acquired for this member, with this count.
      if (!acquisitions.some((a) => a.member === id && a.deliveryCount === record.deliveryCount)) {
        violations.push(
          `${id} was handed ${key} (delivery ${record.deliveryCount}) that no applied write acquired for it`,
        );
      }
      if (record.deliveryCount > scenario.deliveryCountLimit)
        violations.push(`${key} handed out a ${record.deliveryCount}th time`);
      handed.set(key, (handed.get(key) ?? 0) + 1);
      member.held.set(key, {
        partition: record.partition,
        offset: record.offset,
        deliveryCount: record.deliveryCount,
        deadlineMs: record.lockDeadlineMs,
      });
    }
  };

  const acknowledge = async (
    member: Member,
    chosen: Held[],
    types: (held: Held, index: number) => AcknowledgeType,
  ) => {
    if (chosen.length === 0 || !member.joined) return;
    const id = member.id;
    const calledAtMs = clock.now();
    const acks = chosen.map((held, index) => ({
      topic,
      partition: held.partition,
      offset: held.offset,
      type: types(held, index),
    }));
    let results: Awaited<ReturnType<ShareGroups["acknowledge"]>>;
    try {
      results = await member.queues.acknowledge(groupId, id, acks);
    } catch (error) {
      tolerate(member, error);
      return;
    }
    if (member.id !== id) return;
    results.forEach((result, index) => {
      const held = chosen[index]!;
      const key = recordKey(held.partition, held.offset);
      if (result.outcome.ok && calledAtMs > held.deadlineMs) {
        violations.push(
          `${id}'s ${result.type} of ${key} was applied though its lock passed at ${held.deadlineMs} (asked at ${calledAtMs})`,
        );
      }
      if (result.outcome.ok && result.type === "RENEW") {
        held.deadlineMs = result.outcome.lockDeadlineMs ?? held.deadlineMs;
        return;
      }
      member.held.delete(key);
    });
  };

  const heldList = (member: Member) =>
    [...member.held.values()].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const TYPES: AcknowledgeType[] = ["ACCEPT", "RELEASE", "REJECT", "ACCEPT", "RENEW"];

  const act = async (member: Member, action: Action, roundIndex: number) => {
    if (member.state === "paused") {
      if (roundIndex < member.pausedUntilRound) return;
      member.state = "active";
      member.resumed = true;
    }
    if (member.state === "crashed" || member.state === "left") {
      if (action.kind === "rejoin") {
        restart(member);
        await join(member);
      }
      return;
    }
    if (member.resumed) {
      // Back from a pause: it acknowledges what it held as if no time had passed.
      member.resumed = false;
      await acknowledge(member, heldList(member), () => "ACCEPT");
      if (member.state !== "active") return;
    }
    const some = heldList(member).slice(0, action.count);
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
        try {
          await member.queues.leave(groupId, member.id);
        } catch (error) {
          tolerate(member, error);
        }
        member.held.clear();
        if (member.state === "active") member.state = "left";
        return;
      case "poll":
        await poll(member, action.count);
        return;
      case "poll-accept":
        await poll(member, action.count);
        if (member.state === "active") await acknowledge(member, heldList(member), () => "ACCEPT");
        return;
      case "accept":
        await acknowledge(member, some, () => "ACCEPT");
        return;
      case "release":
        await acknowledge(member, some, () => "RELEASE");
        return;
      case "reject":
        await acknowledge(member, some, () => "REJECT");
        return;
      case "renew":
        await acknowledge(member, heldList(member), () => "RENEW");
        return;
      case "mixed":
        await acknowledge(
          member,
          heldList(member),
          (_, index) => TYPES[(index + action.count) % TYPES.length]!,
        );
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
    // A peer still busy from an earlier round is held up in the store, and this call may wait
    // behind it (a combined acquisition): it counts as held too.
    if (member.peers.some((peer) => peer !== member && peer.busy)) member.signalHeld();
    return Promise.race([work, held]);
  };
  const produce = async (partitions: number[]) => {
    for (const partition of partitions) {
      const result = await producer.append({
        topic,
        records: [{ key: null, value: new TextEncoder().encode(`p${partition}`), partition }],
      });
      for (const record of result.records)
        produced.push({ partition: record.partition, offset: record.offset });
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
    await produce(spec.produce);
    await round((member) => spec.actions[member.index]!, roundIndex, 0);
    await clock.advance(spec.advanceMs);
  }

  // Drain: faults and hold-ups stop, held writes land, every member is back (a crashed or departed
  // one as a new incarnation) and polls and accepts until every window is closed.
  faults.failBefore = 0;
  faults.loseAnswer = 0;
  faults.crashAfter = 0;
  delays.probability = 0;
  while (members.some((member) => member.busy)) {
    await clock.advance(delays.maxMs);
    const pending = members.map((member) => member.busy).filter((busy) => busy !== undefined);
    if (pending.length > 0) await Promise.race(pending);
  }
  if (failures.length > 0) throw failures[0];
  expect(violations, violations.join("\n")).toEqual([]);
  for (const member of members) if (member.state !== "active") restart(member);
  const drained = async () => {
    const description = await observer.describe(groupId).catch(() => undefined);
    return (
      description !== undefined &&
      description.partitions.length === scenario.partitions &&
      description.partitions.every(
        (partition) =>
          partition.initialized &&
          partition.startOffset === partition.highWatermark &&
          partition.deadLettersDue === 0,
      )
    );
  };
  const base = scenario.rounds.length;
  let drainRounds = 0;
  while (!(await drained())) {
    expect(drainRounds++, "the members drain the topic").toBeLessThan(DRAIN_ROUNDS_MAX);
    await round(() => ({ kind: "poll-accept", count: 4, rounds: 0 }), base + drainRounds, 300);
  }

  // Every produced record settled exactly once, after at most the limit of deliveries.
  const archived = new Set<string>();
  for (const { partition, offset } of produced) {
    const key = recordKey(partition, offset);
    const trail = checker.trails.get(key);
    if ((trail?.settlements ?? []).length !== 1)
      console.log(
        "DEBUG",
        key,
        JSON.stringify(trail),
        JSON.stringify(await observer.describe(groupId)),
        JSON.stringify(produced),
      );
    expect(trail?.settlements ?? [], `${key} settled once`).toHaveLength(1);
    const settlement = trail!.settlements[0]!;
    expect(settlement.deliveries, `${key}'s delivery count`).toBe(trail!.acquisitions.length);
    expect(settlement.deliveries).toBeLessThanOrEqual(scenario.deliveryCountLimit);
    expect(handed.get(key) ?? 0, `${key} handed out no more often than acquired`).toBeLessThanOrEqual(
      trail!.acquisitions.length,
    );
    if (settlement.state === "archived") archived.add(`${partition}:${offset}`);
  }
  expect(checker.trails.size, "no record outside the produced ones was touched").toBe(produced.length);
  if (scenario.deadLetter) {
    // Each archived record is in the dead-letter topic exactly once, saying where it came from.
    const dead = await producer.fetch({
      topic: deadLetterTopic,
      partition: 0,
      offset: 0,
      maxRecords: 10_000,
    });
    const letters = dead.records.map((record) => {
      const header = (name: string) =>
        new TextDecoder().decode(
          record.headers.find((candidate) => candidate.key === name)?.value ?? new Uint8Array(),
        );
      expect(header(DEAD_LETTER_HEADERS.group)).toBe(groupId);
      expect(header(DEAD_LETTER_HEADERS.topic)).toBe(topic);
      const partition = Number(header(DEAD_LETTER_HEADERS.partition));
      const offset = Number(header(DEAD_LETTER_HEADERS.offset));
      const trail = checker.trails.get(recordKey(partition, offset));
      expect(Number(header(DEAD_LETTER_HEADERS.deliveryCount))).toBe(trail?.acquisitions.length);
      expect(new TextDecoder().decode(record.value!)).toBe(`p${partition}`);
      return `${partition}:${offset}`;
    });
    expect(letters.sort()).toEqual([...archived].sort());
  }
}
