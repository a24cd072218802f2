import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { Engine } from "@sluice/engine";
import { createMaintenanceHandler, handler } from "@sluice/functions/maintenance";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "@sluice/storage/s3";
import { awsClientConfig, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The maintenance function's handler over S3 and DynamoDB on the emulator, invoked as EventBridge
 * or an operator would: retention and compaction happen, a failed job fails the invocation.
 */
const { forcePathStyle, ...dynamoConfig } = awsClientConfig();
const s3 = new S3Client({ ...dynamoConfig, forcePathStyle });
const dynamodb = new DynamoDBClient(dynamoConfig);
const bucket = uniqueName("maint-fn");
const table = uniqueName("maint-fn");
const engine = new Engine({
  objects: new S3ObjectStore({ client: s3, bucket }),
  metadata: new DynamoDbMetadataStore({ client: dynamodb, tableName: table }),
});
const context = { getRemainingTimeInMillis: () => 60_000 };

beforeAll(async () => {
  await createBucketIfMissing(s3, bucket);
  await createMetadataTable(dynamodb, table);
  process.env.SLUICE_BUCKET = bucket;
  process.env.SLUICE_TABLE = table;
});

afterAll(async () => {
  await deleteBucketAndContents(s3, bucket);
  await deleteMetadataTable(dynamodb, table);
});

describe("the maintenance function on the emulator", () => {
  it("applies retention and records the topic's storage when invoked", async () => {
    await engine.createTopic({ name: "expiring", partitions: 1, configs: { "retention.ms": "86400000" } });
    await engine.append({
      topic: "expiring",
      records: [{ key: null, value: new Uint8Array([1]), timestamp: Date.UTC(2020, 0, 1) }],
    });
    await engine.append({ topic: "expiring", records: [{ key: null, value: new Uint8Array([2]) }] });
    const summary = await handler({ topics: ["expiring"] }, context);
    expect(summary).toMatchObject({ topics: 1, partitions: 1, entriesExpired: 1, failures: [] });
    expect(await engine.partitionOffsets("expiring", 0)).toEqual({ logStartOffset: 1, highWatermark: 2 });
    const storage = await engine.topicStorage("expiring");
    expect(storage.partitions[0]).toMatchObject({ logStartOffset: 1, indexEntries: 1, records: 1 });
    expect(storage.objectCount).toBe(2);
  });

  it("writes the maintenance series as EMF documents at the end of each invocation", async () => {
    const lines: string[] = [];
    const measured = createMaintenanceHandler({
      env: { SLUICE_BUCKET: bucket, SLUICE_TABLE: table },
      writeMetrics: (line) => lines.push(line),
    });
    await engine.createTopic({ name: "measured", partitions: 1, configs: { "retention.ms": "86400000" } });
    await engine.append({
      topic: "measured",
      records: [{ key: null, value: new Uint8Array([1]), timestamp: Date.UTC(2020, 0, 1) }],
    });
    await engine.append({ topic: "measured", records: [{ key: null, value: new Uint8Array([2]) }] });
    expect(await measured({ topics: ["measured"] }, context)).toMatchObject({ entriesExpired: 1 });
    const docs = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const where = (metric: string, dimensions: Record<string, string>) =>
      docs.filter(
        (doc) => metric in doc && Object.entries(dimensions).every(([key, value]) => doc[key] === value),
      );
    const runs = where("MaintenanceRuns", { job: "retention", result: "ok" });
    expect(runs.map((doc) => doc.MaintenanceRuns)).toEqual([1]);
    expect(runs[0]).toMatchObject({ service: "sluice-maintenance" });
    expect(
      where("MaintenanceRecordsRemoved", { job: "retention" }).map((doc) => doc.MaintenanceRecordsRemoved),
    ).toEqual([1]);
    expect(where("MaintenanceRunDuration", { job: "gc" })).toHaveLength(1);
    // Flushed: the next invocation writes only its own.
    lines.length = 0;
    await measured({ topics: ["measured"] }, context);
    expect(lines.map((line) => JSON.parse(line)).filter((doc) => "MaintenanceRecordsRemoved" in doc)).toEqual(
      [],
    );
  });

  it("fails the invocation when a job fails, naming it", async () => {
    await expect(handler({ topics: ["no-such-topic"] }, context)).rejects.toThrow(
      /maintenance: 1 job\(s\) failed: run no-such-topic: topic not found: no-such-topic/,
    );
  });
});
