import { readFileSync } from "node:fs";
import { hasPromtool, promtoolCheckExpressions } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { ALL_SERIES, type Series } from "./index.js";

/** docs/grafana/sluice-dashboard.json: the Grafana dashboard docs/operations.md says how to import. */
const dashboard = JSON.parse(
  readFileSync(new URL("../../../docs/grafana/sluice-dashboard.json", import.meta.url), "utf8"),
) as {
  uid: string;
  panels: {
    id: number;
    type: string;
    title: string;
    gridPos: { h: number; w: number; x: number; y: number };
    targets?: { expr: string }[];
  }[];
  templating: { list: { name: string; query: unknown }[] };
};

const expressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));

/** The series a sample name belongs to: histograms expose _bucket, _sum and _count. */
function seriesOf(name: string): Series | undefined {
  return (ALL_SERIES as Series[]).find(
    (series) =>
      series.name === name ||
      (series.kind === "histogram" &&
        [`${series.name}_bucket`, `${series.name}_sum`, `${series.name}_count`].includes(name)),
  );
}

/** As Grafana sends it: its variables replaced by what they hold with "All" chosen. */
function asSent(expression: string): string {
  return expression.replaceAll("$__rate_interval", "1m").replace(/\$(topic|group|processor)\b/g, ".*");
}

describe("the Grafana dashboard", () => {
  it("has panels that do not overlap, within Grafana's 24 columns, with unique ids", () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const taken = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${row},${column}`;
          expect(taken.has(cell), `${panel.title} overlaps another panel at ${cell}`).toBe(false);
          taken.add(cell);
        }
      }
    }
  });

  it("queries only series of the catalogue, by labels those series have", () => {
    for (const expression of expressions) {
      const names = [...expression.matchAll(/\b(sluice_[a-z_]+)\b/g)].map((match) => match[1]!);
      expect(names.length, expression).toBeGreaterThan(0);
      for (const name of names) {
        const series = seriesOf(name);
        expect(series, `${name} in ${expression}`).toBeDefined();
        const labels = new Set<string>([...series!.labels, ...(series!.kind === "histogram" ? ["le"] : [])]);
        for (const [, list] of expression.matchAll(/by \(([^)]*)\)/g)) {
          for (const label of list!.split(",").map((text) => text.trim())) {
            expect(labels.has(label), `${label} is a label of ${name} (${expression})`).toBe(true);
          }
        }
        const selector = expression.match(new RegExp(`${name}\\{([^}]*)\\}`))?.[1] ?? "";
        for (const [, label] of selector.matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)/g)) {
          expect(labels.has(label!), `${label} is a label of ${name}`).toBe(true);
        }
      }
    }
    for (const variable of dashboard.templating.list.filter((v) => v.name !== "datasource")) {
      const query = (variable.query as { query: string }).query;
      const [, name, label] = query.match(/^label_values\((\w+), (\w+)\)$/)!;
      expect(seriesOf(name!)?.labels).toContain(label);
    }
  });

  it("shows the four golden signals per topic, per group and per processor", () => {
    const uses = (pattern: RegExp) => expressions.some((expression) => pattern.test(expression));
    expect(uses(/sum by \(topic\) \(rate\(sluice_produce_records_total/)).toBe(true);
    expect(uses(/sum by \(topic\) \(rate\(sluice_fetch_records_total/)).toBe(true);
    expect(
      uses(/histogram_quantile\(0\.99, sum by \(topic, le\) \(rate\(sluice_produce_latency_seconds_bucket/),
    ).toBe(true);
    expect(uses(/sum by \(topic, status, code\) \(rate\(sluice_http_errors_total/)).toBe(true);
    expect(uses(/sum by \(group\) \(sluice_consumer_group_lag_records/)).toBe(true);
    expect(uses(/max by \(group\) \(sluice_consumer_group_lag_seconds/)).toBe(true);
    expect(uses(/sum by \(processor\) \(rate\(sluice_processor_records_processed_total/)).toBe(true);
    expect(uses(/sluice_processor_handler_duration_seconds_bucket/)).toBe(true);
    expect(uses(/sluice_processor_failures_total/)).toBe(true);
    expect(uses(/sluice_processor_lag_records/)).toBe(true);
  });

  it.skipIf(!hasPromtool())(
    `every query parses as PromQL (promtool check rules)${hasPromtool() ? "" : " (skipped: promtool is not installed; apt-get install prometheus)"}`,
    () => {
      const result = promtoolCheckExpressions(expressions.map(asSent));
      expect(result.status, result.output).toBe(0);
      // And the check can fail.
      expect(promtoolCheckExpressions(["sum by (topic (rate(x[1m]))"]).status).toBe(1);
    },
  );
});
