/**
 * `npm run bench -- groups [--json] [--records N] [--partitions P] [--consumers C] [--rounds R]
 *   [--crashes K] [--session-ms S] [--durability buffered|fsync] [--dir PATH]`
 *
 * A consumer group of C members (the SDK's group consumer, in this process) on a P-partition
 * topic of the local server (a child process on loopback), so server and members share the two
 * cores:
 * 1. drain: N records of 100 bytes, produced beforehand, consumed by the group from the start;
 *    records/s once the group has settled (every partition owned and fetched, shares even) to
 *    the last record, and from the first join (group formation included);
 * 2. rebalance on a clean join and leave: a member joins (then leaves) a stable group; time from
 *    the join (the leave) until every partition is owned and fetched again, by the members that
 *    are left;
 * 3. rebalance after a crash: one more member joins, then is cut off from the server without
 *    leaving; time until the others own every partition again (bounded below by the session
 *    timeout);
 * 4. commit latency: one member commits its position, one commit at a time.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type GroupConsumer, SluiceClient } from "@sluice/client";
import { fillTopic } from "./fill-topic.js";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { percentile, printTable, progress, progressDone, round1, writeLineChart } from "./report.js";

const RECORD_BYTES = 100;
const RECORDS_PER_REQUEST = 1_000;
const TOPIC = "bench-groups";
const GROUP = "bench";

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      records: { type: "string", default: "2000000" },
      partitions: { type: "string", default: "16" },
      consumers: { type: "string", default: "4" },
      rounds: { type: "string", default: "10" },
      crashes: { type: "string", default: "3" },
      "session-ms": { type: "string", default: "3000" },
      durability: { type: "string", default: "buffered" },
      dir: { type: "string", default: tmpdir() },
    },
  });
  const records = Number(values.records);
  const partitions = Number(values.partitions);
  const consumerCount = Number(values.consumers);
  const sessionMs = Number(values["session-ms"]);
  const dataDir = await mkdtemp(join(values.dir, "sluice-bench-groups-"));
  const durability = values.durability === "fsync" ? "fsync" : "buffered";
  const server = await startServer(dataDir, durability);
  const cutOff = new Set<number>();
  // Members that drain use the client as users get it (binary reads over node:http); only a member
  // to be cut off in the crash rounds is given a fetch the benchmark can break.
  const clientFor = (member: number, cuttable = false) =>
    new SluiceClient({
      url: server.url,
      ...(cuttable
        ? {
            fetch: (input: string | URL | Request, init?: RequestInit) =>
              cutOff.has(member)
                ? Promise.reject(new TypeError("fetch failed (cut off by the benchmark)"))
                : fetch(input, init),
          }
        : {}),
    });
  const consumerOptions = {
    groupId: GROUP,
    topics: [TOPIC],
    autoOffsetReset: "earliest" as const,
    sessionTimeoutMs: sessionMs,
    valueType: "STRING" as const,
    maxBytes: 4 * 1024 * 1024,
    fetchWaitMs: 500,
  };
  try {
    const admin = clientFor(-1);
    await admin.createTopic(TOPIC, { partitions });
    await fillTopic(admin, TOPIC, {
      records,
      partitions,
      recordBytes: RECORD_BYTES,
      perRequest: RECORDS_PER_REQUEST,
    });

    // 1. Drain.
    let consumed = 0;
    const series: [number, number][] = [];
    const members: { consumer: GroupConsumer; loop: Promise<void> }[] = [];
    const started = performance.now();
    let lastTick = started;
    let lastConsumed = 0;
    let drained: () => void = () => undefined;
    const allDrained = new Promise<void>((resolve) => {
      drained = resolve;
    });
    const startMember = (index: number, cuttable = false) => {
      const consumer = clientFor(index, cuttable).groupConsumer(consumerOptions);
      const loop = (async () => {
        for await (const batch of consumer) {
          consumed += batch.records.length;
          const now = performance.now();
          if (consumed < records && now - lastTick >= 250) {
            const rate = (consumed - lastConsumed) / ((now - lastTick) / 1000);
            series.push([(now - started) / 1000, rate]);
            progress(
              `drain: ${consumed.toLocaleString("en-US")}/${records.toLocaleString("en-US")} records, ${Math.round(rate).toLocaleString("en-US")} records/s`,
            );
            lastTick = now;
            lastConsumed = consumed;
          }
          if (consumed >= records) drained();
        }
      })();
      return { consumer, loop };
    };
    for (let index = 0; index < consumerCount; index++) members.push(startMember(index));
    // The group forms while it drains (members join one after another and rebalance); the steady
    // rate counts from the moment every partition is owned and fetched, shares even.
    let steadyFrom:
      | { at: number; consumed: number; clientCpu: NodeJS.CpuUsage; serverCpu: number | undefined }
      | undefined;
    void settled(
      members.map((member) => member.consumer),
      partitions,
    ).then(
      () => {
        steadyFrom = {
          at: performance.now(),
          consumed,
          clientCpu: process.cpuUsage(),
          serverCpu: cpuSecondsOf(server.pid),
        };
      },
      () => undefined,
    );
    await allDrained;
    const finished = performance.now();
    const clientCpu = process.cpuUsage();
    const serverCpu = cpuSecondsOf(server.pid);
    const drainSeconds = (finished - started) / 1000;
    progressDone();
    const drainWithFormationRate = records / drainSeconds;
    if (!steadyFrom || steadyFrom.consumed > records * 0.8) {
      throw new Error(
        "the group settled after 80% of the records were read: use more --records for a steady rate",
      );
    }
    const formationMs = steadyFrom.at - started;
    const drainRate = (records - steadyFrom.consumed) / ((finished - steadyFrom.at) / 1000);
    // What each record cost each side while the group drained: the figure that says which side
    // bounds the rate on two shared cores, and that moves less than the rate when the machine is busy.
    const drainedSteady = records - steadyFrom.consumed;
    const clientCpuUsPerRecord =
      (clientCpu.user + clientCpu.system - steadyFrom.clientCpu.user - steadyFrom.clientCpu.system) /
      drainedSteady;
    const serverCpuUsPerRecord =
      serverCpu === undefined || steadyFrom.serverCpu === undefined
        ? Number.NaN
        : ((serverCpu - steadyFrom.serverCpu) * 1e6) / drainedSteady;

    // 2. Clean join and leave of one more member.
    const joins: number[] = [];
    const leaves: number[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      progress(`rebalance on join and leave: round ${round + 1}/${values.rounds}`);
      await settled(
        members.map((member) => member.consumer),
        partitions,
      );
      const joinStart = performance.now();
      const extra = startMember(consumerCount);
      await settled([...members.map((member) => member.consumer), extra.consumer], partitions);
      joins.push(performance.now() - joinStart);
      const leaveStart = performance.now();
      await extra.consumer.close();
      await settled(
        members.map((member) => member.consumer),
        partitions,
      );
      leaves.push(performance.now() - leaveStart);
      await extra.loop;
    }
    progressDone();

    // 3. A member cut off without leaving: one more member joins, the group settles, then every
    // request of that member fails; timed until the others own every partition again.
    const crashes: number[] = [];
    for (let round = 0; round < Number(values.crashes); round++) {
      progress(`rebalance after a crash: round ${round + 1}/${values.crashes}`);
      const victimIndex = consumerCount + 1 + round;
      const victim = startMember(victimIndex, true);
      await settled([...members.map((member) => member.consumer), victim.consumer], partitions);
      const crashStart = performance.now();
      cutOff.add(victimIndex);
      await settled(
        members.map((member) => member.consumer),
        partitions,
        sessionMs * 3,
      );
      crashes.push(performance.now() - crashStart);
      cutOff.delete(victimIndex);
      // Expired by the group, it may be told it is fenced as it leaves; either way it is gone.
      await victim.consumer.close().catch(() => undefined);
      await victim.loop.catch(() => undefined);
    }
    progressDone();

    // 4. Commit latency.
    await settled(
      members.map((member) => member.consumer),
      partitions,
    );
    const committer = members[0]!.consumer;
    const commits: number[] = [];
    for (let index = 0; index < 200; index++) {
      const [tp] = committer.assignment();
      if (!tp) break;
      const begin = performance.now();
      await committer.commit([{ ...tp, offset: Math.floor(records / partitions) }]);
      commits.push(performance.now() - begin);
    }
    for (const member of members) await member.consumer.close();
    await Promise.all(members.map((member) => member.loop));

    const chart = writeLineChart(
      "groups-drain.svg",
      `A group of ${consumerCount} draining ${partitions} partitions (local server, loopback)`,
      { x: "seconds", y: "records/s" },
      [{ name: `${consumerCount} members, ${RECORD_BYTES}-byte records`, points: series }],
    );
    const figures = {
      drain_records_per_s: Math.round(drainRate),
      drain_with_formation_records_per_s: Math.round(drainWithFormationRate),
      drain_client_cpu_us_per_record: round2(clientCpuUsPerRecord),
      drain_server_cpu_us_per_record: round2(serverCpuUsPerRecord),
      group_formation_ms: round1(formationMs),
      rebalance_join_p50_ms: round1(percentile(joins, 50)),
      rebalance_join_p99_ms: round1(percentile(joins, 99)),
      rebalance_leave_p50_ms: round1(percentile(leaves, 50)),
      rebalance_leave_p99_ms: round1(percentile(leaves, 99)),
      rebalance_crash_p50_ms: round1(percentile(crashes, 50)),
      rebalance_crash_p99_ms: round1(percentile(crashes, 99)),
      session_timeout_ms: sessionMs,
      commit_p50_ms: round1(percentile(commits, 50)),
      commit_p99_ms: round1(percentile(commits, 99)),
    };
    printTable(
      `a group of ${consumerCount} on ${partitions} partitions, local server over loopback, ${durability} writes; ${joins.length} join/leave rounds, ${crashes.length} crashes`,
      [
        {
          name: "drain, group settled",
          value: drainRate,
          unit: "records/s",
          target: { value: 1_000_000, higherIsBetter: true },
        },
        { name: "drain, from the first join", value: drainWithFormationRate, unit: "records/s" },
        {
          name: "drain CPU, members' process",
          value: figures.drain_client_cpu_us_per_record,
          unit: "µs/record",
        },
        { name: "drain CPU, server", value: figures.drain_server_cpu_us_per_record, unit: "µs/record" },
        { name: "group formation", value: figures.group_formation_ms, unit: "ms" },
        { name: "drain", value: (drainRate * RECORD_BYTES) / 1e6, unit: "MB/s (payload)" },
        { name: "rebalance after a join p50", value: figures.rebalance_join_p50_ms, unit: "ms" },
        {
          name: "rebalance after a join p99",
          value: figures.rebalance_join_p99_ms,
          unit: "ms",
          target: { value: 1_000, higherIsBetter: false },
        },
        { name: "rebalance after a leave p50", value: figures.rebalance_leave_p50_ms, unit: "ms" },
        {
          name: "rebalance after a leave p99",
          value: figures.rebalance_leave_p99_ms,
          unit: "ms",
          target: { value: 1_000, higherIsBetter: false },
        },
        { name: "rebalance after a crash p50", value: figures.rebalance_crash_p50_ms, unit: "ms" },
        {
          name: "rebalance after a crash p99",
          value: figures.rebalance_crash_p99_ms,
          unit: "ms",
          target: { value: sessionMs + 1_000, higherIsBetter: false },
        },
        { name: "commit p50", value: figures.commit_p50_ms, unit: "ms" },
        { name: "commit p99", value: figures.commit_p99_ms, unit: "ms" },
      ],
    );
    process.stdout.write(`chart: ${chart}\n`);
    if (values.json)
      process.stdout.write(`${JSON.stringify({ benchmark: "groups", durability, ...figures })}\n`);
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Resolves once `members` between them own every partition once, each active (fetching), and
 * their shares differ by at most one. Checked on the members' own state every 5 ms.
 */
async function settled(members: GroupConsumer[], partitions: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const shares = members.map((member) => member.assignment().length);
    const owned = new Set(members.flatMap((member) => member.assignment().map((tp) => tp.partitionId)));
    const total = shares.reduce((sum, share) => sum + share, 0);
    if (owned.size === partitions && total === partitions && Math.max(...shares) - Math.min(...shares) <= 1)
      return;
    if (performance.now() > deadline)
      throw new Error(`the group did not settle within ${timeoutMs} ms (shares ${shares.join(", ")})`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
