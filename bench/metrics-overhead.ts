/**
 * What measuring costs: the same batched produce against two local servers, one with metrics on
 * (the default: Prometheus sink, metered stores, scraped once per round) and one with
 * SLUICE_METRICS=off, in alternating rounds so that the machine's background noise falls on both
 * alike. Reports each round's throughput, the ratio of the medians, and the spread of the
 * per-round ratios.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { progress, progressDone } from "./report.js";

export interface OverheadResult {
  rounds: { on: number; off: number; ratio: number }[];
  /** Median throughput with metrics on / median with metrics off. */
  ratio: number;
  /** The lowest and highest per-round ratio. */
  spread: [number, number];
  onRecordsPerS: number;
  offRecordsPerS: number;
  /** Server CPU seconds per million records, on and off (Linux only). */
  cpuPerMillion?: { on: number; off: number };
}

interface Target {
  url: string;
  base: string;
  pid: number | undefined;
  cpu: number;
  records: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function clusterBase(url: string): Promise<string> {
  const clusters = (await (await fetch(`${url}/v3/clusters`)).json()) as { data: { cluster_id: string }[] };
  return `${url}/v3/clusters/${clusters.data[0]!.cluster_id}`;
}

/** `requests` batched produce requests, `concurrency` in flight; records/s. */
async function produceRound(
  target: Target,
  body: string,
  records: number,
  requests: number,
  concurrency: number,
) {
  let sent = 0;
  const started = performance.now();
  const cpuBefore = cpuSecondsOf(target.pid);
  const worker = async () => {
    while (sent < requests) {
      sent++;
      const response = await fetch(`${target.base}/topics/bench-overhead/records`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const reports = await response.text();
      if (!response.ok || !reports.includes('"error_code":200'))
        throw new Error(`produce failed: ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = cpuSecondsOf(target.pid);
  if (cpuBefore !== undefined && cpuAfter !== undefined) target.cpu += cpuAfter - cpuBefore;
  target.records += requests * records;
  return (requests * records) / seconds;
}

export async function metricsOverhead(options: {
  dir: string;
  durability: "fsync" | "buffered";
  rounds: number;
  requestsPerRound: number;
  concurrency: number;
  recordBytes: number;
  recordsPerRequest: number;
}): Promise<OverheadResult> {
  const dirs = await Promise.all([
    mkdtemp(join(options.dir, "sluice-bench-metrics-on-")),
    mkdtemp(join(options.dir, "sluice-bench-metrics-off-")),
  ]);
  const on = await startServer(dirs[0]!, options.durability, { SLUICE_METRICS: "on" });
  const off = await startServer(dirs[1]!, options.durability, { SLUICE_METRICS: "off" });
  try {
    const targets = {
      on: { url: on.url, base: await clusterBase(on.url), pid: on.pid, cpu: 0, records: 0 },
      off: { url: off.url, base: await clusterBase(off.url), pid: off.pid, cpu: 0, records: 0 },
    };
    for (const target of Object.values(targets)) {
      const response = await fetch(`${target.base}/topics`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic_name: "bench-overhead", partitions_count: 8 }),
      });
      if (!response.ok) throw new Error(`create topic: HTTP ${response.status}`);
    }
    const one = JSON.stringify({ value: { type: "STRING", data: "x".repeat(options.recordBytes) } });
    const body = Array.from({ length: options.recordsPerRequest }, () => one).join("\n");
    // One round each to warm up (JIT, caches, files), not counted.
    for (const target of [targets.on, targets.off]) {
      await produceRound(
        target,
        body,
        options.recordsPerRequest,
        Math.ceil(options.requestsPerRound / 4),
        options.concurrency,
      );
      target.cpu = 0;
      target.records = 0;
    }
    const rounds: OverheadResult["rounds"] = [];
    for (let round = 0; round < options.rounds; round++) {
      // Alternate which goes first, so a trend in the background load does not favour one.
      const order = round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
      const rates: Record<string, number> = {};
      for (const which of order) {
        progress(`metrics overhead: round ${round + 1}/${options.rounds}, metrics ${which}`);
        rates[which] = await produceRound(
          targets[which],
          body,
          options.recordsPerRequest,
          options.requestsPerRound,
          options.concurrency,
        );
      }
      // Prometheus scrapes a real server every 15 s or so: one scrape per round pays for it.
      const scrape = await fetch(`${targets.on.url}/metrics`);
      if (!scrape.ok) throw new Error(`GET /metrics: HTTP ${scrape.status}`);
      await scrape.text();
      rounds.push({ on: rates.on!, off: rates.off!, ratio: rates.on! / rates.off! });
    }
    progressDone();
    const ratios = rounds.map((round) => round.ratio);
    const onRate = median(rounds.map((round) => round.on));
    const offRate = median(rounds.map((round) => round.off));
    const cpu =
      targets.on.records > 0 && targets.off.records > 0 && targets.on.cpu > 0
        ? {
            on: (targets.on.cpu / targets.on.records) * 1e6,
            off: (targets.off.cpu / targets.off.records) * 1e6,
          }
        : undefined;
    return {
      rounds,
      ratio: onRate / offRate,
      spread: [Math.min(...ratios), Math.max(...ratios)],
      onRecordsPerS: onRate,
      offRecordsPerS: offRate,
      ...(cpu ? { cpuPerMillion: cpu } : {}),
    };
  } finally {
    await Promise.all([on.stop(), off.stop()]);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
