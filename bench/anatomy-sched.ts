/**
 * `npm run bench -- anatomy --sched`: which other threads ran on the machine's CPUs while the
 * slowest requests were in flight, from the kernel's scheduler switches (`perf record -e
 * sched:sched_switch -a`, on CLOCK_MONOTONIC like the timelines). Needs root, `perf` and tracefs
 * mounted; otherwise the figures are reported as skipped, with the reason.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { getuid } from "node:process";

/** One stretch of a thread on a CPU, in ns on CLOCK_MONOTONIC. */
export interface Run {
  cpu: number;
  start: number;
  end: number;
  tid: number;
  comm: string;
}

/** Why scheduler recording cannot run here, or undefined when it can. */
export function schedUnavailable(): string | undefined {
  if (getuid?.() !== 0) return "perf's scheduler events need root";
  if (!existsSync("/sys/kernel/tracing/events/sched/sched_switch")) {
    return "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)";
  }
  return undefined;
}

/** Starts recording every CPU's scheduler switches into `file`; `stop` ends it and reads the runs. */
export async function recordSched(file: string): Promise<{ stop: () => Promise<Run[]> }> {
  const perf = spawn("perf", ["record", "-q", "-a", "-k", "mono", "-e", "sched:sched_switch", "-o", file], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  perf.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    errors += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    perf.once("error", reject);
    perf.once("exit", resolve);
  });
  // perf opens its events before it records; a short wait for that is all it needs.
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 500))]);
  if (perf.exitCode !== null) throw new Error(`perf record ended at once: ${errors.trim()}`);
  return {
    stop: async () => {
      perf.kill("SIGINT");
      await exited;
      return runsOf(await perfScript(file));
    },
  };
}

async function perfScript(file: string): Promise<string> {
  const script = spawn("perf", ["script", "-i", file, "-F", "cpu,time,trace"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let text = "";
  script.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    text += chunk;
  });
  await new Promise((resolve, reject) => {
    script.once("error", reject);
    script.once("exit", resolve);
  });
  return text;
}

const SWITCH =
  /\[(\d+)\]\s+(\d+)\.(\d+):\s+prev_comm=(.*?) prev_pid=(\d+) .*?==> next_comm=(.*?) next_pid=(\d+)/;

/** Each CPU's runs, from `perf script`'s sched_switch lines: a run lasts from one switch to the next. */
export function runsOf(script: string): Run[] {
  const runs: Run[] = [];
  const current = new Map<number, { start: number; tid: number; comm: string }>();
  for (const line of script.split("\n")) {
    const match = SWITCH.exec(line);
    if (!match) continue;
    const cpu = Number(match[1]);
    const time = Number(match[2]) * 1e9 + Number(match[3]!.padEnd(9, "0"));
    const running = current.get(cpu);
    if (running) runs.push({ cpu, start: running.start, end: time, tid: running.tid, comm: running.comm });
    current.set(cpu, { start: time, tid: Number(match[7]), comm: match[6]! });
  }
  return runs;
}

/** What ran besides the two processes' main threads during some spans. */
export interface OtherThreads {
  /** Spans during which other threads ran for more than 50 µs in all. */
  spansWithOthers: number;
  /** The busiest other threads over all the spans: who, and their ms. */
  busiest: { thread: string; ms: number }[];
}

/**
 * Sums, over `spans`, the CPU time of every thread but the two main threads and the idle task,
 * naming each thread by its process where it belongs to the server's or the client's.
 */
export function otherThreads(
  runs: Run[],
  spans: [number, number][],
  server: { pid: number; threads: number[] },
  client: { pid: number; threads: number[] },
): OtherThreads {
  const owner = new Map<number, string>();
  for (const tid of server.threads) owner.set(tid, "server");
  for (const tid of client.threads) owner.set(tid, "client");
  const byCpu = new Map<number, Run[]>();
  for (const run of runs) {
    if (run.tid === 0 || run.tid === server.pid || run.tid === client.pid) continue;
    const list = byCpu.get(run.cpu) ?? [];
    list.push(run);
    byCpu.set(run.cpu, list);
  }
  const totals = new Map<string, number>();
  let spansWithOthers = 0;
  for (const [from, to] of spans) {
    let others = 0;
    for (const list of byCpu.values()) {
      for (const run of list) {
        if (run.start >= to || run.end <= from) continue;
        const overlap = Math.min(run.end, to) - Math.max(run.start, from);
        others += overlap;
        const who = owner.has(run.tid) ? `${owner.get(run.tid)}'s ${run.comm} thread` : run.comm;
        totals.set(who, (totals.get(who) ?? 0) + overlap);
      }
    }
    if (others > 50_000) spansWithOthers++;
  }
  const busiest = [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([thread, ns]) => ({ thread, ms: Math.round(ns / 1e4) / 100 }));
  return { spansWithOthers, busiest };
}
