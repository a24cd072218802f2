import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The samples of a Prometheus text exposition (format 0.0.4), for exact comparisons in tests.
 * Whether the text is valid is promtool's call (`promtoolCheckMetrics`); this only reads values.
 */
export function parsePrometheusText(text: string): PrometheusSample[] {
  const samples: PrometheusSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = match[2] ?? "";
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let label = labelPattern.exec(labelText); label; label = labelPattern.exec(labelText)) {
      labels[label[1]!] = label[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const valueText = match[3]!;
    const value =
      valueText === "+Inf"
        ? Infinity
        : valueText === "-Inf"
          ? -Infinity
          : valueText === "NaN"
            ? NaN
            : Number(valueText);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/**
 * The value of the one sample named `name` whose labels include `labels`, or undefined when
 * none matches; more than one match is an error (the test asked too vaguely).
 */
export function sampleValue(
  samples: readonly PrometheusSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  if (found.length > 1) {
    throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}; name every label`);
  }
  return found[0]?.value;
}

/** Whether Debian's `promtool` (package prometheus) is on the PATH. */
export function hasPromtool(): boolean {
  return spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * Runs `promtool check metrics` on an exposition: Prometheus' own parser and linter. Returns its
 * complaints (empty when the text parses and passes the lint).
 */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/**
 * Runs `promtool check rules` on PromQL expressions, each as a recording rule: Prometheus' own
 * query parser. Returns its output and status (0: every expression parses).
 */
export function promtoolCheckExpressions(expressions: readonly string[]): {
  status: number | null;
  output: string;
} {
  const rules = [
    "groups:",
    "  - name: checked",
    "    rules:",
    ...expressions.flatMap((expression, index) => [
      `      - record: checked:expression_${index}`,
      `        expr: ${JSON.stringify(expression)}`,
    ]),
    "",
  ].join("\n");
  const dir = mkdtempSync(join(tmpdir(), "promtool-rules-"));
  try {
    const file = join(dir, "rules.yml");
    writeFileSync(file, rules);
    const result = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    if (result.error) throw result.error;
    return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
