/**
 * `npm run bench -- queues [--json] [--records N] [--partitions P] [--consumers C] [--handle-ms H]
 *   [--max-records M] [--durability buffered|fsync] [--dir PATH]`
 *
 * A share group of C queue consumers (the SDK's, in this process) on a P-partition topic of the
 * local server (a child process on loopback), so server and consumers share the two cores. N
 * records, produced beforehand, are handed out one consumer at a time; handling each takes H ms
 * (a timer, as a call to a slow service would), after which the consumer accepts it and moves on
 * (the acceptance travels in the background, coalesced). Figures:
 * - records acknowledged per second, from the moment every consumer has had its first record to
 *   the last acknowledgement, and its ratio to the partition-bound ceiling: what a consumer group
 *   could do, one consumer per partition, P × 1000 / H records/s;
 * - acquire-to-deliver latency: from sending an acquisition to holding its records, for every
 *   acquisition that returned records and was sent once every consumer was busy (the stretch the
 *   rate covers; the p99 from the very start, cold server included, is in the JSON too), with
 *   the server's share of the slowest (its Server-Timing) and this process's event-loop delay.
 *   With SLUICE_PROCESS_METRICS=on the server's own event-loop delay over the same stretch is
 *   printed too (its process metrics cost it a few percent of CPU, so it is not on by default).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type QueueConsumer, SluiceClient } from "@sluice/client";
import { fillTopic } from "./fill-topic.js";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { percentile, printTable, progress, progressDone, round1, writeLineChart } from "./report.js";

const RECORD_BYTES = 100;
const RECORDS_PER_REQUEST = 1_000;
const TOPIC = "bench-queues";
const GROUP = "bench-queue";
const STALL_MS = 30_000;
/**
 * Node's event-loop histograms (this process's, and prom-client's in the server, which checks
 * every 10 ms too) record the whole interval between checks: an idle loop reads as the resolution.
 * The delay is what lies beyond it.
 */
const LOOP_RESOLUTION_MS = 10;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      records: { type: "string", default: "30000" },
      partitions: { type: "string", default: "4" },
      consumers: { type: "string", default: "32" },
      "handle-ms": { type: "string", default: "10" },
      "max-records": { type: "string", default: "40" },
      durability: { type: "string", default: "buffered" },
      dir: { type: "string", default: tmpdir() },
    },
  });
  const records = Number(values.records);
  const partitions = Number(values.partitions);
  const consumerCount = Number(values.consumers);
  const handleMs = Number(values["handle-ms"]);
  const maxRecords = Number(values["max-records"]);
  const durability = values.durability === "fsync" ? "fsync" : "buffered";
  const dataDir = await mkdtemp(join(values.dir, "sluice-bench-queues-"));
  const server = await startServer(dataDir, durability);
  /**
   * Acquisitions that handed out records: when sent, how long until the records were read, and
   * how much of that the server's app took (its Server-Timing).
   */
  const acquisitions: { sentAt: number; ms: number; serverMs: number }[] = [];
  const serverLoop = process.env.SLUICE_PROCESS_METRICS === "on";
  // This process's event-loop delay: 32 consumers share it, and a late turn delays requests too.
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  // Times each acquisition that came back with records, from the request to the parsed answer.
  const requests: Record<string, number> = {};
  const timed = async (input: string, init: RequestInit): Promise<Response> => {
    // The last path segment names the call (records:acquire, heartbeat, …), but a leave ends in the member id.
    const kind = init.method === "DELETE" ? "leave" : (input.split("/").pop() ?? "");
    requests[kind] = (requests[kind] ?? 0) + 1;
    if (!input.endsWith("records:acquire")) return fetch(input, init);
    const started = performance.now();
    const response = await fetch(input, init);
    if (!response.ok) return response;
    const text = await response.text();
    // Only acquisitions that handed out records (the results of acknowledgements carried also name offsets).
    if (text.startsWith('{"records":[{'))
      acquisitions.push({
        sentAt: started,
        ms: performance.now() - started,
        serverMs: serverTimingMs(response.headers.get("server-timing")),
      });
    return new Response(text, { status: response.status, headers: response.headers });
  };
  try {
    const admin = new SluiceClient({ url: server.url });
    await admin.createTopic(TOPIC, { partitions });
    await fillTopic(admin, TOPIC, {
      records,
      partitions,
      recordBytes: RECORD_BYTES,
      perRequest: RECORDS_PER_REQUEST,
    });

    let acknowledged = 0;
    let failed = 0;
    let cpuAtSteady: { client: number; server: number } | undefined;
    let lastProgressAt = performance.now();
    let stalled: string | undefined;
    const consumerErrors: unknown[] = [];
    const firstRecord = new Set<number>();
    let steadyFrom: { at: number; acknowledged: number } | undefined;
    const started = performance.now();
    const series: [number, number][] = [];
    let lastTick = started;
    let lastAcknowledged = 0;
    let finished: () => void = () => undefined;
    const allAcknowledged = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const onAcknowledged = () => {
      acknowledged++;
      lastProgressAt = performance.now();
      const now = performance.now();
      if (now - lastTick >= 500) {
        const rate = (acknowledged - lastAcknowledged) / ((now - lastTick) / 1000);
        series.push([(now - started) / 1000, rate]);
        progress(
          `${acknowledged.toLocaleString("en-US")}/${records.toLocaleString("en-US")} acknowledged, ${Math.round(rate).toLocaleString("en-US")} records/s`,
        );
        lastTick = now;
        lastAcknowledged = acknowledged;
      }
      if (acknowledged + failed >= records) finished();
    };
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const consume = async (consumer: QueueConsumer, index: number) => {
      for await (const record of consumer) {
        if (!firstRecord.has(index)) {
          firstRecord.add(index);
          if (firstRecord.size === consumerCount) {
            steadyFrom = { at: performance.now(), acknowledged };
            loopDelay.enable();
            // The server's event-loop histogram restarts at each scrape: this one starts the stretch.
            if (serverLoop) void serverLoopDelayP99Ms(server.url);
            cpuAtSteady = { client: clientCpuMs(), server: processCpuMs(server.pid ?? 0) };
          }
        }
        await sleep(handleMs);
        // Accepted in the background: the consumer moves on while the acknowledgement travels.
        record.accept().then(onAcknowledged, () => {
          failed++;
          if (acknowledged + failed >= records) finished();
        });
      }
    };
    const consumers: QueueConsumer[] = [];
    const loops = Array.from({ length: consumerCount }, async (_, index) => {
      const client = new SluiceClient({ url: server.url, fetch: timed });
      const consumer = client.queueConsumer({
        groupId: GROUP,
        topics: [TOPIC],
        acknowledgement: "explicit",
        // Nothing here awaits an acceptance: let them wait for the next acquisition, as implicit
        // acceptance does by default.
        ackLingerMs: 250,
        maxRecords,
        valueType: "STRING",
        configs: { autoOffsetReset: "earliest" },
      });
      consumers.push(consumer);
      try {
        await consume(consumer, index);
      } catch (error) {
        consumerErrors.push(error);
        progress(`consumer ${index} failed: ${error instanceof Error ? error.message : String(error)}`);
        finished();
      }
    });
    // A run that stops moving says so, with where the share-partitions stand, rather than hanging.
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgressAt < STALL_MS) return;
      void admin.getSharePartitions(GROUP).then((windows) => {
        stalled = `no acknowledgement for ${STALL_MS / 1000} s; windows ${windows
          .map((w) => `${w.partitionId}: ${w.startOffset}-${w.endOffset} in flight ${w.acquiredRecords}`)
          .join(", ")}`;
        finished();
      });
    }, 1_000);
    await allAcknowledged;
    clearInterval(watchdog);
    if (stalled) throw new Error(`the run stalled: ${stalled}`);
    if (consumerErrors.length > 0) throw consumerErrors[0];
    const end = performance.now();
    const cpuAtEnd = { client: clientCpuMs(), server: processCpuMs(server.pid ?? 0) };
    progressDone();
    await Promise.all(consumers.map((consumer) => consumer.close()));
    await Promise.all(loops);
    if (!steadyFrom || steadyFrom.acknowledged > records * 0.5) {
      throw new Error(
        "not every consumer had a record before half of them were acknowledged: use more --records",
      );
    }
    const steadyRecords = acknowledged - steadyFrom.acknowledged;
    const steadyAt = steadyFrom.at;
    // Latency over the same stretch as the rate: acquisitions sent once every consumer was busy.
    loopDelay.disable();
    const serverLoopP99 = serverLoop ? await serverLoopDelayP99Ms(server.url) : undefined;
    const steadyAcquisitions = acquisitions.filter((a) => a.sentAt >= steadyAt);
    const acquireMs = steadyAcquisitions.map((a) => a.ms);
    // The slowest 1%, which make the p99: how much of their time the server's app took.
    const slowest = [...steadyAcquisitions]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, Math.max(1, Math.ceil(steadyAcquisitions.length / 100)));
    const rate = steadyRecords / ((end - steadyFrom.at) / 1000);
    const perRecord = (ms: number) => Math.round((ms / steadyRecords) * 1000) / 1000;
    const serverCpuMsPerRecord = perRecord(cpuAtEnd.server - cpuAtSteady!.server);
    const clientCpuMsPerRecord = perRecord(cpuAtEnd.client - cpuAtSteady!.client);
    const ceiling = (partitions * 1000) / handleMs;
    const partitionsAfter = await admin.getSharePartitions(GROUP);
    const settled = partitionsAfter.every((partition) => partition.lag === 0);
    const figures = {
      acked_records_per_s: Math.round(rate),
      ceiling_records_per_s: ceiling,
      ceiling_ratio: Math.round((rate / ceiling) * 100) / 100,
      consumers_bound_records_per_s: Math.round((consumerCount * 1000) / handleMs),
      acquire_p50_ms: round1(percentile(acquireMs, 50)),
      acquire_p99_ms: round1(percentile(acquireMs, 99)),
      acquisitions: acquireMs.length,
      acquire_server_p99_ms: round1(
        percentile(
          steadyAcquisitions.map((a) => a.serverMs),
          99,
        ),
      ),
      slowest_acquisitions_server_p50_ms: round1(
        percentile(
          slowest.map((a) => a.serverMs),
          50,
        ),
      ),
      slowest_acquisitions_p50_ms: round1(
        percentile(
          slowest.map((a) => a.ms),
          50,
        ),
      ),
      consumers_loop_delay_p99_ms: round1(loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
      ...(serverLoopP99 === undefined ? {} : { server_loop_delay_p99_ms: round1(serverLoopP99) }),
      // The first acquisitions meet a cold server, 32 at once: shown apart from the steady state.
      acquire_p99_ms_from_start: round1(
        percentile(
          acquisitions.map((a) => a.ms),
          99,
        ),
      ),
      refused_acknowledgements: failed,
      server_cpu_ms_per_record: serverCpuMsPerRecord,
      consumers_cpu_ms_per_record: clientCpuMsPerRecord,
      all_settled: settled,
      requests_per_record:
        Math.round((Object.values(requests).reduce((a, b) => a + b, 0) / records) * 100) / 100,
    };
    printTable(
      `${consumerCount} queue consumers on ${partitions} partitions, ${handleMs} ms per record, ${maxRecords} records per acquisition; local server over loopback, ${durability} writes`,
      [
        {
          name: "acknowledged, all consumers busy",
          value: rate,
          unit: "records/s",
          target: { value: ceiling * 6, higherIsBetter: true },
        },
        {
          name: "ratio to the partition-bound ceiling",
          value: figures.ceiling_ratio,
          unit: `× ${ceiling}/s`,
        },
        { name: "consumer-bound ceiling", value: figures.consumers_bound_records_per_s, unit: "records/s" },
        { name: "acquire-to-deliver p50", value: figures.acquire_p50_ms, unit: "ms" },
        {
          name: "acquire-to-deliver p99",
          value: figures.acquire_p99_ms,
          unit: "ms",
          target: { value: 20, higherIsBetter: false },
        },
        {
          name: "server's app in an acquisition, p99",
          value: figures.acquire_server_p99_ms,
          unit: "ms (Server-Timing)",
        },
        {
          name: "slowest 1% of acquisitions, p50",
          value: figures.slowest_acquisitions_p50_ms,
          unit: `ms, of which the server's app ${figures.slowest_acquisitions_server_p50_ms} ms`,
        },
        {
          name: "consumers' event-loop delay p99",
          value: figures.consumers_loop_delay_p99_ms,
          unit: "ms (this process)",
        },
        ...(serverLoopP99 === undefined
          ? []
          : [
              {
                name: "server's event-loop delay p99",
                value: round1(serverLoopP99),
                unit: "ms (its metrics)",
              },
            ]),
        { name: "acknowledgements refused", value: failed, unit: "records" },
        { name: "server CPU per record", value: serverCpuMsPerRecord, unit: "ms" },
        { name: "requests per record", value: figures.requests_per_record, unit: JSON.stringify(requests) },
        { name: "consumers' CPU per record", value: clientCpuMsPerRecord, unit: "ms (this process)" },
      ],
    );
    const chart = writeLineChart(
      "queues-drain.svg",
      `${consumerCount} queue consumers on ${partitions} partitions, ${handleMs} ms per record`,
      { x: "seconds", y: "records/s acknowledged" },
      [{ name: `${consumerCount} consumers`, points: series }],
    );
    process.stdout.write(`chart: ${chart}\n`);
    if (!settled) throw new Error("the share group did not settle every record");
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ benchmark: "queues", durability, consumers: consumerCount, partitions, handle_ms: handleMs, records, ...figures })}\n`,
      );
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function clientCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** CPU time a child process has used (Linux /proc; 0 elsewhere), in ms. */
function processCpuMs(pid: number): number {
  return (cpuSecondsOf(pid) ?? 0) * 1000;
}

/** The `app` duration of a Server-Timing header, in ms (NaN when there is none). */
function serverTimingMs(header: string | null): number {
  const match = /(?:^|,)\s*app;dur=([\d.]+)/.exec(header ?? "");
  return match ? Number(match[1]) : Number.NaN;
}

/** The server's event-loop delay p99 since its last scrape, in ms (its process metrics; undefined without them). */
async function serverLoopDelayP99Ms(url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("nodejs_eventloop_lag_p99_seconds"));
  return line === undefined ? undefined : Number(line.split(" ").at(-1)) * 1000 - LOOP_RESOLUTION_MS;
}
