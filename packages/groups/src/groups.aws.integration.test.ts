import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "@sluice/storage/s3";
import { awsClientConfig, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll } from "vitest";
import { runGroupScenarios } from "./groups.scenarios.js";

// One bucket and table for the whole file; each scenario run uses its own topic and group in them.
const { forcePathStyle, ...dynamoConfig } = awsClientConfig();
const s3 = new S3Client({ ...dynamoConfig, forcePathStyle });
const dynamodb = new DynamoDBClient(dynamoConfig);
const bucket = uniqueName("groups");
const table = uniqueName("groups");

beforeAll(async () => {
  await createBucketIfMissing(s3, bucket);
  await createMetadataTable(dynamodb, table);
});

afterAll(async () => {
  await deleteBucketAndContents(s3, bucket);
  await deleteMetadataTable(dynamodb, table);
});

runGroupScenarios({
  name: "dynamodb + s3",
  runs: 8,
  timeoutMs: 150_000,
  runTimeoutMs: 60_000,
  create: async () => ({
    objects: new S3ObjectStore({ client: s3, bucket }),
    metadata: new DynamoDbMetadataStore({ client: dynamodb, tableName: table }),
  }),
});
