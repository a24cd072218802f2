import { randomBytes } from "node:crypto";
import { ConflictError, InvalidArgumentError, UnavailableError } from "@sluice/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cond } from "./condition.js";
import { ConditionFailedError, TransactionCanceledError } from "./errors.js";
import {
  type Condition,
  type Item,
  type ItemKey,
  type MetadataStore,
  type Query,
  type QueryPage,
  TRANSACTION_OPERATIONS_MAX,
  type TransactOperation,
} from "./port.js";

export interface MetadataStoreContractOptions {
  /** Adapter name, shown as `contract MetadataStore [<name>]`. */
  name: string;
  /** Called once for the suite; every case works in its own partition keys. */
  create: () => Promise<{ store: MetadataStore; cleanup?: () => Promise<void> }>;
  /** Cases this adapter cannot pass, by exact title, with the reason (shown in the skipped title). */
  skip?: { reason: string; tests: string[] }[];
}

/**
 * The behaviour every MetadataStore adapter must show: each guarantee written on the port, case
 * by case. Cases share one store but never a partition key, so they are independent and can run
 * against a long-lived table.
 */
export function runMetadataStoreContract(options: MetadataStoreContractOptions): void {
  describe(`contract MetadataStore [${options.name}]`, () => {
    let store: MetadataStore;
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      ({ store, cleanup } = await options.create());
    });
    afterAll(async () => {
      await cleanup?.();
    });

    const registry = caseRegistry(options.skip ?? []);
    const ctx: Context = { store: () => store, test: registry.add };
    const groups: Array<[string, (ctx: Context) => void]> = [
      ["get, put and delete", basicCases],
      ["conditions", conditionCases],
      ["conditional update and delete", conditionalWriteCases],
      ["update", updateCases],
      ["concurrency", concurrencyCases],
      ["query", queryCases],
      ["transactWrite", transactionCases],
      ["limits and validation", limitCases],
    ];
    // Cases are gathered first, so a skip naming no case fails collection before anything runs.
    for (const [group, gather] of groups) registry.inGroup(group, () => gather(ctx));
    registry.assertSkipsExist();
    registry.declare();
  });
}

interface Context {
  store: () => MetadataStore;
  test: (title: string, body: () => Promise<void>) => void;
}

interface ContractCase {
  group: string;
  title: string;
  body: () => Promise<void>;
}

/** Gathers cases by group, then declares them, the listed ones as `it.skip` with the reason in the title. */
function caseRegistry(skips: { reason: string; tests: string[] }[]) {
  const reasons = new Map<string, string>();
  for (const { reason, tests } of skips) for (const title of tests) reasons.set(title, reason);
  const cases: ContractCase[] = [];
  let currentGroup = "";
  return {
    inGroup(group: string, gather: () => void): void {
      currentGroup = group;
      gather();
    },
    add(title: string, body: () => Promise<void>): void {
      if (cases.some((existing) => existing.title === title)) {
        throw new Error(`duplicate contract case title: ${title}`);
      }
      cases.push({ group: currentGroup, title, body });
    },
    assertSkipsExist(): void {
      const unknown = [...reasons.keys()].filter((title) => !cases.some((c) => c.title === title));
      if (unknown.length > 0) throw new Error(`skip lists unknown contract cases: ${unknown.join(" | ")}`);
    },
    declare(): void {
      const groups = [...new Set(cases.map((c) => c.group))];
      for (const group of groups) {
        describe(group, () => {
          for (const { title, body } of cases.filter((c) => c.group === group)) {
            const reason = reasons.get(title);
            if (reason === undefined) it(title, body);
            else it.skip(`${title} — skipped: ${reason}`, body);
          }
        });
      }
    },
  };
}

const runId = randomBytes(4).toString("hex");
let partitionCounter = 0;

/** A partition key no other case (or run) uses. */
function partition(label: string): string {
  partitionCounter += 1;
  return `contract-${runId}-${partitionCounter}-${label}`;
}

function keyIn(label: string, sk = "item"): ItemKey {
  return { pk: partition(label), sk };
}

/** Awaits a promise that must reject with `type`, and returns the error for further checks. */
async function rejection<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const outcome = await promise.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected a ${type.name}, but the call succeeded`);
  expect(outcome.error).toBeInstanceOf(type);
  return outcome.error as E;
}

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

function everyTypeItem(key: ItemKey): Item {
  return {
    ...key,
    ascii: "plain text",
    unicode: "héllo wörld — 日本語 — 😀 — \u0000 nul — \uFFFD",
    emptyString: "",
    zero: 0,
    negative: -42,
    maxSafe: Number.MAX_SAFE_INTEGER,
    minSafe: Number.MIN_SAFE_INTEGER,
    float: Math.PI,
    negativeFloat: -0.1,
    tiny: 1.5e-7,
    huge: 6.02214076e23,
    yes: true,
    no: false,
    nothing: null,
    allBytes: ALL_BYTES,
    emptyBytes: new Uint8Array(0),
    list: [1, "two", false, null, [3, [4]], { five: 5 }, Uint8Array.of(6, 255)],
    emptyList: [],
    map: { nested: { deeper: { deepest: "x", n: 1 } }, list: [{ a: 1 }], bytes: Uint8Array.of(0, 255) },
    emptyMap: {},
    "name with spaces.dots#hash:colon": "odd attribute names are plain names",
  };
}

function basicCases({ store, test }: Context): void {
  test("get of a missing item returns undefined", async () => {
    expect(await store().get(keyIn("missing"))).toBeUndefined();
  });

  test("put then get round-trips every attribute type", async () => {
    const item = everyTypeItem(keyIn("types"));
    await store().put(item);
    const read = await store().get(item);
    expect(read).toEqual(item);
    expect(read?.allBytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(read?.allBytes as Uint8Array)).toEqual(Array.from(ALL_BYTES));
    expect(Object.is(read?.zero, 0)).toBe(true);
    expect(read?.maxSafe).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("put stores -0 as 0", async () => {
    const key = keyIn("negative-zero");
    await store().put({ ...key, value: -0 });
    expect(Object.is((await store().get(key))?.value, 0)).toBe(true);
  });

  test("put replaces the whole item", async () => {
    const key = keyIn("replace");
    await store().put({ ...key, a: 1, b: "two" });
    await store().put({ ...key, c: true });
    expect(await store().get(key)).toEqual({ ...key, c: true });
  });

  test("items with the same pk and different sk are distinct", async () => {
    const pk = partition("distinct");
    await store().put({ pk, sk: "one", n: 1 });
    await store().put({ pk, sk: "two", n: 2 });
    expect(await store().get({ pk, sk: "one" })).toEqual({ pk, sk: "one", n: 1 });
    expect(await store().get({ pk, sk: "two" })).toEqual({ pk, sk: "two", n: 2 });
  });

  test("the store keeps its own copies: mutating written or returned items changes nothing", async () => {
    const key = keyIn("copies");
    const written: Item = { ...key, list: [1], map: { a: 1 }, bytes: Uint8Array.of(1) };
    await store().put(written);
    (written.list as number[]).push(2);
    (written.bytes as Uint8Array)[0] = 9;
    const read = await store().get(key);
    expect(read).toEqual({ ...key, list: [1], map: { a: 1 }, bytes: Uint8Array.of(1) });
    (read?.map as Record<string, number>).a = 5;
    expect(await store().get(key)).toEqual({ ...key, list: [1], map: { a: 1 }, bytes: Uint8Array.of(1) });
  });

  test("read-after-write: get and query see every write that resolved before them", async () => {
    const key = keyIn("read-after-write");
    await store().put({ ...key, v: 1 });
    expect(await store().get(key)).toEqual({ ...key, v: 1 });
    expect((await store().query({ pk: key.pk })).items).toEqual([{ ...key, v: 1 }]);
    await store().update(key, { set: { v: 2 } });
    expect(await store().get(key)).toEqual({ ...key, v: 2 });
    expect((await store().query({ pk: key.pk })).items).toEqual([{ ...key, v: 2 }]);
    await store().delete(key);
    expect(await store().get(key)).toBeUndefined();
    expect((await store().query({ pk: key.pk })).items).toEqual([]);
  });

  test("delete removes the item", async () => {
    const key = keyIn("delete");
    await store().put({ ...key, v: 1 });
    await store().delete(key);
    expect(await store().get(key)).toBeUndefined();
  });

  test("delete of a missing item without a condition succeeds", async () => {
    const key = keyIn("delete-missing");
    await expect(store().delete(key)).resolves.toBeUndefined();
    expect(await store().get(key)).toBeUndefined();
  });
}

/** The item every condition case is evaluated against. */
function conditionSubject(key: ItemKey): Item {
  return {
    ...key,
    n: 10,
    s: "m",
    bin: Uint8Array.of(1, 2, 3),
    flag: true,
    nul: null,
    list: [1, "a", Uint8Array.of(7)],
    map: { x: 1, y: [true, { z: "deep" }] },
    replacement: "\uFFFD",
    emoji: "😀",
  };
}

const TRUE_CONDITION = cond.exists("n");
const FALSE_CONDITION = cond.exists("absent");

/** [title, condition, whether it holds on conditionSubject]. */
const CONDITION_CASES: Array<[string, Condition, boolean]> = [
  ["exists on a present attribute holds", cond.exists("s"), true],
  ["exists on a missing attribute fails", cond.exists("absent"), false],
  ["exists on a null-valued attribute holds", cond.exists("nul"), true],
  ["exists on pk holds for a stored item", cond.exists("pk"), true],
  ["not_exists on a missing attribute holds", cond.notExists("absent"), true],
  ["not_exists on a present attribute fails", cond.notExists("n"), false],
  ["= on an equal number holds", cond.eq("n", 10), true],
  ["= on a different number fails", cond.eq("n", 11), false],
  ["= number against the same digits as a string fails (type mismatch)", cond.eq("n", "10"), false],
  ["= on an equal string holds", cond.eq("s", "m"), true],
  ["= on a missing attribute fails", cond.eq("absent", 1), false],
  ["= null on a missing attribute fails", cond.eq("absent", null), false],
  ["= null on a null attribute holds", cond.eq("nul", null), true],
  ["= null on a false attribute fails", cond.eq("flag", null), false],
  ["= on an equal boolean holds", cond.eq("flag", true), true],
  ["= on a different boolean fails", cond.eq("flag", false), false],
  ["= on equal binary holds (compared by bytes)", cond.eq("bin", Uint8Array.of(1, 2, 3)), true],
  ["= on different binary fails", cond.eq("bin", Uint8Array.of(1, 2, 4)), false],
  ["= on an equal list holds (deep)", cond.eq("list", [1, "a", Uint8Array.of(7)]), true],
  ["= on a reordered list fails", cond.eq("list", ["a", 1, Uint8Array.of(7)]), false],
  [
    "= on an equal map holds regardless of key order",
    cond.eq("map", { y: [true, { z: "deep" }], x: 1 }),
    true,
  ],
  [
    "= on a map with a different nested value fails",
    cond.eq("map", { x: 1, y: [true, { z: "other" }] }),
    false,
  ],
  ["= on a map with fewer keys fails", cond.eq("map", { x: 1 }), false],
  ["<> on a different number holds", cond.compare("n", "<>", 11), true],
  ["<> on an equal number fails", cond.compare("n", "<>", 10), false],
  ["<> across types holds", cond.compare("n", "<>", "10"), true],
  ["<> on a missing attribute holds", cond.compare("absent", "<>", 1), true],
  ["< number holds when smaller", cond.compare("n", "<", 11), true],
  ["< number fails when equal", cond.compare("n", "<", 10), false],
  ["<= number holds when equal", cond.compare("n", "<=", 10), true],
  ["<= number fails when greater", cond.compare("n", "<=", 9), false],
  ["> number holds when greater", cond.compare("n", ">", 9), true],
  ["> number fails when equal", cond.compare("n", ">", 10), false],
  [">= number holds when equal", cond.compare("n", ">=", 10), true],
  [">= number fails when smaller", cond.compare("n", ">=", 11), false],
  ["< compares negative and fractional numbers numerically", cond.compare("n", ">", -10.5), true],
  ["< string holds in byte order", cond.compare("s", "<", "n"), true],
  ["< string fails for uppercase (byte order: uppercase first)", cond.compare("s", "<", "M"), false],
  ["< string: a prefix sorts first", cond.compare("s", "<", "ma"), true],
  [
    "< string compares UTF-8 bytes, not UTF-16 units (U+FFFD < U+1F600)",
    cond.compare("replacement", "<", "😀"),
    true,
  ],
  [
    "> string compares UTF-8 bytes, not UTF-16 units (U+1F600 > U+FFFD)",
    cond.compare("emoji", ">", "\uFFFD"),
    true,
  ],
  ["< string: U+1F600 is not below U+FFFD", cond.compare("emoji", "<", "\uFFFD"), false],
  ["< on a missing attribute fails", cond.compare("absent", "<", 100), false],
  ["> on a missing attribute fails", cond.compare("absent", ">", -100), false],
  ["< number attribute against a string value fails (type mismatch)", cond.compare("n", "<", "z"), false],
  [">= number attribute against a string value fails (type mismatch)", cond.compare("n", ">=", "0"), false],
  ["> string attribute against a number value fails (type mismatch)", cond.compare("s", ">", 0), false],
  [
    "< on binary fails (ordering is only for numbers and strings)",
    cond.compare("bin", "<", Uint8Array.of(9)),
    false,
  ],
  ["<= on booleans fails", cond.compare("flag", "<=", true), false],
  ["and holds when every inner condition holds", cond.and(cond.eq("n", 10), cond.exists("s")), true],
  ["and fails when one inner condition fails", cond.and(cond.eq("n", 10), FALSE_CONDITION), false],
  ["or holds when one inner condition holds", cond.or(FALSE_CONDITION, cond.eq("s", "m")), true],
  ["or fails when no inner condition holds", cond.or(FALSE_CONDITION, cond.eq("s", "x")), false],
  ["a single-condition and/or is that condition", cond.and(cond.or(TRUE_CONDITION)), true],
  [
    "and keeps an inner or grouped: and(or(true, false), false) fails",
    cond.and(cond.or(TRUE_CONDITION, FALSE_CONDITION), FALSE_CONDITION),
    false,
  ],
  [
    "and keeps an inner or grouped: and(false, or(true, true)) fails",
    cond.and(FALSE_CONDITION, cond.or(TRUE_CONDITION, TRUE_CONDITION)),
    false,
  ],
  [
    "nested and/or holds",
    cond.and(
      cond.or(FALSE_CONDITION, cond.compare("n", ">", 5)),
      cond.notExists("absent"),
      cond.eq("flag", true),
    ),
    true,
  ],
  [
    "nested and/or fails",
    cond.or(cond.and(TRUE_CONDITION, FALSE_CONDITION), cond.and(FALSE_CONDITION, TRUE_CONDITION)),
    false,
  ],
  [
    "deeply nested and/or holds",
    cond.or(cond.and(cond.or(FALSE_CONDITION, cond.and(TRUE_CONDITION, cond.eq("s", "m")))), FALSE_CONDITION),
    true,
  ],
];

function conditionCases({ store, test }: Context): void {
  for (const [title, condition, holds] of CONDITION_CASES) {
    test(`condition: ${title}`, async () => {
      const subject = conditionSubject(keyIn("condition"));
      await store().put(subject);
      const replacement: Item = { pk: subject.pk, sk: subject.sk, replaced: true };
      if (holds) {
        await store().put(replacement, { condition });
        expect(await store().get(subject)).toEqual(replacement);
      } else {
        const error = await rejection(store().put(replacement, { condition }), ConditionFailedError);
        expect(error).toBeInstanceOf(ConflictError);
        expect(error.current).toEqual(subject);
        expect(await store().get(subject)).toEqual(subject);
      }
    });
  }

  test("condition on a missing item: not_exists pk holds and creates it (create-only put)", async () => {
    const key = keyIn("create-only");
    await store().put({ ...key, v: 1 }, { condition: cond.notExists("pk") });
    expect(await store().get(key)).toEqual({ ...key, v: 1 });
  });

  test("condition on a missing item fails with current undefined and creates nothing", async () => {
    const key = keyIn("missing-condition");
    const error = await rejection(
      store().put({ ...key, v: 1 }, { condition: cond.eq("v", 0) }),
      ConditionFailedError,
    );
    expect(error.current).toBeUndefined();
    expect(await store().get(key)).toBeUndefined();
  });

  test("condition on a missing item: <> holds (missing attribute is unequal)", async () => {
    const key = keyIn("missing-not-equal");
    await store().put({ ...key, v: 1 }, { condition: cond.compare("v", "<>", 1) });
    expect(await store().get(key)).toEqual({ ...key, v: 1 });
  });

  test("create-only put of an existing item fails with the existing item as current", async () => {
    const key = keyIn("create-only-existing");
    await store().put({ ...key, owner: "first" });
    const error = await rejection(
      store().put({ ...key, owner: "second" }, { condition: cond.notExists("pk") }),
      ConditionFailedError,
    );
    expect(error.current).toEqual({ ...key, owner: "first" });
    expect(await store().get(key)).toEqual({ ...key, owner: "first" });
  });

  test("an empty and/or condition is InvalidArgumentError", async () => {
    const key = keyIn("empty-and");
    await rejection(store().put({ ...key, v: 1 }, { condition: cond.and() }), InvalidArgumentError);
    await rejection(store().put({ ...key, v: 1 }, { condition: cond.or() }), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });
}

function conditionalWriteCases({ store, test }: Context): void {
  test("update with a holding condition applies", async () => {
    const key = keyIn("update-holds");
    await store().put({ ...key, epoch: 3, v: "a" });
    const updated = await store().update(key, { set: { v: "b" } }, { condition: cond.eq("epoch", 3) });
    expect(updated).toEqual({ ...key, epoch: 3, v: "b" });
    expect(await store().get(key)).toEqual(updated);
  });

  test("update with a failing condition changes nothing and reports current", async () => {
    const key = keyIn("update-fails");
    await store().put({ ...key, epoch: 3, v: "a" });
    const error = await rejection(
      store().update(key, { set: { v: "b" }, add: { n: 1 } }, { condition: cond.eq("epoch", 4) }),
      ConditionFailedError,
    );
    expect(error.current).toEqual({ ...key, epoch: 3, v: "a" });
    expect(await store().get(key)).toEqual({ ...key, epoch: 3, v: "a" });
  });

  test("update with a failing condition on a missing item does not create it", async () => {
    const key = keyIn("update-fails-missing");
    const error = await rejection(
      store().update(key, { set: { v: "b" } }, { condition: cond.exists("pk") }),
      ConditionFailedError,
    );
    expect(error.current).toBeUndefined();
    expect(await store().get(key)).toBeUndefined();
  });

  test("delete with a holding condition deletes", async () => {
    const key = keyIn("delete-holds");
    await store().put({ ...key, owner: "me" });
    await store().delete(key, { condition: cond.eq("owner", "me") });
    expect(await store().get(key)).toBeUndefined();
  });

  test("delete with a failing condition keeps the item and reports current", async () => {
    const key = keyIn("delete-fails");
    await store().put({ ...key, owner: "me" });
    const error = await rejection(
      store().delete(key, { condition: cond.eq("owner", "you") }),
      ConditionFailedError,
    );
    expect(error.current).toEqual({ ...key, owner: "me" });
    expect(await store().get(key)).toEqual({ ...key, owner: "me" });
  });

  test("delete with a condition on a missing item fails with current undefined", async () => {
    const key = keyIn("delete-fails-missing");
    const error = await rejection(
      store().delete(key, { condition: cond.exists("pk") }),
      ConditionFailedError,
    );
    expect(error.current).toBeUndefined();
  });
}

function updateCases({ store, test }: Context): void {
  test("update of a missing item creates it with the key and the changes (upsert)", async () => {
    const key = keyIn("upsert");
    const updated = await store().update(key, { set: { state: "new", tags: ["a"] }, add: { count: 5 } });
    expect(updated).toEqual({ ...key, state: "new", tags: ["a"], count: 5 });
    expect(await store().get(key)).toEqual(updated);
  });

  test("update sets, adds and removes, keeps other attributes, and returns the new item", async () => {
    const key = keyIn("update");
    await store().put({ ...key, a: "x", b: 2, c: true, n: 10, m: { k: 1 } });
    const updated = await store().update(key, {
      set: { a: "y", d: [1, { e: null }], m: { k: 2 } },
      add: { n: -3 },
      remove: ["c"],
    });
    const expected = { ...key, a: "y", b: 2, d: [1, { e: null }], n: 7, m: { k: 2 } };
    expect(updated).toEqual(expected);
    expect(await store().get(key)).toEqual(expected);
  });

  test("add counts a missing attribute as 0", async () => {
    const key = keyIn("add-missing");
    await store().put({ ...key, other: 1 });
    expect(await store().update(key, { add: { n: 2.5 } })).toEqual({ ...key, other: 1, n: 2.5 });
  });

  test("remove of a missing attribute is a no-op", async () => {
    const key = keyIn("remove-missing");
    await store().put({ ...key, a: 1 });
    expect(await store().update(key, { remove: ["absent"] })).toEqual({ ...key, a: 1 });
  });

  test("add to a non-number attribute is InvalidArgumentError and changes nothing", async () => {
    const key = keyIn("add-string");
    await store().put({ ...key, n: "ten" });
    await rejection(store().update(key, { add: { n: 1 } }), InvalidArgumentError);
    expect(await store().get(key)).toEqual({ ...key, n: "ten" });
  });

  test("update of pk or sk is InvalidArgumentError", async () => {
    const key = keyIn("update-key");
    await store().put({ ...key, a: 1 });
    await rejection(store().update(key, { set: { sk: "other" } }), InvalidArgumentError);
    await rejection(store().update(key, { remove: ["pk"] }), InvalidArgumentError);
    expect(await store().get(key)).toEqual({ ...key, a: 1 });
  });

  test("update naming one attribute twice is InvalidArgumentError", async () => {
    const key = keyIn("update-twice");
    await rejection(store().update(key, { set: { a: 1 }, remove: ["a"] }), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });

  test("update without any change is InvalidArgumentError", async () => {
    const key = keyIn("update-empty");
    await rejection(store().update(key, {}), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });
}

/** Runs `count` tasks at once and waits for all of them. */
async function concurrently<T>(count: number, task: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => task(index)));
}

const CONCURRENCY = 50;

function concurrencyCases({ store, test }: Context): void {
  test("50 concurrent optimistic increments (read, conditional update, retry on conflict) reach 50", async () => {
    const key = keyIn("optimistic");
    await store().put({ ...key, counter: 0 });
    const result = await optimisticIncrements(store(), store(), key, CONCURRENCY);
    expect(result.successes).toBe(CONCURRENCY);
    expect((await store().get(key))?.counter).toBe(CONCURRENCY);
  });

  test("50 concurrent adds of 1 reach 50, each seeing a distinct value", async () => {
    const key = keyIn("adds");
    const results = await concurrently(CONCURRENCY, () => store().update(key, { add: { counter: 1 } }));
    expect((await store().get(key))?.counter).toBe(CONCURRENCY);
    const seen = results.map((item) => item.counter as number).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: CONCURRENCY }, (_, i) => i + 1));
  });

  test("25 concurrent conditional transactions between two items each apply exactly once", async () => {
    const pk = partition("transfers");
    const from = { pk, sk: "from" };
    const to = { pk, sk: "to" };
    await store().put({ ...from, balance: 25 });
    await store().put({ ...to, balance: 0 });
    expect(await concurrentTransfers(store(), from, to, 25)).toBe(25);
    expect(await store().get(from)).toEqual({ ...from, balance: 0 });
    expect(await store().get(to)).toEqual({ ...to, balance: 25 });
  });

  test("50 concurrent create-only puts: exactly one wins, the rest see the winner", async () => {
    const key = keyIn("create-race");
    const outcomes = await concurrently(CONCURRENCY, (owner) =>
      store()
        .put({ ...key, owner }, { condition: cond.notExists("pk") })
        .then(
          () => ({ owner, won: true as const }),
          (error: unknown) => ({ owner, won: false as const, error }),
        ),
    );
    const winners = outcomes.filter((outcome) => outcome.won);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!.owner;
    for (const outcome of outcomes) {
      if (outcome.won) continue;
      expect(outcome.error).toBeInstanceOf(ConditionFailedError);
      expect((outcome.error as ConditionFailedError).current).toEqual({ ...key, owner: winner });
    }
    expect(await store().get(key)).toEqual({ ...key, owner: winner });
  });
}

/**
 * Moves 1 from one item to another per transaction, each transfer conditional on the balances it
 * read; `workers` transfers run at once, retrying when another won the round. On DynamoDB a
 * TransactionConflict (UnavailableError) also means "another won"; both are part of the protocol.
 */
async function concurrentTransfers(store: MetadataStore, from: ItemKey, to: ItemKey, workers: number) {
  let applied = 0;
  const attemptsMax = workers * workers * 4;
  await concurrently(workers, async (worker) => {
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const [source, target] = await Promise.all([store.get(from), store.get(to)]);
      const sourceBalance = source?.balance;
      const targetBalance = target?.balance;
      if (typeof sourceBalance !== "number" || typeof targetBalance !== "number") {
        throw new Error("balances must be numbers");
      }
      try {
        await store.transactWrite([
          {
            kind: "update",
            key: from,
            changes: { set: { balance: sourceBalance - 1 } },
            condition: cond.eq("balance", sourceBalance),
          },
          {
            kind: "update",
            key: to,
            changes: { set: { balance: targetBalance + 1 } },
            condition: cond.eq("balance", targetBalance),
          },
        ]);
        applied += 1;
        return;
      } catch (error) {
        if (!(error instanceof ConflictError) && !(error instanceof UnavailableError)) throw error;
      }
    }
    throw new Error(`transfer ${worker} gave up after ${attemptsMax} attempts`);
  });
  return applied;
}

/**
 * `workers` optimistic read-modify-write loops over one counter, alternating between two stores
 * (the same one, or two handles on one database). A ConflictError means another worker won the
 * round: read again and retry. Returns how many conditional updates succeeded.
 */
export async function optimisticIncrements(
  first: MetadataStore,
  second: MetadataStore,
  key: ItemKey,
  workers: number,
): Promise<{ successes: number; conflicts: number }> {
  let successes = 0;
  let conflicts = 0;
  const attemptsMax = workers * workers;
  await concurrently(workers, async (worker) => {
    const store = worker % 2 === 0 ? first : second;
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const seen = (await store.get(key))?.counter;
      if (typeof seen !== "number") throw new Error(`counter is not a number: ${String(seen)}`);
      try {
        await store.update(key, { set: { counter: seen + 1 } }, { condition: cond.eq("counter", seen) });
        successes += 1;
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        conflicts += 1;
      }
    }
    throw new Error(`worker ${worker} gave up after ${attemptsMax} attempts`);
  });
  return { successes, conflicts };
}

/** Sort keys in UTF-8 byte order: uppercase before lowercase, prefixes first, then é, U+FFFD, U+1F600. */
const ORDERED_SORT_KEYS = ["A", "a", "a#1", "a#2", "ab", "b", "ba", "bb", "c", "é", "\uFFFD", "😀"];

/** Puts the fixture items (in a scrambled order) under a fresh pk, plus neighbours that must not leak. */
async function queryFixture(store: MetadataStore, label: string): Promise<string> {
  const pk = partition(label);
  const scrambled = [...ORDERED_SORT_KEYS].reverse();
  scrambled.push(...scrambled.splice(0, 5));
  for (const sk of scrambled) await store.put({ pk, sk, payload: `value of ${sk}` });
  // Neighbouring partitions whose pk extends or precedes ours must never appear in results.
  await store.put({ pk: `${pk}0`, sk: "a", payload: "neighbour" });
  await store.put({ pk: `${pk}#`, sk: "b", payload: "neighbour" });
  await store.put({ pk: pk.slice(0, -1), sk: "a", payload: "neighbour" });
  return pk;
}

function skOf(items: Item[]): string[] {
  return items.map((item) => item.sk);
}

/** Follows cursors to the end, checking each page's size; returns every page. */
async function allPages(store: MetadataStore, query: Query): Promise<Item[][]> {
  const pages: Item[][] = [];
  let cursor: string | undefined;
  do {
    const page: QueryPage = await store.query({ ...query, cursor });
    if (query.limit !== undefined) expect(page.items.length).toBeLessThanOrEqual(query.limit);
    pages.push(page.items);
    cursor = page.cursor;
    if (pages.length > 1000) throw new Error("query paging does not terminate");
  } while (cursor !== undefined);
  return pages;
}

const RANGE_CASES: Array<[string, Query["sk"], string[]]> = [
  ["eq", { kind: "eq", value: "ba" }, ["ba"]],
  ["eq with no match", { kind: "eq", value: "zz" }, []],
  ["lt", { kind: "lt", value: "b" }, ["A", "a", "a#1", "a#2", "ab"]],
  ["lte", { kind: "lte", value: "b" }, ["A", "a", "a#1", "a#2", "ab", "b"]],
  ["gt", { kind: "gt", value: "c" }, ["é", "\uFFFD", "😀"]],
  ["gte", { kind: "gte", value: "c" }, ["c", "é", "\uFFFD", "😀"]],
  ["gt U+FFFD (byte order puts U+1F600 after it)", { kind: "gt", value: "\uFFFD" }, ["😀"]],
  [
    "lt U+1F600 (byte order puts U+FFFD before it)",
    { kind: "lt", value: "😀" },
    ORDERED_SORT_KEYS.slice(0, -1),
  ],
  ["between (inclusive)", { kind: "between", low: "a#1", high: "b" }, ["a#1", "a#2", "ab", "b"]],
  ["between bounds that are not stored", { kind: "between", low: "a#", high: "a#3" }, ["a#1", "a#2"]],
  ["between one key", { kind: "between", low: "c", high: "c" }, ["c"]],
  ["begins_with", { kind: "begins_with", prefix: "a" }, ["a", "a#1", "a#2", "ab"]],
  ["begins_with a multi-character prefix", { kind: "begins_with", prefix: "a#" }, ["a#1", "a#2"]],
  ["begins_with matching nothing", { kind: "begins_with", prefix: "d" }, []],
  ["begins_with a non-ASCII prefix", { kind: "begins_with", prefix: "\uFFFD" }, ["\uFFFD"]],
];

function queryCases({ store, test }: Context): void {
  test("query without a range returns the whole partition in UTF-8 byte order", async () => {
    const pk = await queryFixture(store(), "query-all");
    const page = await store().query({ pk });
    expect(skOf(page.items)).toEqual(ORDERED_SORT_KEYS);
    expect(page.items[0]).toEqual({ pk, sk: "A", payload: "value of A" });
    expect(page.cursor).toBeUndefined();
  });

  test("query order desc returns the partition in reverse byte order", async () => {
    const pk = await queryFixture(store(), "query-desc");
    const page = await store().query({ pk, order: "desc" });
    expect(skOf(page.items)).toEqual([...ORDERED_SORT_KEYS].reverse());
  });

  for (const [title, range, expected] of RANGE_CASES) {
    test(`query sk range: ${title}`, async () => {
      const pk = await queryFixture(store(), "query-range");
      expect(skOf((await store().query({ pk, sk: range })).items)).toEqual(expected);
      expect(skOf((await store().query({ pk, sk: range, order: "desc" })).items)).toEqual(
        [...expected].reverse(),
      );
    });
  }

  test("query of an empty partition returns no items and no cursor", async () => {
    const page = await store().query({ pk: partition("query-empty") });
    expect(page).toEqual({ items: [] });
  });

  test("query limit returns at most limit items, the first ones in order, with a cursor", async () => {
    const pk = await queryFixture(store(), "query-limit");
    const ascending = await store().query({ pk, limit: 3 });
    expect(skOf(ascending.items)).toEqual(ORDERED_SORT_KEYS.slice(0, 3));
    expect(ascending.cursor).toEqual(expect.any(String));
    const descending = await store().query({ pk, limit: 2, order: "desc" });
    expect(skOf(descending.items)).toEqual([...ORDERED_SORT_KEYS].reverse().slice(0, 2));
    expect(descending.cursor).toEqual(expect.any(String));
  });

  test("query paging with a small limit neither skips nor repeats (asc)", async () => {
    const pk = await queryFixture(store(), "query-pages-asc");
    const pages = await allPages(store(), { pk, limit: 5 });
    expect(skOf(pages.flat())).toEqual(ORDERED_SORT_KEYS);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.length).toBeLessThanOrEqual(4);
  });

  test("query paging with a small limit neither skips nor repeats (desc)", async () => {
    const pk = await queryFixture(store(), "query-pages-desc");
    const pages = await allPages(store(), { pk, limit: 2, order: "desc" });
    expect(skOf(pages.flat())).toEqual([...ORDERED_SORT_KEYS].reverse());
    expect(pages.length).toBeGreaterThanOrEqual(6);
  });

  test("query paging within a sort key range", async () => {
    const pk = await queryFixture(store(), "query-pages-range");
    const pages = await allPages(store(), { pk, sk: { kind: "between", low: "a", high: "é" }, limit: 1 });
    expect(skOf(pages.flat())).toEqual(ORDERED_SORT_KEYS.slice(1, 10));
    const prefixed = await allPages(store(), { pk, sk: { kind: "begins_with", prefix: "a" }, limit: 3 });
    expect(skOf(prefixed.flat())).toEqual(["a", "a#1", "a#2", "ab"]);
  });

  test("query paging over many items (100 items, limit 7)", async () => {
    const pk = partition("query-many");
    const expected = Array.from({ length: 100 }, (_, i) => `item#${String(i).padStart(3, "0")}`);
    await concurrently(expected.length, (i) => store().put({ pk, sk: expected[i]!, i }));
    const pages = await allPages(store(), { pk, limit: 7 });
    const all = skOf(pages.flat());
    expect(all).toEqual(expected);
    expect(new Set(all).size).toBe(100);
  });

  test("query does not return items of other partition keys", async () => {
    const pk = await queryFixture(store(), "query-isolation");
    const items = (await store().query({ pk })).items;
    expect(items.every((item) => item.pk === pk)).toBe(true);
    expect(items.some((item) => item.payload === "neighbour")).toBe(false);
    expect(items).toHaveLength(ORDERED_SORT_KEYS.length);
  });

  test("query orders zero-padded numeric sort keys numerically", async () => {
    const pk = partition("query-offsets");
    const offsets = [12345, 0, 100, 9, Number.MAX_SAFE_INTEGER, 10, 1, 99, 1000000];
    const pad = (n: number): string => `offset#${String(n).padStart(20, "0")}`;
    for (const offset of offsets) await store().put({ pk, sk: pad(offset), offset });
    const ordered = [...offsets].sort((a, b) => a - b);
    const page = await store().query({ pk });
    expect(page.items.map((item) => item.offset)).toEqual(ordered);
    const between = await store().query({ pk, sk: { kind: "between", low: pad(9), high: pad(100) } });
    expect(between.items.map((item) => item.offset)).toEqual([9, 10, 99, 100]);
    const latest = await store().query({ pk, order: "desc", limit: 1 });
    expect(latest.items.map((item) => item.offset)).toEqual([Number.MAX_SAFE_INTEGER]);
  });

  test("query with limit below 1 or a fractional limit is InvalidArgumentError", async () => {
    const pk = partition("query-bad-limit");
    await rejection(store().query({ pk, limit: 0 }), InvalidArgumentError);
    await rejection(store().query({ pk, limit: 1.5 }), InvalidArgumentError);
  });

  test("query with a malformed cursor is InvalidArgumentError", async () => {
    const pk = partition("query-bad-cursor");
    await rejection(store().query({ pk, cursor: "not a cursor" }), InvalidArgumentError);
  });

  test("query with a cursor from another partition is InvalidArgumentError", async () => {
    const pk = await queryFixture(store(), "query-foreign-cursor");
    const page = await store().query({ pk, limit: 1 });
    await rejection(store().query({ pk: `${pk}0`, cursor: page.cursor }), InvalidArgumentError);
  });

  test("query between with low above high is InvalidArgumentError", async () => {
    const pk = partition("query-bad-between");
    await rejection(
      store().query({ pk, sk: { kind: "between", low: "b", high: "a" } }),
      InvalidArgumentError,
    );
  });
}

/** Items for the mixed transaction: one to update, one to delete, one guarded by a condition check. */
async function transactionFixture(store: MetadataStore, label: string) {
  const pk = partition(label);
  const keys = {
    created: { pk, sk: "created" },
    updated: { pk, sk: "updated" },
    deleted: { pk, sk: "deleted" },
    guard: { pk, sk: "guard" },
  };
  const before = {
    updated: { ...keys.updated, counter: 1, state: "old" },
    deleted: { ...keys.deleted, doomed: true },
    guard: { ...keys.guard, epoch: 7 },
  };
  await store.put(before.updated);
  await store.put(before.deleted);
  await store.put(before.guard);
  const operations = (guardEpoch: number): TransactOperation[] => [
    { kind: "put", item: { ...keys.created, fresh: true }, condition: cond.notExists("pk") },
    {
      kind: "update",
      key: keys.updated,
      changes: { add: { counter: 1 }, set: { state: "new" } },
      condition: cond.eq("counter", 1),
    },
    { kind: "delete", key: keys.deleted, condition: cond.exists("pk") },
    { kind: "condition_check", key: keys.guard, condition: cond.eq("epoch", guardEpoch) },
  ];
  const expectUnchanged = async (): Promise<void> => {
    expect(await store.get(keys.created)).toBeUndefined();
    expect(await store.get(keys.updated)).toEqual(before.updated);
    expect(await store.get(keys.deleted)).toEqual(before.deleted);
    expect(await store.get(keys.guard)).toEqual(before.guard);
  };
  return { pk, keys, before, operations, expectUnchanged };
}

function transactionCases({ store, test }: Context): void {
  test("transactWrite applies put, update, delete and condition_check together", async () => {
    const { keys, before, operations } = await transactionFixture(store(), "tx-mixed");
    await store().transactWrite(operations(7));
    expect(await store().get(keys.created)).toEqual({ ...keys.created, fresh: true });
    expect(await store().get(keys.updated)).toEqual({ ...keys.updated, counter: 2, state: "new" });
    expect(await store().get(keys.deleted)).toBeUndefined();
    expect(await store().get(keys.guard)).toEqual(before.guard);
  });

  test("transactWrite with one failing condition changes nothing and reports its index and current item", async () => {
    const { before, operations, expectUnchanged } = await transactionFixture(store(), "tx-fails");
    const error = await rejection(store().transactWrite(operations(8)), TransactionCanceledError);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.failures).toEqual([{ index: 3, current: before.guard }]);
    await expectUnchanged();
  });

  test("transactWrite failure on a missing item reports current undefined", async () => {
    const { keys, operations, expectUnchanged } = await transactionFixture(store(), "tx-fails-missing");
    const missing = { pk: keys.guard.pk, sk: "missing" };
    const failing: TransactOperation = {
      kind: "condition_check",
      key: missing,
      condition: cond.exists("pk"),
    };
    const error = await rejection(
      store().transactWrite([...operations(7), failing]),
      TransactionCanceledError,
    );
    expect(error.failures).toEqual([{ index: 4, current: undefined }]);
    await expectUnchanged();
  });

  test("transactWrite reports every failed condition, for every kind of operation", async () => {
    const { keys, before, expectUnchanged } = await transactionFixture(store(), "tx-fails-many");
    const ops: TransactOperation[] = [
      { kind: "put", item: { ...keys.created, fresh: true }, condition: cond.exists("pk") },
      {
        kind: "update",
        key: keys.updated,
        changes: { set: { state: "new" } },
        condition: cond.eq("counter", 5),
      },
      { kind: "delete", key: keys.deleted, condition: cond.eq("doomed", false) },
      { kind: "condition_check", key: keys.guard, condition: cond.eq("epoch", 8) },
    ];
    const error = await rejection(store().transactWrite(ops), TransactionCanceledError);
    const failures = [...error.failures].sort((a, b) => a.index - b.index);
    expect(failures).toEqual([
      { index: 0, current: undefined },
      { index: 1, current: before.updated },
      { index: 2, current: before.deleted },
      { index: 3, current: before.guard },
    ]);
    await expectUnchanged();
  });

  test("transactWrite update upserts a missing item", async () => {
    const key = keyIn("tx-upsert");
    await store().transactWrite([{ kind: "update", key, changes: { add: { n: 3 }, set: { s: "x" } } }]);
    expect(await store().get(key)).toEqual({ ...key, n: 3, s: "x" });
  });

  test("transactWrite allows 100 operations", async () => {
    const pk = partition("tx-100");
    const operations: TransactOperation[] = Array.from({ length: TRANSACTION_OPERATIONS_MAX }, (_, i) => ({
      kind: "put",
      item: { pk, sk: `item#${String(i).padStart(3, "0")}`, i },
    }));
    await store().transactWrite(operations);
    const items = (await allPages(store(), { pk })).flat();
    expect(items.map((item) => item.i)).toEqual(
      Array.from({ length: TRANSACTION_OPERATIONS_MAX }, (_, i) => i),
    );
  });

  test("transactWrite with 101 operations is InvalidArgumentError and writes nothing", async () => {
    const pk = partition("tx-101");
    const operations: TransactOperation[] = Array.from(
      { length: TRANSACTION_OPERATIONS_MAX + 1 },
      (_, i) => ({
        kind: "put",
        item: { pk, sk: `item#${String(i).padStart(3, "0")}`, i },
      }),
    );
    await rejection(store().transactWrite(operations), InvalidArgumentError);
    expect((await store().query({ pk })).items).toEqual([]);
  });

  test("transactWrite with the same item twice is InvalidArgumentError and writes nothing", async () => {
    const key = keyIn("tx-same-item");
    const other = { pk: key.pk, sk: "other" };
    await rejection(
      store().transactWrite([
        { kind: "put", item: { ...other, v: 1 } },
        { kind: "put", item: { ...key, v: 1 } },
        { kind: "update", key, changes: { set: { v: 2 } } },
      ]),
      InvalidArgumentError,
    );
    expect(await store().get(key)).toBeUndefined();
    expect(await store().get(other)).toBeUndefined();
  });

  test("transactWrite with an item over 400 KB is InvalidArgumentError and writes nothing", async () => {
    const key = keyIn("tx-too-large");
    const other = { pk: key.pk, sk: "other" };
    await rejection(
      store().transactWrite([
        { kind: "put", item: { ...other, v: 1 } },
        { kind: "put", item: { ...key, blob: "x".repeat(401 * 1024) } },
      ]),
      InvalidArgumentError,
    );
    expect(await store().get(key)).toBeUndefined();
    expect(await store().get(other)).toBeUndefined();
  });

  test("transactWrite whose update adds to a non-number is InvalidArgumentError and writes nothing", async () => {
    const key = keyIn("tx-bad-add");
    const other = { pk: key.pk, sk: "other" };
    await store().put({ ...key, n: "text" });
    await rejection(
      store().transactWrite([
        { kind: "put", item: { ...other, v: 1 } },
        { kind: "update", key, changes: { add: { n: 1 } } },
      ]),
      InvalidArgumentError,
    );
    expect(await store().get(key)).toEqual({ ...key, n: "text" });
    expect(await store().get(other)).toBeUndefined();
  });

  test("transactWrite of no operations is a no-op", async () => {
    await expect(store().transactWrite([])).resolves.toBeUndefined();
  });
}

const KB = 1024;

function limitCases({ store, test }: Context): void {
  test("an item over 400 KB is InvalidArgumentError and nothing is written", async () => {
    const key = keyIn("too-large");
    await rejection(store().put({ ...key, blob: "x".repeat(401 * KB) }), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });

  test("a binary attribute over 400 KB is InvalidArgumentError and the old item stays", async () => {
    const key = keyIn("too-large-binary");
    await store().put({ ...key, v: 1 });
    await rejection(store().put({ ...key, blob: new Uint8Array(401 * KB) }), InvalidArgumentError);
    expect(await store().get(key)).toEqual({ ...key, v: 1 });
  });

  test("many attributes together over 400 KB are InvalidArgumentError", async () => {
    const key = keyIn("too-large-many");
    const item: Item = { ...key };
    for (let i = 0; i < 5; i++) item[`part${i}`] = "y".repeat(82 * KB);
    await rejection(store().put(item), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });

  test("an item just under 400 KB is stored and read back", async () => {
    const key = keyIn("large");
    const item = { ...key, blob: "z".repeat(390 * KB), bytes: new Uint8Array(5 * KB).fill(7) };
    await store().put(item);
    expect(await store().get(key)).toEqual(item);
  });

  test("an update that would grow the item over 400 KB is InvalidArgumentError and changes nothing", async () => {
    const key = keyIn("update-too-large");
    await store().put({ ...key, first: "a".repeat(300 * KB) });
    await rejection(store().update(key, { set: { second: "b".repeat(150 * KB) } }), InvalidArgumentError);
    expect(await store().get(key)).toEqual({ ...key, first: "a".repeat(300 * KB) });
  });

  test("empty pk or sk is InvalidArgumentError", async () => {
    const pk = partition("empty-key");
    await rejection(store().put({ pk, sk: "", v: 1 }), InvalidArgumentError);
    await rejection(store().put({ pk: "", sk: "x", v: 1 }), InvalidArgumentError);
    await rejection(store().get({ pk, sk: "" }), InvalidArgumentError);
    expect((await store().query({ pk })).items).toEqual([]);
  });

  test("a sort key over 1024 bytes is InvalidArgumentError", async () => {
    const pk = partition("long-sk");
    await rejection(store().put({ pk, sk: "k".repeat(1025), v: 1 }), InvalidArgumentError);
    await store().put({ pk, sk: "k".repeat(1024), v: 1 });
    expect((await store().query({ pk })).items).toHaveLength(1);
  });

  test("numbers DynamoDB cannot store (NaN, Infinity) are InvalidArgumentError", async () => {
    const key = keyIn("bad-number");
    await rejection(store().put({ ...key, v: Number.NaN }), InvalidArgumentError);
    await rejection(store().put({ ...key, v: Number.POSITIVE_INFINITY }), InvalidArgumentError);
    await rejection(store().update(key, { add: { v: Number.NEGATIVE_INFINITY } }), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });

  test("strings with lone surrogates are InvalidArgumentError", async () => {
    const key = keyIn("lone-surrogate");
    await rejection(store().put({ ...key, v: "broken \uD800" }), InvalidArgumentError);
    expect(await store().get(key)).toBeUndefined();
  });
}
