import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { PrometheusMetrics } from "@sluice/telemetry/prometheus";
import { parsePrometheusText, SimulatedClock, sampleValue } from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import type { AcknowledgeType } from "./acknowledge.js";
import { collectShareGroupMetrics } from "./metrics.js";
import { ShareGroups } from "./share-groups.js";

const LOCK = 10_000;
let clock: SimulatedClock;
let engine: Engine;
let metrics: PrometheusMetrics;
let queues: ShareGroups;

beforeEach(async () => {
  clock = new SimulatedClock({ seed: 4, sleeps: "wait" });
  const metadata = new MemoryMetadataStore();
  engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  metrics = new PrometheusMetrics({ processMetrics: false });
  queues = new ShareGroups({ engine, metadata, clock, sessionTimeoutMs: 120_000, metrics });
  await engine.createTopic({ name: "jobs", partitions: 1 });
  await engine.createTopic({ name: "jobs-dlq", partitions: 1 });
  await engine.append({
    topic: "jobs",
    records: Array.from({ length: 6 }, (_, index) => ({
      key: null,
      value: new TextEncoder().encode(`r${index}`),
      partition: 0,
    })),
  });
  for (const member of ["a", "b"]) {
    await queues.join({
      groupId: "q",
      memberId: member,
      topics: ["jobs"],
      configs: {
        autoOffsetReset: "earliest",
        lockDurationMs: LOCK,
        deliveryCountLimit: 2,
        deadLetterTopic: "jobs-dlq",
      },
    });
  }
});

const ack = (member: string, type: AcknowledgeType, ...offsets: number[]) =>
  queues.acknowledge(
    "q",
    member,
    offsets.map((offset) => ({ topic: "jobs", partition: 0, offset, type })),
  );

async function scrape(): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  await collectShareGroupMetrics({ shareGroups: queues, metrics });
  const samples = parsePrometheusText(await metrics.exposition());
  return (name, labels = {}) => sampleValue(samples, name, { group: "q", topic: "jobs", ...labels });
}

describe("share-group metrics", () => {
  it("count deliveries, applied acknowledgements, archives and dead letters once each, and gauge in-flight records and lag", async () => {
    expect((await queues.acquire("q", "a", { maxRecords: 6 })).records).toHaveLength(6);
    let value = await scrape();
    expect(value("sluice_share_group_records_acquired_total")).toBe(6);
    expect(value("sluice_share_group_records_in_flight", { partition: "0" })).toBe(6);
    expect(value("sluice_share_group_lag_records", { partition: "0" })).toBe(6);

    await ack("a", "ACCEPT", 0, 1);
    await ack("a", "ACCEPT", 0); // a retry, answered as accepted: not applied again
    await ack("a", "REJECT", 2);
    await ack("a", "RELEASE", 3);
    await ack("a", "RENEW", 4);
    value = await scrape();
    const acknowledged = (type: string) => value("sluice_share_group_records_acknowledged_total", { type });
    expect([
      acknowledged("accept"),
      acknowledged("reject"),
      acknowledged("release"),
      acknowledged("renew"),
    ]).toEqual([2, 1, 1, 1]);
    expect(value("sluice_share_group_records_archived_total", { reason: "rejected" })).toBe(1);
    expect(value("sluice_share_group_dead_lettered_total")).toBe(1);
    expect(value("sluice_share_group_records_in_flight", { partition: "0" })).toBe(2);
    expect(value("sluice_share_group_lag_records", { partition: "0" })).toBe(3);

    // a's locks pass: b gets 3, 4 and 5 a second time (the limit), and lets them pass too.
    await clock.advance(LOCK + 1);
    expect((await queues.acquire("q", "b", { maxRecords: 6 })).records.map((r) => r.offset)).toEqual([
      3, 4, 5,
    ]);
    await clock.advance(LOCK + 1);
    expect((await queues.acquire("q", "b", { maxRecords: 6 })).records).toEqual([]);
    // Counted by the write that landed, not by every reader that saw the locks pass.
    await queues.describe("q");
    expect((await queues.acquire("q", "a", { maxRecords: 6 })).records).toEqual([]);
    value = await scrape();
    expect(value("sluice_share_group_records_acquired_total")).toBe(9);
    expect(value("sluice_share_group_records_archived_total", { reason: "delivery-count-limit" })).toBe(3);
    expect(value("sluice_share_group_dead_lettered_total")).toBe(4);
    expect(value("sluice_share_group_records_in_flight", { partition: "0" })).toBe(0);
    expect(value("sluice_share_group_lag_records", { partition: "0" })).toBe(0);
    expect((await engine.partitionOffsets("jobs-dlq", 0)).highWatermark).toBe(4);
  });
});
