/**
 * `npm run bench -- http [--json] [--batches N] [--singles N] [--e2e N] [--concurrency C]
 *   [--concurrent-singles N] [--producers P] [--value-type STRING|JSON] [--spaced] [--with-header]
 *   [--durability buffered|fsync] [--dir PATH]`
 *
 * Drives the local server (`npm start`, a child process on loopback with its own data directory)
 * from this process, so server and client share the machine's two cores:
 * 1. batched produce: requests of 1,000 × 100-byte records in Confluent's streaming mode, 4 in flight
 *    (values of type STRING; with `--value-type JSON`, of type JSON: BATCH_JSON_VALUE, 97 bytes),
 *    written as JSON.stringify writes them, or with `--spaced` as Python's json.dumps does (a space
 *    after each colon and comma); with `--with-header`, each record carries a `traceparent` header;
 * 2. single-record produce: one request at a time, acknowledgement latency;
 * 3. produce-to-consume: a long-polling reader of one partition while single records are produced;
 *    latency from the send to the record arriving at the reader;
 * 4. many small producers: `--concurrent-singles` single-record requests (keyless, to an
 *    8-partition topic) from `--producers` kept-alive connections at once, each with one request
 *    in flight, as many services or functions each producing an event would send them: requests/s,
 *    latency, and the server's CPU per request (`--concurrent-singles 0` skips it);
 * 5. metrics overhead: batched produce against a server with metrics on and one with them off, both
 *    loaded at once in each round (bench/metrics-overhead.ts; `--overhead-rounds`, of
 *    `--overhead-seconds` each); `--overhead-rounds 0` skips it.
 * Latencies go into HdrHistograms; throughput over time is drawn as an SVG chart.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as hdr from "hdr-histogram-js";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { metricsOverhead } from "./metrics-overhead.js";
import { printTable, progress, progressDone, writeLineChart } from "./report.js";

const RECORD_BYTES = 100;
const RECORDS_PER_BATCH = 1_000;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      batches: { type: "string", default: "600" },
      singles: { type: "string", default: "3000" },
      e2e: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "4" },
      "concurrent-singles": { type: "string", default: "10000" },
      producers: { type: "string", default: "16" },
      "value-type": { type: "string", default: "STRING" },
      spaced: { type: "boolean", default: false },
      "with-header": { type: "boolean", default: false },
      "overhead-rounds": { type: "string", default: "20" },
      "overhead-seconds": { type: "string", default: "3" },
      durability: { type: "string", default: "buffered" },
      /** Where the server's data directory goes; e.g. /dev/shm to take the disk out of the measurement. */
      dir: { type: "string", default: tmpdir() },
    },
  });
  const valueType = values["value-type"];
  if (valueType !== "STRING" && valueType !== "JSON")
    throw new Error(`--value-type must be STRING or JSON, not ${valueType}`);
  const dataDir = await mkdtemp(join(values.dir, "sluice-bench-http-"));
  const durability = values.durability === "fsync" ? "fsync" : "buffered";
  const server = await startServer(dataDir, durability);
  try {
    const api = await apiFor(server.url);
    await api.post("/topics", { topic_name: "bench-batch", partitions_count: 8 });
    await api.post("/topics", { topic_name: "bench-single", partitions_count: 1 });
    await api.post("/topics", { topic_name: "bench-e2e", partitions_count: 1 });

    const cpuBefore = cpuSecondsOf(server.pid);
    const batched = await batchedProduce(
      api,
      Number(values.batches),
      Number(values.concurrency),
      valueType,
      values.spaced ? "python" : "compact",
      values["with-header"],
    );
    // What the server spent on it: on two shared cores, a steadier figure than records/s, which
    // moves with whatever else the machine runs.
    const cpuAfter = cpuSecondsOf(server.pid);
    const serverCpuPerMillion =
      cpuBefore === undefined || cpuAfter === undefined
        ? undefined
        : (cpuAfter - cpuBefore) / ((Number(values.batches) * RECORDS_PER_BATCH) / 1e6);
    const single = await singleProduce(api, Number(values.singles));
    const endToEnd = await produceToConsume(api, Number(values.e2e));
    const concurrent = await concurrentSingles(
      api,
      server.pid,
      Number(values["concurrent-singles"]),
      Number(values.producers),
    );
    await server.stop();
    const overheadRounds = Number(values["overhead-rounds"]);
    const overhead =
      overheadRounds > 0
        ? await metricsOverhead({
            dir: values.dir,
            durability,
            rounds: overheadRounds,
            secondsPerRound: Number(values["overhead-seconds"]),
            concurrency: Number(values.concurrency),
            recordBytes: RECORD_BYTES,
            recordsPerRequest: RECORDS_PER_BATCH,
          })
        : undefined;

    const chart = writeLineChart(
      "http-produce.svg",
      "Batched produce over HTTP (local server, loopback)",
      { x: "seconds", y: "records/s" },
      [{ name: `1,000-record requests, ${values.concurrency} in flight`, points: batched.series }],
    );
    printTable(
      `local server over loopback (client on the same machine), ${durability} writes in ${values.dir}; batched records' values of type ${valueType}, written ${values.spaced ? "as Python's json.dumps writes them" : "as JSON.stringify writes them"}${values["with-header"] ? ", each with a traceparent header" : ""}`,
      [
        {
          name: "batched produce",
          value: batched.recordsPerS,
          unit: "records/s",
          target: { value: 1_000_000, higherIsBetter: true },
        },
        {
          name: "batched produce",
          value: (batched.recordsPerS * RECORD_BYTES) / 1e6,
          unit: "MB/s (payload)",
        },
        ...(serverCpuPerMillion === undefined
          ? []
          : [{ name: "batched produce, server CPU", value: serverCpuPerMillion, unit: "s per M records" }]),
        {
          name: "batched produce p50",
          value: batched.latency.getValueAtPercentile(50) / 1000,
          unit: "ms per request",
        },
        {
          name: "batched produce p99",
          value: batched.latency.getValueAtPercentile(99) / 1000,
          unit: "ms per request",
        },
        // A workload given 0 requests (`--singles 0`, `--e2e 0`) was not run: no rows, rather
        // than zeros judged against their targets.
        ...(single.totalCount === 0
          ? []
          : [
              {
                name: "single-record produce p50",
                value: single.getValueAtPercentile(50) / 1000,
                unit: "ms",
              },
              {
                name: "single-record produce p99",
                value: single.getValueAtPercentile(99) / 1000,
                unit: "ms",
                target: { value: 5, higherIsBetter: false },
              },
            ]),
        ...(endToEnd.totalCount === 0
          ? []
          : [
              { name: "produce-to-consume p50", value: endToEnd.getValueAtPercentile(50) / 1000, unit: "ms" },
              {
                name: "produce-to-consume p99",
                value: endToEnd.getValueAtPercentile(99) / 1000,
                unit: "ms",
                target: { value: 10, higherIsBetter: false },
              },
            ]),
        ...(concurrent === undefined
          ? []
          : [
              {
                name: `${values.producers} producers, single records`,
                value: concurrent.requestsPerS,
                unit: "requests/s",
              },
              {
                name: `${values.producers} producers, p50`,
                value: concurrent.latency.getValueAtPercentile(50) / 1000,
                unit: "ms",
              },
              {
                name: `${values.producers} producers, p99`,
                value: concurrent.latency.getValueAtPercentile(99) / 1000,
                unit: "ms",
              },
              ...(concurrent.serverCpuUsPerRequest === undefined
                ? []
                : [
                    {
                      name: `${values.producers} producers, server CPU`,
                      value: concurrent.serverCpuUsPerRequest,
                      unit: "µs per request",
                    },
                  ]),
            ]),
        ...(overhead
          ? [
              {
                name: "batched produce, metrics on",
                value: overhead.onRecordsPerS,
                unit: "records/s (both at once)",
              },
              {
                name: "batched produce, metrics off",
                value: overhead.offRecordsPerS,
                unit: "records/s (both at once)",
              },
              {
                name: "metrics on / off (median of rounds)",
                value: overhead.ratio,
                unit: "ratio",
                target: { value: 0.97, higherIsBetter: true },
              },
              { name: "  lowest round ratio", value: overhead.spread[0], unit: "ratio" },
              { name: "  highest round ratio", value: overhead.spread[1], unit: "ratio" },
              ...(overhead.efficiency === undefined
                ? []
                : [
                    {
                      name: "records per server CPU s, on / off",
                      value: overhead.efficiency,
                      unit: "ratio",
                      target: { value: 0.97, higherIsBetter: true },
                    },
                  ]),
              ...(overhead.cpuPerMillion
                ? [
                    {
                      name: "server CPU, metrics on",
                      value: overhead.cpuPerMillion.on,
                      unit: "s per M records",
                    },
                    {
                      name: "server CPU, metrics off",
                      value: overhead.cpuPerMillion.off,
                      unit: "s per M records",
                    },
                  ]
                : []),
            ]
          : []),
      ],
    );
    if (overhead) {
      process.stdout.write(
        `metrics overhead rounds (records/s on | off | ratio): ${overhead.rounds
          .map(
            (round) =>
              `${Math.round(round.on)} | ${Math.round(round.off)} | ${round.ratio.toFixed(3)}${round.efficiency === undefined ? "" : ` (per CPU s ${round.efficiency.toFixed(3)})`}`,
          )
          .join("; ")}\n`,
      );
    }
    process.stdout.write(`chart: ${chart}\n`);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({
          benchmark: "http",
          durability,
          value_type: valueType,
          json_style: values.spaced ? "python" : "compact",
          record_headers: values["with-header"] ? 1 : 0,
          produce_records_per_s: Math.round(batched.recordsPerS),
          produce_mb_per_s: Number(((batched.recordsPerS * RECORD_BYTES) / 1e6).toFixed(2)),
          batch_request_p99_ms: batched.latency.getValueAtPercentile(99) / 1000,
          ...(serverCpuPerMillion === undefined
            ? {}
            : { produce_server_cpu_s_per_m_records: Number(serverCpuPerMillion.toFixed(3)) }),
          produce_p50_ms: percentileMs(single, 50),
          produce_p99_ms: percentileMs(single, 99),
          e2e_p50_ms: percentileMs(endToEnd, 50),
          e2e_p99_ms: percentileMs(endToEnd, 99),
          ...(concurrent === undefined
            ? {}
            : {
                concurrent_producers: Number(values.producers),
                concurrent_produce_requests_per_s: Math.round(concurrent.requestsPerS),
                concurrent_produce_p50_ms: percentileMs(concurrent.latency, 50),
                concurrent_produce_p99_ms: percentileMs(concurrent.latency, 99),
                ...(concurrent.serverCpuUsPerRequest === undefined
                  ? {}
                  : {
                      concurrent_produce_server_cpu_us_per_request: Math.round(
                        concurrent.serverCpuUsPerRequest,
                      ),
                    }),
              }),
          ...(overhead
            ? {
                metrics_overhead_ratio: Number(overhead.ratio.toFixed(4)),
                metrics_overhead_spread: overhead.spread.map((ratio) => Number(ratio.toFixed(4))),
                ...(overhead.efficiency === undefined
                  ? {}
                  : { metrics_cpu_efficiency_ratio: Number(overhead.efficiency.toFixed(4)) }),
                metrics_on_records_per_s: Math.round(overhead.onRecordsPerS),
                metrics_off_records_per_s: Math.round(overhead.offRecordsPerS),
              }
            : {}),
        })}\n`,
      );
    }
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export interface Api {
  base: string;
  post(path: string, body: unknown): Promise<unknown>;
}

export async function apiFor(url: string): Promise<Api> {
  const clusters = (await (await fetch(`${url}/v3/clusters`)).json()) as { data: { cluster_id: string }[] };
  const base = `${url}/v3/clusters/${clusters.data[0]!.cluster_id}`;
  return {
    base,
    async post(path, body) {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`POST ${path}: HTTP ${response.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
  };
}

const DELIVERED = Buffer.from('{"error_code":200,');

/** How many times `needle` occurs in `haystack`. */
function count(haystack: Buffer, needle: Buffer): number {
  let found = 0;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + needle.length)) found++;
  return found;
}

/** POSTs JSON bytes with node:http on a kept-alive socket; the answer's status and bytes. */
function post(agent: Agent, target: URL, body: Buffer): Promise<{ status: number; reports: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      target,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.byteLength },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, reports: Buffer.concat(chunks) }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

/** What a batched JSON produce's records carry: a 100-byte STRING, or a JSON value of about that size. */
export type BatchValueType = "STRING" | "JSON";

/** A W3C trace context, as tracing libraries add to every record they see produced. */
const TRACE_HEADER = {
  name: "traceparent",
  value: Buffer.from("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").toString("base64"),
};

/** How a batched JSON produce's records are written: as JSON.stringify writes, or as Python's json.dumps. */
export type BatchJsonStyle = "compact" | "python";

/** JSON as Python's json.dumps writes it by default: a space after each colon and each comma. */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    return `{${Object.entries(value)
      .map(([name, member]) => `${JSON.stringify(name)}: ${pythonJson(member)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** The JSON value of `--value-type JSON` (97 bytes as JSON): an event of the kind the API's docs show. */
export const BATCH_JSON_VALUE = {
  order: 1234,
  customer: "customer-42",
  items: [{ sku: "A-1", qty: 2 }],
  total: 19.99,
  paid: true,
};

export async function batchedProduce(
  api: Api,
  requests: number,
  concurrency: number,
  valueType: BatchValueType = "STRING",
  style: BatchJsonStyle = "compact",
  withHeader = false,
) {
  const value = Buffer.alloc(RECORD_BYTES, "x").toString();
  const record = {
    ...(withHeader ? { headers: [TRACE_HEADER] } : {}),
    value: valueType === "JSON" ? { type: "JSON", data: BATCH_JSON_VALUE } : { type: "STRING", data: value },
  };
  const one = style === "python" ? pythonJson(record) : JSON.stringify(record);
  // Encoded once, as a client sending the same records again would keep them.
  const body = Buffer.from(Array.from({ length: RECORDS_PER_BATCH }, () => one).join("\n"));
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const series: [number, number][] = [];
  const target = new URL(`${api.base}/topics/bench-batch/records`);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let sent = 0;
  let done = 0;
  const started = performance.now();
  let lastTick = started;
  let lastDone = 0;
  const worker = async () => {
    while (sent < requests) {
      sent++;
      const begin = performance.now();
      const { status, reports } = await post(agent, target, body);
      // Every record's report, counted in the answer's bytes (no string of its 180 KB made).
      const delivered = count(reports, DELIVERED);
      if (status !== 200 || delivered !== RECORDS_PER_BATCH) {
        throw new Error(
          `batched produce failed: HTTP ${status}, ${delivered} of ${RECORDS_PER_BATCH} records delivered: ${reports.subarray(0, 300).toString()}`,
        );
      }
      latency.recordValue(Math.round((performance.now() - begin) * 1000));
      done++;
      const now = performance.now();
      if (now - lastTick >= 100) {
        const rate = ((done - lastDone) * RECORDS_PER_BATCH) / ((now - lastTick) / 1000);
        series.push([(now - started) / 1000, rate]);
        progress(
          `batched produce: ${done}/${requests} requests, ${Math.round(rate).toLocaleString("en-US")} records/s`,
        );
        lastTick = now;
        lastDone = done;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  progressDone();
  return {
    recordsPerS: (requests * RECORDS_PER_BATCH) / ((performance.now() - started) / 1000),
    latency,
    series,
  };
}

export async function singleProduce(api: Api, requests: number) {
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const body = JSON.stringify({ value: { type: "STRING", data: "x".repeat(RECORD_BYTES) } });
  for (let i = 0; i < requests; i++) {
    const begin = performance.now();
    const response = await fetch(`${api.base}/topics/bench-single/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await response.text();
    if (!response.ok) throw new Error(`single produce failed: ${response.status}`);
    latency.recordValue(Math.round((performance.now() - begin) * 1000));
    if (i % 250 === 0) progress(`single-record produce: ${i}/${requests}`);
  }
  progressDone();
  return latency;
}

/**
 * Many small producers: `requests` single-record produces to `bench-batch` from `producers`
 * kept-alive connections, each with one request in flight, after 100 untimed rounds of one request
 * from each. Undefined when `requests` is 0.
 */
export async function concurrentSingles(
  api: Api,
  serverPid: number | undefined,
  requests: number,
  producers: number,
): Promise<{ requestsPerS: number; latency: hdr.Histogram; serverCpuUsPerRequest?: number } | undefined> {
  if (!Number.isInteger(requests) || requests < 0) {
    throw new Error(`--concurrent-singles must be a whole number from 0, got ${requests}`);
  }
  if (requests === 0) return undefined;
  if (!Number.isInteger(producers) || producers < 1) {
    throw new Error(`--producers must be a whole number from 1, got ${producers}`);
  }
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const agent = new Agent({ keepAlive: true, maxSockets: producers });
  const target = new URL(`${api.base}/topics/bench-batch/records`);
  const body = Buffer.from(JSON.stringify({ value: { type: "STRING", data: "x".repeat(RECORD_BYTES) } }));
  const send = async () => {
    const { status, reports } = await post(agent, target, body);
    if (status !== 200 || count(reports, DELIVERED) !== 1) {
      throw new Error(`single produce failed: HTTP ${status} ${reports.toString().slice(0, 200)}`);
    }
  };
  try {
    for (let round = 0; round < 100; round++) await Promise.all(Array.from({ length: producers }, send));
    let sent = 0;
    const cpuBefore = cpuSecondsOf(serverPid);
    const began = performance.now();
    const producer = async () => {
      while (sent < requests) {
        sent++;
        const start = performance.now();
        await send();
        latency.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
        if (latency.totalCount % 1000 === 0)
          progress(`${producers} producers: ${latency.totalCount}/${requests}`);
      }
    };
    await Promise.all(Array.from({ length: producers }, producer));
    const seconds = (performance.now() - began) / 1000;
    const cpuAfter = cpuSecondsOf(serverPid);
    progressDone();
    return {
      requestsPerS: requests / seconds,
      latency,
      ...(cpuBefore === undefined || cpuAfter === undefined
        ? {}
        : { serverCpuUsPerRequest: ((cpuAfter - cpuBefore) * 1e6) / requests }),
    };
  } finally {
    agent.destroy();
  }
}

/** A long-polling reader of partition 0; each record's value carries its send time. */
export async function produceToConsume(api: Api, records: number) {
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let received = 0;
  const reader = (async () => {
    let offset = 0;
    while (received < records) {
      const response = await fetch(
        `${api.base}/topics/bench-e2e/partitions/0/records?offset=${offset}&timeout_ms=5000&value_type=STRING`,
      );
      const page = (await response.json()) as { records: { value: { data: string } }[]; next_offset: number };
      const now = performance.timeOrigin + performance.now();
      for (const record of page.records) {
        latency.recordValue(Math.max(1, Math.round((now - Number(record.value.data)) * 1000)));
        received++;
      }
      offset = page.next_offset;
    }
  })();
  for (let i = 0; i < records; i++) {
    const sentAt = performance.timeOrigin + performance.now();
    await api.post("/topics/bench-e2e/records", {
      partition_id: 0,
      value: { type: "STRING", data: String(sentAt) },
    });
    if (i % 250 === 0) progress(`produce-to-consume: ${i}/${records}`);
  }
  await reader;
  progressDone();
  return latency;
}

/** A latency percentile in ms, or null for a workload given no requests. */
function percentileMs(histogram: hdr.Histogram, percentile: number): number | null {
  return histogram.totalCount === 0 ? null : histogram.getValueAtPercentile(percentile) / 1000;
}
