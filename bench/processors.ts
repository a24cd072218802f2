/**
 * `npm run bench -- processors [--json] [--records N] [--partitions P] [--latency-samples S]
 *   [--poison-records M] [--durability buffered|fsync] [--dir PATH]`
 *
 * A pass-through module processor (bench/fixtures/pass-through.ts) inside the local server (a
 * child process, `npm start`'s entry, with a processor config file), on a P-partition topic:
 * 1. throughput: N records of 100 bytes written beforehand; records/s committed between the
 *    moments 10% and 90% of the outputs were committed, by the outputs' append timestamps;
 * 2. latency: single records produced over HTTP one at a time, each awaited in the output topic by
 *    a long-poll: from the produce's acknowledgement (and from its send) to the output's arrival;
 * 3. a poison record: M records, one of them failing every attempt, 3 retries (backoff 100 ms,
 *    doubled: 700 ms of waits), once under per-partition ordering and once under per-key ordering.
 *    From the outputs' commit times (their append timestamps): the longest pause of the poison's
 *    partition (partition ordering), of its key and of the other keys of its partition (key
 *    ordering), beyond the longest pause other partitions make anyway.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SluiceClient } from "@sluice/client";
import { Engine } from "@sluice/engine";
import { PackedObjectStore } from "@sluice/storage/packed";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { cpuSecondsOf, startServer } from "./local-server.js";
import { printTable, progress, progressDone } from "./report.js";

const RECORD_BYTES = 100;
const FIXTURE = join(import.meta.dirname, "fixtures", "pass-through.ts");
const POISON_BACKOFF_MS = 100;
const POISON_RETRIES = 3;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      records: { type: "string", default: "1000000" },
      partitions: { type: "string", default: "16" },
      "latency-samples": { type: "string", default: "1000" },
      "poison-records": { type: "string", default: "100000" },
      durability: { type: "string", default: "buffered" },
      dir: { type: "string", default: tmpdir() },
    },
  });
  const records = Number(values.records);
  const partitions = Number(values.partitions);
  const samples = Number(values["latency-samples"]);
  const poisonRecords = Number(values["poison-records"]);
  const durability = values.durability === "fsync" ? "fsync" : "buffered";
  const dataDir = await mkdtemp(join(values.dir, "sluice-bench-processors-"));
  try {
    // 1. Throughput from a backlog, and 2. latency, with the pass-through processor.
    await fill(dataDir, durability, "bench-src", partitions, records, () => "x".repeat(RECORD_BYTES), null);
    await createTopics(dataDir, durability, [["bench-out", partitions]]);
    const passConfig = await config(dataDir, "pass", [
      {
        name: "pass",
        topics: ["bench-src"],
        handler: { type: "module", module: FIXTURE },
        output_topics: ["bench-out"],
        starting_position: "EARLIEST",
        batch_size: 10_000,
        batch_max_bytes: 4 * 1024 * 1024,
      },
    ]);
    const server = await startServer(dataDir, durability, { SLUICE_PROCESSORS: passConfig });
    let latencies: { fromAck: number[]; fromSend: number[] };
    let serverCpuSeconds: number | undefined;
    try {
      const client = new SluiceClient({ url: server.url });
      const cpuBefore = cpuSecondsOf(server.pid);
      await waitForOutputs(client, "bench-out", partitions, records, "throughput");
      const cpuAfter = cpuSecondsOf(server.pid);
      if (cpuBefore !== undefined && cpuAfter !== undefined) serverCpuSeconds = cpuAfter - cpuBefore;
      latencies = await measureLatency(client, partitions, samples);
    } finally {
      await server.stop();
    }
    const throughput = await steadyRate(dataDir, durability, "bench-out", partitions, records);

    // 3. One poison record among M, under partition and under key ordering.
    const poisonAt = Math.floor(poisonRecords / 2);
    const keyOf = (index: number) => `key-${index % 1_000}`;
    for (const ordering of ["partition", "key"] as const) {
      await fill(
        dataDir,
        durability,
        `poison-${ordering}`,
        partitions,
        poisonRecords,
        (index) => (index === poisonAt ? "poison" : "x".repeat(RECORD_BYTES)),
        keyOf,
      );
      await createTopics(dataDir, durability, [
        [`poison-${ordering}-out`, partitions],
        [`poison-${ordering}-dead`, 1],
      ]);
    }
    const poisonConfig = await config(
      dataDir,
      "poison",
      (["partition", "key"] as const).map((ordering) => ({
        name: `poison-${ordering}`,
        topics: [`poison-${ordering}`],
        handler: { type: "module", module: FIXTURE, export: "poisonAware" },
        output_topics: [`poison-${ordering}-out`],
        dead_letter_topic: `poison-${ordering}-dead`,
        starting_position: "EARLIEST",
        batch_size: 1_000,
        ordering: ordering === "key" ? "KEY" : "PARTITION",
        ...(ordering === "key" ? { parallelism: 4 } : {}),
        retry: { max_attempts: POISON_RETRIES + 1, backoff_ms: POISON_BACKOFF_MS },
      })),
    );
    const poisonServer = await startServer(dataDir, durability, { SLUICE_PROCESSORS: poisonConfig });
    try {
      const client = new SluiceClient({ url: poisonServer.url });
      for (const ordering of ["partition", "key"] as const) {
        await waitForOutputs(
          client,
          `poison-${ordering}-out`,
          partitions,
          poisonRecords - 1,
          `poison (${ordering})`,
        );
        await waitForOutputs(client, `poison-${ordering}-dead`, 1, 1, `dead letter (${ordering})`);
      }
    } finally {
      await poisonServer.stop();
    }
    const partitionStall = await stall(dataDir, durability, "partition", partitions, keyOf(poisonAt));
    const keyStall = await stall(dataDir, durability, "key", partitions, keyOf(poisonAt));

    const backoffTotal = POISON_BACKOFF_MS * (2 ** POISON_RETRIES - 1);
    const figures = {
      processed_records_per_s: Math.round(throughput),
      // Less sensitive than the rate to others' load on the machine (also counts the polls watching).
      server_cpu_us_per_record:
        serverCpuSeconds === undefined ? null : round1((serverCpuSeconds * 1e6) / records),
      produce_to_output_p50_ms: round1(percentile(latencies.fromAck, 50)),
      produce_to_output_p99_ms: round1(percentile(latencies.fromAck, 99)),
      send_to_output_p50_ms: round1(percentile(latencies.fromSend, 50)),
      send_to_output_p99_ms: round1(percentile(latencies.fromSend, 99)),
      poison_stall_ms: partitionStall.poisonPartition,
      poison_other_keys_delay_ms: keyStall.otherKeys,
      poison_key_stall_ms: keyStall.poisonKey,
      poison_retry_backoff_ms: backoffTotal,
    };
    printTable(
      `a pass-through module processor in the local server, ${partitions} partitions, ${durability} writes; ${records.toLocaleString("en-US")} records of ${RECORD_BYTES} bytes; ${samples} latency samples; 1 poison record in ${poisonRecords.toLocaleString("en-US")} with ${POISON_RETRIES} retries (${backoffTotal} ms of backoff)`,
      [
        {
          name: "processed (output committed)",
          value: throughput,
          unit: "records/s",
          target: { value: 500_000, higherIsBetter: true },
        },
        ...(figures.server_cpu_us_per_record === null
          ? []
          : [
              {
                name: "server CPU per record (backlog)",
                value: figures.server_cpu_us_per_record,
                unit: "µs",
              },
            ]),
        { name: "produce ack to output commit p50", value: figures.produce_to_output_p50_ms, unit: "ms" },
        {
          name: "produce ack to output commit p99",
          value: figures.produce_to_output_p99_ms,
          unit: "ms",
          target: { value: 50, higherIsBetter: false },
        },
        { name: "produce send to output p50", value: figures.send_to_output_p50_ms, unit: "ms" },
        { name: "produce send to output p99", value: figures.send_to_output_p99_ms, unit: "ms" },
        {
          name: "poison: its partition's delay (partition ordering)",
          value: figures.poison_stall_ms,
          unit: "ms",
          target: { value: backoffTotal, higherIsBetter: false },
        },
        { name: "poison: its key's delay (key ordering)", value: figures.poison_key_stall_ms, unit: "ms" },
        {
          name: "poison: other keys' delay (key ordering)",
          value: figures.poison_other_keys_delay_ms,
          unit: "ms",
          // "Nothing measurable": within the spread of the other partitions' finishing times.
          target: { value: 50, higherIsBetter: false },
        },
      ],
    );
    if (values.json)
      process.stdout.write(`${JSON.stringify({ benchmark: "processors", durability, ...figures })}\n`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The server's own stores for a new data directory (SQLite, the packed object store), opened before it starts. */
function stores(dataDir: string, durability: "fsync" | "buffered") {
  const metadata = new SqliteMetadataStore({ path: join(dataDir, "metadata.sqlite"), durability });
  const objects = new PackedObjectStore({ root: join(dataDir, "packed"), durability });
  return {
    metadata,
    engine: new Engine({ objects, metadata }),
    close: () => {
      metadata.close();
      objects.close();
    },
  };
}

async function createTopics(dataDir: string, durability: "fsync" | "buffered", topics: [string, number][]) {
  const { engine, close } = stores(dataDir, durability);
  try {
    for (const [name, partitions] of topics) await engine.createTopic({ name, partitions });
  } finally {
    close();
  }
}

/** Writes the records before the server starts, straight into its data directory (1,000 per append, 4 in flight). */
async function fill(
  dataDir: string,
  durability: "fsync" | "buffered",
  topic: string,
  partitions: number,
  count: number,
  valueAt: (index: number) => string,
  keyOf: ((index: number) => string) | null,
): Promise<void> {
  const { engine, close } = stores(dataDir, durability);
  const encoder = new TextEncoder();
  try {
    await engine.createTopic({ name: topic, partitions });
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const start = next;
        const end = Math.min(count, start + 1_000);
        next = end;
        const records = [];
        for (let index = start; index < end; index++) {
          records.push({
            key: keyOf ? encoder.encode(keyOf(index)) : null,
            value: encoder.encode(valueAt(index)),
            ...(keyOf ? {} : { partition: Math.floor(start / 1_000) % partitions }),
          });
        }
        await engine.append({ topic, records });
        progress(`filling ${topic}: ${end.toLocaleString("en-US")}/${count.toLocaleString("en-US")}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    progressDone();
  } finally {
    close();
  }
}

async function config(dataDir: string, name: string, processors: unknown[]): Promise<string> {
  const file = join(dataDir, `${name}.processors.json`);
  await writeFile(file, JSON.stringify({ processors }));
  return file;
}

/**
 * Polls the output topic's high watermarks every 20 ms until they add up to `count`: one request
 * for all partitions, so the watching costs the server little beside the work it watches (a
 * request per partition was 16 × 50 requests/s, about a tenth of the server's time in profiles).
 */
async function waitForOutputs(
  client: SluiceClient,
  topic: string,
  partitions: number,
  count: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + 600_000;
  for (;;) {
    const listed = await client.listPartitions(topic);
    if (listed.length !== partitions)
      throw new Error(`${what}: topic ${topic} has ${listed.length} partitions, expected ${partitions}`);
    const total = listed.reduce((sum, info) => sum + info.latestOffset, 0);
    progress(`${what}: ${total.toLocaleString("en-US")}/${count.toLocaleString("en-US")} outputs committed`);
    if (total >= count) break;
    if (performance.now() > deadline)
      throw new Error(`${what}: only ${total} of ${count} outputs after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  progressDone();
}

/** Single records, one at a time, each awaited in the output topic by a long-poll. */
async function measureLatency(client: SluiceClient, partitions: number, samples: number) {
  const fromAck: number[] = [];
  const fromSend: number[] = [];
  for (let index = 0; index < samples; index++) {
    const partition = index % partitions;
    const { latestOffset } = await client.getPartition("bench-out", partition);
    const arrived = client.readPartition("bench-out", partition, { offset: latestOffset, timeoutMs: 10_000 });
    const sent = performance.now();
    await client.produce("bench-src", { partitionId: partition, value: "y".repeat(RECORD_BYTES) });
    const acknowledged = performance.now();
    const page = await arrived;
    const seen = performance.now();
    if (page.records.length === 0) throw new Error(`latency sample ${index}: no output within 10 s`);
    fromAck.push(Math.max(0, seen - acknowledged));
    fromSend.push(seen - sent);
    if (index % 50 === 0) progress(`latency: ${index}/${samples}`);
  }
  progressDone();
  return { fromAck, fromSend };
}

/**
 * Records/s committed between the moments 10% and 90% of the first `count` outputs were committed,
 * from the outputs' append timestamps (each output's commit time). Read from the server's own
 * clock, so it does not depend on when a poll of this process is answered: a busy server answers
 * late, and a poll started before the work but answered after most of it says nothing.
 */
async function steadyRate(
  dataDir: string,
  durability: "fsync" | "buffered",
  topic: string,
  partitions: number,
  count: number,
): Promise<number> {
  const { engine, close } = stores(dataDir, durability);
  try {
    const times: number[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      let offset = 0;
      for (;;) {
        const page = await engine.fetch({ topic, partition, offset, maxBytes: 8 * 1024 * 1024 });
        for (const record of page.records) times.push(record.timestamp);
        if (page.records.length === 0 || page.nextOffset >= page.highWatermark) break;
        offset = page.nextOffset;
      }
    }
    // The latency samples came after the backlog: only the backlog's outputs count.
    const sorted = times.sort((a, b) => a - b).slice(0, count);
    const from = sorted[Math.floor(sorted.length * 0.1)]!;
    const to = sorted[Math.floor(sorted.length * 0.9)]!;
    const between = sorted.filter((time) => time > from && time <= to).length;
    return to > from ? between / ((to - from) / 1000) : Number.NaN;
  } finally {
    close();
  }
}

/**
 * From the outputs' append timestamps (each output's commit time, in offset order per output
 * partition — here the source partition, keys and partition counts being the same): the longest
 * pause between consecutive outputs of the poison's partition, of its key and of its other keys,
 * each less the median longest pause of the other partitions (how long a partition pauses anyway
 * between commits on this machine). A poison record shows as a pause of about its backoffs.
 */
async function stall(
  dataDir: string,
  durability: "fsync" | "buffered",
  ordering: "partition" | "key",
  partitions: number,
  poisonKey: string,
): Promise<{ poisonPartition: number; poisonKey: number; otherKeys: number }> {
  const { engine, close } = stores(dataDir, durability);
  try {
    const dead = await engine.fetch({ topic: `poison-${ordering}-dead`, partition: 0, offset: 0 });
    const header = (name: string) =>
      new TextDecoder().decode(dead.records[0]!.headers.find((candidate) => candidate.key === name)!.value!);
    const poisonPartition = Number(header("sluice-source-partition"));
    const longestPause = (timestamps: number[]) => {
      let longest = 0;
      for (let index = 1; index < timestamps.length; index++) {
        longest = Math.max(longest, timestamps[index]! - timestamps[index - 1]!);
      }
      return longest;
    };
    const pauses: number[] = [];
    const poisonKeyTimes: number[] = [];
    const otherKeyTimes: number[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      const times: number[] = [];
      let offset = 0;
      for (;;) {
        const page = await engine.fetch({
          topic: `poison-${ordering}-out`,
          partition,
          offset,
          maxBytes: 8 * 1024 * 1024,
        });
        for (const record of page.records) {
          times.push(record.timestamp);
          if (partition !== poisonPartition) continue;
          const key = new TextDecoder().decode(record.key!);
          (key === poisonKey ? poisonKeyTimes : otherKeyTimes).push(record.timestamp);
        }
        if (page.records.length === 0 || page.nextOffset >= page.highWatermark) break;
        offset = page.nextOffset;
      }
      pauses.push(longestPause(times));
    }
    const usual = percentile(
      pauses.filter((_, partition) => partition !== poisonPartition),
      50,
    );
    return {
      poisonPartition: Math.max(0, pauses[poisonPartition]! - usual),
      poisonKey: Math.max(0, longestPause(poisonKeyTimes) - usual),
      otherKeys: Math.max(0, longestPause(otherKeyTimes) - usual),
    };
  } finally {
    close();
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
