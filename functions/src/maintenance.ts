import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { MaintenanceRunner, type MaintenanceSettings, type RunReport } from "@sluice/maintenance";
import { DynamoDbMetadataStore } from "@sluice/storage/dynamodb";
import { S3ObjectStore } from "@sluice/storage/s3";
import type { Metrics } from "@sluice/telemetry";
import { EmfMetrics } from "@sluice/telemetry/emf";

/**
 * The maintenance function: EventBridge invokes it on a schedule (infra/lib/maintenance.ts), and an
 * operator or a test may invoke it directly. Each invocation runs retention, compaction, the time
 * index, garbage collection and pending purges (ARCHITECTURE.md, "Maintenance") until its time is
 * nearly up; work left over waits for the next one, and leases let several run at once. A run in
 * which a job failed ends in an error, which the failure alarm counts. The catalogue's maintenance
 * series (runs, durations, reclaimed bytes, removed records) are written as EMF at the end of
 * every invocation, under the service `sluice-maintenance`.
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

/** The `service` of the maintenance function's metrics. */
export const MAINTENANCE_SERVICE = "sluice-maintenance";

export function createMaintenanceRunner(
  env: Record<string, string | undefined> = process.env,
  metrics?: Metrics,
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
    ...(metrics ? { metrics } : {}),
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

export interface MaintenanceHandlerOptions {
  env?: Record<string, string | undefined>;
  /** Where the EMF documents go (default standard output, which Lambda sends to CloudWatch Logs). */
  writeMetrics?: (line: string) => void;
}

/** The handler, built once per execution environment: the runner, and its metrics flushed per invocation. */
export function createMaintenanceHandler(options: MaintenanceHandlerOptions = {}) {
  const metrics = new EmfMetrics({
    service: MAINTENANCE_SERVICE,
    ...(options.writeMetrics ? { write: options.writeMetrics } : {}),
  });
  let runner: MaintenanceRunner | undefined;
  return async (
    event: MaintenanceEvent | undefined,
    context?: { getRemainingTimeInMillis(): number },
  ): Promise<MaintenanceSummary> => {
    try {
      runner ??= createMaintenanceRunner(options.env ?? process.env, metrics);
      return await runMaintenance(runner, event, context);
    } finally {
      // Lambda may freeze the process as soon as the handler returns: write the metrics first.
      metrics.flush();
    }
  };
}

export const handler = createMaintenanceHandler();

async function runMaintenance(
  runner: MaintenanceRunner,
  event: MaintenanceEvent | undefined,
  context: { getRemainingTimeInMillis(): number } | undefined,
): Promise<MaintenanceSummary> {
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
