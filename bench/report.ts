import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as hdr from "hdr-histogram-js";

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Target and whether higher is better; printed as a ratio. */
  target?: { value: number; higherIsBetter: boolean };
}

export function printTable(title: string, figures: Figure[]): void {
  const rows = figures.map((figure) => {
    const ratio = figure.target
      ? figure.target.higherIsBetter
        ? figure.value / figure.target.value
        : figure.target.value / Math.max(figure.value, Number.EPSILON)
      : undefined;
    return [
      figure.name,
      formatNumber(figure.value),
      figure.unit,
      figure.target ? `${figure.target.higherIsBetter ? "≥" : "≤"} ${formatNumber(figure.target.value)}` : "",
      ratio === undefined
        ? ""
        : // A lower-is-better figure of zero meets its target by any ratio: say so, not 10^17×.
          `${ratio > 1000 ? ">1000" : ratio.toFixed(2)}× ${ratio >= 1 ? "met" : "MISSED"}`,
    ];
  });
  const header = ["figure", "value", "unit", "target", "ratio"];
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ");
  process.stdout.write(`\n${title}\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) || Math.abs(value) >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(2);
}

export function progress(message: string): void {
  process.stderr.write(
    `${process.stderr.isTTY ? "\r\x1b[2K" : ""}${message}${process.stderr.isTTY ? "" : "\n"}`,
  );
}

export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write("\n");
}

/**
 * Writes a line chart of one or more series as SVG (no dependencies), for benchmark runs and
 * lag over time. Returns the file path.
 */
export function writeLineChart(
  file: string,
  title: string,
  axis: { x: string; y: string },
  series: { name: string; points: [number, number][] }[],
): string {
  const width = 720;
  const height = 360;
  const pad = { left: 80, right: 20, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points);
  const maxX = Math.max(1, ...all.map(([x]) => x));
  const maxY = Math.max(1, ...all.map(([, y]) => y)) * 1.1;
  const sx = (x: number) => pad.left + (x / maxX) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - (y / maxY) * (height - pad.top - pad.bottom);
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];
  const ticks = Array.from({ length: 5 }, (_, i) => (maxY / 4) * i);
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    ...ticks.map(
      (tick) =>
        `<line x1="${pad.left}" x2="${width - pad.right}" y1="${sy(tick)}" y2="${sy(tick)}" stroke="#ddd"/><text x="${pad.left - 6}" y="${sy(tick) + 4}" text-anchor="end">${formatNumber(tick)}</text>`,
    ),
    ...ticks.map((_, i) => {
      const x = (maxX / 4) * i;
      return `<text x="${sx(x)}" y="${height - pad.bottom + 16}" text-anchor="middle">${formatNumber(x)}</text>`;
    }),
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="black"/>`,
    `<line x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}" stroke="black"/>`,
    `<text x="${width / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(axis.x)}</text>`,
    `<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">${escapeXml(axis.y)}</text>`,
    ...series.map((s, i) => {
      const path = s.points
        .map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
        .join(" ");
      const color = colors[i % colors.length];
      return `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/><text x="${width - pad.right - 4}" y="${pad.top + 14 * (i + 1)}" text-anchor="end" fill="${color}">${escapeXml(s.name)}</text>`;
    }),
    "</svg>",
  ].join("\n");
  mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
  const path = join(import.meta.dirname, "results", file);
  writeFileSync(path, svg);
  return path;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Writes a grouped bar chart as SVG: one group per figure, one bar per system, each group scaled
 * to its own largest value (records/s and milliseconds share no axis). Returns the file path.
 */
export function writeBarChart(
  file: string,
  title: string,
  systems: string[],
  groups: { name: string; unit: string; values: (number | undefined)[] }[],
): string {
  const width = 760;
  const groupHeight = 34 + systems.length * 18;
  const height = 60 + groups.length * groupHeight;
  const left = 220;
  const barMax = width - left - 110;
  const colors = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd"];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    ...systems.map(
      (system, i) =>
        `<rect x="${left + i * 130}" y="32" width="12" height="12" fill="${colors[i % colors.length]}"/><text x="${left + i * 130 + 16}" y="43">${escapeXml(system)}</text>`,
    ),
  ];
  groups.forEach((group, g) => {
    const top = 56 + g * groupHeight;
    const max = Math.max(Number.EPSILON, ...group.values.map((value) => value ?? 0));
    parts.push(`<text x="10" y="${top + 16}" font-weight="bold">${escapeXml(group.name)}</text>`);
    parts.push(`<text x="10" y="${top + 30}" fill="#555">${escapeXml(group.unit)}</text>`);
    group.values.forEach((value, i) => {
      const y = top + 6 + i * 18;
      if (value === undefined) {
        parts.push(`<text x="${left}" y="${y + 11}" fill="#999">${escapeXml(systems[i]!)}: skipped</text>`);
        return;
      }
      const w = Math.max(1, (value / max) * barMax);
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="14" fill="${colors[i % colors.length]}"/>`,
      );
      parts.push(`<text x="${left + w + 6}" y="${y + 11}">${formatNumber(value)}</text>`);
    });
  });
  parts.push("</svg>");
  mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
  const path = join(import.meta.dirname, "results", file);
  writeFileSync(path, parts.join("\n"));
  return path;
}

/** The p-th percentile of `values` (nearest rank), NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Request latencies in microseconds, 1 µs to 60 s, three significant digits. */
export function latencyHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export interface Latency {
  p50Ms: number;
  p99Ms: number;
}

export function latencyOf(histogram: ReturnType<typeof latencyHistogram>): Latency {
  return {
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
  };
}

export function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
