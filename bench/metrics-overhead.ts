/**
 * What measuring costs: the same batched produce against two local servers, one with metrics on
 * (the default: Prometheus sink, metered stores, scraped once per round) and one with
 * SLUICE_METRICS=off, both loaded at the same time in every round, so that the machine's
 * background noise falls on both alike (rounds taken one server after the other swung by ±30%
 * here, a virtual machine whose CPU time varies from second to second). Reports each round's
 * throughput of both, the ratio of the medians, the spread of the per-round ratios, and records
 * per server CPU second on / off.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { progress, progressDone } from "./report.js";

export interface OverheadResult {
  /** Per round: records/s of each server under the same load at the same time, their ratio, and records per server CPU second on / off. */
  rounds: { on: number; off: number; ratio: number; efficiency?: number }[];
  /** Median throughput with metrics on / median with metrics off. */
  ratio: number;
  /** Median of the rounds' records per server CPU second, on / off (Linux only). */
  efficiency?: number;
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

/** Batched produce requests, `concurrency` in flight, until `untilMs` (performance.now()); records sent. */
async function produceUntil(
  target: Target,
  body: string,
  records: number,
  untilMs: number,
  concurrency: number,
) {
  let done = 0;
  const worker = async () => {
    while (performance.now() < untilMs) {
      const response = await fetch(`${target.base}/topics/bench-overhead/records`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const reports = await response.text();
      if (!response.ok || !reports.includes('"error_code":200'))
        throw new Error(`produce failed: ${response.status}`);
      done += records;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done;
}

/**
 * One round: both servers loaded at once for `seconds`, each by its own `concurrency` requests in
 * flight, so that whatever the machine does meanwhile (other processes, a hypervisor taking the
 * CPU, frequency changes) falls on both alike. Returns each one's records and CPU seconds.
 */
async function concurrentRound(
  targets: { on: Target; off: Target },
  body: string,
  records: number,
  seconds: number,
  concurrency: number,
  offFirst: boolean,
) {
  const cpuBefore = { on: cpuSecondsOf(targets.on.pid), off: cpuSecondsOf(targets.off.pid) };
  const until = performance.now() + seconds * 1000;
  // Which server's requests go out first alternates: the first has an edge in a closed loop.
  const load = (which: "on" | "off") => produceUntil(targets[which], body, records, until, concurrency);
  const [on, off] = offFirst
    ? await Promise.all([load("off"), load("on")]).then(([o, n]) => [n, o] as const)
    : await Promise.all([load("on"), load("off")]);
  const cpuAfter = { on: cpuSecondsOf(targets.on.pid), off: cpuSecondsOf(targets.off.pid) };
  const cpu = (which: "on" | "off") => {
    const before = cpuBefore[which];
    const after = cpuAfter[which];
    return before === undefined || after === undefined ? undefined : after - before;
  };
  for (const [which, done] of [
    ["on", on],
    ["off", off],
  ] as const) {
    targets[which].records += done;
    targets[which].cpu += cpu(which) ?? 0;
  }
  return { on, off, cpuOn: cpu("on"), cpuOff: cpu("off") };
}

export async function metricsOverhead(options: {
  dir: string;
  durability: "fsync" | "buffered";
  rounds: number;
  /** How long each round loads both servers at once. */
  secondsPerRound: number;
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
    // A round to warm up (JIT, caches, files), not counted.
    await concurrentRound(targets, body, options.recordsPerRequest, 2, options.concurrency, false);
    for (const target of Object.values(targets)) {
      target.cpu = 0;
      target.records = 0;
    }
    const rounds: OverheadResult["rounds"] = [];
    for (let round = 0; round < options.rounds; round++) {
      progress(`metrics overhead: round ${round + 1}/${options.rounds}, both servers at once`);
      const result = await concurrentRound(
        targets,
        body,
        options.recordsPerRequest,
        options.secondsPerRound,
        options.concurrency,
        round % 2 === 1,
      );
      // Prometheus scrapes a real server every 15 s or so: one scrape per round pays for it.
      const scrape = await fetch(`${targets.on.url}/metrics`);
      if (!scrape.ok) throw new Error(`GET /metrics: HTTP ${scrape.status}`);
      await scrape.text();
      const rate = (records: number) => records / options.secondsPerRound;
      rounds.push({
        on: rate(result.on),
        off: rate(result.off),
        ratio: result.on / result.off,
        ...(result.cpuOn && result.cpuOff
          ? { efficiency: result.on / result.cpuOn / (result.off / result.cpuOff) }
          : {}),
      });
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
    const efficiencies = rounds.flatMap((round) =>
      round.efficiency === undefined ? [] : [round.efficiency],
    );
    return {
      rounds,
      ratio: onRate / offRate,
      ...(efficiencies.length > 0 ? { efficiency: median(efficiencies) } : {}),
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
