import { MaintenanceRunner } from "@sluice/maintenance";
import { expect } from "vitest";

/**
 * Maintenance as clients see it over HTTP (docs/maintenance.md): retention moving the log start
 * (reads below it answer 416), key compaction leaving the latest record per key at its offset,
 * and the topic resource's storage. `runMaintenance` runs the maintenance jobs on the named topics
 * the way the binding deploys them (a runner over the same stores, or the maintenance Lambda).
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

export interface MaintenanceApi {
  cluster: () => string;
  topicPath: (topic: string) => string;
  call: (path: string, init?: RequestInit) => Promise<{ status: number; headers: Headers; body: Json }>;
  send: (
    method: string,
    path: string,
    body?: unknown,
  ) => Promise<{ status: number; headers: Headers; body: Json }>;
  createTopic: (prefix: string, partitions?: number, configs?: Record<string, string>) => Promise<string>;
  produce: (topic: string, record: Json) => Promise<Json>;
  read: (topic: string, partition: number, query?: string) => Promise<{ status: number; body: Json }>;
}

type Test = (title: string, body: () => Promise<void>) => void;

const DAY_MS = 86_400_000;
const LONG_AGO = Date.UTC(2020, 0, 1);
const text = (data: string) => ({ type: "STRING", data });

export function maintenanceCases(
  api: MaintenanceApi,
  test: Test,
  runMaintenance: ((topics: string[]) => Promise<void>) | undefined,
): void {
  const maintain = async (topic: string) => {
    if (!runMaintenance) throw new Error("this binding runs no maintenance");
    await runMaintenance([topic]);
  };

  test("retention.ms: expired records leave the log, reads below its start answer 416, earliest moves", async () => {
    const name = await api.createTopic("retention-time", 1, { "retention.ms": String(DAY_MS) });
    await api.produce(name, { partition_id: 0, timestamp: LONG_AGO, value: text("long ago") });
    await api.produce(name, { partition_id: 0, timestamp: LONG_AGO + 1, value: text("long ago too") });
    await api.produce(name, { partition_id: 0, value: text("today") });
    await maintain(name);
    const partition = await api.call(`${api.topicPath(name)}/partitions/0`);
    expect(partition.body).toMatchObject({ earliest_offset: 2, latest_offset: 3 });
    const below = await api.read(name, 0, "offset=1");
    expect(below.status).toBe(416);
    expect(below.body.message).toMatch(/offset 1 is out of range .* valid offsets are 2 to 3/);
    const earliest = await api.read(name, 0, "offset=earliest&value_type=STRING");
    expect(earliest.body).toMatchObject({ log_start_offset: 2, next_offset: 3 });
    expect(earliest.body.records.map((record: Json) => [record.offset, record.value.data])).toEqual([
      [2, "today"],
    ]);
    const topic = await api.call(api.topicPath(name));
    expect(topic.status).toBe(200);
    expect(topic.body.storage.partitions[0]).toMatchObject({
      partition_id: 0,
      log_start_offset: 2,
      high_watermark: 3,
      index_entries: 1,
      records: 1,
    });
    expect(topic.body.storage.size_bytes).toBeGreaterThan(0);
    expect(Date.parse(topic.body.storage.maintenance_last_run_at)).toBeGreaterThan(Date.now() - DAY_MS);
  });

  test("retention.bytes: the oldest records go while the rest still reaches it", async () => {
    const name = await api.createTopic("retention-size", 1, { "retention.bytes": "1" });
    for (const value of ["one", "two", "three"])
      await api.produce(name, { partition_id: 0, value: text(value) });
    await maintain(name);
    const page = await api.read(name, 0, "offset=earliest&value_type=STRING");
    expect(page.body).toMatchObject({ log_start_offset: 2, high_watermark: 3 });
    expect(page.body.records.map((record: Json) => record.value.data)).toEqual(["three"]);
  });

  test("cleanup.policy compact keeps the latest record per key at its offset, and refuses records without a key", async () => {
    const name = await api.createTopic("compacted", 1, { "cleanup.policy": "compact" });
    const produce = (key: string, value: string | null) =>
      api.produce(name, {
        partition_id: 0,
        key: text(key),
        ...(value === null ? {} : { value: text(value) }),
      });
    await produce("k1", "a");
    await produce("k2", "b");
    await produce("k1", "c");
    await produce("k3", "d");
    await produce("k2", null);
    await maintain(name);
    const page = await api.read(name, 0, "offset=0&key_type=STRING&value_type=STRING");
    expect(page.status).toBe(200);
    expect(
      page.body.records.map((record: Json) => [record.offset, record.key.data, record.value?.data ?? null]),
    ).toEqual([
      [2, "k1", "c"],
      [3, "k3", "d"],
      [4, "k2", null],
    ]);
    expect(page.body).toMatchObject({ log_start_offset: 0, high_watermark: 5, next_offset: 5 });
    // A read from an offset compaction emptied starts at the next record that is there.
    const fromGap = await api.read(name, 0, "offset=1&max_records=1&key_type=STRING");
    expect(fromGap.body.records.map((record: Json) => record.offset)).toEqual([2]);
    expect(fromGap.body.next_offset).toBe(3);
    const keyless = await api.send("POST", `${api.topicPath(name)}/records`, { value: text("no key") });
    expect(keyless.status).toBe(400);
    expect(keyless.body.message).toMatch(/has no key; topic .* has cleanup.policy compact/);
    const topic = await api.call(api.topicPath(name));
    expect(topic.body.storage.partitions[0]).toMatchObject({ records: 3, high_watermark: 5 });
  });
}

/** `runMaintenance` for a binding whose apps run over stores it holds: a runner over the same stores. */
export function maintenanceOver(stores: {
  objects: ConstructorParameters<typeof MaintenanceRunner>[0]["objects"];
  metadata: ConstructorParameters<typeof MaintenanceRunner>[0]["metadata"];
}): (topics: string[]) => Promise<void> {
  return async (topics) => {
    const report = await new MaintenanceRunner(stores).runOnce({ topics });
    if (report.failures.length > 0)
      throw new Error(`maintenance failed: ${String(report.failures[0]!.error)}`);
  };
}
