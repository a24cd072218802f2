import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GroupSync } from "./group-sync.js";
import { SqliteMetadataStore } from "./metadata-store/sqlite.js";

/** A sync the test finishes by hand, recording what was written when each began. */
function manualSync(written: () => number) {
  const runs: { coveredUpTo: number; finish: () => void }[] = [];
  const sync = () =>
    new Promise<void>((resolve) => {
      runs.push({ coveredUpTo: written(), finish: resolve });
    });
  return { runs, sync };
}

describe("GroupSync", () => {
  it("makes a writer that asks during a sync wait for the next one, which covers every such writer", async () => {
    let written = 0;
    const { runs, sync } = manualSync(() => written);
    const group = new GroupSync(sync);
    const done: number[] = [];
    const ask = (writer: number) => {
      written = writer;
      void group.request().then(() => done.push(writer));
    };
    ask(1);
    expect(runs).toHaveLength(1);
    ask(2);
    ask(3);
    ask(4);
    // Writes 2–4 happened after sync 1 began: none of them may be answered by it.
    expect(runs).toHaveLength(1);
    runs[0]!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toEqual([1]);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.coveredUpTo).toBe(4);
    runs[1]!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toEqual([1, 2, 3, 4]);
    expect(group.syncs).toBe(2);
  });

  it("rejects the writers of a failed sync, and the next writer gets a fresh one", async () => {
    let fail = true;
    const group = new GroupSync(async () => {
      if (fail) throw new Error("EIO");
    });
    await expect(group.request()).rejects.toThrow("EIO");
    fail = false;
    await expect(group.request()).resolves.toBeUndefined();
  });
});

describe("SqliteMetadataStore, fsync durability", () => {
  it("covers concurrent commits with fewer WAL syncs than commits, each resolving once durable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-group-sync-"));
    const store = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite"), durability: "fsync" });
    try {
      await store.put({ pk: "p", sk: "first" });
      const before = store.syncs;
      expect(before).toBe(1);
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.put({ pk: "p", sk: `k${i}`, n: i })));
      const syncs = store.syncs - before;
      expect(syncs).toBeGreaterThanOrEqual(1);
      expect(syncs).toBeLessThan(40);
      // Nothing pending: a read answers without a sync.
      expect((await store.get({ pk: "p", sk: "k7" }))?.n).toBe(7);
      expect(store.syncs - before).toBe(syncs);
    } finally {
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
