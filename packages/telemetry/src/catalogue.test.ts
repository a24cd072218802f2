import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ALL_SERIES } from "./series.js";

const operations = readFileSync(new URL("../../../docs/operations.md", import.meta.url), "utf8");

describe("the series catalogue", () => {
  it("names each series once, in Prometheus' conventions", () => {
    const names = ALL_SERIES.map((series) => series.name);
    expect(new Set(names).size).toBe(names.length);
    for (const series of ALL_SERIES) {
      expect(series.name).toMatch(/^sluice_[a-z][a-z0-9_]*$/);
      if (series.kind === "counter") expect(series.name).toMatch(/_total$/);
      else expect(series.name).not.toMatch(/_total$/);
      if (series.unit === "seconds") expect(series.name).toMatch(/_seconds(_total)?$/);
      if (series.unit === "bytes") expect(series.name).toMatch(/_bytes(_total)?$/);
      expect(series.labels).not.toContain("le");
      expect(series.help.length).toBeGreaterThan(10);
    }
  });

  it("gives each series a CloudWatch metric of its own, with dimensions drawn from its labels", () => {
    const metrics = ALL_SERIES.map((series) => series.cloudwatch.metric);
    expect(new Set(metrics).size).toBe(metrics.length);
    for (const series of ALL_SERIES) {
      expect(series.cloudwatch.metric).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(series.cloudwatch.dimensions.length).toBeGreaterThan(0);
      for (const set of series.cloudwatch.dimensions) {
        for (const label of set) expect(series.labels).toContain(label);
      }
    }
  });

  it("histogram buckets ascend", () => {
    for (const series of ALL_SERIES) {
      if (series.kind !== "histogram") continue;
      const buckets = [...series.buckets];
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
      expect(new Set(buckets).size).toBe(buckets.length);
    }
  });

  it("docs/operations.md lists every series with its kind, labels, unit, CloudWatch shape and meaning", () => {
    const rows = new Map<string, string[]>();
    for (const line of operations.split("\n")) {
      if (!line.startsWith("| `sluice_")) continue;
      const cells = line
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.trim());
      rows.set(cells[0]!.replaceAll("`", ""), cells);
    }
    for (const series of ALL_SERIES) {
      const dimensions = series.cloudwatch.dimensions
        .map((set) => (set.length > 0 ? set.join(", ") : "total"))
        .join("; ");
      expect(rows.get(series.name), `the row of ${series.name} in docs/operations.md`).toEqual([
        `\`${series.name}\``,
        series.kind,
        series.labels.join(", "),
        series.unit,
        `\`${series.cloudwatch.metric}\` (${dimensions})`,
        series.help,
      ]);
    }
    expect([...rows.keys()]).toEqual(ALL_SERIES.map((series) => series.name));
  });
});
