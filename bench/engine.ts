/**
 * `npm run bench -- engine [--json] [--requests N] [--concurrency C] [--partitions P]
 *   [--durability buffered|fsync] [--store packed|files] [--parallel-commit] [--dir PATH]`
 *
 * The engine in-process on the embedded adapters (SQLite + the packed object store, as the local
 * server runs them; `--store files` for one file per object): appends of 1,000
 * records of 100 bytes per request, then fetches of everything back through a fresh engine
 * (cold caches: every batch is read from its file) and again (warm). Counts metadata requests
 * per append to show the commit costs exactly one when the cached head is current, and in fsync
 * durability the flushes per append (both stores').
 *
 * It runs under the V8 settings `npm start` gives the local server (a child process when this one
 * lacks them), since that is where the engine runs on these adapters: under Node's defaults the
 * old generation stays near 10 MB, and fsync appends, which live longer, ran three times the full
 * collections of buffered ones (docs/benchmarks.md).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "@sluice/engine";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { PackedObjectStore } from "@sluice/storage/packed";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { CountingMetadataStore } from "@sluice/testing";
import { underServerV8Settings } from "./local-server.js";
import { printTable, progress, progressDone, writeLineChart } from "./report.js";

const RECORD_BYTES = 100;
const RECORDS_PER_REQUEST = 1_000;

export async function main(argv: string[]): Promise<void> {
  if (await underServerV8Settings("engine", argv)) return;
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      requests: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "4" },
      partitions: { type: "string", default: "8" },
      durability: { type: "string", default: "buffered" },
      store: { type: "string", default: "packed" },
      /** Upload and commit at once (EngineOptions.parallelCommit). */
      "parallel-commit": { type: "boolean", default: false },
      /** Where the data directory goes; e.g. /dev/shm to take the disk out of the measurement. */
      dir: { type: "string", default: tmpdir() },
    },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const partitions = Number(values.partitions);
  const dir = await mkdtemp(join(values.dir, "sluice-bench-engine-"));
  const durability = values.durability === "fsync" ? "fsync" : "buffered";
  const sqlite = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite"), durability });
  const metadata = new CountingMetadataStore(sqlite);
  const storeKind = values.store === "files" ? "files" : "packed";
  const packed =
    storeKind === "packed" ? new PackedObjectStore({ root: join(dir, "packed"), durability }) : undefined;
  const objects = packed ?? new FilesystemObjectStore({ root: join(dir, "objects"), durability });
  try {
    const parallelCommit = values["parallel-commit"];
    const engine = new Engine({ objects, metadata, ...(parallelCommit ? { parallelCommit } : {}) });
    await engine.createTopic({ name: "bench", partitions });
    const payload = new Uint8Array(RECORD_BYTES).map((_, i) => (i * 31) & 0xff);
    const records = Array.from({ length: RECORDS_PER_REQUEST }, () => ({ key: null, value: payload }));

    // Warm-up: one request per partition fills the head cache, as a long-running writer's is.
    for (let partition = 0; partition < partitions; partition++) {
      await engine.append({ topic: "bench", records: records.map((r) => ({ ...r, partition })) });
    }
    metadata.reset();
    const syncsBefore = sqlite.syncs + (packed?.syncs ?? 0);

    const series: [number, number][] = [];
    let sent = 0;
    let done = 0;
    const started = performance.now();
    let lastTick = started;
    let lastDone = 0;
    const worker = async () => {
      while (sent < requests) {
        sent++;
        await engine.append({ topic: "bench", records });
        done++;
        const now = performance.now();
        if (now - lastTick >= 100) {
          const rate = ((done - lastDone) * RECORDS_PER_REQUEST) / ((now - lastTick) / 1000);
          series.push([(now - started) / 1000, rate]);
          progress(
            `append: ${done}/${requests} requests, ${Math.round(rate).toLocaleString("en-US")} records/s`,
          );
          lastTick = now;
          lastDone = done;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const appendSeconds = (performance.now() - started) / 1000;
    progressDone();
    const appendRecordsPerS = (requests * RECORDS_PER_REQUEST) / appendSeconds;
    const metadataRequestsPerAppend = (metadata.reads + metadata.writes) / requests;
    const metadataWritesPerAppend = metadata.writes / requests;
    const syncsPerAppend = packed ? (sqlite.syncs + packed.syncs - syncsBefore) / requests : undefined;

    const cold = await fetchEverything(new Engine({ objects, metadata: sqlite }), partitions, "fetch (cold)");
    const reader = new Engine({ objects, metadata: sqlite });
    await fetchEverything(reader, partitions, "fetch (warming)");
    const warm = await fetchEverything(reader, partitions, "fetch (warm)");

    const chart = writeLineChart(
      "engine-append.svg",
      `Engine append throughput (SQLite + ${storeKind} objects in ${values.dir}, ${durability})`,
      {
        x: "seconds",
        y: "records/s",
      },
      [{ name: `append, ${concurrency} in flight`, points: series }],
    );

    printTable(
      `engine on SQLite + ${storeKind} objects: ${requests} requests × ${RECORDS_PER_REQUEST} records × ${RECORD_BYTES} B, ${concurrency} in flight, ${partitions} partitions, ${durability} writes${parallelCommit ? ", parallel commit" : ""} in ${values.dir}`,
      [
        {
          name: "append",
          value: appendRecordsPerS,
          unit: "records/s",
          target: { value: 2_000_000, higherIsBetter: true },
        },
        { name: "append", value: (appendRecordsPerS * RECORD_BYTES) / 1e6, unit: "MB/s (payload)" },
        {
          name: "fetch, cold caches",
          value: cold.recordsPerS,
          unit: "records/s",
          target: { value: 4_000_000, higherIsBetter: true },
        },
        {
          name: "fetch, warm caches",
          value: warm.recordsPerS,
          unit: "records/s",
          target: { value: 4_000_000, higherIsBetter: true },
        },
        {
          name: "metadata requests per append",
          value: metadataRequestsPerAppend,
          unit: "requests",
          target: { value: 1, higherIsBetter: false },
        },
        { name: "metadata writes per append", value: metadataWritesPerAppend, unit: "writes" },
        ...(durability === "fsync" && syncsPerAppend !== undefined
          ? [
              {
                name: "flushes per append (segment, index, metadata)",
                value: syncsPerAppend,
                unit: "fdatasyncs",
              },
            ]
          : []),
      ],
    );
    process.stdout.write(`chart: ${chart}\n`);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({
          benchmark: "engine",
          requests,
          records_per_request: RECORDS_PER_REQUEST,
          record_bytes: RECORD_BYTES,
          concurrency,
          partitions,
          durability,
          store: storeKind,
          parallel_commit: parallelCommit,
          append_records_per_s: Math.round(appendRecordsPerS),
          fetch_records_per_s: Math.round(cold.recordsPerS),
          fetch_warm_records_per_s: Math.round(warm.recordsPerS),
          metadata_requests_per_append: metadataRequestsPerAppend,
          metadata_writes_per_append: metadataWritesPerAppend,
          ...(durability === "fsync" && syncsPerAppend !== undefined
            ? { syncs_per_append: Number(syncsPerAppend.toFixed(3)) }
            : {}),
        })}\n`,
      );
    }
  } finally {
    sqlite.close();
    packed?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function fetchEverything(
  engine: Engine,
  partitions: number,
  label: string,
): Promise<{ recordsPerS: number }> {
  const started = performance.now();
  let total = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const { highWatermark } = await engine.partitionOffsets("bench", partition);
    let offset = 0;
    while (offset < highWatermark) {
      const result = await engine.fetch({
        topic: "bench",
        partition,
        offset,
        maxRecords: 10_000,
        maxBytes: 4 * 1024 * 1024,
      });
      total += result.records.length;
      offset = result.nextOffset;
    }
    progress(`${label}: partition ${partition + 1}/${partitions}, ${total.toLocaleString("en-US")} records`);
  }
  progressDone();
  return { recordsPerS: total / ((performance.now() - started) / 1000) };
}
