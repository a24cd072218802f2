/**
 * `npm run bench -- maintenance [--json] [--records N] [--requests N] [--partitions P]
 *   [--record-bytes B] [--backend embedded|emulator] [--store packed|files] [--dir PATH]`
 *
 * Compaction of small objects into segments, measured: 1,000,000 records appended as 10,000
 * small requests (one object and one index entry each), then compacted by the maintenance
 * runner (8 MiB segments) and garbage-collected (on a simulated clock, so the age bound and the
 * grace period pass at once). Before and after: objects and index entries per partition, a cold
 * read of everything (a fresh engine: every byte from the object store), the requests that read
 * made, and the S3 and DynamoDB request cost per GB read at published prices (on-demand,
 * us-east-1): S3 GET $0.0004 per 1,000; DynamoDB $0.125 per million read request units (a
 * strongly consistent read of up to 4 KB). Embedded (default): SQLite + the packed object store as
 * the local server runs them (`--store files`: one file per object); emulator:
 * S3 + DynamoDB on AWS_ENDPOINT_URL (a local emulator: every request crosses HTTP).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { Engine, keys, storedIndexEntries } from "@sluice/engine";
import { MaintenanceRunner } from "@sluice/maintenance";
import type { Item, MetadataStore, ObjectStore, Query } from "@sluice/storage";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { PackedObjectStore } from "@sluice/storage/packed";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "@sluice/storage/s3";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { awsClientConfig, CountingObjectStore, SimulatedClock, uniqueName } from "@sluice/testing";
import { printTable, progress, progressDone } from "./report.js";

/** Published prices (us-east-1, on demand; /work/shared/docs/anchors.md). */
const S3_GET_PER_1000_USD = 0.0004;
const S3_PUT_PER_1000_USD = 0.005;
const DYNAMODB_PER_MILLION_RRU_USD = 0.125;
const DYNAMODB_PER_MILLION_WRU_USD = 0.625;
const SEGMENT_BYTES = 8 * 1024 * 1024;
const GB = 1e9;
const MINUTE = 60_000;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      records: { type: "string", default: "1000000" },
      requests: { type: "string", default: "10000" },
      partitions: { type: "string", default: "1" },
      "record-bytes": { type: "string", default: "100" },
      backend: { type: "string", default: "embedded" },
      store: { type: "string", default: "packed" },
      dir: { type: "string", default: tmpdir() },
    },
  });
  const records = Number(values.records);
  const requests = Number(values.requests);
  const partitions = Number(values.partitions);
  const recordBytes = Number(values["record-bytes"]);
  const perRequest = Math.ceil(records / requests);
  const backend = values.backend === "emulator" ? "emulator" : "embedded";
  const storeKind = values.store === "files" ? "files" : "packed";
  const stores = await openStores(backend, values.dir, storeKind);
  const objects = new CountingObjectStore(stores.objects);
  const metadata = new ReadUnitCounter(stores.metadata);
  const clock = new SimulatedClock({ startMs: Date.now() });
  try {
    const engine = new Engine({ objects, metadata, clock });
    await engine.createTopic({ name: "bench", partitions });
    const payload = new Uint8Array(recordBytes).map((_, i) => (i * 31) & 0xff);
    let appended = 0;
    for (let request = 0; request < requests; request++) {
      const count = Math.min(perRequest, records - appended);
      if (count <= 0) break;
      const partition = request % partitions;
      await engine.append({
        topic: "bench",
        records: Array.from({ length: count }, () => ({ key: null, value: payload, partition })),
      });
      appended += count;
      if (request % 1000 === 0)
        progress(`append: ${request.toLocaleString("en-US")}/${requests.toLocaleString("en-US")} requests`);
    }
    progressDone();
    const before = await measure("before compaction", engine, objects, metadata, stores, partitions);

    const runner = new MaintenanceRunner({
      objects,
      metadata,
      clock,
      settings: { segmentBytes: SEGMENT_BYTES, segmentSettleMs: 0, gcIntervalMs: 0 },
    });
    objects.reset();
    metadata.reset();
    progress("compacting");
    const compactStarted = performance.now();
    const compaction = await runner.runOnce();
    const compactSeconds = (performance.now() - compactStarted) / 1000;
    if (compaction.failures.length > 0) throw compaction.failures[0]!.error;
    const compactionCost = {
      puts: objects.calls.put,
      gets: objects.calls.get,
      readUnits: metadata.readUnits,
      writeUnits: metadata.writeUnits,
    };
    // Garbage collection once the replaced objects are past the age bound, then past the grace.
    await clock.advance(61 * MINUTE);
    await runner.runOnce();
    await clock.advance(11 * MINUTE);
    const collected = await runner.runOnce();
    progressDone();
    const after = await measure("after compaction", engine, objects, metadata, stores, partitions);

    const segmentsOf8MiB = after.storedBytes / SEGMENT_BYTES;
    const objectsPer8MiB = after.objectsPerPartition / Math.max(1, segmentsOf8MiB / partitions);
    const coldReadSpeedup = after.bytesPerS / before.bytesPerS;
    const getRequestsRatio = after.getsPerGb / before.getsPerGb;
    const costPerGb = (state: Measured) =>
      (state.getsPerGb * S3_GET_PER_1000_USD) / 1000 +
      (state.readUnitsPerGb * DYNAMODB_PER_MILLION_RRU_USD) / 1e6;
    const compactionUsdPerGb =
      ((compactionCost.puts * S3_PUT_PER_1000_USD) / 1000 +
        (compactionCost.gets * S3_GET_PER_1000_USD) / 1000 +
        (compactionCost.readUnits * DYNAMODB_PER_MILLION_RRU_USD) / 1e6 +
        (compactionCost.writeUnits * DYNAMODB_PER_MILLION_WRU_USD) / 1e6) /
      (before.storedBytes / GB);

    const where =
      backend === "emulator"
        ? `S3 + DynamoDB on ${process.env.AWS_ENDPOINT_URL}`
        : `SQLite + ${storeKind === "packed" ? "the packed store" : "a file per object"} in ${values.dir}`;
    printTable(
      `maintenance on ${where}: ${appended.toLocaleString("en-US")} records × ${recordBytes} B in ${requests.toLocaleString("en-US")} requests, ${partitions} partition(s); compacted into ${SEGMENT_BYTES / 1024 / 1024} MiB segments`,
      [
        { name: "objects per partition, before", value: before.objectsPerPartition, unit: "objects" },
        { name: "objects per partition, after", value: after.objectsPerPartition, unit: "objects" },
        { name: "index entries per partition, before", value: before.entriesPerPartition, unit: "entries" },
        { name: "index entries per partition, after", value: after.entriesPerPartition, unit: "entries" },
        {
          name: "objects per 8 MiB, after",
          value: objectsPer8MiB,
          unit: "objects",
          target: { value: 1, higherIsBetter: false },
        },
        { name: "cold read, before", value: before.bytesPerS / 1e6, unit: "MB/s" },
        { name: "cold read, after", value: after.bytesPerS / 1e6, unit: "MB/s" },
        { name: "cold read, before", value: before.recordsPerS, unit: "records/s" },
        { name: "cold read, after", value: after.recordsPerS, unit: "records/s" },
        {
          name: "cold read speedup",
          value: coldReadSpeedup,
          unit: "×",
          target: { value: 3, higherIsBetter: true },
        },
        { name: "S3 GETs per GB read, before", value: before.getsPerGb, unit: "requests" },
        { name: "S3 GETs per GB read, after", value: after.getsPerGb, unit: "requests" },
        {
          name: "GET requests per GB, after / before",
          value: getRequestsRatio,
          unit: "ratio",
          target: { value: 0.1, higherIsBetter: false },
        },
        { name: "DynamoDB read units per GB read, before", value: before.readUnitsPerGb, unit: "RRU" },
        { name: "DynamoDB read units per GB read, after", value: after.readUnitsPerGb, unit: "RRU" },
        {
          name: "S3 + DynamoDB request cost of reading, before",
          value: costPerGb(before) * 1000,
          unit: "USD per TB",
        },
        {
          name: "S3 + DynamoDB request cost of reading, after",
          value: costPerGb(after) * 1000,
          unit: "USD per TB",
        },
        { name: "compaction", value: compactSeconds, unit: "s" },
        { name: "compaction's request cost, once", value: compactionUsdPerGb * 1000, unit: "USD per TB" },
      ],
    );
    process.stdout.write(
      `prices: S3 GET $${S3_GET_PER_1000_USD} and PUT $${S3_PUT_PER_1000_USD} per 1,000; DynamoDB $${DYNAMODB_PER_MILLION_RRU_USD} per million read units (4 KB strongly consistent) and $${DYNAMODB_PER_MILLION_WRU_USD} per million write units (transactions: 2 per item)\n`,
    );
    process.stdout.write(
      `garbage collection deleted ${collected.garbage.deleted.toLocaleString("en-US")} objects; compaction wrote ${compaction.compaction.segments} segments replacing ${compaction.compaction.entriesReplaced.toLocaleString("en-US")} entries\n`,
    );
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({
          benchmark: "maintenance",
          backend,
          ...(backend === "embedded" ? { store: storeKind } : {}),
          records: appended,
          requests,
          partitions,
          record_bytes: recordBytes,
          segment_bytes: SEGMENT_BYTES,
          objects_per_partition_before: before.objectsPerPartition,
          objects_per_partition_after: after.objectsPerPartition,
          index_entries_per_partition_before: before.entriesPerPartition,
          index_entries_per_partition_after: after.entriesPerPartition,
          objects_per_8mib_after: round(objectsPer8MiB),
          cold_read_mb_per_s_before: round(before.bytesPerS / 1e6),
          cold_read_mb_per_s_after: round(after.bytesPerS / 1e6),
          cold_read_speedup: round(coldReadSpeedup),
          get_requests_per_gb_before: Math.round(before.getsPerGb),
          get_requests_per_gb_after: Math.round(after.getsPerGb),
          get_requests_ratio: round(getRequestsRatio, 4),
          read_units_per_gb_before: Math.round(before.readUnitsPerGb),
          read_units_per_gb_after: Math.round(after.readUnitsPerGb),
          request_usd_per_gb_read_before: round(costPerGb(before), 6),
          request_usd_per_gb_read_after: round(costPerGb(after), 6),
          compaction_seconds: round(compactSeconds),
          compaction_usd_per_gb: round(compactionUsdPerGb, 6),
        })}\n`,
      );
    }
  } finally {
    await stores.close();
  }
}

interface Measured {
  objectsPerPartition: number;
  entriesPerPartition: number;
  storedBytes: number;
  bytesPerS: number;
  recordsPerS: number;
  getsPerGb: number;
  readUnitsPerGb: number;
}

/** Counts the layout, then reads everything with a fresh engine (cold caches), counting requests. */
async function measure(
  label: string,
  engine: Engine,
  objects: CountingObjectStore,
  metadata: ReadUnitCounter,
  stores: Stores,
  partitions: number,
): Promise<Measured> {
  const topic = await engine.describeTopic("bench");
  let entries = 0;
  let storedBytes = 0;
  const objectKeys = new Set<string>();
  for (let partition = 0; partition < partitions; partition++) {
    for await (const entry of storedIndexEntries(stores.metadata, topic.topicId, partition)) {
      entries++;
      storedBytes += entry.length;
      objectKeys.add(entry.objectKey);
    }
  }
  let listed = 0;
  let cursor: string | undefined;
  do {
    const page = await stores.objects.list(keys.topicObjectsPrefix(topic.topicId), { cursor });
    listed += page.objects.length;
    cursor = page.cursor;
  } while (cursor);

  objects.reset();
  metadata.reset();
  const reader = new Engine({ objects, metadata, batchCacheBytes: 0 });
  const started = performance.now();
  let lastProgress = started;
  let bytes = 0;
  let count = 0;
  for (let partition = 0; partition < partitions; partition++) {
    const { logStartOffset, highWatermark } = await reader.partitionOffsets("bench", partition);
    let offset = logStartOffset;
    while (offset < highWatermark) {
      // A consumer's read: 1 MiB at a time, records decoded.
      const page = await reader.fetch({
        topic: "bench",
        partition,
        offset,
        maxBytes: 1024 * 1024,
        maxRecords: 100_000,
      });
      for (const record of page.records) bytes += record.value?.byteLength ?? 0;
      count += page.records.length;
      offset = page.nextOffset;
      if (performance.now() - lastProgress > 500) {
        progress(`${label}: cold read of partition ${partition}, offset ${offset.toLocaleString("en-US")}`);
        lastProgress = performance.now();
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  progressDone();
  return {
    objectsPerPartition: Math.max(objectKeys.size, listed) / partitions,
    entriesPerPartition: entries / partitions,
    storedBytes,
    bytesPerS: bytes / seconds,
    recordsPerS: count / seconds,
    getsPerGb: objects.calls.get / (storedBytes / GB),
    readUnitsPerGb: metadata.readUnits / (storedBytes / GB),
  };
}

/**
 * Counts DynamoDB's units for what passes through: a read is one unit per 4 KB of the items it
 * returns (at least one; strongly consistent), a transaction two write units per item, other
 * writes one per 1 KB. Item sizes are estimated from their JSON, as DynamoDB sizes names + values.
 */
class ReadUnitCounter implements MetadataStore {
  readUnits = 0;
  writeUnits = 0;
  constructor(private readonly inner: MetadataStore) {}
  reset(): void {
    this.readUnits = 0;
    this.writeUnits = 0;
  }
  async get(key: Parameters<MetadataStore["get"]>[0]) {
    const item = await this.inner.get(key);
    this.readUnits += Math.max(1, Math.ceil(sizeOf(item) / 4096));
    return item;
  }
  async query(query: Query) {
    const page = await this.inner.query(query);
    this.readUnits += Math.max(1, Math.ceil(page.items.reduce((sum, item) => sum + sizeOf(item), 0) / 4096));
    return page;
  }
  put(item: Item, options?: Parameters<MetadataStore["put"]>[1]) {
    this.writeUnits += Math.max(1, Math.ceil(sizeOf(item) / 1024));
    return this.inner.put(item, options);
  }
  update(...args: Parameters<MetadataStore["update"]>) {
    this.writeUnits += 1;
    return this.inner.update(...args);
  }
  delete(...args: Parameters<MetadataStore["delete"]>) {
    this.writeUnits += 1;
    return this.inner.delete(...args);
  }
  transactWrite(operations: Parameters<MetadataStore["transactWrite"]>[0]) {
    this.writeUnits += 2 * operations.length;
    return this.inner.transactWrite(operations);
  }
}

function sizeOf(item: Item | undefined): number {
  return item ? JSON.stringify(item).length : 0;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

interface Stores {
  objects: ObjectStore;
  metadata: MetadataStore;
  close: () => Promise<void>;
}

async function openStores(
  backend: "embedded" | "emulator",
  dir: string,
  storeKind: "packed" | "files",
): Promise<Stores> {
  if (backend === "embedded") {
    const root = await mkdtemp(join(dir, "sluice-bench-maintenance-"));
    const metadata = new SqliteMetadataStore({ path: join(root, "metadata.sqlite"), durability: "buffered" });
    const packed =
      storeKind === "packed"
        ? new PackedObjectStore({ root: join(root, "packed"), durability: "buffered" })
        : undefined;
    return {
      objects: packed ?? new FilesystemObjectStore({ root: join(root, "objects"), durability: "buffered" }),
      metadata,
      close: async () => {
        metadata.close();
        packed?.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  }
  if (!process.env.AWS_ENDPOINT_URL)
    throw new Error("--backend emulator needs AWS_ENDPOINT_URL (e.g. http://127.0.0.1:4566)");
  // An emulator takes any credentials; real ones, when set, are kept.
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  const { forcePathStyle, ...config } = awsClientConfig();
  const s3 = new S3Client({ ...config, forcePathStyle });
  const dynamodb = new DynamoDBClient(config);
  const bucket = uniqueName("bench-maint");
  const table = uniqueName("bench-maint");
  await createBucketIfMissing(s3, bucket);
  await createMetadataTable(dynamodb, table);
  return {
    objects: new S3ObjectStore({ client: s3, bucket }),
    metadata: new DynamoDbMetadataStore({ client: dynamodb, tableName: table }),
    close: async () => {
      await deleteBucketAndContents(s3, bucket);
      await deleteMetadataTable(dynamodb, table);
    },
  };
}
