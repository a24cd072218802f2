import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { ConflictError, NotFoundError } from "@sluice/core";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fdatasyncAsync } from "../group-sync.js";
import { runObjectStoreContract } from "./object-store.contract.js";
import { PackedObjectStore, type PackedObjectStoreOptions } from "./packed.js";
import { expectedBody } from "./packed-crash-worker.js";

/** Bound three ways: every object in segments (small ones rolling often), and inline in the index. */
const bindings: [string, Omit<PackedObjectStoreOptions, "root">][] = [
  ["segments, fsync", { durability: "fsync", inlineBytesMax: 0, segmentBytesMax: 64 }],
  ["segments, buffered", { durability: "buffered", inlineBytesMax: 0 }],
  ["inline, buffered", { durability: "buffered" }],
];
for (const [name, options] of bindings) {
  runObjectStoreContract({
    name: `packed, ${name}`,
    create: async () => {
      const root = await mkdtemp(join(tmpdir(), "sluice-packed-"));
      const store = new PackedObjectStore({ root, ...options });
      return {
        store,
        cleanup: async () => {
          store.close();
          await rm(root, { recursive: true, force: true });
        },
      };
    },
  });
}

const bytes = (text: string) => new TextEncoder().encode(text);

/**
 * A `flush` for the packed store that, once `hold()` is called, keeps segment flushes (not the
 * index's WAL or the directory's) waiting until `release()`: puts whose commit is on its way.
 */
function segmentFlushGate() {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holding = false;
  return {
    flush: async (descriptor: number, path: string) => {
      if (holding && !path.endsWith("-wal") && !path.endsWith("segments")) await held;
      await fdatasyncAsync(descriptor);
    },
    hold: () => {
      holding = true;
    },
    release: () => release(),
  };
}
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("PackedObjectStore", () => {
  let root: string;
  const stores: PackedObjectStore[] = [];
  const open = (options: Omit<PackedObjectStoreOptions, "root"> = {}) => {
    const store = new PackedObjectStore({ root, inlineBytesMax: 4, segmentBytesMax: 32, ...options });
    stores.push(store);
    return store;
  };
  /** The keys the index lists as unsynced, read as another process would. */
  const unsyncedKeys = () => {
    const index = new Database(join(root, "index.sqlite"), { readonly: true });
    try {
      return index.prepare("SELECT key FROM unsynced").all();
    } finally {
      index.close();
    }
  };
  const processes: ChildProcess[] = [];
  /** The id of a process that runs until the test ends: one that is not a segment's writer. */
  const runningProcessId = () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], { stdio: "ignore" });
    processes.push(child);
    return child.pid!;
  };
  /**
   * An fsync writer that has made one put, whose segment flushes are held from now on until
   * `gate.release()`: its next fast put waits with its row listed as unsynced.
   */
  const heldWriter = async (options: Omit<PackedObjectStoreOptions, "root"> = {}) => {
    const gate = segmentFlushGate();
    const store = open({
      durability: "fsync",
      inlineBytesMax: 0,
      segmentBytesMax: 1 << 20,
      flush: gate.flush,
      ...options,
    });
    await store.put("warm", bytes("up"));
    gate.hold();
    return { store, gate };
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "sluice-packed-extra-"));
  });
  afterEach(async () => {
    for (const child of processes.splice(0)) child.kill("SIGKILL");
    for (const store of stores.splice(0)) store.close();
    await rm(root, { recursive: true, force: true });
  });

  it("creates no file per object: small ones live in the index, large ones share segment files", async () => {
    const store = open({ inlineBytesMax: 100, segmentBytesMax: 1 << 20 });
    for (let i = 0; i < 50; i++) await store.put(`small/${i}`, bytes("tiny"));
    for (let i = 0; i < 50; i++) await store.put(`large/${i}`, bytes(`${"x".repeat(200)}${i}`));
    expect((await readdir(join(root, "segments"))).length).toBe(1);
    expect(text((await store.get("large/7")).body)).toBe(`${"x".repeat(200)}7`);
    expect(text((await store.get("large/7", { range: { offset: 199, length: 5 } })).body)).toBe("x7");
  });

  it("lets exactly one of two stores on one root (two processes' worth) win concurrent create-only puts", async () => {
    const [a, b] = [open(), open()];
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).put("race", bytes(`writer ${i} long enough`), { condition: { ifNoneMatch: "*" } }),
      ),
    );
    const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const result of results)
      if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
    expect(text((await a.get("race")).body)).toBe(`writer ${winners[0]} long enough`);
    expect(text((await b.get("race")).body)).toBe(`writer ${winners[0]} long enough`);
  });

  it("deletes a closed segment once none of its objects is left, and keeps the others", async () => {
    const store = open({ inlineBytesMax: 0, segmentBytesMax: 20 });
    for (let i = 0; i < 6; i++) await store.put(`k${i}`, bytes(`value number ${i}`));
    const segments = await readdir(join(root, "segments"));
    expect(segments.length).toBeGreaterThan(2);
    await store.deleteMany(["k0", "k1", "k2"]);
    await store.put("k3", bytes("replaced, in a new segment"));
    const left = await readdir(join(root, "segments"));
    expect(left.length).toBeLessThan(segments.length);
    for (const key of ["k3", "k4", "k5"]) expect((await store.get(key)).size).toBeGreaterThan(0);
  });

  it("reclaims closed segments that are mostly dead: their live objects move, the same, and the files go", async () => {
    for (const durability of ["fsync", "buffered"] as const) {
      await rm(join(root, "segments"), { recursive: true, force: true });
      const store = open({ durability, inlineBytesMax: 0, segmentBytesMax: 100 });
      // Segments of about four 30-byte objects each; one object of each is kept, as a long-kept
      // topic would keep its objects among those of a short-kept one.
      const value = (i: number) =>
        bytes(`${durability} object ${String(i).padStart(3, "0")} ${"x".repeat(10)}`);
      for (let i = 0; i < 16; i++) await store.put(`${durability}/${i}`, value(i));
      const etags = new Map<string, string>();
      for (let i = 0; i < 16; i += 4)
        etags.set(`${durability}/${i}`, (await store.head(`${durability}/${i}`)).etag);
      await store.deleteMany(
        Array.from({ length: 16 }, (_, i) => `${durability}/${i}`).filter((key) => !etags.has(key)),
      );
      const before = await readdir(join(root, "segments"));
      const report = await store.reclaimSegments();
      const after = await readdir(join(root, "segments"));
      // Every closed segment was a quarter live: each gave its object up and went.
      expect(report.segments).toBeGreaterThanOrEqual(3);
      expect(report.objects).toBe(report.segments);
      expect(report.bytesFreed).toBeGreaterThan(report.bytesCopied);
      expect(after.filter((name) => before.includes(name)).length).toBe(before.length - report.segments);
      for (const [key, etag] of etags) {
        const object = await store.get(key);
        expect(object.etag).toBe(etag);
        expect(text(object.body)).toBe(text(value(Number(key.split("/")[1]))));
      }
      await expect(store.reclaimSegments({ liveFractionMax: 0 })).rejects.toThrow(/liveFractionMax/);
      // What moved is deleted like anything else; then nothing is left to move.
      await store.deleteMany([...etags.keys()]);
      await expect(store.get([...etags.keys()][0]!)).rejects.toThrow(/not found/);
      expect((await store.reclaimSegments()).objects).toBe(0);
      store.close();
      stores.splice(stores.indexOf(store), 1);
    }
  });

  it("moves no object that changed while it was copied, in another instance on the same root", async () => {
    // Buffered: the other instance's put writes its row before the reclaim's first yield ends (in
    // fsync durability it would wait for its sync, and when it lands depends on the disk).
    const store = open({ durability: "buffered", inlineBytesMax: 0, segmentBytesMax: 168 });
    const other = open({ durability: "buffered", inlineBytesMax: 0, segmentBytesMax: 168 });
    // 20-byte objects in 28-byte data frames, six to a segment: k0–k5 in a closed one that will
    // be a third live.
    const value = (i: number) => bytes(`the value of k${String(i).padStart(2, "0")}, ok`);
    for (let i = 0; i < 13; i++) await store.put(`k${i}`, value(i));
    await store.deleteMany(["k0", "k1", "k2", "k3"]);
    // While the copies are made (the reclaim yields between objects), the other instance
    // replaces one of the two kept objects: the segment keeps the other, so the old bytes of the
    // replaced one are still there to copy.
    const [report] = await Promise.all([
      store.reclaimSegments(),
      other.put("k4", bytes("replaced meanwhile")),
    ]);
    expect(text((await store.get("k4")).body)).toBe("replaced meanwhile");
    expect(text((await other.get("k4")).body)).toBe("replaced meanwhile");
    expect(text((await store.get("k5")).body)).toBe(text(value(5)));
    expect(report).toMatchObject({ segments: 1, objects: 1 });
    for (let i = 6; i < 13; i++) expect(text((await other.get(`k${i}`)).body)).toBe(text(value(i)));
  });

  it("closes its open segment on close(): the file goes once its objects do", async () => {
    const first = open({ inlineBytesMax: 0, segmentBytesMax: 1 << 20 });
    await first.put("a", bytes("in the segment left open"));
    first.close();
    const second = open({ inlineBytesMax: 0 });
    expect(await readdir(join(root, "segments"))).toHaveLength(1);
    await second.delete("a");
    expect(await readdir(join(root, "segments"))).toEqual([]);
  });

  it("closes the open segment of a writer that died at the next reclaim, not a running one's", async () => {
    // A process id that is gone: a child that has exited.
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
    const running = open({ inlineBytesMax: 0, segmentBytesMax: 1 << 20 }); // this process
    const died = open({ inlineBytesMax: 0, segmentBytesMax: 1 << 20, ownerPid: deadPid });
    await running.put("running/a", bytes("in a segment still open"));
    await died.put("died/a", bytes("in a segment its process left open"));
    await died.put("died/b", bytes("kept: the reclaim moves it"));
    // The writer died without closing (its instance here is simply not used again).
    const other = open({ inlineBytesMax: 0 });
    await other.delete("running/a");
    await other.delete("died/a");
    expect(await readdir(join(root, "segments"))).toHaveLength(2);
    const report = await other.reclaimSegments();
    // The dead writer's segment is closed, mostly dead, so its last object moves and it goes; the
    // running writer's segment stays open, though empty, as it may still append.
    expect(report).toMatchObject({ segments: 1, objects: 1 });
    const left = await readdir(join(root, "segments"));
    expect(left).toHaveLength(2);
    expect(text((await other.get("died/b")).body)).toBe("kept: the reclaim moves it");
    await running.put("running/b", bytes("appended after the reclaim"));
    expect(text((await other.get("running/b")).body)).toBe("appended after the reclaim");
  });

  it.skipIf(process.platform !== "linux")(
    "closes the open segment of a writer whose process id another process has taken (Linux)",
    async () => {
      // A running process that is not the writer: the writer's id, recorded with another start.
      const otherPid = runningProcessId();
      const reused = open({
        inlineBytesMax: 0,
        segmentBytesMax: 1 << 20,
        ownerPid: otherPid,
        ownerStart: "1",
      });
      const kept = open({ inlineBytesMax: 0, segmentBytesMax: 1 << 20, ownerPid: otherPid }); // its real start
      await reused.put("reused/a", bytes("in a segment its writer left open"));
      await kept.put("kept/a", bytes("in a segment still being written"));
      const reader = open({ inlineBytesMax: 0 });
      await reader.delete("reused/a");
      await reader.delete("kept/a");
      // Only the first is closed, and being empty, deleted; the second's writer still runs.
      expect(await reader.reclaimSegments()).toMatchObject({ segments: 1 });
      expect(await readdir(join(root, "segments"))).toHaveLength(1);
    },
  );

  it("loses nothing when its open segment is closed and deleted under it (its process taken for gone)", async () => {
    // A writer whose process id reads as gone though it runs (another PID namespace on a shared
    // directory, say): another instance's reclaim closes its open segment, and once empty deletes it.
    for (const durability of ["fsync", "buffered"] as const) {
      const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
      const writer = open({ durability, inlineBytesMax: 0, segmentBytesMax: 1 << 20, ownerPid: deadPid });
      const other = open({ durability, inlineBytesMax: 0 });
      await writer.put(`${durability}/a`, bytes("the only object of the open segment"));
      await other.delete(`${durability}/a`);
      expect((await other.reclaimSegments()).segments).toBe(1);
      // The writer goes on as if nothing happened: its next put must not point into the deleted file.
      await writer.put(`${durability}/b`, bytes("written after its segment was deleted"));
      expect(text((await other.get(`${durability}/b`)).body)).toBe("written after its segment was deleted");
      expect(text((await writer.get(`${durability}/b`)).body)).toBe("written after its segment was deleted");
    }
  });

  it("opens an index from before segments recorded their writer, and leaves those segments alone", async () => {
    const old = new Database(join(root, "index.sqlite"));
    old.exec(
      "CREATE TABLE segments (name TEXT NOT NULL PRIMARY KEY, live INTEGER NOT NULL, sealed INTEGER NOT NULL) WITHOUT ROWID",
    );
    old.prepare("INSERT INTO segments (name, live, sealed) VALUES ('older-000000.seg', 0, 0)").run();
    old.close();
    const store = open({ inlineBytesMax: 0 });
    await store.put("a", bytes("written after the upgrade"));
    expect((await store.reclaimSegments()).segments).toBe(0);
    expect(text((await store.get("a")).body)).toBe("written after the upgrade");
  });

  it("reads raw segments from before frames after the upgrade, and never scans them", async () => {
    // An index and a segment as written before frames: raw bytes, the row pointing at them.
    mkdirSync(join(root, "segments"), { recursive: true });
    writeFileSync(join(root, "segments", "older-000000.seg"), "0123456789old object bytes");
    const old = new Database(join(root, "index.sqlite"));
    old.exec(
      "CREATE TABLE objects (key TEXT NOT NULL PRIMARY KEY, etag TEXT NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL, body BLOB, segment TEXT, position INTEGER)",
    );
    old.exec(
      "CREATE TABLE segments (name TEXT NOT NULL PRIMARY KEY, live INTEGER NOT NULL, sealed INTEGER NOT NULL, owner INTEGER) WITHOUT ROWID",
    );
    old.prepare("INSERT INTO segments VALUES ('older-000000.seg', 16, 1, NULL)").run();
    old.prepare(`INSERT INTO objects VALUES ('old', '"e"', 16, 0, NULL, 'older-000000.seg', 10)`).run();
    old.close();
    const store = open({ durability: "fsync", inlineBytesMax: 0 });
    expect(text((await store.get("old")).body)).toBe("old object bytes");
    await store.put("new", bytes("written as frames"));
    expect(text((await store.get("new")).body)).toBe("written as frames");
    store.close();
    const reopened = open({ durability: "fsync", inlineBytesMax: 0 });
    expect((await reopened.list("")).objects.map((object) => object.key)).toEqual(["new", "old"]);
  });

  it("waits for one flush, its segment's, for a new key; lists its row as unsynced only until then", async () => {
    const flushed: string[] = [];
    const flush = async (descriptor: number, path: string) => {
      flushed.push(path.endsWith("-wal") ? "index" : path.endsWith("segments") ? "directory" : "segment");
      await fdatasyncAsync(descriptor);
    };
    const store = open({ durability: "fsync", inlineBytesMax: 0, segmentBytesMax: 1 << 20, flush });
    await store.put("first", bytes("the segment's creation is flushed first"));
    flushed.length = 0;
    await store.put("second", bytes("one flush"));
    expect(flushed).toEqual(["segment"]);
    // A replace waits for its segment, then the index.
    flushed.length = 0;
    await store.put("second", bytes("a replace"));
    expect(flushed).toEqual(["segment", "index"]);
    await setImmediatePromise();
    const index = new Database(join(root, "index.sqlite"), { readonly: true });
    expect(index.prepare("SELECT count(*) AS n FROM unsynced").get()).toEqual({ n: 0 });
    index.close();
  });

  it("answers a read of a new key's row only once its segment's flush has ended", async () => {
    const { store, gate } = await heldWriter();
    const put = store.put("k", bytes("held back"));
    const events: string[] = [];
    const read = store.head("k").then(() => events.push("read"));
    put.then(() => events.push("put"));
    for (let turn = 0; turn < 20; turn++) await setImmediatePromise();
    expect(events).toEqual([]);
    gate.release();
    await Promise.all([put, read]);
    expect(events.sort()).toEqual(["put", "read"]);
  });

  it("leaves a running writer's unsynced rows to it when another instance opens beside it", async () => {
    const { store: writer, gate } = await heldWriter();
    const put = writer.put("k", bytes("on its way"));
    expect(unsyncedKeys()).toEqual([{ key: "k" }]);
    // This process runs the writer: the other instance checks none of its rows.
    const other = open({ durability: "fsync", inlineBytesMax: 0 });
    expect(unsyncedKeys()).toEqual([{ key: "k" }]);
    gate.release();
    await put;
    expect(text((await other.get("k")).body)).toBe("on its way");
  });

  it.skipIf(process.platform !== "linux")(
    "checks the unsynced rows of a writer whose process id another process has taken (Linux)",
    async () => {
      const { store: writer, gate } = await heldWriter({
        ownerPid: runningProcessId(),
        ownerStart: "1", // not the running process's: its writer is gone
      });
      const put = writer.put("k", bytes("its commit frame is whole"));
      expect(unsyncedKeys()).toEqual([{ key: "k" }]);
      // Opening checks the row against its commit frame (whole: kept) and takes it off the list,
      // where a process id alone would have read the writer as running and left it unchecked.
      const reader = open({ durability: "fsync", inlineBytesMax: 0 });
      expect(unsyncedKeys()).toEqual([]);
      expect(text((await reader.get("k")).body)).toBe("its commit frame is whole");
      gate.release();
      await put;
    },
  );

  it("keeps every acknowledged put and delete of a writer process killed mid-write, and opens on what it left", async () => {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const script = join(import.meta.dirname, "packed-crash-worker.ts");
    const child = spawn(process.execPath, ["--import", tsx, script, root], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const acked = new Map<string, number>();
    const deleted = new Set<string>();
    const deleting = new Set<string>();
    const newest: string[] = [];
    let killed = false;
    for await (const line of createInterface({ input: child.stdout! })) {
      const [what, key, size] = line.split(" ");
      if (what === "acked") acked.set(key!, Number(size));
      if (what === "deleting") deleting.add(key!);
      if (what === "deleted") deleted.add(key!);
      // Killed while puts and deletes are on their way, well after its first segment filled, just
      // after it deleted one of its newest keys (whose commit frame is in its open segment).
      if (what === "acked") newest.push(key!);
      const recent = what === "deleted" && newest.slice(-8).includes(key!);
      if (!killed && acked.size >= 400 && (recent || acked.size >= 2_000)) {
        killed = true;
        child.kill("SIGKILL");
      }
    }
    await exited;
    expect(acked.size).toBeGreaterThanOrEqual(400);
    expect(deleted.size).toBeGreaterThan(0);
    const store = open({ durability: "fsync", inlineBytesMax: 256 });
    for (const [key, size] of acked) {
      if (deleted.has(key)) await expect(store.get(key)).rejects.toBeInstanceOf(NotFoundError);
      // A delete on its way when the writer died may or may not have happened.
      else if (!deleting.has(key))
        expect(Buffer.from((await store.get(key)).body).equals(expectedBody(key, size))).toBe(true);
    }
    // Whatever else is there (puts on their way when it died) holds the bytes that were sent.
    const listed = [];
    for (let cursor: string | undefined; ; ) {
      const page = await store.list("", cursor === undefined ? {} : { cursor });
      listed.push(...page.objects);
      if (!page.cursor) break;
      cursor = page.cursor;
    }
    for (const object of listed) {
      const body = (await store.get(object.key)).body;
      expect(Buffer.from(body).equals(expectedBody(object.key, object.size)), object.key).toBe(true);
    }
    // Its open segment is closed by the next reclaim (its process is gone), and nothing is lost.
    await store.reclaimSegments();
    for (const [key, size] of acked) if (!deleting.has(key)) expect((await store.head(key)).size).toBe(size);
  });

  it("reads what an earlier instance on the same root wrote, and writes segments of its own", async () => {
    const first = open({ durability: "fsync" });
    await first.put("a", bytes("written before the restart"));
    first.close();
    const second = open();
    expect(text((await second.get("a")).body)).toBe("written before the restart");
    await second.put("b", bytes("written after the restart"));
    expect((await readdir(join(root, "segments"))).length).toBe(2);
  });

  it("waits for the disk at index checkpoints only in fsync durability: buffered runs with synchronous OFF", () => {
    expect(open({ durability: "fsync" }).synchronousLevel).toBe(1);
    const bufferedRoot = join(root, "buffered");
    const buffered = new PackedObjectStore({ root: bufferedRoot, durability: "buffered" });
    stores.push(buffered);
    expect(buffered.synchronousLevel).toBe(0);
  });

  it("group-commits concurrent puts in fsync durability: fewer syncs than puts", async () => {
    const store = open({ durability: "fsync", inlineBytesMax: 8, segmentBytesMax: 1 << 20 });
    await store.put("warm", bytes("up"));
    const before = store.syncs;
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(`p${i}`, bytes(`payload of put ${i}`))));
    const syncs = store.syncs - before;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(30);
  });
});
