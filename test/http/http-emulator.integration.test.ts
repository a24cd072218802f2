import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "@sluice/storage/s3";
import { awsClientConfig, CountingMetadataStore, CountingObjectStore, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll } from "vitest";
import { runHttpSuite } from "./http-suite.js";
import { maintenanceOver } from "./maintenance-cases.js";

/** The HTTP apps in-process over the emulator's S3 and DynamoDB: the Lambda's stack minus Lambda. */
const CLUSTER_ID = "emulator-cluster";
const config = awsClientConfig();
const { forcePathStyle: _s3Only, ...dynamoConfig } = config;
const s3 = new S3Client(config);
const dynamodb = new DynamoDBClient(dynamoConfig);
const bucket = uniqueName("http");
const table = uniqueName("http");
const objects = new CountingObjectStore(new S3ObjectStore({ client: s3, bucket }));
const metadata = new CountingMetadataStore(new DynamoDbMetadataStore({ client: dynamodb, tableName: table }));
let app: OpenAPIHono | undefined;

beforeAll(async () => {
  await Promise.all([createBucketIfMissing(s3, bucket), createMetadataTable(dynamodb, table)]);
  app = createApp({ engine: new Engine({ objects, metadata }), metadata, clusterId: CLUSTER_ID });
});

afterAll(async () => {
  await Promise.all([deleteBucketAndContents(s3, bucket), deleteMetadataTable(dynamodb, table)]);
  s3.destroy();
  dynamodb.destroy();
});

runHttpSuite({
  name: "in-process S3 + DynamoDB (emulator)",
  request: async (path, init) => {
    if (!app) throw new Error("the app was not created; see the beforeAll failure");
    return app.request(path, init);
  },
  clusterId: () => CLUSTER_ID,
  counters: () => ({ objectWrites: objects.writes, metadataWrites: metadata.writes }),
  runMaintenance: maintenanceOver({ objects, metadata }),
});
