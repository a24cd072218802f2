import { seededChooser } from "@sluice/testing";
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { CounterSeries, HistogramSeries } from "./metrics.js";
import { PrometheusMetrics } from "./prometheus.js";
import { produceRecords, storageLatency, telemetryCollectFailures } from "./series.js";

/** The same calls on the sink and on prom-client's own instruments: the text each scrape gives. */
async function bothScrapes(
  seed: number,
  counter: CounterSeries<string>,
  histogram: HistogramSeries<string>,
): Promise<{ ours: string; promClient: string }> {
  const metrics = new PrometheusMetrics({ processMetrics: false });
  const registry = new Registry();
  const promCounter = new Counter({
    name: counter.name,
    help: counter.help,
    labelNames: counter.labels,
    registers: [registry],
  });
  const promHistogram = new Histogram({
    name: histogram.name,
    help: histogram.help,
    labelNames: histogram.labels,
    buckets: [...histogram.buckets],
    registers: [registry],
  });
  const random = seededChooser(seed);
  const pick = (names: readonly string[], salt: string) =>
    Object.fromEntries(names.map((name) => [name, random() < 0.5 ? `${salt}-a` : Math.floor(random() * 3)]));
  for (let i = 0; i < 500; i++) {
    const counted = pick(counter.labels, "c");
    const amount = Math.floor(random() * 5);
    metrics.counter(counter).add(amount, counted);
    promCounter.inc(counted, amount);
    const observed = pick(histogram.labels, "h");
    // Exactly on a bound now and then: a bound's bucket counts values equal to it.
    const value =
      random() < 0.2
        ? histogram.buckets[Math.floor(random() * histogram.buckets.length)]!
        : random() * 2 * histogram.buckets.at(-1)!;
    metrics.histogram(histogram).record(value, observed);
    promHistogram.observe(observed, value);
  }
  // A scrape of the sink also shows its own collect-failures series, still without samples.
  new Counter({
    name: telemetryCollectFailures.name,
    help: telemetryCollectFailures.help,
    labelNames: telemetryCollectFailures.labels,
    registers: [registry],
  });
  return { ours: await metrics.exposition(), promClient: await registry.metrics() };
}

describe("the Prometheus sink's own counters and histograms", () => {
  it("scrape as prom-client's would, from the same calls, over seeded label sets and values", async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { ours, promClient } = await bothScrapes(seed, produceRecords, storageLatency);
      expect(ours, `seed ${seed}`).toBe(promClient);
    }
  });

  it("forgets its label sets when the registry resets its metrics", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    metrics.counter(produceRecords).add(4, { topic: "t", partition: 0 });
    metrics.histogram(storageLatency).record(0.01, { backend: "sqlite", operation: "get" });
    metrics.registry.resetMetrics();
    const text = await metrics.exposition();
    expect(text).not.toContain("sluice_produce_records_total{");
    expect(text).not.toContain("sluice_storage_latency_seconds_count{");
    metrics.counter(produceRecords).add(1, { topic: "t", partition: 0 });
    expect(await metrics.exposition()).toContain('sluice_produce_records_total{topic="t",partition="0"} 1');
  });

  it("keeps a series without labels as one label set", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const bare: CounterSeries<never> = {
      ...telemetryCollectFailures,
      name: "sluice_bare_total",
      labels: [],
      cloudwatch: { metric: "Bare", dimensions: [[]] },
    };
    metrics.counter(bare).add(2, {});
    metrics.counter(bare).add(3, {});
    expect(await metrics.exposition()).toContain("\nsluice_bare_total 5\n");
  });

  it("refuses a label set that misses a label or names one the series does not have", () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const counter = metrics.counter(produceRecords);
    expect(() => counter.add(1, { topic: "t" } as never)).toThrow(
      "series sluice_produce_records_total has the labels topic, partition; given topic",
    );
    expect(() => counter.add(1, { topic: "t", partition: 0, extra: "x" } as never)).toThrow(
      "given topic, partition, extra",
    );
    counter.add(1, { topic: "t", partition: 0 });
  });
});
