import { describe, expect, it } from "vitest";
import { fanOut, noopMetrics } from "./metrics.js";
import { PrometheusMetrics } from "./prometheus.js";
import { produceRecords } from "./series.js";

describe("metrics interface", () => {
  it("the no-op sink accepts every call and keeps nothing", () => {
    expect(() => noopMetrics.counter(produceRecords).add(1, { topic: "t", partition: 0 })).not.toThrow();
    expect(fanOut(noopMetrics, noopMetrics)).toBe(noopMetrics);
  });

  it("fanOut records into every sink", async () => {
    const a = new PrometheusMetrics({ processMetrics: false });
    const b = new PrometheusMetrics({ processMetrics: false });
    expect(fanOut(noopMetrics, a)).toBe(a);
    fanOut(a, noopMetrics, b).counter(produceRecords).add(4, { topic: "t", partition: 0 });
    for (const sink of [a, b]) {
      expect(await sink.exposition()).toContain('sluice_produce_records_total{topic="t",partition="0"} 4');
    }
  });
});
