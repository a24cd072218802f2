import { describe, expect, it } from "vitest";
import { otherThreads, runsOf } from "./anatomy-sched.js";

/** A `perf script -F cpu,time,trace` sched_switch line. */
const line = (cpu: number, time: string, prev: [string, number], next: [string, number]) =>
  `[00${cpu}]  ${time}: prev_comm=${prev[0]} prev_pid=${prev[1]} prev_prio=120 prev_state=S ==> next_comm=${next[0]} next_pid=${next[1]} next_prio=120`;

describe("runsOf", () => {
  it("turns each CPU's switches into runs, from one switch to the next", () => {
    const script = [
      line(0, "10.000100", ["swapper/0", 0], ["node", 500]),
      line(1, "10.000150", ["swapper/1", 0], ["kdamond.0", 105]),
      "not a switch line",
      line(0, "10.000400", ["node", 500], ["node", 501]),
      line(1, "10.000200", ["kdamond.0", 105], ["swapper/1", 0]),
      line(0, "10.001000", ["node", 501], ["swapper/0", 0]),
    ].join("\n");
    expect(runsOf(script)).toEqual([
      { cpu: 0, start: 10_000_100_000, end: 10_000_400_000, tid: 500, comm: "node" },
      { cpu: 1, start: 10_000_150_000, end: 10_000_200_000, tid: 105, comm: "kdamond.0" },
      { cpu: 0, start: 10_000_400_000, end: 10_001_000_000, tid: 501, comm: "node" },
    ]);
  });
});

describe("otherThreads", () => {
  const server = { pid: 500, threads: [500, 501, 502] };
  const client = { pid: 600, threads: [600, 601] };
  const run = (cpu: number, start: number, end: number, tid: number, comm: string) => ({
    cpu,
    start,
    end,
    tid,
    comm,
  });

  it("sums what ran besides the main threads and the idle task, by owner", () => {
    const runs = [
      run(0, 0, 1_000_000, 500, "node"), // the server's main thread: not counted
      run(1, 0, 100_000, 0, "swapper/1"), // idle: not counted
      run(1, 100_000, 400_000, 501, "node"), // a server worker: 300 µs, all within the first span
      run(1, 400_000, 2_000_000, 601, "node"), // a client worker: 100 µs in the first, 200 in the second
      run(0, 1_000_000, 1_030_000, 105, "kdamond.0"), // 30 µs in the second span
    ];
    const spans: [number, number][] = [
      [50_000, 500_000],
      [1_000_000, 1_200_000],
    ];
    const result = otherThreads(runs, spans, server, client);
    expect(result.busiest).toEqual([
      { thread: "server's node thread", ms: 0.3 },
      { thread: "client's node thread", ms: 0.3 },
      { thread: "kdamond.0", ms: 0.03 },
    ]);
    expect(result.spansWithOthers).toBe(2); // 400 µs in the first, 230 µs in the second
  });

  it("does not count a span whose other threads ran 50 µs or less", () => {
    const runs = [run(1, 0, 40_000, 105, "kdamond.0")];
    expect(otherThreads(runs, [[0, 100_000]], server, client).spansWithOthers).toBe(0);
  });
});
