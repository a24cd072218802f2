/**
 * `npm run bench -- anatomy [--json] [--requests N] [--rounds R] [--answer-poll-us U] [--sched]`:
 * where a single-record produce's time goes, request by request, between the SDK and the local
 * server on this machine. `--answer-poll-us` sets the SDK's `answerPollUs` (0: the SDK does not
 * poll). `--sched` adds which other threads ran while the slowest were in flight
 * (bench/anatomy-sched.ts).
 *
 * Each round starts a fresh local server (npm start's settings) with bench/anatomy-timeline.ts
 * imported into it, and the SDK in a process of its own (as the peers benchmark runs it) producing
 * one record at a time, `STEADY_AFTER_REQUESTS` + N requests. Both sides record each request and
 * their garbage collections on the machine's shared monotonic clock, so every steady-window
 * request splits into three segments:
 *
 *   in      the SDK's `produce` call → the server's `request` event (the client's work, the
 *           kernel, the server noticing the bytes and parsing the request head);
 *   server  the `request` event → the server's `res.end` (routing, the append, its commit);
 *   out     `res.end` → the SDK's promise settled (writing the answer, the kernel, the client
 *           reading and parsing it).
 *
 * It prints each segment's p50 and p99, then for the slowest 1% (at or over the total's p99): how
 * many overlapped a collection in the server, in the client, in either, and the segment that grew
 * most in each. Collections are the one cause both processes report themselves; the rest of the
 * slow set is time neither process's JavaScript accounts for (another thread on the CPU, the
 * kernel). A chart of the segments' medians goes to bench/results/anatomy.svg. No targets: the
 * peers benchmark judges the latency; this one says where it goes. docs/benchmarks.md, "Where
 * the single-produce tail comes from", reads these figures.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type OtherThreads, otherThreads, type Run, recordSched, schedUnavailable } from "./anatomy-sched.js";
import type { Collections, Timeline } from "./anatomy-timeline.js";
import { measureInOwnProcess } from "./client-process.js";
import { apiFor } from "./http.js";
import { STEADY_AFTER_REQUESTS } from "./http-floor.js";
import { startServer } from "./local-server.js";
import { percentile, writeBarChart } from "./report.js";

const SEGMENTS = ["in", "server", "out", "total"] as const;
type Segment = (typeof SEGMENTS)[number];

/** One round's figures: microseconds, counts, shares of the slow set. */
export interface Anatomy {
  p50Us: Record<Segment, number>;
  p99Us: Record<Segment, number>;
  /** Requests at or over the total's p99. */
  slow: number;
  slowWithServerCollection: number;
  slowWithClientCollection: number;
  slowWithEither: number;
  /** Per segment, how many slow requests had it as the one furthest over its own p50. */
  slowGrewMost: Record<Exclude<Segment, "total">, number>;
  serverCollections: number;
  serverCollectionMaxMs: number;
  clientCollections: number;
  clientCollectionMaxMs: number;
  /** The slow requests' spans, and as many of the requests nearest the total's p50 (for --sched). */
  spans: { slow: [number, number][]; median: [number, number][] };
  /** With --sched: other threads during the slow and the median spans, or why not measured. */
  sched?: { slow: OtherThreads; median: OtherThreads } | { skipped: string };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      requests: { type: "string", default: "10000" },
      rounds: { type: "string", default: "3" },
      "answer-poll-us": { type: "string" },
      sched: { type: "boolean", default: false },
    },
  });
  const requests = Number(values.requests);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(requests) || requests < 100) throw new Error("--requests must be an integer ≥ 100");
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be an integer ≥ 1");
  const answerPollUs = values["answer-poll-us"] === undefined ? undefined : Number(values["answer-poll-us"]);
  if (answerPollUs !== undefined && !(answerPollUs >= 0)) {
    throw new Error("--answer-poll-us must be 0 or more microseconds");
  }
  const results: Anatomy[] = [];
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`round ${round} of ${rounds}\n`);
    const result = await measureRound(requests, answerPollUs, values.sched);
    printRound(round, requests, result);
    results.push(result);
  }
  const median = (pick: (a: Anatomy) => number) => percentile(results.map(pick), 50);
  const chart = writeBarChart(
    "anatomy.svg",
    `Single-record produce, SDK → local server: segments, µs (medians of ${rounds} rounds)`,
    ["p50", "p99"],
    SEGMENTS.map((segment) => ({
      name: segment,
      unit: "µs",
      values: [median((a) => a.p50Us[segment]), median((a) => a.p99Us[segment])],
    })),
  );
  process.stdout.write(`\nchart: ${chart}\n`);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({
        benchmark: "anatomy",
        requests,
        answer_poll_us: answerPollUs ?? null,
        rounds: results.map((r) => ({
          p50_us: r.p50Us,
          p99_us: r.p99Us,
          slow: r.slow,
          slow_with_server_gc: r.slowWithServerCollection,
          slow_with_client_gc: r.slowWithClientCollection,
          slow_with_either_gc: r.slowWithEither,
          slow_grew_most: r.slowGrewMost,
          server_gcs: r.serverCollections,
          server_gc_max_ms: r.serverCollectionMaxMs,
          client_gcs: r.clientCollections,
          client_gc_max_ms: r.clientCollectionMaxMs,
          ...(r.sched === undefined
            ? {}
            : "skipped" in r.sched
              ? { sched_skipped: r.sched.skipped }
              : {
                  slow_with_other_threads: r.sched.slow.spansWithOthers,
                  median_with_other_threads: r.sched.median.spansWithOthers,
                  other_threads_during_slow: r.sched.slow.busiest,
                }),
        })),
      })}\n`,
    );
  }
}

async function measureRound(
  requests: number,
  answerPollUs: number | undefined,
  sched: boolean,
): Promise<Anatomy> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-anatomy-"));
  const serverOut = join(dir, "server.json");
  const clientOut = join(dir, "client.json");
  let runs: Run[] | undefined;
  let skipped: string | undefined;
  try {
    const server = await startServer(
      join(dir, "data"),
      "buffered",
      { SLUICE_ANATOMY_SERVER_OUT: serverOut },
      ["--import", join(import.meta.dirname, "anatomy-timeline.ts")],
    );
    try {
      const api = await apiFor(server.url);
      await api.post("/topics", { topic_name: "bench-single", partitions_count: 1 });
      const unavailable = sched ? schedUnavailable() : undefined;
      const recording = sched && !unavailable ? await recordSched(join(dir, "sched.data")) : undefined;
      try {
        await measureInOwnProcess("sluice-sdk-timeline", {
          url: server.url,
          topic: "bench-single",
          requests: STEADY_AFTER_REQUESTS + requests,
          valueBytes: 100,
          out: clientOut,
          ...(answerPollUs === undefined ? {} : { answerPollUs }),
        });
      } finally {
        runs = await recording?.stop(); // perf ends with the client, whichever way it ends
      }
      skipped = unavailable;
    } finally {
      await server.stop();
    }
    const client = JSON.parse(await readFile(clientOut, "utf8")) as Timeline;
    const serverTimeline = JSON.parse(await readFile(serverOut, "utf8")) as Timeline;
    const anatomy = anatomyOf(client, serverTimeline, STEADY_AFTER_REQUESTS);
    if (skipped) anatomy.sched = { skipped };
    else if (runs) {
      const sides = [serverTimeline, client].map((t) => ({ pid: t.pid ?? -1, threads: t.threads ?? [] }));
      anatomy.sched = {
        slow: otherThreads(runs, anatomy.spans.slow, sides[0]!, sides[1]!),
        median: otherThreads(runs, anatomy.spans.median, sides[0]!, sides[1]!),
      };
    }
    return anatomy;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Lines the client's requests up with the server's (the client's are the server's last ones, in
 * order: one at a time on one connection) and splits the steady window's.
 */
export function anatomyOf(client: Timeline, server: Timeline, skip: number): Anatomy {
  const serverRequests = server.requests.slice(-client.requests.length);
  if (serverRequests.length !== client.requests.length) {
    throw new Error(`the server saw ${server.requests.length} requests, fewer than the client's`);
  }
  const rows: Record<Segment, number>[] = [];
  const spans: [number, number][] = [];
  for (let i = skip; i < client.requests.length; i++) {
    const [sent, settled] = client.requests[i]!;
    const [arrived, answered] = serverRequests[i]!;
    if (!(sent <= arrived && arrived <= answered && answered <= settled)) {
      throw new Error(`request ${i}: the client's and the server's times do not nest`);
    }
    rows.push({
      in: (arrived - sent) / 1000,
      server: (answered - arrived) / 1000,
      out: (settled - answered) / 1000,
      total: (settled - sent) / 1000,
    });
    spans.push([sent, settled]);
  }
  const p50Us = {} as Record<Segment, number>;
  const p99Us = {} as Record<Segment, number>;
  for (const segment of SEGMENTS) {
    const values = rows.map((row) => row[segment]);
    p50Us[segment] = Math.round(percentile(values, 50));
    p99Us[segment] = Math.round(percentile(values, 99));
  }
  const overlaps = (collections: Collections, [from, to]: [number, number]) =>
    collections.some(([start, duration]) => start < to && start + duration > from);
  const slowGrewMost = { in: 0, server: 0, out: 0 };
  let slow = 0;
  let withServer = 0;
  let withClient = 0;
  let withEither = 0;
  const slowSpans: [number, number][] = [];
  rows.forEach((row, i) => {
    if (row.total < p99Us.total) return;
    slow++;
    slowSpans.push(spans[i]!);
    const inServer = overlaps(server.collections, spans[i]!);
    const inClient = overlaps(client.collections, spans[i]!);
    if (inServer) withServer++;
    if (inClient) withClient++;
    if (inServer || inClient) withEither++;
    const excess = (["in", "server", "out"] as const).map((s) => [s, row[s] - p50Us[s]] as const);
    slowGrewMost[excess.reduce((a, b) => (b[1] > a[1] ? b : a))[0]]++;
  });
  const [first, last] = [spans[0]![0], spans.at(-1)![1]];
  const within = (collections: Collections) =>
    collections.filter(([start]) => start >= first && start <= last);
  const maxMs = (collections: Collections) =>
    Math.round(Math.max(0, ...collections.map(([, duration]) => duration)) / 1e4) / 100;
  const nearestMedian = rows
    .map((row, i) => [Math.abs(row.total - p50Us.total), i] as const)
    .sort((a, b) => a[0] - b[0])
    .slice(0, slow)
    .map(([, i]) => spans[i]!);
  return {
    spans: { slow: slowSpans, median: nearestMedian },
    p50Us,
    p99Us,
    slow,
    slowWithServerCollection: withServer,
    slowWithClientCollection: withClient,
    slowWithEither: withEither,
    slowGrewMost,
    serverCollections: within(server.collections).length,
    serverCollectionMaxMs: maxMs(within(server.collections)),
    clientCollections: within(client.collections).length,
    clientCollectionMaxMs: maxMs(within(client.collections)),
  };
}

function printRound(round: number, requests: number, a: Anatomy): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `\nround ${round}: single-record produce, SDK → local server, ${requests.toLocaleString("en-US")} requests`,
  );
  out("segment   p50 µs   p99 µs");
  for (const segment of SEGMENTS) {
    out(`${segment.padEnd(8)}${String(a.p50Us[segment]).padStart(8)}${String(a.p99Us[segment]).padStart(9)}`);
  }
  const share = (n: number) => `${n} (${Math.round((100 * n) / a.slow)}%)`;
  out(
    `slowest 1% (${a.slow} requests ≥ ${a.p99Us.total} µs): overlapped a collection in the server ${share(a.slowWithServerCollection)}, in the client ${share(a.slowWithClientCollection)}, in either ${share(a.slowWithEither)}, in neither ${share(a.slow - a.slowWithEither)}`,
  );
  out(
    `  segment that grew most: in ${a.slowGrewMost.in}, server ${a.slowGrewMost.server}, out ${a.slowGrewMost.out}`,
  );
  out(
    `collections in the window: server ${a.serverCollections} (longest ${a.serverCollectionMaxMs} ms), client ${a.clientCollections} (longest ${a.clientCollectionMaxMs} ms)`,
  );
  if (a.sched && "skipped" in a.sched) out(`other threads: skipped: ${a.sched.skipped}`);
  else if (a.sched) {
    const { slow, median } = a.sched;
    out(
      `other threads ran > 50 µs during ${slow.spansWithOthers} of the ${a.slow} slowest, ${median.spansWithOthers} of the ${a.slow} nearest the median`,
    );
    out(`  busiest during the slowest: ${slow.busiest.map((b) => `${b.thread} ${b.ms} ms`).join(", ")}`);
  }
}
