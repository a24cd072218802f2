import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FilesystemObjectStore, toSluiceError } from "./filesystem.js";
import { runObjectStoreContract } from "./object-store.contract.js";

for (const durability of ["fsync", "buffered"] as const) {
  runObjectStoreContract({
    name: `filesystem, ${durability}`,
    create: async () => {
      const root = await mkdtemp(join(tmpdir(), "sluice-object-store-"));
      return {
        store: new FilesystemObjectStore({ root, durability }),
        cleanup: () => rm(root, { recursive: true, force: true }),
      };
    },
  });
}

describe("FilesystemObjectStore", () => {
  let parent: string;
  let root: string;
  beforeEach(async () => {
    // The store's root sits one level down, so anything written beside it is visible in `parent`.
    parent = await mkdtemp(join(tmpdir(), "sluice-object-store-extra-"));
    root = join(parent, "root");
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it("rejects absolute keys and keeps keys with '..' segments inside the root", async () => {
    const store = new FilesystemObjectStore({ root });
    for (const key of ["/etc/passwd", "/../outside"]) {
      await expect(store.put(key, bytes("x"))).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const tricky = ["..", "../outside", "../../outside", "a/../../../outside", "..\\outside", "./.."];
    for (const key of tricky) await store.put(key, bytes(key));
    expect(await readdir(parent)).toEqual(["root"]);
    for (const key of tricky) expect(text((await store.get(key)).body)).toBe(key);
    const listed = (await store.list("")).objects.map((object) => object.key);
    expect(new Set(listed)).toEqual(new Set(tricky));
  });

  it("lets exactly one of two stores on one root win concurrent create-only puts", async () => {
    // Module-wide locks are not taken by create-only puts, so this races the kernel's link(), the
    // same as two processes would.
    const stores = [new FilesystemObjectStore({ root }), new FilesystemObjectStore({ root })];
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        stores[i % 2]!.put("race", bytes(`writer ${i}`), { condition: { ifNoneMatch: "*" } }),
      ),
    );
    const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const result of results) {
      if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
    }
    for (const store of stores) expect(text((await store.get("race")).body)).toBe(`writer ${winners[0]}`);
  });

  it("lets exactly one of several processes win each concurrent create-only put", async () => {
    const workers = await Promise.all([0, 1, 2, 3].map((writer) => startRaceWorker(root, writer, 20)));
    for (const worker of workers) worker.start();
    const outcomes = await Promise.all(workers.map((worker) => worker.outcome));
    const store = new FilesystemObjectStore({ root });
    for (let key = 0; key < 20; key++) {
      const perWriter = outcomes.map((outcome) => outcome[key]);
      expect(
        perWriter.filter((result) => result === "won"),
        `race-${key}: ${perWriter}`,
      ).toHaveLength(1);
      expect(perWriter.filter((result) => result === "ConflictError")).toHaveLength(3);
      const winner = perWriter.indexOf("won");
      expect(text((await store.get(`race-${key}`)).body)).toBe(`writer ${winner}`);
    }
  });

  it("lets exactly one of two stores on one root win concurrent ifMatch puts in one process", async () => {
    const stores = [new FilesystemObjectStore({ root }), new FilesystemObjectStore({ root })];
    const base = await stores[0]!.put("cas", bytes("base"));
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        stores[i % 2]!.put("cas", bytes(`writer ${i}`), { condition: { ifMatch: base.etag } }),
      ),
    );
    const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
    expect(winners).toHaveLength(1);
    expect(text((await stores[1]!.get("cas")).body)).toBe(`writer ${winners[0]}`);
  });

  it("never lists temporary or foreign files", async () => {
    const store = new FilesystemObjectStore({ root });
    await store.put("dir/real", bytes("x"));
    const dirs = (await readdir(root)).filter((name) => name.startsWith("d"));
    expect(dirs).toEqual(["ddir"]);
    // A crashed writer leaves ".tmp-…" files; a person may drop anything else in the tree.
    await writeFile(join(root, "ddir", ".tmp-0000000000000000"), "partial");
    await writeFile(join(root, ".tmp-1111111111111111"), "partial");
    await writeFile(join(root, "README"), "notes");
    await mkdir(join(root, "fnot-a-file"));
    await writeFile(join(root, "dir-without-letter"), "x");
    expect((await store.list("")).objects.map((object) => object.key)).toEqual(["dir/real"]);
  });

  it("keeps one file per object holding exactly its bytes", async () => {
    const store = new FilesystemObjectStore({ root });
    await store.put("topics/orders/00000.log", bytes("segment"));
    const entries = await readdir(join(root, "dtopics", "dorders"));
    expect(entries).toEqual(["f00000.log"]);
    const file = await readFile(join(root, "dtopics", "dorders", "f00000.log"), "utf8");
    expect(file).toBe("segment");
  });

  it("reads what an earlier store instance on the same root wrote", async () => {
    const first = new FilesystemObjectStore({ root });
    const put = await first.put("kept/obj", bytes("persisted"));
    const second = new FilesystemObjectStore({ root });
    const got = await second.get("kept/obj");
    expect(text(got.body)).toBe("persisted");
    expect(got.etag).toBe(put.etag);
    expect((await second.list("kept/")).objects.map((object) => object.etag)).toEqual([put.etag]);
  });

  it("lists nothing and finds nothing when the root does not exist yet", async () => {
    const store = new FilesystemObjectStore({ root: join(parent, "not-yet") });
    expect(await store.list("")).toEqual({ objects: [] });
    await expect(store.get("a")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete("a")).resolves.toBeUndefined();
    await expect(store.deleteMany(["a", "b"])).resolves.toBeUndefined();
  });
});

describe("filesystem error mapping", () => {
  it("maps errno codes to the typed set and keeps the cause", () => {
    const cases: [string, new (...args: never[]) => Error][] = [
      ["ENOSPC", UnavailableError],
      ["EMFILE", UnavailableError],
      ["EIO", UnavailableError],
      ["ENAMETOOLONG", InvalidArgumentError],
      ["EACCES", InternalError],
      ["EROFS", InternalError],
    ];
    for (const [code, kind] of cases) {
      const cause = Object.assign(new Error(code), { code });
      const mapped = toSluiceError(cause, { operation: "put" });
      expect(mapped, code).toBeInstanceOf(kind);
      expect(mapped.cause).toBe(cause);
    }
  });
});

interface RaceWorker {
  start(): void;
  outcome: Promise<string[]>;
}

/** Spawns filesystem-race-worker.ts and resolves once it waits at the start barrier. */
async function startRaceWorker(root: string, writer: number, keys: number): Promise<RaceWorker> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const script = join(import.meta.dirname, "filesystem-race-worker.ts");
  const child = spawn(process.execPath, ["--import", tsx, script, root, String(writer), String(keys)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const iterator = lines[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const first = await iterator.next();
  if (first.value !== "ready") throw new Error(`race worker ${writer} did not start: ${first.value}`);
  const outcome = (async () => {
    const line = await iterator.next();
    const code = await exited;
    if (code !== 0 || line.done) throw new Error(`race worker ${writer} failed with exit code ${code}`);
    return JSON.parse(line.value) as string[];
  })();
  return { start: () => child.stdin.end("go\n"), outcome };
}

function bytes(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function text(value: Uint8Array): string {
  return new TextDecoder().decode(value);
}
