import { hasPromtool, parsePrometheusText, promtoolCheckMetrics, sampleValue } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import type { Series } from "./metrics.js";
import { PrometheusMetrics } from "./prometheus.js";
import { ALL_SERIES, consumerGroupLagRecords, fetchLatency, produceRecords } from "./series.js";

const promtoolMissing = !hasPromtool();

/** One sample of every series in the catalogue. */
function everySeries(metrics: PrometheusMetrics): void {
  for (const series of ALL_SERIES as Series<string>[]) {
    const labels = Object.fromEntries(series.labels.map((label) => [label, `${label}-1`]));
    if (series.kind === "counter") metrics.counter(series).add(3, labels);
    else if (series.kind === "gauge") metrics.gauge(series).set(7, labels);
    else metrics.histogram(series).record(series.buckets[1]!, labels);
  }
}

describe("PrometheusMetrics", () => {
  it("counts exactly what was added, per label set, and ignores negative additions", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const records = metrics.counter(produceRecords);
    records.add(5, { topic: "orders", partition: 0 });
    records.add(2, { topic: "orders", partition: 0 });
    records.add(1, { topic: "orders", partition: 1 });
    records.add(-4, { topic: "orders", partition: 1 });
    records.add(Number.NaN, { topic: "orders", partition: 1 });
    // Asking again for the same series records into it.
    metrics.counter(produceRecords).add(10, { topic: "payments", partition: 3 });
    const samples = parsePrometheusText(await metrics.exposition());
    const name = "sluice_produce_records_total";
    expect(sampleValue(samples, name, { topic: "orders", partition: "0" })).toBe(7);
    expect(sampleValue(samples, name, { topic: "orders", partition: "1" })).toBe(1);
    expect(sampleValue(samples, name, { topic: "payments", partition: "3" })).toBe(10);
    expect(samples.filter((sample) => sample.name === name)).toHaveLength(3);
  });

  it("puts observations in the series' buckets, with count and sum", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const latency = metrics.histogram(fetchLatency);
    for (const seconds of [0.0004, 0.003, 0.003, 0.2, 40]) latency.record(seconds, { topic: "t" });
    const samples = parsePrometheusText(await metrics.exposition());
    const bucket = (le: string) =>
      sampleValue(samples, "sluice_fetch_latency_seconds_bucket", { topic: "t", le });
    expect(bucket("0.0005")).toBe(1);
    expect(bucket("0.0025")).toBe(1);
    expect(bucket("0.005")).toBe(3);
    expect(bucket("0.25")).toBe(4);
    expect(bucket("30")).toBe(4);
    expect(bucket("+Inf")).toBe(5);
    expect(sampleValue(samples, "sluice_fetch_latency_seconds_count", { topic: "t" })).toBe(5);
    expect(sampleValue(samples, "sluice_fetch_latency_seconds_sum", { topic: "t" })).toBeCloseTo(40.2064, 6);
  });

  it("runs collectors before each scrape; replaceAll drops label sets that are gone", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const lag = metrics.gauge(consumerGroupLagRecords);
    let groups = ["billing", "audit"];
    metrics.addCollector("lag", async () => {
      lag.replaceAll(
        groups.map((group, i) => ({ labels: { group, topic: "t", partition: 0 }, value: i + 1 })),
      );
    });
    let samples = parsePrometheusText(await metrics.exposition());
    expect(sampleValue(samples, "sluice_consumer_group_lag_records", { group: "billing" })).toBe(1);
    expect(sampleValue(samples, "sluice_consumer_group_lag_records", { group: "audit" })).toBe(2);
    groups = ["audit"];
    samples = parsePrometheusText(await metrics.exposition());
    expect(sampleValue(samples, "sluice_consumer_group_lag_records", { group: "billing" })).toBeUndefined();
    expect(sampleValue(samples, "sluice_consumer_group_lag_records", { group: "audit" })).toBe(1);
  });

  it("a failing collector is counted and the scrape still answers with the other series", async () => {
    const failures: string[] = [];
    const metrics = new PrometheusMetrics({
      processMetrics: false,
      onCollectError: (name, error) => failures.push(`${name}: ${(error as Error).message}`),
    });
    metrics.counter(produceRecords).add(1, { topic: "t", partition: 0 });
    metrics.addCollector("lag", async () => {
      throw new Error("store unavailable");
    });
    const samples = parsePrometheusText(await metrics.exposition());
    expect(sampleValue(samples, "sluice_produce_records_total", { topic: "t", partition: "0" })).toBe(1);
    expect(sampleValue(samples, "sluice_telemetry_collect_failures_total", { collector: "lag" })).toBe(1);
    expect(failures).toEqual(["lag: store unavailable"]);
  });

  it("refuses a series name asked for as another kind", () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.counter(produceRecords);
    expect(() => metrics.gauge({ ...produceRecords, kind: "gauge" })).toThrow(/is a counter, not a gauge/);
  });

  it.skipIf(promtoolMissing)(
    `every series of the catalogue passes promtool check metrics${promtoolMissing ? " (skipped: promtool is not installed; apt-get install prometheus)" : ""}`,
    async () => {
      const metrics = new PrometheusMetrics({ processMetrics: false });
      everySeries(metrics);
      const text = await metrics.exposition();
      expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: "" });
      // And the checker can fail: a malformed line is a parse error.
      expect(promtoolCheckMetrics(`${text}sluice_broken{topic="x" 1\n`).status).toBe(1);
    },
  );

  it.skipIf(promtoolMissing)(
    `with the process metrics, the exposition parses; prom-client's own nodejs_active_*_total gauges are the only lint remarks${promtoolMissing ? " (skipped: promtool is not installed; apt-get install prometheus)" : ""}`,
    async () => {
      const metrics = new PrometheusMetrics();
      everySeries(metrics);
      const result = promtoolCheckMetrics(await metrics.exposition());
      expect([0, 3]).toContain(result.status);
      const remarks = result.output.split("\n").filter((line) => line !== "");
      for (const remark of remarks) expect(remark).toMatch(/^nodejs_active_\w+_total non-counter metrics/);
    },
  );
});
