import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { awsClientConfig, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll } from "vitest";
import { runLeaseScenarios } from "./leases.scenarios.js";

// One table for the whole file; each scenario run uses keys of its own in it.
const { forcePathStyle: _, ...dynamoConfig } = awsClientConfig();
const dynamodb = new DynamoDBClient(dynamoConfig);
const table = uniqueName("leases");

beforeAll(async () => {
  await createMetadataTable(dynamodb, table);
});

afterAll(async () => {
  await deleteMetadataTable(dynamodb, table);
});

runLeaseScenarios({
  name: "dynamodb",
  runs: 15,
  timeoutMs: 120_000,
  runTimeoutMs: 40_000,
  create: async () => ({ metadata: new DynamoDbMetadataStore({ client: dynamodb, tableName: table }) }),
});
