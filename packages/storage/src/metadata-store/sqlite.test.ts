import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { UnavailableError } from "@sluice/core";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { optimisticIncrements, runMetadataStoreContract } from "./metadata-store.contract.js";
import { SqliteMetadataStore } from "./sqlite.js";

for (const durability of ["fsync", "buffered"] as const) {
  runMetadataStoreContract({
    name: `sqlite, ${durability}`,
    create: async () => {
      const dir = await mkdtemp(join(tmpdir(), "sluice-sqlite-contract-"));
      const store = new SqliteMetadataStore({ path: join(dir, "metadata.db"), durability });
      return {
        store,
        cleanup: async () => {
          store.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  });
}
describe("SqliteMetadataStore on a shared file", () => {
  let dir: string;
  const opened: Array<{ close(): unknown }> = [];
  const open = <T extends { close(): unknown }>(handle: T): T => {
    opened.push(handle);
    return handle;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-sqlite-shared-"));
  });
  afterEach(async () => {
    for (const handle of opened.splice(0)) handle.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for the disk at checkpoints only in fsync durability: buffered runs with synchronous OFF", () => {
    const fsync = open(new SqliteMetadataStore({ path: join(dir, "fsync.db"), durability: "fsync" }));
    const buffered = open(
      new SqliteMetadataStore({ path: join(dir, "buffered.db"), durability: "buffered" }),
    );
    expect(fsync.synchronousLevel).toBe(1); // NORMAL: the WAL and the database synced at checkpoints
    expect(buffered.synchronousLevel).toBe(0); // OFF
  });

  it("two instances doing concurrent conditional increments lose nothing", async () => {
    const path = join(dir, "metadata.db");
    const first = open(new SqliteMetadataStore({ path }));
    const second = open(new SqliteMetadataStore({ path }));
    const key = { pk: "counter", sk: "shared" };
    await first.put({ ...key, counter: 0 });
    const result = await optimisticIncrements(first, second, key, 50);
    expect(result.successes).toBe(50);
    expect((await first.get(key))?.counter).toBe(50);
    expect((await second.get(key))?.counter).toBe(50);
  });

  it("four processes doing conditional increments on one file lose nothing", async () => {
    const path = join(dir, "metadata.db");
    const store = open(new SqliteMetadataStore({ path }));
    const key = { pk: "counter", sk: "cross-process" };
    await store.put({ ...key, counter: 0 });
    // Enough increments per process that the processes overlap and contend for the write lock.
    const child = join(import.meta.dirname, "sqlite-increment-process.ts");
    const runs = await Promise.all(
      Array.from({ length: 4 }, () =>
        promisify(execFile)(process.execPath, ["--import", "tsx", child, path, "500"], { timeout: 30_000 }),
      ),
    );
    const reports = runs.map((run) => JSON.parse(run.stdout) as { successes: number; conflicts: number });
    expect(reports.map((report) => report.successes)).toEqual([500, 500, 500, 500]);
    expect((await store.get(key))?.counter).toBe(2000);
  });

  it("data written by one instance survives reopening the file", async () => {
    const path = join(dir, "metadata.db");
    const writer = new SqliteMetadataStore({ path });
    await writer.put({ pk: "p", sk: "s", bytes: Uint8Array.of(0, 255), nested: { list: [1, null] } });
    writer.close();
    const reader = open(new SqliteMetadataStore({ path }));
    expect(await reader.get({ pk: "p", sk: "s" })).toEqual({
      pk: "p",
      sk: "s",
      bytes: Uint8Array.of(0, 255),
      nested: { list: [1, null] },
    });
  });

  it("a write blocked by another connection's lock past busy_timeout is UnavailableError", async () => {
    const path = join(dir, "metadata.db");
    const store = open(new SqliteMetadataStore({ path, busyTimeoutMs: 50 }));
    await store.put({ pk: "p", sk: "s", v: 1 });
    const other = open(new Database(path));
    other.exec("BEGIN IMMEDIATE");
    try {
      await expect(store.put({ pk: "p", sk: "s", v: 2 })).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      other.exec("ROLLBACK");
    }
    expect(await store.get({ pk: "p", sk: "s" })).toEqual({ pk: "p", sk: "s", v: 1 });
  });

  it("works on a private in-memory database", async () => {
    const store = open(new SqliteMetadataStore({ path: ":memory:" }));
    await store.put({ pk: "p", sk: "s", v: 1 });
    expect(await store.get({ pk: "p", sk: "s" })).toEqual({ pk: "p", sk: "s", v: 1 });
  });
});
