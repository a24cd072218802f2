import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { Engine, INLINE_MAX_BYTES_LIMIT } from "@sluice/engine";
import { type MetadataStore, MeteredMetadataStore, MeteredObjectStore } from "@sluice/storage";
import { DynamoDbMetadataStore } from "@sluice/storage/dynamodb";
import { S3ObjectStore } from "@sluice/storage/s3";
import { type Metrics, noopMetrics } from "@sluice/telemetry";

/** The environment the Lambda function is deployed with (infra/lib/sluice-platform.ts). */
export const ENGINE_ENVIRONMENT = ["SLUICE_BUCKET", "SLUICE_TABLE", "SLUICE_CLUSTER_ID"] as const;

export interface AwsEngine {
  engine: Engine;
  /** The engine's table, which the consumer groups share. */
  metadata: MetadataStore;
  clusterId: string;
}

/**
 * The engine over S3 and DynamoDB, configured from the environment: SLUICE_BUCKET (partition
 * data), SLUICE_TABLE (offsets, indexes, producers) and SLUICE_CLUSTER_ID; optionally
 * SLUICE_UPLOAD_HEDGE_MS (hedged uploads: a second upload when the first is that late) and
 * SLUICE_PARALLEL_COMMIT ("true": upload and commit at once, ARCHITECTURE.md "Parallel commit"). The SDK
 * clients take region, credentials and AWS_ENDPOINT_URL (emulators) from the environment as usual.
 * With a metrics sink, the engine and both stores are measured into it.
 */
export function createEngineFromEnv(
  env: Record<string, string | undefined> = process.env,
  metrics: Metrics = noopMetrics,
): AwsEngine {
  const missing = ENGINE_ENVIRONMENT.filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `missing environment variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: the Sluice HTTP function needs SLUICE_BUCKET (the S3 bucket), SLUICE_TABLE (the DynamoDB table) and SLUICE_CLUSTER_ID`,
    );
  }
  // Emulators resolve bucket names only in the path, not as virtual hosts.
  const s3 = new S3Client({ forcePathStyle: Boolean(env.AWS_ENDPOINT_URL) });
  const dynamodb = new DynamoDBClient({});
  const measured = metrics !== noopMetrics;
  const dynamo = new DynamoDbMetadataStore({ client: dynamodb, tableName: env.SLUICE_TABLE! });
  const metadata = measured ? new MeteredMetadataStore(dynamo, metrics, "dynamodb") : dynamo;
  const s3Objects = new S3ObjectStore({ client: s3, bucket: env.SLUICE_BUCKET! });
  const objects = measured ? new MeteredObjectStore(s3Objects, metrics, "s3") : s3Objects;
  const hedge = env.SLUICE_UPLOAD_HEDGE_MS;
  if (hedge !== undefined && hedge !== "" && !/^\d{1,6}$/.test(hedge)) {
    throw new Error(`SLUICE_UPLOAD_HEDGE_MS must be a number of milliseconds, got ${hedge}`);
  }
  const parallel = env.SLUICE_PARALLEL_COMMIT;
  if (parallel !== undefined && parallel !== "" && parallel !== "true" && parallel !== "false") {
    throw new Error(`SLUICE_PARALLEL_COMMIT must be "true" or "false", got ${parallel}`);
  }
  const inline = env.SLUICE_INLINE_MAX_BYTES;
  if (
    inline !== undefined &&
    inline !== "" &&
    (!/^\d{1,6}$/.test(inline) || Number(inline) > INLINE_MAX_BYTES_LIMIT)
  ) {
    throw new Error(
      `SLUICE_INLINE_MAX_BYTES must be a whole number of bytes from 0 (off) to ${INLINE_MAX_BYTES_LIMIT}, got ${inline}`,
    );
  }
  return {
    engine: new Engine({
      objects,
      metadata,
      metrics,
      ...(inline ? { inlineMaxBytes: Number(inline) } : {}),
      ...(hedge ? { uploadHedgeAfterMs: Number(hedge) } : {}),
      ...(parallel === "true" ? { parallelCommit: true } : {}),
    }),
    metadata,
    clusterId: env.SLUICE_CLUSTER_ID!,
  };
}
