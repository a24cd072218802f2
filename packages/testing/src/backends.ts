/**
 * The backends a scenario suite is bound to, made once here so every binding is one call: the
 * embedded pair (SQLite + the packed object store, as the local server runs them, a temporary
 * directory per run) and the AWS pair (DynamoDB +
 * S3 on the emulator, one table and bucket per test file). A subpath export of its own
 * (`@sluice/testing/backends`), so importing the rest of the testing helpers loads neither SQLite
 * nor the AWS SDK.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { PackedObjectStore } from "@sluice/storage/packed";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "@sluice/storage/s3";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { afterAll, beforeAll } from "vitest";
import { awsClientConfig } from "./aws.js";
import { uniqueName } from "./names.js";

export interface StoreBackend {
  objects: ObjectStore;
  metadata: MetadataStore;
  cleanup?: () => Promise<void>;
}

/** A fresh SQLite database and packed object store in a temporary directory, removed by `cleanup`. */
export async function embeddedBackend(prefix: string): Promise<StoreBackend> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${prefix}-`));
  const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite") });
  const objects = new PackedObjectStore({ root: join(dir, "packed") });
  return {
    objects,
    metadata,
    cleanup: async () => {
      metadata.close();
      objects.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One table and bucket on the emulator for the calling test file, created before its tests and
 * deleted after them; each call of the returned function gives stores over them (scenario runs
 * keep apart by using topics, groups and keys of their own).
 */
export function emulatorBackend(prefix: string): () => StoreBackend {
  const { forcePathStyle, ...dynamoConfig } = awsClientConfig();
  const s3 = new S3Client({ ...dynamoConfig, forcePathStyle });
  const dynamodb = new DynamoDBClient(dynamoConfig);
  const bucket = uniqueName(prefix);
  const table = uniqueName(prefix);
  beforeAll(async () => {
    await createBucketIfMissing(s3, bucket);
    await createMetadataTable(dynamodb, table);
  });
  afterAll(async () => {
    await deleteBucketAndContents(s3, bucket);
    await deleteMetadataTable(dynamodb, table);
  });
  return () => ({
    objects: new S3ObjectStore({ client: s3, bucket }),
    metadata: new DynamoDbMetadataStore({ client: dynamodb, tableName: table }),
  });
}
