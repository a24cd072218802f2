import { emfProblems } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { EmfMetrics } from "./emf.js";
import type { Series } from "./metrics.js";
import {
  ALL_SERIES,
  consumerGroupLagRecords,
  consumerGroupLagSeconds,
  httpErrors,
  produceBytes,
  produceLatency,
  produceRecords,
} from "./series.js";

const NOW = 1_767_225_600_000;

function sink() {
  const lines: string[] = [];
  const metrics = new EmfMetrics({
    service: "sluice-api",
    write: (line) => lines.push(line),
    now: () => NOW,
  });
  const documents = () => lines.map((line) => JSON.parse(line) as Record<string, unknown> & { _aws: Aws });
  return { metrics, lines, documents };
}

interface Aws {
  Timestamp: number;
  CloudWatchMetrics: {
    Namespace: string;
    Dimensions: string[][];
    Metrics: { Name: string; Unit: string }[];
  }[];
}

describe("EmfMetrics", () => {
  it("writes one valid EMF document per topic, counters summed over partitions, with per-topic and total dimension sets", () => {
    const { metrics, documents } = sink();
    metrics.counter(produceRecords).add(3, { topic: "orders", partition: 0 });
    metrics.counter(produceRecords).add(4, { topic: "orders", partition: 1 });
    metrics.counter(produceBytes).add(700, { topic: "orders", partition: 1 });
    metrics.counter(produceRecords).add(1, { topic: "audit", partition: 0 });
    metrics.histogram(produceLatency).record(0.012, { topic: "orders" });
    metrics.histogram(produceLatency).record(0.004, { topic: "orders" });
    metrics.flush();

    const docs = documents();
    for (const doc of docs) expect(emfProblems(doc)).toEqual([]);
    expect(docs).toHaveLength(2);
    const orders = docs.find((doc) => doc.topic === "orders")!;
    expect(orders._aws.Timestamp).toBe(NOW);
    expect(orders._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: "Sluice",
        Dimensions: [["service", "topic"], ["service"]],
        Metrics: [
          { Name: "ProduceRecords", Unit: "Count" },
          { Name: "ProduceBytes", Unit: "Bytes" },
          { Name: "ProduceLatency", Unit: "Milliseconds" },
        ],
      },
    ]);
    expect(orders.service).toBe("sluice-api");
    expect(orders.ProduceRecords).toBe(7);
    expect(orders.ProduceBytes).toBe(700);
    expect(orders.ProduceLatency).toEqual([12, 4]);
    expect(orders).not.toHaveProperty("partition");
    const audit = docs.find((doc) => doc.topic === "audit")!;
    expect(audit.ProduceRecords).toBe(1);
  });

  it("a flush forgets what it wrote; an empty flush writes nothing", () => {
    const { metrics, lines } = sink();
    metrics.counter(produceRecords).add(3, { topic: "orders", partition: 0 });
    expect(metrics.hasPending).toBe(true);
    metrics.flush();
    expect(lines).toHaveLength(1);
    metrics.flush();
    expect(lines).toHaveLength(1);
    expect(metrics.hasPending).toBe(false);
  });

  it("splits a metric with 100 values or more over several documents", () => {
    const { metrics, documents } = sink();
    for (let i = 0; i < 250; i++) metrics.histogram(produceLatency).record(i / 1000, { topic: "t" });
    metrics.counter(produceRecords).add(250, { topic: "t", partition: 0 });
    metrics.flush();
    const docs = documents();
    for (const doc of docs) expect(emfProblems(doc)).toEqual([]);
    expect(docs.map((doc) => (doc.ProduceLatency as number[]).length)).toEqual([99, 99, 52]);
    // The counter is written once, in the first document.
    expect(docs.map((doc) => doc.ProduceRecords)).toEqual([250, undefined, undefined]);
    expect(docs.flatMap((doc) => doc.ProduceLatency as number[])).toEqual(
      Array.from({ length: 250 }, (_, i) => i),
    );
  });

  it("gauges combine per their aggregate: lag records summed over partitions, lag seconds the maximum", () => {
    const { metrics, documents } = sink();
    metrics.gauge(consumerGroupLagRecords).replaceAll([
      { labels: { group: "g", topic: "t", partition: 0 }, value: 5 },
      { labels: { group: "g", topic: "t", partition: 1 }, value: 8 },
    ]);
    metrics.gauge(consumerGroupLagSeconds).replaceAll([
      { labels: { group: "g", topic: "t", partition: 0 }, value: 2.5 },
      { labels: { group: "g", topic: "t", partition: 1 }, value: 0.5 },
    ]);
    metrics.flush();
    const [doc, ...rest] = documents();
    expect(rest).toEqual([]);
    expect(emfProblems(doc)).toEqual([]);
    expect(doc!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([
      ["service", "group", "topic"],
      ["service", "group"],
      ["service"],
    ]);
    expect(doc!.ConsumerGroupLagRecords).toBe(13);
    expect(doc!.ConsumerGroupLagSeconds).toBe(2500);
  });

  it("series whose dimension sets differ go to different documents; every label a set names is carried", () => {
    const { metrics, documents } = sink();
    metrics.counter(httpErrors).add(1, { status: 503, class: "server", code: "503", topic: "orders" });
    metrics.counter(produceRecords).add(1, { topic: "orders", partition: 0 });
    metrics.flush();
    const docs = documents();
    expect(docs).toHaveLength(2);
    const errors = docs.find((doc) => "HttpErrors" in doc)!;
    expect(emfProblems(errors)).toEqual([]);
    expect(errors._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([
      ["service", "class"],
      ["service", "class", "topic"],
      ["service", "status", "code"],
    ]);
    expect(errors).toMatchObject({
      class: "server",
      status: "503",
      code: "503",
      topic: "orders",
      HttpErrors: 1,
    });
  });

  it("every series of the catalogue makes valid documents", () => {
    const { metrics, documents } = sink();
    for (const series of ALL_SERIES as Series<string>[]) {
      const labels = Object.fromEntries(series.labels.map((label) => [label, `${label}-1`]));
      if (series.kind === "counter") metrics.counter(series).add(2, labels);
      else if (series.kind === "gauge") metrics.gauge(series).set(3, labels);
      else metrics.histogram(series).record(1, labels);
    }
    metrics.flush();
    const docs = documents();
    const names = new Set(docs.flatMap((doc) => doc._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)));
    expect(names.size).toBe(ALL_SERIES.length);
    for (const doc of docs) expect(emfProblems(doc)).toEqual([]);
  });

  it("the checker finds what the specification forbids", () => {
    const valid = {
      _aws: {
        Timestamp: NOW,
        CloudWatchMetrics: [
          { Namespace: "Sluice", Dimensions: [["topic"]], Metrics: [{ Name: "X", Unit: "Count" }] },
        ],
      },
      topic: "t",
      X: 1,
    };
    expect(emfProblems(valid)).toEqual([]);
    expect(emfProblems({ ...valid, topic: 3 })).toEqual([
      "dimension topic must name a root member holding a string of 1 to 1024 characters",
    ]);
    expect(emfProblems({ ...valid, X: "1" })).toEqual([
      "metric X must name a root member holding a number or 1 to 100 numbers",
    ]);
    expect(emfProblems({ ...valid, X: Array.from({ length: 101 }, () => 1) })).toHaveLength(1);
    expect(
      emfProblems({
        ...valid,
        _aws: {
          ...valid._aws,
          CloudWatchMetrics: [
            { ...valid._aws.CloudWatchMetrics[0], Metrics: [{ Name: "X", Unit: "Records" }] },
          ],
        },
      }),
    ).toEqual(["_aws.CloudWatchMetrics[0].Metrics[0].Unit Records is not a CloudWatch unit"]);
    expect(emfProblems({ topic: "t" })).toEqual(["_aws is missing or not an object"]);
  });
});
