import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { MaintenanceRunner, type MaintenanceSettings, type RunReport } from "@sluice/maintenance";
import { DynamoDbMetadataStore } from "@sluice/storage/dynamodb";
import { S3ObjectStore } from "@sluice/storage/s3";

/**
 * The maintenance function: EventBridge invokes it on a schedule (infra/lib/maintenance.ts), and an
 * operator or a test may invoke it directly. Each invocation runs retention, compaction, the time
 * index, garbage collection and pending purges (ARCHITECTURE.md, "Maintenance") until its time is
 * nearly up; work left over waits for the next one, and leases let several run at once. A run in
 * which a job failed ends in an error, which the failure alarm counts.
 *
 * Environment: SLUICE_BUCKET, SLUICE_TABLE; SLUICE_SEGMENT_BYTES (default 8 MiB).
 */
export interface MaintenanceEvent {
  /** Only these topics, and no purges (a scheduled event names none: everything). */
  topics?: string[];
}

export interface MaintenanceSummary {
  topics: number;
  partitions: number;
  /** Partitions skipped: nothing changed and nothing fell due since they were last idle. */
  partitionsQuiet: number;
  entriesExpired: number;
  segmentsWritten: number;
  entriesCompacted: number;
  recordsRemoved: number;
  objectsDeleted: number;
  topicsPurged: number;
  leasesHeld: number;
  stoppedEarly: boolean;
  failures: string[];
}

/** Time left unused at the end of an invocation, so the last step ends before the timeout. */
const MARGIN_MS = 30_000;

export const MAINTENANCE_ENVIRONMENT = ["SLUICE_BUCKET", "SLUICE_TABLE"] as const;

export function createMaintenanceRunner(
  env: Record<string, string | undefined> = process.env,
): MaintenanceRunner {
  const missing = MAINTENANCE_ENVIRONMENT.filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `missing environment variable${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: the maintenance function needs SLUICE_BUCKET (the S3 bucket) and SLUICE_TABLE (the DynamoDB table)`,
    );
  }
  const settings: Partial<MaintenanceSettings> = {};
  if (env.SLUICE_SEGMENT_BYTES) settings.segmentBytes = Number(env.SLUICE_SEGMENT_BYTES);
  return new MaintenanceRunner({
    objects: new S3ObjectStore({
      client: new S3Client({ forcePathStyle: Boolean(env.AWS_ENDPOINT_URL) }),
      bucket: env.SLUICE_BUCKET!,
    }),
    metadata: new DynamoDbMetadataStore({ client: new DynamoDBClient({}), tableName: env.SLUICE_TABLE! }),
    settings,
  });
}

export function summarise(report: RunReport): MaintenanceSummary {
  return {
    topics: report.topics,
    partitions: report.partitions,
    partitionsQuiet: report.partitionsQuiet,
    entriesExpired: report.retention.entriesDeleted,
    segmentsWritten: report.compaction.segments,
    entriesCompacted: report.compaction.entriesReplaced,
    recordsRemoved: report.compaction.recordsRemoved,
    objectsDeleted: report.garbage.deleted + report.purges.objectsDeleted,
    topicsPurged: report.purges.finished,
    leasesHeld: report.leasesHeld,
    stoppedEarly: report.stoppedEarly,
    failures: report.failures.map(
      (failure) =>
        `${failure.job} ${failure.topic}${failure.partition === undefined ? "" : `/${failure.partition}`}: ${failure.error instanceof Error ? failure.error.message : String(failure.error)}`,
    ),
  };
}

let runner: MaintenanceRunner | undefined;

export async function handler(
  event: MaintenanceEvent | undefined,
  context?: { getRemainingTimeInMillis(): number },
): Promise<MaintenanceSummary> {
  runner ??= createMaintenanceRunner();
  const topics = Array.isArray(event?.topics) ? event.topics.map(String) : undefined;
  const remaining = context?.getRemainingTimeInMillis() ?? 5 * 60_000;
  const report = await runner.runOnce({
    budgetMs: Math.max(1_000, remaining - MARGIN_MS),
    ...(topics ? { topics } : {}),
  });
  const summary = summarise(report);
  console.log(JSON.stringify({ message: "maintenance run", ...summary }));
  if (summary.failures.length > 0) {
    throw new Error(
      `maintenance: ${summary.failures.length} job(s) failed: ${summary.failures.slice(0, 5).join("; ")}`,
    );
  }
  return summary;
}
