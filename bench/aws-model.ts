/**
 * `npm run bench -- aws [--json] [--singles N] [--e2e N] [--batches N] [--seed S]`
 *
 * Where Sluice runs in AWS, modelled on this machine: the engine and the HTTP app in-process over
 * memory stores wrapped to take as long as S3 Standard, S3 Express One Zone and DynamoDB do
 * (latency drawn per call from the distributions below; docs/benchmarks.md says where each comes
 * from). Per profile it measures, through the app:
 * 1. single-record produce, one at a time: the acknowledgement latency;
 * 2. batched produce of 1 MiB record-batch requests: the request latency;
 * 3. produce-to-consume: a reader in another engine instance (another Lambda) long-polling one
 *    partition — it learns of commits by re-reading the head every poll interval, as a Lambda
 *    does, since the commit notifier only reaches readers in the writer's process.
 * Then the cost of ingesting and reading once 1 GiB at request sizes from 1 KiB to 4 MiB, and of
 * a month idle, from published prices (docs/benchmarks.md lists them).
 */
import { parseArgs } from "node:util";
import { encodeRecordBatch } from "@sluice/core";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import {
  CountingObjectStore,
  type LatencyDistribution,
  LatencyMetadataStore,
  LatencyObjectStore,
  type MetadataStoreLatency,
  type ObjectStoreLatency,
  seededChooser,
} from "@sluice/testing";
import * as hdr from "hdr-histogram-js";
import { progress, progressDone, writeBarChart } from "./report.js";

const ms = (p50Ms: number, p99Ms: number): LatencyDistribution => ({ p50Ms, p99Ms });

/** S3 Standard, same region: PUT and GET of small objects (docs/benchmarks.md, "The AWS model"). */
export const S3_STANDARD: ObjectStoreLatency = { put: ms(45, 180), get: ms(25, 120), other: ms(25, 120) };
/** S3 Express One Zone, a directory bucket in the caller's Availability Zone. */
export const S3_EXPRESS: ObjectStoreLatency = { put: ms(5, 15), get: ms(3, 10), other: ms(3, 10) };
/** DynamoDB on-demand, same region: strongly consistent reads, single-item writes, TransactWriteItems. */
export const DYNAMODB: MetadataStoreLatency = { read: ms(3, 10), write: ms(4, 12), transaction: ms(8, 25) };

interface Profile {
  name: string;
  objects: ObjectStoreLatency;
  /** The engine's hedged uploads (EngineOptions.uploadHedgeAfterMs); undefined: off. */
  hedgeAfterMs?: number;
  /** Upload and commit at once (EngineOptions.parallelCommit). */
  parallelCommit?: boolean;
  /** Appends up to this many bytes carried in the index (EngineOptions.inlineMaxBytes). */
  inlineMaxBytes?: number;
}

/** `SluicePlatform`'s `inlineMaxBytes` in the profile that carries small appends. */
const INLINE_MAX_BYTES = 4 * 1024;

const PROFILES: Profile[] = [
  { name: "S3 Standard + DynamoDB", objects: S3_STANDARD },
  { name: "S3 Standard, hedged at 70 ms", objects: S3_STANDARD, hedgeAfterMs: 70 },
  { name: "S3 Express One Zone + DynamoDB", objects: S3_EXPRESS },
  { name: "S3 Express, hedged at 8 ms", objects: S3_EXPRESS, hedgeAfterMs: 8 },
  { name: "S3 Express, parallel commit", objects: S3_EXPRESS, parallelCommit: true },
  {
    name: "S3 Standard, hedged, parallel commit",
    objects: S3_STANDARD,
    hedgeAfterMs: 70,
    parallelCommit: true,
  },
  { name: "S3 Standard, small appends carried", objects: S3_STANDARD, inlineMaxBytes: INLINE_MAX_BYTES },
];

/** Published prices, us-east-1 (docs/benchmarks.md says which come from where). */
export const PRICES = {
  s3StandardPutPerRequest: 0.005 / 1000,
  s3StandardGetPerRequest: 0.0004 / 1000,
  s3StandardStoragePerGbMonth: 0.023,
  s3ExpressPutPerRequest: 0.00113 / 1000,
  s3ExpressGetPerRequest: 0.00003 / 1000,
  /** Express charges per GB for the part of each request above 512 KiB. */
  s3ExpressUploadPerGb: 0.0032,
  s3ExpressRetrievalPerGb: 0.0006,
  s3ExpressStoragePerGbMonth: 0.11,
  dynamoWritePerUnit: 0.625 / 1e6,
  dynamoReadPerUnit: 0.125 / 1e6,
  lambdaPerRequest: 0.2 / 1e6,
  lambdaPerGbSecond: 0.0000166667,
  cloudWatchAlarmPerMonth: 0.1,
  cloudWatchDashboardPerMonth: 3,
};

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const REQUEST_SIZES = [KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB];

interface ProfileFigures {
  name: string;
  /** Object PUTs per produce request (above 1 with hedging). */
  putsPerProduce: number;
  produce: { p50: number; p99: number };
  batch: { p50: number; p99: number };
  e2e: { p50: number; p99: number };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      singles: { type: "string", default: "1000" },
      batches: { type: "string", default: "40" },
      e2e: { type: "string", default: "200" },
      seed: { type: "string", default: "1" },
    },
  });
  const figures: ProfileFigures[] = [];
  for (const profile of PROFILES) {
    figures.push(
      await measureProfile(
        profile,
        Number(values.singles),
        Number(values.batches),
        Number(values.e2e),
        Number(values.seed),
      ),
    );
  }
  progressDone();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    "\nThe AWS model: the engine and the HTTP app in-process, stores taking as long as AWS's (no Lambda overhead)",
  );
  out(
    `${"profile".padEnd(34)}${"produce p50".padStart(12)}${"p99".padStart(8)}${"1 MiB batch p50".padStart(17)}${"p99".padStart(8)}${"e2e p50".padStart(10)}${"p99".padStart(8)}${"PUTs/produce".padStart(14)}   (ms)`,
  );
  for (const f of figures) {
    out(
      `${f.name.padEnd(34)}${f.produce.p50.toFixed(1).padStart(12)}${f.produce.p99.toFixed(1).padStart(8)}${f.batch.p50.toFixed(1).padStart(17)}${f.batch.p99.toFixed(1).padStart(8)}${f.e2e.p50.toFixed(1).padStart(10)}${f.e2e.p99.toFixed(1).padStart(8)}${f.putsPerProduce.toFixed(2).padStart(14)}`,
    );
  }
  const [
    standard,
    standardHedged,
    express,
    expressHedged,
    expressParallel,
    standardParallel,
    standardCarried,
  ] = figures as [
    ProfileFigures,
    ProfileFigures,
    ProfileFigures,
    ProfileFigures,
    ProfileFigures,
    ProfileFigures,
    ProfileFigures,
  ];
  out("\ntargets");
  for (const [f, target] of [
    [standard, 150],
    [standardHedged, 150],
    [standardParallel, 150],
    [standardCarried, 150],
    [express, 30],
    [expressHedged, 30],
    [expressParallel, 30],
  ] as const) {
    out(
      `  produce p99 ≤ ${target} ms, ${f.name}: ${f.produce.p99.toFixed(1)} ms, ${(target / f.produce.p99).toFixed(2)}× ${f.produce.p99 <= target ? "met" : "MISSED"}`,
    );
  }

  const costs = costTable(standard, express, standardCarried);
  out("\nCost of ingesting 1 GiB and reading it once, by request size (USD; storage not included)");
  out(
    `${"request size".padEnd(14)}${"requests".padStart(10)}${"S3 Standard".padStart(14)}${"S3 Express".padStart(14)}${"carried".padStart(10)}`,
  );
  for (const row of costs) {
    out(
      `${label(row.size).padEnd(14)}${row.requests.toLocaleString("en-US").padStart(10)}${row.standard.toFixed(4).padStart(14)}${row.express.toFixed(4).padStart(14)}${(row.carried === undefined ? "-" : row.carried.toFixed(4)).padStart(10)}`,
    );
  }
  out(
    `  carried: appends up to ${label(INLINE_MAX_BYTES)} carried in the index (inlineMaxBytes): no S3 request; DynamoDB write units for the bytes, twice in the commit's transaction, and the entry's delete once compaction has copied it`,
  );
  const at1MiB = costs.find((row) => row.size === MIB)!;
  out(
    `  target ≤ $0.02 per GB ingested and read once at 1 MiB: S3 Standard $${at1MiB.standard.toFixed(4)} (${(0.02 / at1MiB.standard).toFixed(2)}×) ${at1MiB.standard <= 0.02 ? "met" : "MISSED"}; S3 Express $${at1MiB.express.toFixed(4)} ${at1MiB.express <= 0.02 ? "met" : "MISSED"}`,
  );
  const idle = PRICES.cloudWatchAlarmPerMonth * 3 + PRICES.cloudWatchDashboardPerMonth;
  out("\nA month idle (no requests)");
  out(`  compute, requests, table: $0 (Lambda, S3 requests and DynamoDB on-demand bill per use)`);
  out(
    `  alarms and dashboard of the default stack: $${idle.toFixed(2)} (3 alarms, 1 dashboard; both can be turned off)`,
  );
  out(
    `  storage per GB kept: S3 Standard $${PRICES.s3StandardStoragePerGbMonth}, S3 Express One Zone $${PRICES.s3ExpressStoragePerGbMonth}`,
  );

  const chart = writeBarChart(
    "aws-model.svg",
    "The AWS model: produce and produce-to-consume latency (ms)",
    PROFILES.map((profile) => profile.name),
    [
      { name: "produce p50", unit: "ms", values: figures.map((f) => f.produce.p50) },
      { name: "produce p99", unit: "ms", values: figures.map((f) => f.produce.p99) },
      { name: "1 MiB batch p99", unit: "ms", values: figures.map((f) => f.batch.p99) },
      { name: "produce-to-consume p99", unit: "ms", values: figures.map((f) => f.e2e.p99) },
    ],
  );
  out(`chart: ${chart}`);
  if (values.json) {
    out(
      JSON.stringify({
        benchmark: "aws-model",
        standard_produce_p50_ms: round(standard.produce.p50),
        standard_produce_p99_ms: round(standard.produce.p99),
        standard_batch_p99_ms: round(standard.batch.p99),
        standard_e2e_p50_ms: round(standard.e2e.p50),
        standard_e2e_p99_ms: round(standard.e2e.p99),
        express_produce_p50_ms: round(express.produce.p50),
        express_produce_p99_ms: round(express.produce.p99),
        express_batch_p99_ms: round(express.batch.p99),
        express_e2e_p50_ms: round(express.e2e.p50),
        express_e2e_p99_ms: round(express.e2e.p99),
        standard_hedged_produce_p99_ms: round(standardHedged.produce.p99),
        standard_hedged_puts_per_produce: round(standardHedged.putsPerProduce),
        express_hedged_produce_p99_ms: round(expressHedged.produce.p99),
        express_hedged_puts_per_produce: round(expressHedged.putsPerProduce),
        express_parallel_produce_p50_ms: round(expressParallel.produce.p50),
        express_parallel_produce_p99_ms: round(expressParallel.produce.p99),
        express_parallel_batch_p99_ms: round(expressParallel.batch.p99),
        express_parallel_e2e_p99_ms: round(expressParallel.e2e.p99),
        standard_hedged_parallel_produce_p99_ms: round(standardParallel.produce.p99),
        standard_carried_produce_p50_ms: round(standardCarried.produce.p50),
        standard_carried_produce_p99_ms: round(standardCarried.produce.p99),
        standard_carried_puts_per_produce: round(standardCarried.putsPerProduce),
        cost_per_gb_1kib_standard_usd: Number(costs[0]!.standard.toFixed(5)),
        cost_per_gb_1kib_carried_usd: Number(costs[0]!.carried!.toFixed(5)),
        cost_per_gb_1mib_standard_usd: Number(at1MiB.standard.toFixed(5)),
        cost_per_gb_1mib_express_usd: Number(at1MiB.express.toFixed(5)),
      }),
    );
  }
}

async function measureProfile(
  profile: Profile,
  singles: number,
  batches: number,
  e2eCount: number,
  seed: number,
): Promise<ProfileFigures> {
  const random = seededChooser(seed);
  const sleep = (delay: number) => new Promise<void>((resolve) => setTimeout(resolve, delay));
  const counted = new CountingObjectStore(new MemoryObjectStore());
  const objects = new LatencyObjectStore(counted, profile.objects, { random, sleep });
  const metadata = new LatencyMetadataStore(new MemoryMetadataStore(), DYNAMODB, { random, sleep });
  const writer = new Engine({
    objects,
    metadata,
    ...(profile.hedgeAfterMs === undefined ? {} : { uploadHedgeAfterMs: profile.hedgeAfterMs }),
    ...(profile.parallelCommit ? { parallelCommit: true } : {}),
    ...(profile.inlineMaxBytes ? { inlineMaxBytes: profile.inlineMaxBytes } : {}),
  });
  const app = createApp({ engine: writer, metadata, clusterId: "model", logger: { error: () => undefined } });
  const readerApp = createApp({
    engine: new Engine({ objects, metadata }),
    metadata,
    clusterId: "model",
    logger: { error: () => undefined },
  });
  const base = "/v3/clusters/model/topics";
  const post = async (
    target: typeof app,
    path: string,
    body: RequestInit["body"],
    headers: Record<string, string>,
  ) => {
    const response = await target.request(`${base}${path}`, { method: "POST", headers, body });
    const text = await response.text();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
    return text;
  };
  const json = { "content-type": "application/json" };
  for (const [name, partitions] of [
    ["single", 1],
    ["batch", 8],
    ["e2e", 1],
  ] as const) {
    await app.request(base, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ topic_name: name, partitions_count: partitions }),
    });
  }

  const produce = histogram();
  const putsBefore = counted.calls.put;
  const record = JSON.stringify({ value: { type: "STRING", data: "x".repeat(100) } });
  for (let i = 0; i < singles; i++) {
    const begin = performance.now();
    await post(app, "/single/records", record, json);
    produce.recordValue(micros(performance.now() - begin));
    if (i % 50 === 0) progress(`${profile.name}: single-record produce ${i}/${singles}`);
  }

  // Let hedges still in flight land before counting them.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const putsPerProduce = (counted.calls.put - putsBefore) / singles;
  const batch = histogram();
  const value = new Uint8Array(100).fill(120);
  const oneMiB = await encodeRecordBatch(
    Array.from({ length: Math.floor(MIB / 110) }, () => ({ key: null, value, timestamp: Date.now() })),
    { compression: "none" },
  );
  for (let i = 0; i < batches; i++) {
    const begin = performance.now();
    await post(app, "/batch/record-batches", oneMiB, {
      "content-type": "application/vnd.kafka.record-batch.v2",
      "sluice-partitions": String(i % 8),
    });
    batch.recordValue(micros(performance.now() - begin));
    if (i % 10 === 0) progress(`${profile.name}: 1 MiB record-batch produce ${i}/${batches}`);
  }

  const e2e = histogram();
  let received = 0;
  const reader = (async () => {
    let offset = 0;
    while (received < e2eCount) {
      const response = await readerApp.request(
        `${base}/e2e/partitions/0/records?offset=${offset}&timeout_ms=5000&value_type=STRING`,
      );
      const page = (await response.json()) as { records: { value: { data: string } }[]; next_offset: number };
      const now = performance.timeOrigin + performance.now();
      for (const consumed of page.records) {
        e2e.recordValue(micros(now - Number(consumed.value.data)));
        received++;
      }
      offset = page.next_offset;
    }
  })();
  for (let i = 0; i < e2eCount; i++) {
    const sentAt = performance.timeOrigin + performance.now();
    await post(
      app,
      "/e2e/records",
      JSON.stringify({ partition_id: 0, value: { type: "STRING", data: String(sentAt) } }),
      json,
    );
    // Records arrive one at a time, as from a producer waiting between messages.
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (i % 50 === 0) progress(`${profile.name}: produce-to-consume ${i}/${e2eCount}`);
  }
  await reader;
  const p = (h: ReturnType<typeof histogram>) => ({
    p50: h.getValueAtPercentile(50) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
  });
  return { name: profile.name, putsPerProduce, produce: p(produce), batch: p(batch), e2e: p(e2e) };
}

/**
 * Dollars to ingest 1 GiB in requests of `size` bytes and read it back once in reads of the same
 * size. Per produce: one PUT, one TransactWriteItems of three items (topic check, head, index
 * entry: two write units each), one Lambda invocation billed for the modelled produce p50 at
 * 1 GB; per read: one GET, two strongly consistent reads (head, index), one invocation billed
 * for the GET's median.
 */
function costTable(standard: ProfileFigures, express: ProfileFigures, carried: ProfileFigures) {
  return REQUEST_SIZES.map((size) => {
    const requests = Math.ceil(GIB / size);
    const common = (produceSeconds: number, readSeconds: number) =>
      requests *
      (6 * PRICES.dynamoWritePerUnit +
        2 * PRICES.dynamoReadPerUnit +
        2 * PRICES.lambdaPerRequest +
        (produceSeconds + readSeconds) * PRICES.lambdaPerGbSecond);
    const overHalfMiB = Math.max(0, size - 512 * KIB) / GIB;
    const standardCost =
      requests * (PRICES.s3StandardPutPerRequest + PRICES.s3StandardGetPerRequest) +
      common(standard.produce.p50 / 1000, S3_STANDARD.get.p50Ms / 1000);
    const expressCost =
      requests *
        (PRICES.s3ExpressPutPerRequest +
          PRICES.s3ExpressGetPerRequest +
          overHalfMiB * (PRICES.s3ExpressUploadPerGb + PRICES.s3ExpressRetrievalPerGb)) +
      common(express.produce.p50 / 1000, S3_EXPRESS.get.p50Ms / 1000);
    // Carried in the index: no S3 request. The entry grows by the bytes, billed per KB written,
    // twice in the commit's transaction; compaction deletes the entry later (two units in its
    // transaction). Reads: strongly consistent, per 4 KB, in the query that reads the entry.
    const carriedCost =
      size <= INLINE_MAX_BYTES
        ? requests *
            (2 * Math.ceil(size / KIB) * PRICES.dynamoWritePerUnit +
              2 * PRICES.dynamoWritePerUnit +
              Math.ceil(size / (4 * KIB)) * PRICES.dynamoReadPerUnit) +
          common(carried.produce.p50 / 1000, 0)
        : undefined;
    return { size, requests, standard: standardCost, express: expressCost, carried: carriedCost };
  });
}

function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function micros(milliseconds: number): number {
  return Math.max(1, Math.round(milliseconds * 1000));
}

function label(bytes: number): string {
  return bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / KIB} KiB`;
}

function round(value: number): number {
  return Number(value.toFixed(2));
}
