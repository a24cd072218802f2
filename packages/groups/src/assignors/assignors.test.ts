/**
 * Properties of the assignors, checked with fast-check over small generated groups: topic names
 * that are also Object.prototype keys, missing topics, topics with no partitions, subscriptions
 * naming a topic twice, previous targets naming partitions that are gone, duplicated or belong
 * to members that left. Small sizes on purpose: the brute-force optimum below enumerates every
 * possible assignment.
 */
import { InvalidArgumentError } from "@sluice/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ASSIGNORS,
  type Assignment,
  type AssignmentInput,
  type Assignor,
  type AssignorMember,
  assignorByName,
  DEFAULT_ASSIGNOR,
  rangeAssignor,
  type TopicPartition,
  uniformAssignor,
} from "./index.js";

const RUNS = 300;
const TOPICS = ["a", "b", "c", "toString", "__proto__"];
const MEMBER_IDS = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "constructor", "__proto__"];
const INSTANCE_IDS = ["i0", "i1", "i2", "m3"];

const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });
const keyOf = ({ topic, partition }: TopicPartition) => `${topic}#${partition}`;
const codeUnitOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Built with fromEntries so that "__proto__" is an own key, as it is in parsed JSON. */
const countsArb = fc
  .array(fc.tuple(fc.constantFrom(...TOPICS), fc.integer({ min: 0, max: 7 })), { maxLength: 5 })
  .map((entries) => Object.fromEntries(entries) as Record<string, number>);

const previousArb = fc
  .array(
    fc.tuple(
      fc.constantFrom(...MEMBER_IDS),
      fc.array(fc.record({ topic: fc.constantFrom(...TOPICS), partition: fc.integer({ min: -1, max: 8 }) }), {
        maxLength: 6,
      }),
    ),
    { maxLength: 6 },
  )
  .map((entries) => Object.fromEntries(entries) as Record<string, TopicPartition[]>);

/**
 * A previous target that is a real assignment of some other membership: each partition of the
 * first few once, to a random member id (present now or not) or to nobody. Random lists of
 * partitions rarely leave a group unbalanced in the ways a membership change does.
 */
const previousAssignmentArb = fc
  .array(fc.constantFrom(...MEMBER_IDS.slice(0, 5), null), {
    minLength: TOPICS.length * 3,
    maxLength: TOPICS.length * 3,
  })
  .map((owners) => {
    const previous: Record<string, TopicPartition[]> = {};
    owners.forEach((owner, i) => {
      if (owner === null) return;
      previous[owner] = [...(previous[owner] ?? []), tp(TOPICS[Math.floor(i / 3)]!, i % 3)];
    });
    return previous;
  });

const memberArb: fc.Arbitrary<AssignorMember> = fc.record(
  {
    memberId: fc.constantFrom(...MEMBER_IDS),
    topics: fc.array(fc.constantFrom(...TOPICS), { maxLength: 4 }),
    instanceId: fc.constantFrom(...INSTANCE_IDS),
  },
  { requiredKeys: ["memberId", "topics"] },
);

const membersArb = (maxLength: number) =>
  fc.uniqueArray(memberArb, { selector: (m) => m.memberId, maxLength });

const inputArb: fc.Arbitrary<AssignmentInput> = fc.record({
  members: membersArb(7),
  partitionCounts: countsArb,
  previous: previousArb,
});

/** Every member subscribed to the same topics (listed in its own order and with repeats). */
const identicalInputArb: fc.Arbitrary<AssignmentInput> = fc
  .record({
    topics: fc.subarray(TOPICS, { minLength: 1 }),
    ids: fc.uniqueArray(fc.constantFrom(...MEMBER_IDS), { minLength: 1, maxLength: 7 }),
    partitionCounts: countsArb,
    previous: previousArb,
    seed: fc.integer(),
  })
  .map(({ topics, ids, partitionCounts, previous, seed }) => ({
    members: ids.map((memberId, i) => ({ memberId, topics: rotate([...topics, topics[0]!], seed + i) })),
    partitionCounts,
    previous,
  }));

function rotate<T>(items: T[], by: number): T[] {
  const shift = ((by % items.length) + items.length) % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** A permutation of the members and reversed key order in both maps: none of it may matter. */
function reordered(input: AssignmentInput, seed: number): AssignmentInput {
  const members = [...input.members];
  let state = seed >>> 0;
  for (let i = members.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [members[i], members[j]] = [members[j]!, members[i]!];
  }
  return {
    members: members.map((m) => ({ ...m, topics: [...m.topics].reverse() })),
    partitionCounts: Object.fromEntries(Object.entries(input.partitionCounts).reverse()),
    previous: Object.fromEntries(Object.entries(input.previous).reverse()),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function countOf(input: AssignmentInput, topic: string): number {
  return Object.hasOwn(input.partitionCounts, topic) ? input.partitionCounts[topic]! : 0;
}

/** Every existing partition of a subscribed topic, each once. */
function assignablePartitions(input: AssignmentInput): string[] {
  const topics = new Set(input.members.flatMap((m) => m.topics));
  return [...topics].flatMap((topic) =>
    Array.from({ length: countOf(input, topic) }, (_, p) => keyOf(tp(topic, p))),
  );
}

function owners(assignment: Assignment): Map<string, string> {
  const map = new Map<string, string>();
  for (const [memberId, partitions] of Object.entries(assignment)) {
    for (const partition of partitions) map.set(keyOf(partition), memberId);
  }
  return map;
}

function loads(input: AssignmentInput, assignment: Assignment): number[] {
  return input.members.map((m) => assignment[m.memberId]!.length);
}

/**
 * What each member keeps by the rule the uniform assignor states: its previous partitions that
 * still exist and that it subscribes to, the first member in memberId order winning a partition
 * two previous targets name. A moved partition is one of these that ends up elsewhere.
 */
function keptByRule(input: AssignmentInput): Map<string, string> {
  const kept = new Map<string, string>();
  const members = [...input.members].sort((a, b) => codeUnitOrder(a.memberId, b.memberId));
  for (const member of members) {
    if (!Object.hasOwn(input.previous, member.memberId)) continue;
    for (const partition of input.previous[member.memberId]!) {
      const exists = Number.isInteger(partition.partition) && partition.partition >= 0;
      if (!exists || partition.partition >= countOf(input, partition.topic)) continue;
      if (!member.topics.includes(partition.topic) || kept.has(keyOf(partition))) continue;
      kept.set(keyOf(partition), member.memberId);
    }
  }
  return kept;
}

function movedCount(input: AssignmentInput, assignment: Assignment): number {
  const now = owners(assignment);
  let moved = 0;
  for (const [partition, memberId] of keptByRule(input)) if (now.get(partition) !== memberId) moved++;
  return moved;
}

function expectValid(input: AssignmentInput, assignment: Assignment): void {
  const ids = input.members.map((m) => m.memberId).sort(codeUnitOrder);
  // Every member has an entry, no one else does, and keys come in memberId order.
  expect(Object.keys(assignment)).toEqual(ids);
  expect(Object.getPrototypeOf(assignment)).toBe(Object.prototype);
  const seen: string[] = [];
  for (const member of input.members) {
    const partitions = assignment[member.memberId]!;
    expect(Array.isArray(partitions)).toBe(true);
    for (let i = 0; i < partitions.length; i++) {
      const { topic, partition } = partitions[i]!;
      // Only subscribed, existing partitions.
      expect(member.topics).toContain(topic);
      expect(Number.isInteger(partition) && partition >= 0 && partition < countOf(input, topic)).toBe(true);
      // Sorted by topic, then partition, without repeats.
      if (i > 0) {
        const before = partitions[i - 1]!;
        expect(codeUnitOrder(before.topic, topic) || before.partition - partition).toBeLessThan(0);
      }
      seen.push(keyOf(partitions[i]!));
    }
  }
  // Each assignable partition exactly once across members.
  expect(seen.sort()).toEqual(assignablePartitions(input).sort());
}

describe.each<[string, Assignor]>([
  ["uniform", uniformAssignor],
  ["range", rangeAssignor],
])("%s assignor: shared properties", (_name, assignor) => {
  it("assigns every subscribed existing partition to exactly one subscribed member, and nothing else", () => {
    fc.assert(
      fc.property(inputArb, (input) => expectValid(input, assignor.assign(deepFreeze(input)))),
      { numRuns: RUNS },
    );
  });

  it("is deterministic: member order and key order do not matter", () => {
    fc.assert(
      fc.property(inputArb, fc.integer(), (input, seed) => {
        const first = JSON.stringify(assignor.assign(input));
        expect(JSON.stringify(assignor.assign(reordered(input, seed)))).toBe(first);
        expect(JSON.stringify(assignor.assign(input))).toBe(first);
      }),
      { numRuns: RUNS },
    );
  });

  it("gives every member an entry even with nothing to assign", () => {
    const input = {
      members: [
        { memberId: "m1", topics: [] },
        { memberId: "m0", topics: ["missing", "empty", "toString"] },
      ],
      partitionCounts: { empty: 0 },
      previous: { m0: [tp("missing", 0)] },
    };
    expect(assignor.assign(input)).toEqual({ m0: [], m1: [] });
    expect(assignor.assign({ members: [], partitionCounts: { a: 3 }, previous: {} })).toEqual({});
  });

  it("refuses duplicate member ids and invalid partition counts", () => {
    const members = [
      { memberId: "m0", topics: ["a"] },
      { memberId: "m0", topics: ["b"] },
    ];
    expect(() => assignor.assign({ members, partitionCounts: { a: 1 }, previous: {} })).toThrow(
      InvalidArgumentError,
    );
    for (const count of [-1, 1.5, Number.NaN, "3" as unknown as number]) {
      expect(() =>
        assignor.assign({
          members: [{ memberId: "m0", topics: ["a"] }],
          partitionCounts: { a: count },
          previous: {},
        }),
      ).toThrow(InvalidArgumentError);
    }
  });
});

describe("range assignor", () => {
  const assign = (members: AssignorMember[], partitionCounts: Record<string, number>) =>
    rangeAssignor.assign({ members, partitionCounts, previous: {} });

  it("splits 5 partitions over 2 members as [0,1,2] and [3,4]", () => {
    expect(
      assign(
        [
          { memberId: "m1", topics: ["t"] },
          { memberId: "m0", topics: ["t"] },
        ],
        { t: 5 },
      ),
    ).toEqual({
      m0: [tp("t", 0), tp("t", 1), tp("t", 2)],
      m1: [tp("t", 3), tp("t", 4)],
    });
  });

  it("puts every topic's extra partition on the same first member (Kafka's two-topic example)", () => {
    const topics = ["t0", "t1"];
    expect(
      assign(
        [
          { memberId: "C1", topics },
          { memberId: "C0", topics },
        ],
        { t0: 3, t1: 3 },
      ),
    ).toEqual({
      C0: [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)],
      C1: [tp("t0", 2), tp("t1", 2)],
    });
  });

  it("ranges each topic over its own subscribers only", () => {
    expect(
      assign(
        [
          { memberId: "x", topics: ["t", "u"] },
          { memberId: "y", topics: ["t"] },
          { memberId: "z", topics: ["u"] },
        ],
        { t: 3, u: 4 },
      ),
    ).toEqual({
      x: [tp("t", 0), tp("t", 1), tp("u", 0), tp("u", 1)],
      y: [tp("t", 2)],
      z: [tp("u", 2), tp("u", 3)],
    });
  });

  it("orders static members by instance id, others by member id", () => {
    expect(
      assign(
        [
          { memberId: "a", topics: ["t"], instanceId: "i-2" },
          { memberId: "b", topics: ["t"], instanceId: "i-1" },
          { memberId: "c", topics: ["t"] },
        ],
        { t: 7 },
      ),
    ).toEqual({
      a: [tp("t", 5), tp("t", 6)],
      b: [tp("t", 3), tp("t", 4)],
      c: [tp("t", 0), tp("t", 1), tp("t", 2)],
    });
  });

  it("has Kafka's layout: per topic, contiguous ranges in member order, larger ranges first, sizes within one", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const assignment = rangeAssignor.assign(input);
        const ordered = [...input.members].sort(
          (a, b) =>
            codeUnitOrder(a.instanceId ?? a.memberId, b.instanceId ?? b.memberId) ||
            codeUnitOrder(a.memberId, b.memberId),
        );
        for (const topic of new Set(input.members.flatMap((m) => m.topics))) {
          const ranges = ordered
            .filter((m) => m.topics.includes(topic))
            .map((m) => assignment[m.memberId]!.filter((p) => p.topic === topic).map((p) => p.partition));
          // Concatenated in order they are 0..P-1: contiguous, in member order, nothing skipped.
          expect(ranges.flat()).toEqual(Array.from({ length: countOf(input, topic) }, (_, p) => p));
          for (let i = 1; i < ranges.length; i++) {
            expect(ranges[i]!.length).toBeLessThanOrEqual(ranges[i - 1]!.length);
            expect(ranges[0]!.length - ranges[i]!.length).toBeLessThanOrEqual(1);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});

/** The smallest sum of squared loads and the smallest largest load any valid assignment has. */
function bruteForceOptimum(input: AssignmentInput): { sumOfSquares: number; largest: number } {
  const partitions = [...new Set(input.members.flatMap((m) => m.topics))].flatMap((topic) =>
    Array.from({ length: countOf(input, topic) }, () => topic),
  );
  const eligible = partitions.map((topic) =>
    input.members.flatMap((m, index) => (m.topics.includes(topic) ? [index] : [])),
  );
  const load = input.members.map(() => 0);
  let best = { sumOfSquares: Number.POSITIVE_INFINITY, largest: Number.POSITIVE_INFINITY };
  const visit = (i: number): void => {
    if (i === partitions.length) {
      best = {
        sumOfSquares: Math.min(
          best.sumOfSquares,
          load.reduce((sum, n) => sum + n * n, 0),
        ),
        largest: Math.min(best.largest, Math.max(0, ...load)),
      };
      return;
    }
    for (const member of eligible[i]!) {
      load[member]!++;
      visit(i + 1);
      load[member]!--;
    }
  };
  visit(0);
  return best;
}

describe("uniform assignor", () => {
  it("is the default", () => {
    expect(DEFAULT_ASSIGNOR).toBe("uniform");
    expect(ASSIGNORS[DEFAULT_ASSIGNOR]).toBe(uniformAssignor);
  });

  it("balances members with identical subscriptions to within one, whatever the previous target", () => {
    fc.assert(
      fc.property(identicalInputArb, (input) => {
        const counts = loads(input, uniformAssignor.assign(input));
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }),
      { numRuns: RUNS },
    );
  });

  it("with identical subscriptions, moves exactly the fewest kept partitions balance needs", () => {
    // The fewest: with P partitions over M members, r = P mod M members may hold ceil(P/M) and
    // the rest floor(P/M). Giving the r larger quotas to the members that keep the most, each
    // member must give up what it keeps beyond its quota, and no assignment within one can make
    // any member give up less.
    fc.assert(
      fc.property(identicalInputArb, (input) => {
        const total = assignablePartitions(input).length;
        const m = input.members.length;
        const kept = keptByRule(input);
        const keptCounts = input.members
          .map((member) => [...kept.values()].filter((id) => id === member.memberId).length)
          .sort((a, b) => b - a);
        const fewest = keptCounts.reduce(
          (sum, k, i) => sum + Math.max(0, k - (Math.floor(total / m) + (i < total % m ? 1 : 0))),
          0,
        );
        expect(movedCount(input, uniformAssignor.assign(input))).toBe(fewest);
      }),
      { numRuns: RUNS },
    );
  });

  it("with any subscriptions, is as balanced as they allow (brute force) and members alike differ by at most one", () => {
    fc.assert(
      fc.property(
        fc.record({
          members: membersArb(4),
          partitionCounts: countsArb.map((c) =>
            Object.fromEntries(Object.entries(c).map(([t, n]) => [t, Math.min(n, 3)] as const)),
          ),
          previous: fc.oneof(previousArb, previousAssignmentArb),
        }),
        (input) => {
          const assignment = uniformAssignor.assign(input);
          const counts = loads(input, assignment);
          const optimum = bruteForceOptimum(input);
          expect(counts.reduce((sum, n) => sum + n * n, 0)).toBe(optimum.sumOfSquares);
          expect(Math.max(0, ...counts)).toBe(optimum.largest);
          const bySubscription = new Map<string, number[]>();
          input.members.forEach((member, i) => {
            const key = JSON.stringify([...new Set(member.topics)].sort());
            bySubscription.set(key, [...(bySubscription.get(key) ?? []), counts[i]!]);
          });
          for (const alike of bySubscription.values()) {
            expect(Math.max(...alike) - Math.min(...alike)).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("is a fixed point: with its own output as the previous target, nothing moves", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const first = uniformAssignor.assign(input);
        expect(uniformAssignor.assign({ ...input, previous: first })).toEqual(first);
      }),
      { numRuns: RUNS },
    );
  });

  it("when a member joins (identical subscriptions), moves only what the newcomer gets: at most ceil(P/(M+1))", () => {
    // Why the bound holds: before the join, the M members are within one of each other; a move
    // goes from a most loaded member to one at least two below it, which only the newcomer can be,
    // and the newcomer ends within one of the others, so with at most ceil(P/(M+1)).
    fc.assert(
      fc.property(identicalInputArb, (input) => {
        const [joining, ...before] = input.members;
        if (before.length === 0) return;
        const previous = uniformAssignor.assign({ ...input, members: before, previous: {} });
        const after = uniformAssignor.assign({ ...input, previous });
        const total = assignablePartitions(input).length;
        const newcomer = after[joining!.memberId]!;
        expect(newcomer.length).toBeLessThanOrEqual(Math.ceil(total / input.members.length));
        for (const member of before) {
          // Old members only give up partitions; none passes between two of them.
          const had = new Set(previous[member.memberId]!.map(keyOf));
          for (const partition of after[member.memberId]!) expect(had.has(keyOf(partition))).toBe(true);
        }
        expect(movedCount({ ...input, previous }, after)).toBe(newcomer.length);
      }),
      { numRuns: RUNS },
    );
  });

  it("when a member leaves (identical subscriptions), moves only the leaver's partitions", () => {
    fc.assert(
      fc.property(identicalInputArb, (input) => {
        const [leaving, ...staying] = input.members;
        const previous = uniformAssignor.assign({ ...input, previous: {} });
        const after = uniformAssignor.assign({ ...input, members: staying, previous });
        expect(movedCount({ ...input, members: staying, previous }, after)).toBe(0);
        for (const member of staying) {
          const now = new Set(after[member.memberId]!.map(keyOf));
          for (const partition of previous[member.memberId]!) expect(now.has(keyOf(partition))).toBe(true);
        }
        expect(leaving).toBeDefined();
      }),
      { numRuns: RUNS },
    );
  });

  it("hands on partitions nobody kept before it moves a kept one", () => {
    // The fill gives b0 to m2 and c2 to m0, leaving m3 (which takes only a and b) with none.
    // Passing c2 on to m2 and b0 on to m3 balances without moving anything kept; moving m0's
    // kept a0 to m3 would balance too, at the cost of a revocation.
    const members = [
      { memberId: "m0", topics: ["a", "c"] },
      { memberId: "m1", topics: ["a", "b", "c"] },
      { memberId: "m2", topics: ["a", "b", "c"] },
      { memberId: "m3", topics: ["a", "b"] },
    ];
    const input = {
      members,
      partitionCounts: { a: 1, b: 1, c: 3 },
      previous: { m0: [tp("a", 0)], m1: [tp("c", 0), tp("c", 1)] },
    };
    const assignment = uniformAssignor.assign(input);
    expect(movedCount(input, assignment)).toBe(0);
    expect(assignment).toEqual({
      m0: [tp("a", 0)],
      m1: [tp("c", 0), tp("c", 1)],
      m2: [tp("c", 2)],
      m3: [tp("b", 0)],
    });
  });

  it("evens out differing subscriptions through a chain when no single move can", () => {
    // x takes t and u, y only t, z only u, with loads 2, 3, 1. No single move helps: y's only
    // taker is x, one below it, and z's only giver is x, one above it. The chain y -t-> x -u-> z
    // evens them out at the cost of two moved partitions.
    const members = [
      { memberId: "x", topics: ["t", "u"] },
      { memberId: "y", topics: ["t"] },
      { memberId: "z", topics: ["u"] },
    ];
    const previous = {
      x: [tp("t", 0), tp("u", 0)],
      y: [tp("t", 1), tp("t", 2), tp("t", 3)],
      z: [tp("u", 1)],
    };
    expect(uniformAssignor.assign({ members, partitionCounts: { t: 4, u: 2 }, previous })).toEqual({
      x: [tp("t", 0), tp("t", 3)],
      y: [tp("t", 1), tp("t", 2)],
      z: [tp("u", 0), tp("u", 1)],
    });
  });
});

describe("assignorByName", () => {
  it("finds each assignor under its own name", () => {
    for (const name of ["uniform", "range"] as const) expect(assignorByName(name).name).toBe(name);
  });

  it("refuses other names, inherited keys included, naming the valid ones", () => {
    for (const name of ["sticky", "toString", "__proto__", ""]) {
      expect(() => assignorByName(name)).toThrow(InvalidArgumentError);
      expect(() => assignorByName(name)).toThrow(/valid: range, uniform/);
    }
  });
});
