/**
 * `npm run bench -- peers [--json] [--records N] [--json-batches N] [--singles N] [--kafka-singles N]
 *   [--e2e N] [--concurrent-singles N] [--producers P] [--durability buffered|fsync] [--dir PATH]
 *   [--skip kafka,nats] [--rounds R]`
 *
 * Sluice's local server beside a Kafka 4.4 broker (KRaft, one node) and a NATS server with
 * JetStream (file storage), all on loopback on this machine, running the same three workloads
 * with each system's own standard client:
 * 1. batched produce of 100-byte records: Sluice's SDK producer over the binary route (and the
 *    JSON route, 1,000-record requests, with STRING values and again with JSON values of the
 *    docs' kind, bench/http.ts's BATCH_JSON_VALUE) against Kafka's ProducerPerformance (acks=all,
 *    linger.ms=10, 8 partitions) and `nats bench js pub async`, `--records` each (the JSON route
 *    too, unless `--json-batches` says otherwise: a shorter run is mostly its warm-up);
 * 2. single-record produce, one at a time, acknowledgement latency: a JSON produce against
 *    ProducerPerformance rate-limited to one record in flight, and the `nats` npm client's
 *    JetStream publish awaiting each ack; Sluice's and NATS's timed in two windows of
 *    `--singles` each (bench/http-floor.ts, 10,000 by default, so that a p99 is the 100th
 *    slowest of a window rather than the 20th): after 500 untimed (cold) and after 10,000
 *    (steady, what the targets use); Kafka's tool times every one of its `--kafka-singles`
 *    records (2,000 by default: it sends 200 a second);
 * 3. produce-to-consume latency: a long-polling reader against Kafka's EndToEndLatency tool;
 * 4. many small producers: `--producers` clients at once, each with one single-record produce in
 *    flight, `--concurrent-singles` in all: Sluice's from `node:http` connections
 *    (bench/http.ts's concurrentSingles) against `nats bench js pub sync --clients`, with each
 *    server's CPU per request from /proc. No target; Kafka's tools have no such client.
 * First it measures this machine's floor under single-request latency (bench/http-floor.ts): a
 * request answered by a `node:http` server that does nothing, from another process, `--singles`
 * times with a `node:http` client and as many on a plain socket, in the steady window.
 * Every Node client (Sluice's binary and JSON producers, the floor, Sluice's SDK and plain socket,
 * NATS's npm client) runs in a fresh Node process of its own (bench/client-process.ts), as Kafka's
 * tools and `nats bench` run in theirs, so no client inherits the heap of an earlier workload and
 * no finished workload's process is still collecting its heap while the next is timed. Sluice's
 * SDK runs with its defaults (answer polling on); it is measured with answer polling off too.
 * It measures everything `--rounds` times (3 by default), each system in turn within a round,
 * and judges the targets on each figure's median (printing every round's ratios too): one
 * system's figure moves by a third from run to run here, and a round is about a minute and a
 * half.
 * Peers are fetched once into bench/.peers (Maven Central jars, Go modules built with `go
 * install`), ignored by git; one that cannot be fetched or started is reported as skipped with
 * the reason. Prints every figure and the ratio Sluice / peer, draws a chart, and with --json
 * ends with one JSON line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dataText, SluiceClient } from "@sluice/client";
import { measureInOwnProcess } from "./client-process.js";
import { apiFor } from "./http.js";
import { COLD_WINDOW_REQUESTS, type Floor, STEADY_AFTER_REQUESTS, WARM_UP_REQUESTS } from "./http-floor.js";
import { cpuSecondsOf, startServer } from "./local-server.js";
import {
  type Latency,
  latencyHistogram,
  latencyOf,
  percentile,
  progress,
  progressDone,
  writeBarChart,
} from "./report.js";

const RECORD_BYTES = 100;
const PARTITIONS = 8;
const CACHE = join(import.meta.dirname, ".peers");
const KAFKA_VERSION = "4.4.0";
const NATS_SERVER_MODULE = "github.com/nats-io/nats-server/v2@v2.15.2";
const NATS_CLI_MODULE = "github.com/nats-io/natscli/nats@v0.5.0";

interface Throughput {
  recordsPerS: number;
}
type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      records: { type: "string", default: "1000000" },
      /** Default: as many records as the other batched runs (`--records`), 1,000 per request. */
      "json-batches": { type: "string" },
      singles: { type: "string", default: "10000" },
      /** Kafka's single-record run: its tool sends 200 records a second, so 2,000 take 10 s. */
      "kafka-singles": { type: "string", default: "2000" },
      e2e: { type: "string", default: "2000" },
      "concurrent-singles": { type: "string", default: "10000" },
      producers: { type: "string", default: "16" },
      durability: { type: "string", default: "buffered" },
      dir: { type: "string", default: tmpdir() },
      skip: { type: "string", default: "" },
      /** Runs every workload of every system this many times, in turn, and judges the medians. */
      rounds: { type: "string", default: "3" },
    },
  });
  const records = Number(values.records);
  const singles = Number(values.singles);
  const kafkaSingles = Number(values["kafka-singles"]);
  const e2eCount = Number(values.e2e);
  const many: ManyProducers = {
    requests: Number(values["concurrent-singles"]),
    producers: Number(values.producers),
  };
  if (!Number.isInteger(many.producers) || many.producers < 1)
    throw new Error(`--producers must be a whole number ≥ 1, not ${values.producers}`);
  if (!Number.isInteger(many.requests) || many.requests < 100)
    throw new Error(`--concurrent-singles must be a whole number ≥ 100, not ${values["concurrent-singles"]}`);
  const skip = new Set(values.skip.split(",").filter(Boolean));
  const durability = values.durability === "fsync" ? "fsync" : "buffered";

  for (const [flag, value] of [
    ["--singles", singles],
    ["--kafka-singles", kafkaSingles],
  ] as const) {
    if (!Number.isInteger(value) || value < 100)
      throw new Error(`${flag} must be a whole number ≥ 100 (a p99 needs a hundred requests), not ${value}`);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a whole number ≥ 1, not ${values.rounds}`);
  const measured: Round[] = [];
  for (let round = 1; round <= rounds; round++) {
    const of = rounds > 1 ? ` (round ${round} of ${rounds})` : "";
    step(`this machine: a node:http round trip between two processes, nothing done${of}`);
    const floor = await measureInOwnProcess("floor", { requests: singles, bodyBytes: RECORD_BYTES });
    step(`Sluice: starting the local server${of}`);
    const sluice = await measureSluice(
      values.dir,
      durability,
      records,
      values["json-batches"] === undefined ? Math.ceil(records / 1000) : Number(values["json-batches"]),
      singles,
      e2eCount,
      many,
    );
    const kafka = skip.has("kafka")
      ? skipped<KafkaFigures>("--skip kafka")
      : await attempt(() => measureKafka(values.dir, records, kafkaSingles, e2eCount));
    const nats = skip.has("nats")
      ? skipped<NatsFigures>("--skip nats")
      : await attempt(() => measureNats(values.dir, records, singles, many));
    measured.push({ floor, sluice, kafka, nats });
  }
  progressDone();
  const { floor, sluice, kafka, nats } = medianRound(measured);

  const k = kafka.ok ? kafka.value : undefined;
  const n = nats.ok ? nats.value : undefined;
  const rows: [string, string, number, number | undefined, number | undefined, boolean][] = [
    [
      "batched produce, binary (SDK producer)",
      "records/s",
      sluice.binary.recordsPerS,
      k?.produce.recordsPerS,
      n?.produce.recordsPerS,
      true,
    ],
    [
      "batched produce, JSON (1,000 per request)",
      "records/s",
      sluice.json.recordsPerS,
      k?.produce.recordsPerS,
      n?.produce.recordsPerS,
      true,
    ],
    [
      "  same, values of type JSON",
      "records/s",
      sluice.jsonTyped.recordsPerS,
      k?.produce.recordsPerS,
      n?.produce.recordsPerS,
      true,
    ],
    ["single-record produce p50", "ms", sluice.single.p50Ms, k?.single.p50Ms, n?.publish.p50Ms, false],
    ["single-record produce p99", "ms", sluice.single.p99Ms, k?.single.p99Ms, n?.publish.p99Ms, false],
    ["  same, cold window p50", "ms", sluice.singleCold.p50Ms, NO_WINDOW, n?.publishCold.p50Ms, false],
    ["  same, cold window p99", "ms", sluice.singleCold.p99Ms, NO_WINDOW, n?.publishCold.p99Ms, false],
    ["produce-to-consume p50", "ms", sluice.e2e.p50Ms, k?.e2e.p50Ms, undefined, false],
    ["produce-to-consume p99", "ms", sluice.e2e.p99Ms, k?.e2e.p99Ms, undefined, false],
    [
      `${many.producers} producers, a record each`,
      "requests/s",
      sluice.many.requestsPerS,
      NO_WINDOW,
      n?.many.requestsPerS,
      true,
    ],
    ["  same, p99", "ms", sluice.many.p99Ms, NO_WINDOW, n?.many.p99Ms, false],
    [
      "  same, server CPU per request",
      "µs",
      sluice.many.serverCpuUs ?? Number.NaN,
      NO_WINDOW,
      n?.many.serverCpuUs ?? Number.NaN,
      false,
    ],
  ];
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `\nSluice (local server, ${durability}), Kafka ${KAFKA_VERSION} (KRaft, acks=all), NATS JetStream (file storage); all on loopback on this machine`,
  );
  out(
    `${"figure".padEnd(44)}${"unit".padEnd(11)}${"Sluice".padStart(12)}${"Kafka".padStart(12)}${"Sluice/Kafka".padStart(14)}${"NATS".padStart(12)}${"Sluice/NATS".padStart(13)}`,
  );
  for (const [name, unit, ours, kafkaValue, natsValue, higherIsBetter] of rows) {
    const ratio = (peer: number | undefined) =>
      peer === undefined || Number.isNaN(peer)
        ? "—"
        : `${(higherIsBetter ? ours / peer : peer / Math.max(ours, Number.EPSILON)).toFixed(2)}×`;
    out(
      `${name.padEnd(44)}${unit.padEnd(11)}${format(ours).padStart(12)}${format(kafkaValue).padStart(12)}${ratio(kafkaValue).padStart(14)}${format(natsValue).padStart(12)}${ratio(natsValue).padStart(13)}`,
    );
  }
  out("(ratios: higher is better for Sluice — throughput Sluice/peer, latency peer/Sluice)");
  out(
    `(single-record windows: steady, requests ${format(STEADY_AFTER_REQUESTS + 1)}–${format(STEADY_AFTER_REQUESTS + singles)} of each client, which the targets use; cold, requests ${format(WARM_UP_REQUESTS + 1)}–${format(WARM_UP_REQUESTS + Math.min(singles, COLD_WINDOW_REQUESTS))}; Kafka's tool times every one of its ${format(kafkaSingles)} records)`,
  );
  out(
    `floor: a request answered by a node:http server that does nothing, one at a time between two processes: node:http client p50 ${format(floor.http.p50Ms)} ms, p99 ${format(floor.http.p99Ms)} ms; plain socket p50 ${format(floor.socket.p50Ms)} ms, p99 ${format(floor.socket.p99Ms)} ms`,
  );
  out(
    `Sluice's single-record produce on a plain socket (no HTTP client): p50 ${format(sluice.singleSocket.p50Ms)} ms, p99 ${format(sluice.singleSocket.p99Ms)} ms (the targets use the SDK's figures above)`,
  );
  out(
    `Sluice's SDK with answer polling off (answerPollUs: 0; NATS's npm client does not poll): p50 ${format(sluice.singleNoPoll.p50Ms)} ms, p99 ${format(sluice.singleNoPoll.p99Ms)} ms`,
  );
  if (!kafka.ok) out(`Kafka: skipped — ${kafka.reason}`);
  if (!nats.ok) out(`NATS: skipped — ${nats.reason}`);
  if (rounds > 1) out(`\nmedians of ${rounds} rounds, each system measured once per round, in turn`);
  printTargets(out, sluice, k, n);
  if (rounds > 1) {
    measured.forEach((round, index) => {
      const ratios = targetRatios(
        round.sluice,
        round.kafka.ok ? round.kafka.value : undefined,
        round.nats.ok ? round.nats.value : undefined,
      );
      out(
        // A ratio a hair under its target prints as 1.00×: the verdict says which side it is on.
        `  round ${index + 1}: ${ratios.map(({ short, value, needed }) => `${short} ${value === undefined ? "—" : `${value.toFixed(2)}×${value >= needed ? "" : " (missed)"}`}`).join(", ")}`,
      );
    });
  }
  const chart = writeBarChart(
    "peers.svg",
    "Sluice beside Kafka and NATS JetStream on one machine (loopback)",
    ["Sluice binary", "Sluice JSON", "Kafka", "NATS JetStream"],
    [
      {
        name: "batched produce",
        unit: "records/s (100 B)",
        values: [
          sluice.binary.recordsPerS,
          sluice.json.recordsPerS,
          k?.produce.recordsPerS,
          n?.produce.recordsPerS,
        ],
      },
      {
        name: "single-record produce p99",
        unit: "ms (lower is better)",
        values: [undefined, sluice.single.p99Ms, k?.single.p99Ms, n?.publish.p99Ms],
      },
      {
        name: "produce-to-consume p99",
        unit: "ms (lower is better)",
        values: [undefined, sluice.e2e.p99Ms, k?.e2e.p99Ms, undefined],
      },
    ],
  );
  out(`chart: ${chart}`);
  if (values.json) {
    out(
      JSON.stringify({
        benchmark: "peers",
        durability,
        concurrent_producers: many.producers,
        ...figuresJson({ floor, sluice, kafka, nats }),
        ...(rounds > 1 ? { rounds, per_round: measured.map(figuresJson) } : {}),
      }),
    );
  }
}

/** The JSON line's figures of one round, or of the medians. */
function figuresJson({ floor, sluice, kafka, nats }: Round) {
  const k = kafka.ok ? kafka.value : undefined;
  const n = nats.ok ? nats.value : undefined;
  return {
    binary_produce_records_per_s: Math.round(sluice.binary.recordsPerS),
    json_produce_records_per_s: Math.round(sluice.json.recordsPerS),
    json_typed_produce_records_per_s: Math.round(sluice.jsonTyped.recordsPerS),
    kafka_produce_records_per_s: k ? Math.round(k.produce.recordsPerS) : null,
    nats_produce_records_per_s: n ? Math.round(n.produce.recordsPerS) : null,
    produce_p50_ms: sluice.single.p50Ms,
    produce_p99_ms: sluice.single.p99Ms,
    produce_cold_p50_ms: sluice.singleCold.p50Ms,
    produce_cold_p99_ms: sluice.singleCold.p99Ms,
    produce_socket_p50_ms: sluice.singleSocket.p50Ms,
    produce_socket_p99_ms: sluice.singleSocket.p99Ms,
    produce_no_answer_poll_p50_ms: sluice.singleNoPoll.p50Ms,
    produce_no_answer_poll_p99_ms: sluice.singleNoPoll.p99Ms,
    kafka_produce_p50_ms: k?.single.p50Ms ?? null,
    kafka_produce_p99_ms: k?.single.p99Ms ?? null,
    nats_publish_p50_ms: n?.publish.p50Ms ?? null,
    nats_publish_p99_ms: n?.publish.p99Ms ?? null,
    nats_publish_cold_p50_ms: n?.publishCold.p50Ms ?? null,
    nats_publish_cold_p99_ms: n?.publishCold.p99Ms ?? null,
    e2e_p50_ms: sluice.e2e.p50Ms,
    e2e_p99_ms: sluice.e2e.p99Ms,
    kafka_e2e_p50_ms: k?.e2e.p50Ms ?? null,
    kafka_e2e_p99_ms: k?.e2e.p99Ms ?? null,
    concurrent_produce_requests_per_s: Math.round(sluice.many.requestsPerS),
    concurrent_produce_p99_ms: sluice.many.p99Ms,
    concurrent_produce_server_cpu_us: sluice.many.serverCpuUs ?? null,
    nats_concurrent_publish_msgs_per_s: n ? Math.round(n.many.requestsPerS) : null,
    nats_concurrent_publish_p99_ms: n?.many.p99Ms ?? null,
    nats_concurrent_server_cpu_us: n?.many.serverCpuUs ?? null,
    http_floor_p50_ms: floor.http.p50Ms,
    http_floor_p99_ms: floor.http.p99Ms,
    http_floor_socket_p50_ms: floor.socket.p50Ms,
    http_floor_socket_p99_ms: floor.socket.p99Ms,
    kafka_skipped: kafka.ok ? null : kafka.reason,
    nats_skipped: nats.ok ? null : nats.reason,
  };
}

interface Round {
  floor: Floor;
  sluice: SluiceFigures;
  kafka: Outcome<KafkaFigures>;
  nats: Outcome<NatsFigures>;
}

/** Each figure's median (nearest rank) over the rounds; a peer skipped in any round is skipped. */
function medianRound(rounds: Round[]): Round {
  const median = (values: number[]) => percentile(values, 50);
  const latency = (all: Latency[]): Latency => ({
    p50Ms: median(all.map((one) => one.p50Ms)),
    p99Ms: median(all.map((one) => one.p99Ms)),
  });
  const throughput = (all: Throughput[]): Throughput => ({
    recordsPerS: median(all.map((one) => one.recordsPerS)),
  });
  const manyOf = (all: ManyFigures[]): ManyFigures => {
    const cpu = all.flatMap((one) => (one.serverCpuUs === undefined ? [] : [one.serverCpuUs]));
    return {
      requestsPerS: median(all.map((one) => one.requestsPerS)),
      p50Ms: median(all.map((one) => one.p50Ms)),
      p99Ms: median(all.map((one) => one.p99Ms)),
      ...(cpu.length === all.length ? { serverCpuUs: median(cpu) } : {}),
    };
  };
  const sluice = rounds.map((round) => round.sluice);
  const kafkaSkipped = rounds.find((round) => !round.kafka.ok)?.kafka;
  const natsSkipped = rounds.find((round) => !round.nats.ok)?.nats;
  const kafka = rounds.flatMap((round) => (round.kafka.ok ? [round.kafka.value] : []));
  const nats = rounds.flatMap((round) => (round.nats.ok ? [round.nats.value] : []));
  return {
    floor: {
      http: latency(rounds.map((round) => round.floor.http)),
      socket: latency(rounds.map((round) => round.floor.socket)),
    },
    sluice: {
      binary: throughput(sluice.map((one) => one.binary)),
      json: throughput(sluice.map((one) => one.json)),
      jsonTyped: throughput(sluice.map((one) => one.jsonTyped)),
      single: latency(sluice.map((one) => one.single)),
      singleCold: latency(sluice.map((one) => one.singleCold)),
      singleSocket: latency(sluice.map((one) => one.singleSocket)),
      singleNoPoll: latency(sluice.map((one) => one.singleNoPoll)),
      e2e: latency(sluice.map((one) => one.e2e)),
      many: manyOf(sluice.map((one) => one.many)),
    },
    kafka: kafkaSkipped ?? {
      ok: true,
      value: {
        produce: throughput(kafka.map((one) => one.produce)),
        single: latency(kafka.map((one) => one.single)),
        e2e: latency(kafka.map((one) => one.e2e)),
      },
    },
    nats: natsSkipped ?? {
      ok: true,
      value: {
        produce: throughput(nats.map((one) => one.produce)),
        publish: latency(nats.map((one) => one.publish)),
        publishCold: latency(nats.map((one) => one.publishCold)),
        many: manyOf(nats.map((one) => one.many)),
      },
    },
  };
}

interface Target {
  name: string;
  /** For the per-round lines. */
  short: string;
  /** The measured ratio, higher is better; undefined when the peer was skipped. */
  value: number | undefined;
  /** The ratio that meets it. */
  needed: number;
}

/** The issue's targets, each with its measured ratio. */
function targetRatios(
  sluice: SluiceFigures,
  kafka: KafkaFigures | undefined,
  nats: NatsFigures | undefined,
): Target[] {
  return [
    {
      name: "binary produce ≥ 1.5× Kafka's records/s",
      short: "binary/Kafka",
      value: kafka && sluice.binary.recordsPerS / kafka.produce.recordsPerS,
      needed: 1.5,
    },
    {
      name: "JSON produce ≥ 1× Kafka's records/s",
      short: "JSON/Kafka",
      value: kafka && sluice.json.recordsPerS / kafka.produce.recordsPerS,
      needed: 1,
    },
    {
      name: "single-record p99 ≤ 2× NATS publish-ack p99",
      short: "single p99 vs 2× NATS",
      value: nats && (2 * nats.publish.p99Ms) / sluice.single.p99Ms,
      needed: 1,
    },
    {
      name: "single-record p99 ≤ Kafka's",
      short: "single p99 vs Kafka",
      value: kafka && kafka.single.p99Ms / sluice.single.p99Ms,
      needed: 1,
    },
    {
      name: "produce-to-consume p99 ≤ Kafka's",
      short: "e2e p99 vs Kafka",
      value: kafka && kafka.e2e.p99Ms / sluice.e2e.p99Ms,
      needed: 1,
    },
  ];
}

function printTargets(
  out: (line: string) => void,
  sluice: SluiceFigures,
  kafka: KafkaFigures | undefined,
  nats: NatsFigures | undefined,
): void {
  out("\ntargets (measured in this run)");
  for (const { name, value, needed } of targetRatios(sluice, kafka, nats)) {
    if (value === undefined) out(`  ${name}: peer skipped`);
    else {
      // Throughput targets read as Sluice ÷ peer; latency ones as the allowance ÷ Sluice's figure.
      const shown = name.includes("≥") ? `${value.toFixed(2)}×` : `${value.toFixed(2)}× of the allowance`;
      out(`  ${name}: ${shown} ${value >= needed ? "met" : "MISSED"}`);
    }
  }
}

// --- Sluice ---------------------------------------------------------------------------------

interface SluiceFigures {
  binary: Throughput;
  json: Throughput;
  /** The JSON route again, its values of type JSON (bench/http.ts's BATCH_JSON_VALUE). */
  jsonTyped: Throughput;
  /** Single-record produce through the SDK, in the steady window (http-floor.ts). */
  single: Latency;
  /** The same, in the cold window. */
  singleCold: Latency;
  /** The same produce as `single`, its request's bytes written on a plain socket (http-floor.ts). */
  singleSocket: Latency;
  /** The SDK's single produce with answer polling off (`answerPollUs: 0`), in the steady window. */
  singleNoPoll: Latency;
  e2e: Latency;
  /** Many small producers at once (`--producers`). */
  many: ManyFigures;
}

/** How many small producers run at once, and how many requests they send in all. */
interface ManyProducers {
  producers: number;
  requests: number;
}

/** Many small producers at once: requests (or messages) per second, latency, the server's CPU per request. */
interface ManyFigures {
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** From /proc; absent where it cannot be read. */
  serverCpuUs?: number;
}

async function measureSluice(
  dir: string,
  durability: "fsync" | "buffered",
  records: number,
  jsonBatches: number,
  singles: number,
  e2eCount: number,
  many: ManyProducers,
): Promise<SluiceFigures> {
  const dataDir = await mkdtemp(join(dir, "sluice-bench-peers-"));
  const server = await startServer(dataDir, durability);
  try {
    const api = await apiFor(server.url);
    await api.post("/topics", { topic_name: "peers-binary", partitions_count: PARTITIONS });
    await api.post("/topics", { topic_name: "bench-batch", partitions_count: PARTITIONS });
    await api.post("/topics", { topic_name: "bench-single", partitions_count: 1 });
    await api.post("/topics", { topic_name: "bench-e2e", partitions_count: 1 });
    step(`Sluice: batched produce, binary, ${records.toLocaleString("en-US")} records`);
    // Every client in a process of its own (client-process.ts), as Kafka's and NATS's tools run,
    // so the heap and the collections the million records leave behind stay out of what follows.
    const binary = await measureInOwnProcess("sluice-binary-produce", {
      url: server.url,
      records,
      valueBytes: RECORD_BYTES,
    });
    step("Sluice: batched produce, JSON");
    const json = await measureInOwnProcess("sluice-json-produce", { url: server.url, requests: jsonBatches });
    step("Sluice: batched produce, JSON, values of type JSON");
    const jsonTyped = await measureInOwnProcess("sluice-json-produce", {
      url: server.url,
      requests: jsonBatches,
      valueType: "JSON",
    });
    const singleParams = {
      url: server.url,
      topic: "bench-single",
      requests: singles,
      valueBytes: RECORD_BYTES,
    };
    step("Sluice: single-record produce");
    const single = await measureInOwnProcess("sluice-sdk", singleParams);
    step("Sluice: single-record produce on a plain socket");
    const singleSocket = await measureInOwnProcess("sluice-socket", singleParams);
    step("Sluice: single-record produce, the SDK with answer polling off");
    const singleNoPoll = await measureInOwnProcess("sluice-sdk", { ...singleParams, answerPollUs: 0 });
    step(`Sluice: ${many.producers} producers, a record each`);
    const concurrent = await measureInOwnProcess("sluice-concurrent-singles", {
      url: server.url,
      serverPid: server.pid ?? -1,
      ...many,
    });
    step("Sluice: produce-to-consume");
    const e2e = await sluiceProduceToConsume(server.url, e2eCount);
    return {
      binary,
      json: { recordsPerS: json.recordsPerS },
      jsonTyped: { recordsPerS: jsonTyped.recordsPerS },
      single: single.steady,
      singleCold: single.cold,
      singleSocket,
      singleNoPoll: singleNoPoll.steady,
      e2e: latencyOf(e2e),
      many: {
        requestsPerS: concurrent.requestsPerS,
        p50Ms: concurrent.p50Ms,
        p99Ms: concurrent.p99Ms,
        ...(concurrent.serverCpuUsPerRequest === undefined
          ? {}
          : { serverCpuUs: concurrent.serverCpuUsPerRequest }),
      },
    };
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Produce-to-consume with the SDK: records produced one at a time to partition 0, each carrying
 * its send time, and a long-polling reader of that partition in the same process.
 */
async function sluiceProduceToConsume(url: string, records: number) {
  const client = new SluiceClient({ url });
  const latency = latencyHistogram();
  let received = 0;
  const reader = (async () => {
    let offset = 0;
    while (received < records) {
      const page = await client.readPartition("bench-e2e", 0, {
        offset,
        timeoutMs: 5_000,
        valueType: "STRING",
      });
      const now = performance.timeOrigin + performance.now();
      for (const record of page.records) {
        latency.recordValue(Math.max(1, Math.round((now - Number(dataText(record.value))) * 1000)));
        received++;
      }
      offset = page.nextOffset;
    }
  })();
  for (let i = 0; i < records; i++) {
    await client.produce("bench-e2e", {
      partitionId: 0,
      value: String(performance.timeOrigin + performance.now()),
    });
    if (i % 250 === 0) progress(`produce-to-consume: ${i}/${records}`);
  }
  await reader;
  progressDone();
  return latency;
}

// --- Kafka ----------------------------------------------------------------------------------

interface KafkaFigures {
  produce: Throughput;
  single: Latency;
  e2e: Latency;
}

async function measureKafka(
  dir: string,
  records: number,
  singles: number,
  e2eCount: number,
): Promise<KafkaFigures> {
  const libs = await fetchKafka();
  const logDir = await mkdtemp(join(dir, "sluice-bench-kafka-"));
  const [brokerPort, controllerPort] = [await freePort(), await freePort()];
  const bootstrap = `127.0.0.1:${brokerPort}`;
  const config = join(logDir, "server.properties");
  writeFileSync(
    config,
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort}`,
      "controller.listener.names=CONTROLLER",
      "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
      "inter.broker.listener.name=PLAINTEXT",
      `log.dirs=${join(logDir, "data")}`,
      `num.partitions=${PARTITIONS}`,
      "offsets.topic.replication.factor=1",
      "share.coordinator.state.topic.replication.factor=1",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
    ].join("\n"),
  );
  const log4j = join(logDir, "log4j2.properties");
  writeFileSync(
    log4j,
    [
      "rootLogger.level=WARN",
      "rootLogger.appenderRef.out.ref=out",
      "appender.out.type=Console",
      "appender.out.name=out",
      "appender.out.layout.type=PatternLayout",
      "appender.out.layout.pattern=%p %c: %m%n",
    ].join("\n"),
  );
  const java = (mainClass: string, args: string[], heap = "512m") =>
    run("java", [
      `-Xmx${heap}`,
      `-Dlog4j2.configurationFile=${log4j}`,
      "-cp",
      `${libs}/*`,
      mainClass,
      ...args,
    ]);
  let broker: ChildProcess | undefined;
  try {
    step("Kafka: formatting the log directory (KRaft, standalone)");
    const clusterId = randomBytes(16).toString("base64url");
    await java("kafka.tools.StorageTool", ["format", "--standalone", "-t", clusterId, "-c", config]).done;
    step(`Kafka: starting the broker on ${bootstrap}`);
    const started = java("kafka.Kafka", [config], "1g");
    broker = started.child;
    const createTopic = async (name: string, partitions: number) => {
      for (let attempt = 0; ; attempt++) {
        const result = await java("org.apache.kafka.tools.TopicCommand", [
          "--bootstrap-server",
          bootstrap,
          "--create",
          "--if-not-exists",
          "--topic",
          name,
          "--partitions",
          String(partitions),
          "--replication-factor",
          "1",
        ]).done.catch((error: unknown) => error as Error);
        if (!(result instanceof Error)) return;
        if (attempt >= 20 || broker?.exitCode !== null)
          throw new Error(`could not create topic ${name}: ${result.message}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    };
    await createTopic("peers-batch", PARTITIONS);
    await createTopic("peers-single", 1);
    await createTopic("peers-e2e", 1);

    step(`Kafka: ProducerPerformance, ${records.toLocaleString("en-US")} records, acks=all, linger.ms=10`);
    const perf = await java(
      "org.apache.kafka.tools.ProducerPerformance",
      [
        "--topic",
        "peers-batch",
        "--num-records",
        String(records),
        "--record-size",
        String(RECORD_BYTES),
        "--throughput",
        "-1",
        "--producer-props",
        `bootstrap.servers=${bootstrap}`,
        "acks=all",
        "linger.ms=10",
      ],
      "1g",
    ).done;
    const produce = parseProducerPerformance(perf);

    step("Kafka: single-record produce latency (ProducerPerformance, one at a time)");
    const single = await java("org.apache.kafka.tools.ProducerPerformance", [
      "--topic",
      "peers-single",
      "--num-records",
      String(singles),
      "--record-size",
      String(RECORD_BYTES),
      "--throughput",
      "200",
      "--producer-props",
      `bootstrap.servers=${bootstrap}`,
      "acks=all",
      "linger.ms=0",
      "max.in.flight.requests.per.connection=1",
    ]).done;

    step("Kafka: produce-to-consume latency (EndToEndLatency)");
    const e2e = await java("org.apache.kafka.tools.EndToEndLatency", [
      "--bootstrap-server",
      bootstrap,
      "--topic",
      "peers-e2e",
      "--num-records",
      String(e2eCount),
      "--producer-acks",
      "all",
      "--record-size",
      String(RECORD_BYTES),
    ]).done.catch(
      async () =>
        // Older argument form: broker_list topic num_messages producer_acks message_size_bytes.
        java("org.apache.kafka.tools.EndToEndLatency", [
          bootstrap,
          "peers-e2e",
          String(e2eCount),
          "all",
          String(RECORD_BYTES),
        ]).done,
    );
    return { produce, single: parseProducerLatency(single), e2e: parseEndToEnd(e2e) };
  } finally {
    if (broker && broker.exitCode === null) {
      broker.kill("SIGTERM");
      await new Promise((resolve) => broker!.once("exit", resolve));
    }
    await rm(logDir, { recursive: true, force: true });
  }
}

/** Kafka's jars (the broker and kafka-tools) from Maven Central, once, into bench/.peers/kafka. */
async function fetchKafka(): Promise<string> {
  const dir = join(CACHE, "kafka");
  const libs = join(dir, "libs");
  if (
    existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`)) &&
    existsSync(join(libs, `kafka-tools-${KAFKA_VERSION}.jar`))
  ) {
    return libs;
  }
  await requireTool("java", ["-version"], "a Java runtime (17+) is needed to run the broker");
  await requireTool("mvn", ["-v"], "Maven is needed to fetch Kafka's jars from Maven Central");
  mkdirSync(dir, { recursive: true });
  const dependency = (group: string, artifact: string, version: string) =>
    `<dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
  writeFileSync(
    join(dir, "pom.xml"),
    `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>local.sluice.bench</groupId><artifactId>kafka-peer</artifactId><version>1</version><packaging>pom</packaging><dependencies>${dependency("org.apache.kafka", "kafka_2.13", KAFKA_VERSION)}${dependency("org.apache.kafka", "kafka-tools", KAFKA_VERSION)}${dependency("org.apache.logging.log4j", "log4j-slf4j2-impl", "2.24.3")}</dependencies></project>`,
  );
  step("Kafka: fetching the broker's jars from Maven Central (once)");
  await run("mvn", ["-q", "-B", "dependency:copy-dependencies", `-DoutputDirectory=${libs}`], { cwd: dir })
    .done;
  return libs;
}

function parseProducerPerformance(output: string): Throughput {
  // "1000000 records sent, 312500.0 records/sec (29.80 MB/sec), 50.1 ms avg latency, ..."
  const match = /(\d+) records sent, ([\d.]+) records\/sec/.exec(lastMatchingLine(output, /records sent/));
  if (!match) throw new Error(`ProducerPerformance printed no summary:\n${output.slice(-2_000)}`);
  return { recordsPerS: Number(match[2]) };
}

function parseProducerLatency(output: string): Latency {
  // "... ms max latency, 2 ms 50th, 4 ms 95th, 9 ms 99th, 15 ms 99.9th."
  const line = lastMatchingLine(output, /records sent/);
  const p50 = /([\d.]+) ms 50th/.exec(line);
  const p99 = /([\d.]+) ms 99th/.exec(line);
  if (!p50 || !p99) throw new Error(`ProducerPerformance printed no percentiles:\n${output.slice(-2_000)}`);
  return { p50Ms: Number(p50[1]), p99Ms: Number(p99[1]) };
}

function parseEndToEnd(output: string): Latency {
  // "Percentiles: 50th = 1, 99th = 3, 99.9th = 9"
  const match = /50th = ([\d.]+), 99th = ([\d.]+)/.exec(output);
  if (!match) throw new Error(`EndToEndLatency printed no percentiles:\n${output.slice(-2_000)}`);
  return { p50Ms: Number(match[1]), p99Ms: Number(match[2]) };
}

// --- NATS -----------------------------------------------------------------------------------

interface NatsFigures {
  produce: Throughput;
  /** Publish-ack latency, in the steady window (http-floor.ts). */
  publish: Latency;
  /** The same, in the cold window. */
  publishCold: Latency;
  /** Many synchronous publishers at once (`nats bench js pub sync --clients`). */
  many: ManyFigures;
}

async function measureNats(
  dir: string,
  records: number,
  singles: number,
  many: ManyProducers,
): Promise<NatsFigures> {
  const { server: serverBinary, cli } = await fetchNats();
  const storeDir = await mkdtemp(join(dir, "sluice-bench-nats-"));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  step(`NATS: starting nats-server with JetStream on ${url}`);
  const server = run(serverBinary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir]);
  try {
    await waitForPort(port, server.child);
    step(`NATS: nats bench js pub async, ${records.toLocaleString("en-US")} messages of ${RECORD_BYTES} B`);
    const bench = await run(cli, natsBenchArgs("async", "peers.bench", url, records)).done;
    const produce = parseNatsBench(bench);
    step("NATS: single publish latency (npm client, awaiting each ack)");
    const publish = await measureInOwnProcess("nats", { url, requests: singles, payloadBytes: RECORD_BYTES });
    step(`NATS: nats bench js pub sync, ${many.producers} clients`);
    const cpuBefore = cpuSecondsOf(server.child.pid);
    const sync = await run(cli, [
      ...natsBenchArgs("sync", "peers.sync", url, many.requests),
      "--stream",
      "peers-sync",
      "--clients",
      String(many.producers),
    ]).done;
    const cpuAfter = cpuSecondsOf(server.child.pid);
    const manyFigures = parseNatsSyncBench(sync);
    if (cpuBefore !== undefined && cpuAfter !== undefined)
      manyFigures.serverCpuUs = ((cpuAfter - cpuBefore) * 1e6) / many.requests;
    return { produce, publish: publish.steady, publishCold: publish.cold, many: manyFigures };
  } finally {
    server.child.kill("SIGTERM");
    await new Promise((resolve) =>
      server.child.exitCode === null ? server.child.once("exit", resolve) : resolve(undefined),
    );
    await rm(storeDir, { recursive: true, force: true });
  }
}

/** nats-server and the nats CLI, built once with `go install` from the Go module proxy into bench/.peers/nats. */
async function fetchNats(): Promise<{ server: string; cli: string }> {
  const bin = join(CACHE, "nats", "bin");
  const server = join(bin, "nats-server");
  const cli = join(bin, "nats");
  if (existsSync(server) && existsSync(cli)) return { server, cli };
  await requireTool("go", ["version"], "Go is needed to build nats-server and the nats CLI");
  mkdirSync(bin, { recursive: true });
  step("NATS: building nats-server and natscli with go install (once)");
  for (const module of [NATS_SERVER_MODULE, NATS_CLI_MODULE]) {
    await run("go", ["install", module], { env: { ...process.env, GOBIN: bin } }).done;
  }
  return { server, cli };
}

function parseNatsBench(output: string): Throughput {
  // "Pub stats: 123,456 msgs/sec ~ 11.8 MB/sec"
  const match = /Pub stats: ([\d,.]+) msgs\/sec/.exec(output) ?? /([\d,.]+) msgs\/sec/.exec(output);
  if (!match) throw new Error(`nats bench printed no rate:\n${output.slice(-2_000)}`);
  return { recordsPerS: Number(match[1]!.replace(/,/g, "")) };
}

/** `nats bench js pub <mode>` of `messages` 100-byte messages to `subject`, file storage, the stream created. */
function natsBenchArgs(mode: "async" | "sync", subject: string, url: string, messages: number): string[] {
  return [
    "bench",
    "js",
    "pub",
    mode,
    subject,
    "-s",
    url,
    "--msgs",
    String(messages),
    "--size",
    `${RECORD_BYTES}B`,
    "--create",
    "--storage",
    "file",
    "--no-progress",
  ];
}

/** `nats bench js pub sync`'s aggregate: messages/s, and the P50 and P99 of its per-operation latencies. */
function parseNatsSyncBench(output: string): ManyFigures {
  // "… aggregated stats: 45,444 msgs/sec ~ 4.3 MiB/sec", then
  // "latencies per operation min … | P50 276.96us | P90 … | P99 1,670.46us | …"
  const rate = /aggregated stats: ([\d,.]+) msgs\/sec/.exec(output);
  const latencies = output.slice(output.lastIndexOf("latencies per operation"));
  const p50 = /P50 ([\d,.]+)(us|ms|s)\b/.exec(latencies);
  const p99 = /P99 ([\d,.]+)(us|ms|s)\b/.exec(latencies);
  if (!rate || !p50 || !p99 || !output.includes("latencies per operation"))
    throw new Error(`nats bench js pub sync printed no aggregate:\n${output.slice(-2_000)}`);
  const ms = ([, value, unit]: RegExpExecArray) =>
    Number(value!.replace(/,/g, "")) * (unit === "us" ? 0.001 : unit === "ms" ? 1 : 1000);
  return { requestsPerS: Number(rate[1]!.replace(/,/g, "")), p50Ms: ms(p50), p99Ms: ms(p99) };
}

// --- plumbing -------------------------------------------------------------------------------

function step(message: string): void {
  progress(message);
}

function skipped<T>(reason: string): Outcome<T> {
  return { ok: false, reason };
}

async function attempt<T>(measure: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await measure() };
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
    progress(`skipped: ${reason}`);
    return { ok: false, reason };
  }
}

/** Runs a command; `done` resolves with its output (stdout and stderr) or rejects on failure. */
function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1_000_000) output = output.slice(-500_000);
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const done = new Promise<string>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`${command} could not start: ${error.message}`)));
    child.once("exit", (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new Error(
            `${command} ${args.slice(-3).join(" ")} exited with ${code ?? signal}: ${lastLines(output)}`,
          ),
        );
    });
  });
  done.catch(() => undefined);
  return { child, done };
}

async function requireTool(command: string, args: string[], reason: string): Promise<void> {
  try {
    await run(command, args).done;
  } catch {
    throw new Error(`${command} not found: ${reason}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const { connect } = await import("node:net");
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`nothing listened on port ${port} within 20 s`);
}

function lastMatchingLine(output: string, pattern: RegExp): string {
  return (
    output
      .split("\n")
      .filter((line) => pattern.test(line))
      .at(-1) ?? ""
  );
}

function lastLines(output: string): string {
  return output.trim().split("\n").slice(-3).join(" | ");
}

/** A figure a peer's tool does not measure (Kafka's times every record: it has no cold window). */
const NO_WINDOW = Number.NaN;

function format(value: number | undefined): string {
  if (value === undefined) return "skipped";
  if (Number.isNaN(value)) return "—";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(2);
}
