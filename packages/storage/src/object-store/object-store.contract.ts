import { ConflictError, InvalidArgumentError, NotFoundError } from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ByteRange, ListPage, ObjectInfo, ObjectStore } from "./port.js";

/**
 * The ObjectStore contract: every guarantee written on the port (port.ts), run against one
 * adapter. Each case gets a fresh store from `create` and calls its `cleanup` afterwards.
 * `skip` names cases an adapter cannot pass (by their title); they are reported as skipped with
 * the reason in the title, never silently dropped.
 */
export interface ObjectStoreContractOptions {
  name: string;
  create: () => Promise<{ store: ObjectStore; cleanup?: () => Promise<void> }>;
  skip?: { reason: string; tests: string[] }[];
}

type Case = (title: string, body: () => Promise<void>) => void;
type StoreOf = () => ObjectStore;

/** Enough writers that a non-atomic check-then-write loses the race in practice. */
const CONTENDERS = 50;

const GROUPS: [string, (test: Case, store: StoreOf) => void][] = [
  ["keys", keyCases],
  ["put and read-after-write", readAfterWriteCases],
  ["byte ranges", rangeCases],
  ["create-only put", createOnlyCases],
  ["ifMatch put", ifMatchCases],
  ["list", listCases],
  ["delete", deleteCases],
  ["missing keys", missingKeyCases],
];

export function runObjectStoreContract(options: ObjectStoreContractOptions): void {
  const skipped = skipReasons(options.skip ?? []);
  checkSkipList(skipped);
  describe(`contract ObjectStore [${options.name}]`, () => {
    let fixture: { store: ObjectStore; cleanup?: () => Promise<void> } | undefined;
    beforeEach(async () => {
      fixture = await options.create();
    });
    afterEach(async () => {
      const done = fixture;
      fixture = undefined;
      await done?.cleanup?.();
    });
    const store: StoreOf = () => {
      if (!fixture) throw new Error("contract case ran without a store");
      return fixture.store;
    };
    const test: Case = (title, body) => {
      const reason = skipped.get(title);
      if (reason === undefined) it(title, body);
      else it.skip(`${title} — skipped: ${reason}`, body);
    };
    for (const [name, define] of GROUPS) describe(name, () => define(test, store));
  });
}

/** Fails at collection when a skip entry names no case, so a mistyped title cannot go unnoticed. */
function checkSkipList(skipped: Map<string, string>): void {
  const titles = new Set<string>();
  const record: Case = (title) => {
    if (titles.has(title)) throw new Error(`two contract cases are titled "${title}"`);
    titles.add(title);
  };
  const noStore: StoreOf = () => {
    throw new Error("no store while listing case titles");
  };
  for (const [, define] of GROUPS) define(record, noStore);
  const unknown = [...skipped.keys()].filter((title) => !titles.has(title));
  if (unknown.length > 0) throw new Error(`skip names cases that do not exist: ${unknown.join(" | ")}`);
}

function skipReasons(skip: readonly { reason: string; tests: string[] }[]): Map<string, string> {
  const reasons = new Map<string, string>();
  for (const entry of skip) for (const title of entry.tests) reasons.set(title, entry.reason);
  return reasons;
}

function keyCases(test: Case, store: StoreOf): void {
  test("accepts a key of exactly 1024 UTF-8 bytes", async () => {
    const key = `long/${"é".repeat(509)}x`; // 5 + 1018 + 1 bytes
    expect(Buffer.byteLength(key)).toBe(1024);
    await store().put(key, text("long"));
    expect(decode((await store().get(key)).body)).toBe("long");
    expect(await listedKeys(store(), "long/")).toEqual([key]);
  });

  test("rejects keys that are empty, over 1024 UTF-8 bytes, start with '/' or hold a lone surrogate", async () => {
    const tooLong = `long/${"é".repeat(509)}xy`;
    for (const key of ["", "/absolute", tooLong, "half\uD800pair"]) {
      await expect(store().put(key, text("x")), JSON.stringify(key)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      await expect(store().get(key)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store().head(key)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store().delete(key)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await listedKeys(store(), "")).toEqual([]);
  });

  test("a deleteMany holding one invalid key deletes nothing", async () => {
    await store().put("kept", text("x"));
    await expect(store().deleteMany(["kept", "/bad"])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await store().head("kept")).size).toBe(1);
  });

  test("keys are opaque: dots, slashes, escapes, case and control characters round-trip", async () => {
    const keys = OPAQUE_SUFFIXES.map((suffix) => `opaque/${suffix}`);
    for (const [index, key] of keys.entries()) await store().put(key, text(`body ${index}`));
    for (const [index, key] of keys.entries()) {
      expect(decode((await store().get(key)).body), JSON.stringify(key)).toBe(`body ${index}`);
    }
    expect(await listedKeys(store(), "opaque/")).toEqual(sortByUtf8(keys));
  });
}

/** Keys that trip naive encodings: path tricks, URL and XML specials, case pairs, temp-file lookalikes. */
const OPAQUE_SUFFIXES = [
  "../escape",
  "..",
  "./dot",
  "a//b",
  "trailing/",
  ".hidden",
  ".tmp-0123456789abcdef",
  "sp ace",
  "plus+sign",
  "per%25cent",
  "100%",
  "q?x#y&z=1",
  "back\\slash",
  "tab\tx",
  "cr\rx",
  "nl\nx",
  "ctl\u0001x",
  "amp&lt;",
  "Case",
  "case",
  "é",
  "😀",
  "c",
  "d",
  "f",
];

function readAfterWriteCases(test: Case, store: StoreOf): void {
  test("get right after put returns the whole object with the etag and size put returned", async () => {
    const put = await store().put("obj", text("hello world"));
    expectInfo(put, "obj", 11);
    const got = await store().get("obj");
    expect(decode(got.body)).toBe("hello world");
    expect(got).toMatchObject({ key: "obj", etag: put.etag, size: 11 });
    expect(validDate(got.lastModified)).toBe(true);
  });

  test("head right after put returns the info put returned", async () => {
    const put = await store().put("obj", text("abc"));
    const head = await store().head("obj");
    expectInfo(head, "obj", 3);
    expect(head.etag).toBe(put.etag);
  });

  test("list right after put includes the object with its etag and size", async () => {
    const put = await store().put("dir/obj", text("abcd"));
    const page = await store().list("dir/");
    expect(page.objects).toHaveLength(1);
    expectInfo(page.objects[0]!, "dir/obj", 4);
    expect(page.objects[0]!.etag).toBe(put.etag);
    expect(page.cursor).toBeUndefined();
  });

  test("an unconditional put replaces the whole object, also with a shorter body", async () => {
    const first = await store().put("obj", text("a long first version"));
    const second = await store().put("obj", text("short"));
    expect(second.etag).not.toBe(first.etag);
    const got = await store().get("obj");
    expect(decode(got.body)).toBe("short");
    expect(got.size).toBe(5);
    expect((await store().head("obj")).etag).toBe(second.etag);
    expect((await store().list("obj")).objects.map(({ etag, size }) => ({ etag, size }))).toEqual([
      { etag: second.etag, size: 5 },
    ]);
  });

  test("stores empty objects", async () => {
    const put = await store().put("empty", new Uint8Array(0));
    expectInfo(put, "empty", 0);
    const got = await store().get("empty");
    expect(got.body.byteLength).toBe(0);
    expect(got.size).toBe(0);
    expect((await store().head("empty")).size).toBe(0);
    expect((await store().list("empty")).objects[0]?.size).toBe(0);
  });

  test("stores binary data with all 256 byte values", async () => {
    const body = new Uint8Array(512);
    for (let i = 0; i < 256; i++) {
      body[i] = i;
      body[511 - i] = i;
    }
    await store().put("binary", body);
    const got = await store().get("binary");
    expect(got.body).toBeInstanceOf(Uint8Array);
    expect(hex(got.body)).toBe(hex(body));
    expect(got.size).toBe(512);
  });

  test("stored bytes do not change when the caller mutates its buffers", async () => {
    const body = text("original");
    await store().put("obj", body);
    body.fill(0x21);
    const first = await store().get("obj");
    expect(decode(first.body)).toBe("original");
    first.body.fill(0x21);
    expect(decode((await store().get("obj")).body)).toBe("original");
  });

  test("concurrent readers see the old bytes or the new, never a mix", async () => {
    const versions = [new Uint8Array(64 * 1024).fill(0x61), new Uint8Array(96 * 1024).fill(0x62)];
    await store().put("atomic", versions[0]!);
    let writing = true;
    // Two writers alternate the versions while readers re-read back to back until they finish.
    const writers = [0, 1].map(async (writer) => {
      for (let i = 0; i < 10; i++) await store().put("atomic", versions[(i + writer) % 2]!);
    });
    const done = Promise.all(writers).finally(() => {
      writing = false;
    });
    const readers = [0, 1, 2].map(async () => {
      const reads: Uint8Array[] = [];
      do {
        const read = await store().get("atomic");
        expect(read.size).toBe(read.body.byteLength);
        reads.push(read.body);
      } while (writing);
      return reads;
    });
    const [, readLists] = await Promise.all([done, Promise.all(readers)]);
    const reads = readLists.flat();
    const wholes = versions.map(hex);
    const mixed = reads.filter((body) => !wholes.includes(hex(body)));
    expect(
      mixed.map((body) => body.byteLength),
      "reads matching neither version",
    ).toEqual([]);
  });
}

function rangeCases(test: Case, store: StoreOf): void {
  // Bytes 10..19, so a range's content shows which offsets it covers.
  const TEN = Uint8Array.from({ length: 10 }, (_, i) => 10 + i);
  const cases: [string, ByteRange, number[]][] = [
    ["a range of the first byte", { offset: 0, length: 1 }, [10]],
    ["a range of the last byte", { offset: 9, length: 1 }, [19]],
    ["a range of exactly the whole object", { offset: 0, length: 10 }, [...TEN]],
    ["a range inside the object", { offset: 3, length: 4 }, [13, 14, 15, 16]],
    ["a range running past the end is cut at the end", { offset: 7, length: 100 }, [17, 18, 19]],
    ["a range of the whole object and more is cut at the end", { offset: 0, length: 11 }, [...TEN]],
  ];
  for (const [title, range, expected] of cases) {
    test(title, async () => {
      const put = await store().put("ten", TEN);
      const got = await store().get("ten", { range });
      expect([...got.body]).toEqual(expected);
      // The answer describes the whole object, not the slice.
      expect(got).toMatchObject({ key: "ten", size: 10, etag: put.etag });
    });
  }

  test("a range starting exactly at the size is an InvalidArgumentError", async () => {
    await store().put("ten", TEN);
    await expect(store().get("ten", { range: { offset: 10, length: 1 } })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  test("a range starting past the size is an InvalidArgumentError", async () => {
    await store().put("ten", TEN);
    await expect(store().get("ten", { range: { offset: 11, length: 5 } })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  test("any range on an empty object is an InvalidArgumentError", async () => {
    await store().put("empty", new Uint8Array(0));
    await expect(store().get("empty", { range: { offset: 0, length: 1 } })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  test("a range with a length below 1, a negative offset or a fraction is an InvalidArgumentError", async () => {
    await store().put("ten", TEN);
    const bad = [
      { offset: 0, length: 0 },
      { offset: 0, length: -1 },
      { offset: -1, length: 2 },
      { offset: 0.5, length: 1 },
      { offset: 0, length: 1.5 },
    ];
    for (const range of bad) {
      await expect(store().get("ten", { range }), JSON.stringify(range)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
  });

  test("a ranged get of a missing key is a NotFoundError", async () => {
    await expect(store().get("missing", { range: { offset: 0, length: 1 } })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
}

function createOnlyCases(test: Case, store: StoreOf): void {
  const CREATE = { condition: { ifNoneMatch: "*" } } as const;

  test("create-only put creates a missing key", async () => {
    const put = await store().put("new", text("first"), CREATE);
    expectInfo(put, "new", 5);
    const got = await store().get("new");
    expect(decode(got.body)).toBe("first");
    expect(got.etag).toBe(put.etag);
  });

  test("create-only put of an existing key fails with ConflictError and leaves the object intact", async () => {
    const original = await store().put("taken", text("original"));
    await expect(store().put("taken", text("intruder"), CREATE)).rejects.toBeInstanceOf(ConflictError);
    const got = await store().get("taken");
    expect(decode(got.body)).toBe("original");
    expect(got.etag).toBe(original.etag);
  });

  test("create-only put succeeds again once the key was deleted", async () => {
    await store().put("cycle", text("one"), CREATE);
    await store().delete("cycle");
    await store().put("cycle", text("two"), CREATE);
    expect(decode((await store().get("cycle")).body)).toBe("two");
  });

  test(`of ${CONTENDERS} concurrent create-only puts of one key exactly one wins and its body is stored`, async () => {
    const bodies = Array.from({ length: CONTENDERS }, (_, i) => `contender ${i} `.repeat(i + 1));
    const results = await Promise.allSettled(bodies.map((body) => store().put("race", text(body), CREATE)));
    const winner = expectOneWinner(results);
    const got = await store().get("race");
    expect(decode(got.body)).toBe(bodies[winner.index]);
    expect(got.etag).toBe(winner.info.etag);
  });
}

function ifMatchCases(test: Case, store: StoreOf): void {
  test("ifMatch with the current etag replaces the object, and the new etag works for the next one", async () => {
    const first = await store().put("doc", text("v1"));
    const second = await store().put("doc", text("v2"), { condition: { ifMatch: first.etag } });
    expect(decode((await store().get("doc")).body)).toBe("v2");
    const third = await store().put("doc", text("v3"), { condition: { ifMatch: second.etag } });
    const got = await store().get("doc");
    expect(decode(got.body)).toBe("v3");
    expect(got.etag).toBe(third.etag);
  });

  test("ifMatch with a stale etag fails with ConflictError and leaves the object unchanged", async () => {
    const stale = await store().put("doc", text("v1"));
    const current = await store().put("doc", text("v2"));
    expect(current.etag).not.toBe(stale.etag);
    await expect(
      store().put("doc", text("v3"), { condition: { ifMatch: stale.etag } }),
    ).rejects.toBeInstanceOf(ConflictError);
    const got = await store().get("doc");
    expect(decode(got.body)).toBe("v2");
    expect(got.etag).toBe(current.etag);
  });

  test("ifMatch on a missing key fails with ConflictError and creates nothing", async () => {
    const other = await store().put("other", text("v1"));
    await expect(
      store().put("never", text("x"), { condition: { ifMatch: other.etag } }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(store().head("never")).rejects.toBeInstanceOf(NotFoundError);
    await store().delete("other");
    await expect(
      store().put("other", text("x"), { condition: { ifMatch: other.etag } }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(store().head("other")).rejects.toBeInstanceOf(NotFoundError);
  });

  test(`of ${CONTENDERS} concurrent ifMatch puts from one etag exactly one wins`, async () => {
    const base = await store().put("cas", text("base"));
    const bodies = Array.from({ length: CONTENDERS }, (_, i) => `replacement ${i}`);
    const results = await Promise.allSettled(
      bodies.map((body) => store().put("cas", text(body), { condition: { ifMatch: base.etag } })),
    );
    const winner = expectOneWinner(results);
    const got = await store().get("cas");
    expect(decode(got.body)).toBe(bodies[winner.index]);
    expect(got.etag).toBe(winner.info.etag);
  });
}

function listCases(test: Case, store: StoreOf): void {
  test("lists keys in ascending order of their UTF-8 bytes, also across pages", async () => {
    // UTF-8 byte order; neither locale order nor JavaScript's UTF-16 order ("😀" < "Ａ") agrees.
    const ordered = ["A", "B", "Z", "a", "a-b", "a.b", "a/b", "a0", "b", "é", "Ａ", "😀"].map(
      (k) => `order/${k}`,
    );
    expect([...ordered].sort()).not.toEqual(ordered);
    expect([...ordered].sort((x, y) => x.localeCompare(y))).not.toEqual(ordered);
    for (const key of [...ordered].reverse()) await store().put(key, text(key));
    expect(await listedKeys(store(), "order/")).toEqual(ordered);
    expect(await listedKeys(store(), "order/", 5)).toEqual(ordered);
  });

  test("returns only keys that start with the prefix, as a plain string prefix", async () => {
    for (const key of ["p", "p/a", "p/a/deep", "p/b", "pa", "P/a", "q/a", "o"])
      await store().put(key, text(key));
    expect(await listedKeys(store(), "p/")).toEqual(["p/a", "p/a/deep", "p/b"]);
    expect(await listedKeys(store(), "p")).toEqual(["p", "p/a", "p/a/deep", "p/b", "pa"]);
    expect(await listedKeys(store(), "p/a")).toEqual(["p/a", "p/a/deep"]);
    expect(await listedKeys(store(), "P")).toEqual(["P/a"]);
  });

  test("an empty prefix lists every key; a prefix matching nothing gives an empty page without cursor", async () => {
    for (const key of ["x/1", "y/2", "z"]) await store().put(key, text(key));
    expect(await listedKeys(store(), "")).toEqual(["x/1", "y/2", "z"]);
    const none = await store().list("nothing/");
    expect(none.objects).toEqual([]);
    expect(none.cursor).toBeUndefined();
  });

  test("pages with a small limit neither skip nor repeat keys", async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `page/k${String(i).padStart(2, "0")}`);
    await putAll(store(), [...keys, "pag", "pagf", "page"]);
    for (const limit of [1, 4, 7]) {
      const pages = await listPages(store(), "page/", limit);
      const listed = pages.flatMap((page) => page.objects.map((object) => object.key));
      expect(listed, `limit ${limit}`).toEqual(keys);
      for (const page of pages) expect(page.objects.length).toBeLessThanOrEqual(limit);
      expect(pages.slice(0, -1).every((page) => page.cursor !== undefined)).toBe(true);
    }
  });

  test("a page that reaches the last key has no cursor", async () => {
    await putAll(store(), ["e/1", "e/2", "e/3", "e/4", "e/5"]);
    for (const limit of [5, 6, 1000]) {
      const page = await store().list("e/", { limit });
      expect(page.objects).toHaveLength(5);
      expect(page.cursor).toBeUndefined();
    }
    const first = await store().list("e/", { limit: 3 });
    expect(first.cursor).toBeDefined();
    const rest = await store().list("e/", { limit: 3, cursor: first.cursor! });
    expect(rest.objects.map((object) => object.key)).toEqual(["e/4", "e/5"]);
    expect(rest.cursor).toBeUndefined();
  });

  test("without a limit a page holds at most 1000 keys and paging reaches all of 1001", async () => {
    const keys = Array.from({ length: 1001 }, (_, i) => `many/${String(i).padStart(4, "0")}`);
    await putAll(store(), keys);
    const first = await store().list("many/");
    expect(first.objects.length).toBeGreaterThan(0);
    expect(first.objects.length).toBeLessThanOrEqual(1000);
    expect(first.cursor).toBeDefined();
    expect(await listedKeys(store(), "many/")).toEqual(keys);
  });

  test("rejects a limit outside 1..1000 with InvalidArgumentError", async () => {
    await store().put("one", text("1"));
    for (const limit of [0, -1, 1001, 2.5]) {
      await expect(store().list("", { limit }), `limit ${limit}`).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
  });
}

function deleteCases(test: Case, store: StoreOf): void {
  test("delete removes the object from get, head and list", async () => {
    await putAll(store(), ["gone", "stays"]);
    await store().delete("gone");
    await expect(store().get("gone")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store().head("gone")).rejects.toBeInstanceOf(NotFoundError);
    expect(await listedKeys(store(), "")).toEqual(["stays"]);
  });

  test("deleting a missing key succeeds, also twice", async () => {
    await store().delete("never-existed");
    await store().put("once", text("x"));
    await store().delete("once");
    await store().delete("once");
    await expect(store().head("once")).rejects.toBeInstanceOf(NotFoundError);
  });

  test("deleteMany removes existing keys and ignores missing and repeated ones", async () => {
    await putAll(store(), ["m/1", "m/2", "m/3"]);
    await store().deleteMany(["m/1", "m/missing", "m/2", "m/1"]);
    expect(await listedKeys(store(), "")).toEqual(["m/3"]);
    await store().deleteMany(["m/1", "m/2"]);
    expect(await listedKeys(store(), "")).toEqual(["m/3"]);
  });

  test("deleteMany of no keys succeeds and changes nothing", async () => {
    await store().put("kept", text("x"));
    await store().deleteMany([]);
    expect(await listedKeys(store(), "")).toEqual(["kept"]);
  });

  test("deleteMany removes more than 1000 keys in one call", async () => {
    const keys = Array.from({ length: 1001 }, (_, i) => `bulk/${i}`);
    await putAll(store(), [...keys, "survivor"]);
    await store().deleteMany([...keys, "bulk/missing"]);
    expect(await listedKeys(store(), "")).toEqual(["survivor"]);
  });
}

function missingKeyCases(test: Case, store: StoreOf): void {
  test("get of a missing key is a NotFoundError", async () => {
    await store().put("present", text("x"));
    await expect(store().get("absent")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store().get("present/child")).rejects.toBeInstanceOf(NotFoundError);
  });

  test("head of a missing key is a NotFoundError", async () => {
    await store().put("present", text("x"));
    await expect(store().head("absent")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store().head("pres")).rejects.toBeInstanceOf(NotFoundError);
  });
}

// ---- helpers ----

function expectOneWinner(results: PromiseSettledResult<ObjectInfo>[]): { index: number; info: ObjectInfo } {
  const winners = results.flatMap((result, index) =>
    result.status === "fulfilled" ? [{ index, info: result.value }] : [],
  );
  expect(winners, "number of puts that succeeded").toHaveLength(1);
  for (const result of results) {
    if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
  }
  return winners[0]!;
}

function expectInfo(info: ObjectInfo, key: string, size: number): void {
  expect(info.key).toBe(key);
  expect(info.size).toBe(size);
  expect(typeof info.etag).toBe("string");
  expect(info.etag.length).toBeGreaterThan(0);
  expect(validDate(info.lastModified)).toBe(true);
}

function validDate(value: unknown): boolean {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

async function putAll(store: ObjectStore, keys: readonly string[]): Promise<void> {
  // Bounded parallelism: fast on a remote store without opening a thousand requests at once.
  for (let i = 0; i < keys.length; i += CONTENDERS) {
    await Promise.all(keys.slice(i, i + CONTENDERS).map((key) => store.put(key, text(key))));
  }
}

async function listPages(store: ObjectStore, prefix: string, limit?: number): Promise<ListPage[]> {
  const pages: ListPage[] = [];
  let cursor: string | undefined;
  do {
    const options = {
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    };
    const page = await store.list(prefix, options);
    pages.push(page);
    cursor = page.cursor;
    // A store that keeps handing out cursors would loop forever; no valid one needs this many pages.
    if (pages.length > 5000) throw new Error("list never stopped returning a cursor");
  } while (cursor !== undefined);
  return pages;
}

async function listedKeys(store: ObjectStore, prefix: string, limit?: number): Promise<string[]> {
  const pages = await listPages(store, prefix, limit);
  return pages.flatMap((page) => page.objects.map((object) => object.key));
}

/** The oracle for list order, independent of the adapters' own comparison. */
function sortByUtf8(keys: readonly string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
