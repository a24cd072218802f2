import { resolve } from "node:path";
import { INLINE_MAX_BYTES_LIMIT } from "@sluice/engine";
import type { RunReport } from "@sluice/maintenance";
import {
  DEFAULT_HOST,
  DEFAULT_IDLE_POLL_US,
  DEFAULT_INLINE_MAX_BYTES,
  DEFAULT_PORT,
  MAX_IDLE_POLL_US,
  type RunningServer,
  startServer,
} from "./server.js";

/**
 * `npm start`: the local server. Environment: PORT (default 8080; 0 picks a free port), HOST
 * (default 127.0.0.1), SLUICE_DATA_DIR (default ./.sluice), SLUICE_OBJECT_STORE (packed, the
 * default for a new data directory, or files: one file per object), SLUICE_LOG_REQUESTS=1 (a line per
 * request on stdout), SLUICE_LOG_LEVEL=debug (routine events too, such as clients that hang up
 * mid-upload), SLUICE_PUBLIC_URL (where clients reach the server; links start with it),
 * SLUICE_MAINTENANCE_INTERVAL_MS (how often maintenance runs: retention, compaction, garbage
 * collection; default 60000, 0 to turn it off),
 * SLUICE_PROCESSORS (a JSON file of processors to declare at start, docs/processors.md),
 * SLUICE_PROCESSORS_RUN=0 (manage processors but run none),
 * SLUICE_METRICS=off (no measuring and no GET /metrics), SLUICE_PROCESS_METRICS=on (prom-client's
 * process and Node.js metrics beside Sluice's), SLUICE_IDLE_POLL_US (how long the event loop may keep
 * turning after the last answer, adapted to the traffic, and at most half of the time; default 1000, 0 to turn it off; see
 * idle-poll.ts), SLUICE_INLINE_MAX_BYTES (appends up to this size are carried in the index instead
 * of stored as objects; default 4096, 0 to store every append as an object; ARCHITECTURE.md,
 * "Small appends carried in the index"). SIGINT/SIGTERM stop it gracefully; a
 * second signal exits at once.
 */
function fail(message: string): never {
  process.stderr.write(`sluice-server: ${message}\n`);
  process.exit(1);
}

const portText = process.env.PORT ?? String(DEFAULT_PORT);
const port = Number(portText);
if (!/^\d+$/.test(portText) || port > 65_535)
  fail(`PORT must be a port number (0 for any free port), got ${portText}`);
const host = process.env.HOST || DEFAULT_HOST;
const dataDir = resolve(process.env.SLUICE_DATA_DIR || ".sluice");
const durabilityText = process.env.SLUICE_DURABILITY || "fsync";
if (durabilityText !== "fsync" && durabilityText !== "buffered")
  fail(`SLUICE_DURABILITY must be fsync or buffered, got ${durabilityText}`);
const durability = durabilityText as "fsync" | "buffered";
const objectStoreText = process.env.SLUICE_OBJECT_STORE || undefined;
if (objectStoreText !== undefined && objectStoreText !== "packed" && objectStoreText !== "files")
  fail(`SLUICE_OBJECT_STORE must be packed or files, got ${objectStoreText}`);

const logLevel = (process.env.SLUICE_LOG_LEVEL || "info").toLowerCase();
if (logLevel !== "info" && logLevel !== "debug")
  fail(`SLUICE_LOG_LEVEL must be info or debug, got ${logLevel}`);
const debug = logLevel === "debug";
const processorsFile = process.env.SLUICE_PROCESSORS ? resolve(process.env.SLUICE_PROCESSORS) : undefined;
const runProcessorsText = (process.env.SLUICE_PROCESSORS_RUN ?? "1").toLowerCase();
if (!["0", "1", "true", "false", "yes", "no"].includes(runProcessorsText))
  fail(`SLUICE_PROCESSORS_RUN must be 1 or 0, got ${runProcessorsText}`);
const runProcessors = ["1", "true", "yes"].includes(runProcessorsText);

const maintenanceText = process.env.SLUICE_MAINTENANCE_INTERVAL_MS ?? "60000";
if (!/^\d+$/.test(maintenanceText))
  fail(
    `SLUICE_MAINTENANCE_INTERVAL_MS must be a whole number of milliseconds (0: off), got ${maintenanceText}`,
  );
const maintenanceIntervalMs = Number(maintenanceText);
const metricsText = (process.env.SLUICE_METRICS || "on").toLowerCase();
if (!["on", "off", "1", "0", "true", "false"].includes(metricsText))
  fail(`SLUICE_METRICS must be on or off, got ${metricsText}`);
const metrics = ["on", "1", "true"].includes(metricsText);
const processMetricsText = (process.env.SLUICE_PROCESS_METRICS || "off").toLowerCase();
if (!["on", "off", "1", "0", "true", "false"].includes(processMetricsText))
  fail(`SLUICE_PROCESS_METRICS must be on or off, got ${processMetricsText}`);
const processMetrics = ["on", "1", "true"].includes(processMetricsText);
const idlePollText = process.env.SLUICE_IDLE_POLL_US ?? String(DEFAULT_IDLE_POLL_US);
if (!/^\d+$/.test(idlePollText) || Number(idlePollText) > MAX_IDLE_POLL_US)
  fail(
    `SLUICE_IDLE_POLL_US must be a whole number of microseconds from 0 (off) to ${MAX_IDLE_POLL_US}, got ${idlePollText}`,
  );
const idlePollUs = Number(idlePollText);
const inlineText = process.env.SLUICE_INLINE_MAX_BYTES || String(DEFAULT_INLINE_MAX_BYTES);
if (!/^\d+$/.test(inlineText) || Number(inlineText) > INLINE_MAX_BYTES_LIMIT)
  fail(
    `SLUICE_INLINE_MAX_BYTES must be a whole number of bytes from 0 (off) to ${INLINE_MAX_BYTES_LIMIT}, got ${inlineText}`,
  );
const inlineMaxBytes = Number(inlineText);

let running: RunningServer;
try {
  const logRequests = ["1", "true", "yes"].includes((process.env.SLUICE_LOG_REQUESTS ?? "").toLowerCase());
  running = await startServer({
    dataDir,
    port,
    host,
    durability,
    ...(objectStoreText ? { objectStore: objectStoreText as "packed" | "files" } : {}),
    metrics,
    processMetrics,
    idlePollUs,
    inlineMaxBytes,
    ...(logRequests ? { logRequests: (line: string) => process.stdout.write(`${line}\n`) } : {}),
    ...(process.env.SLUICE_PUBLIC_URL ? { publicUrl: process.env.SLUICE_PUBLIC_URL } : {}),
    ...(maintenanceIntervalMs > 0
      ? { maintenance: { intervalMs: maintenanceIntervalMs, onReport: reportMaintenance } }
      : {}),
    ...(processorsFile ? { processorsFile } : {}),
    runProcessors,
    logProcessors: (line: string) => process.stdout.write(`${line}\n`),
    ...(debug
      ? {
          logger: {
            error: (message: string, details: Record<string, unknown>) => console.error(message, details),
            debug: (message: string, details: Record<string, unknown>) =>
              process.stdout.write(`${message} ${JSON.stringify(details)}\n`),
          },
        }
      : {}),
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

process.stdout.write(
  [
    "Sluice local server",
    `  url:        ${running.url}`,
    `  data dir:   ${running.dataDir}`,
    `  cluster id: ${running.clusterId}`,
    `  durability: ${durability}`,
    `  maintenance: ${maintenanceIntervalMs > 0 ? `every ${maintenanceIntervalMs / 1000} s` : "off"}`,
    `  processors: ${running.processors.declared.length > 0 ? `${running.processors.declared.join(", ")} (${processorsFile})` : runProcessors ? "run here (none declared in a file)" : "not run (SLUICE_PROCESSORS_RUN=0)"}`,
    `  idle poll:  ${idlePollUs > 0 ? `up to ${idlePollUs} µs after the last answer, adaptive` : "off"}`,
    `  metrics:    ${metrics ? `${running.url}/metrics (Prometheus)` : "off"}`,
    `  try:        SLUICE_URL=${running.url} npx sluice topic list`,
    "",
  ].join("\n"),
);

/** One line per maintenance run that changed something, so retention and compaction are visible. */
function reportMaintenance(report: RunReport): void {
  const done = [
    report.retention.entriesDeleted && `${report.retention.entriesDeleted} expired entries deleted`,
    report.compaction.segments &&
      `${report.compaction.entriesReplaced} entries compacted into ${report.compaction.segments} segments`,
    report.compaction.recordsRemoved && `${report.compaction.recordsRemoved} superseded records removed`,
    report.garbage.deleted && `${report.garbage.deleted} unreferenced objects deleted`,
    report.purges.finished && `${report.purges.finished} deleted topics purged`,
  ].filter(Boolean);
  if (done.length > 0) process.stdout.write(`maintenance: ${done.join(", ")}\n`);
}

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    process.stderr.write(`sluice-server: ${signal} again, exiting now\n`);
    process.exit(1);
  }
  stopping = true;
  process.stdout.write(`${signal}: stopping (waiting for requests in flight)\n`);
  running.close().then(
    () => {
      process.stdout.write("stopped\n", () => process.exit(0));
    },
    (error: unknown) =>
      fail(`error while stopping: ${error instanceof Error ? error.message : String(error)}`),
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
