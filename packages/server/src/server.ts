import { mkdir } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { Engine } from "@sluice/engine";
import { createApp, type Logger } from "@sluice/functions";
import { ConsumerGroups, collectConsumerGroupLag } from "@sluice/groups";
import {
  MaintenanceRunner,
  type MaintenanceSchedule,
  type MaintenanceSettings,
  type RunReport,
  startMaintenanceSchedule,
} from "@sluice/maintenance";
import { collectShareGroupMetrics, ShareGroups } from "@sluice/queues";
import {
  type MetadataStore,
  MeteredMetadataStore,
  MeteredObjectStore,
  type ObjectStore,
} from "@sluice/storage";
import { PackedObjectStore, type ReclaimReport } from "@sluice/storage/packed";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { type Metrics, noopMetrics } from "@sluice/telemetry";
import { PrometheusMetrics } from "@sluice/telemetry/prometheus";
import { loadClusterId } from "./cluster-id.js";
import { IdlePoller } from "./idle-poll.js";
import { type ObjectStoreKind, openObjectStore } from "./object-store-choice.js";
import { type LocalProcessors, startLocalProcessors } from "./processors.js";

export interface ServerOptions {
  /** Holds `objects/` (the object store) and `metadata.sqlite`; created when missing. */
  dataDir: string;
  /** Default 8080; 0 picks a free port (see `url`). */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** How long close() lets requests in flight finish before closing their connections. Default 10 s. */
  shutdownTimeoutMs?: number;
  /**
   * How long close() lets long-polls and event streams end on their own (they are told to at once)
   * before their connections are closed. Default 1 s.
   */
  streamGraceMs?: number;
  /**
   * "fsync" (default): an acknowledged record survives a power loss. "buffered": it survives a
   * crash or restart of the server, not of the machine (Kafka's default stance), and appends are
   * several times faster.
   */
  durability?: "fsync" | "buffered";
  /**
   * "packed" (default for a new data directory): objects packed into append-only segment files
   * and an index, no file per object. "files": one file per object, the layout of data
   * directories written before packing, which keep it (see openObjectStore).
   */
  objectStore?: ObjectStoreKind;
  /**
   * Receives server-side failures (500, 503), and at debug level routine events such as a client
   * that hung up mid-upload. Default: console.error, and no debug lines.
   */
  logger?: Logger;
  /** Where clients reach the server (`SLUICE_PUBLIC_URL`); links start with it. See createApp. */
  publicUrl?: string;
  /** Receives a line when each request arrives (`-> GET /path`) and when it ends (`<- 200 GET /path 3 ms`). */
  logRequests?: (line: string) => void;
  /** A JSON file of processors to declare at start (`SLUICE_PROCESSORS`); see docs/processors.md. */
  processorsFile?: string;
  /** Receives what the processors do that an operator wants to see (declared, dead-lettered, failing). */
  logProcessors?: (line: string) => void;
  /** How often the processors' sweep looks for lag. Default 1 s. */
  processorSweepIntervalMs?: number;
  /** Run processors here (default); false: the API manages them, nothing runs them. */
  runProcessors?: boolean;
  /**
   * Runs maintenance (retention, compaction, the time index, garbage collection, purges of
   * deleted topics) every `intervalMs`, on the engine's clock. Default: none (`npm start` turns
   * it on, every minute).
   */
  maintenance?: {
    intervalMs: number;
    settings?: Partial<MaintenanceSettings>;
    /** Each run's report (failed jobs are also logged as errors). */
    onReport?: (report: RunReport) => void;
    /**
     * After each run, the packed object store's closed segment files that are mostly dead give
     * up their live objects and go (PackedObjectStore.reclaimSegments); what that did.
     */
    onReclaim?: (report: ReclaimReport) => void;
  };
  /**
   * Measure throughput, latency, errors, storage calls and group lag, and serve them at
   * `GET /metrics` for Prometheus (docs/operations.md). Default true (`SLUICE_METRICS=off`).
   */
  metrics?: boolean;
  /**
   * Also serve prom-client's process and Node.js metrics (CPU, memory, event-loop lag, GC) at
   * `GET /metrics`. Default false (`SLUICE_PROCESS_METRICS=on`): under load they cost the server
   * about 4% of its CPU (bench/metrics-overhead.ts), more than every Sluice series together.
   */
  processMetrics?: boolean;
  /**
   * After answering its last request in flight, keep the event loop turning for up to this many
   * microseconds, adapting the window to how soon requests follow answers (idle-poll.ts;
   * `SLUICE_IDLE_POLL_US`), and for at most half of the time. Default 1000; 0 turns it off.
   */
  idlePollUs?: number;
  /**
   * Appends of at most this many bytes are carried in their index entries instead of uploaded
   * (ARCHITECTURE.md, "Small appends carried in the index"; `SLUICE_INLINE_MAX_BYTES`). Default
   * 4096; 0 uploads every append.
   */
  inlineMaxBytes?: number;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080, with the real port when 0 was asked. */
  url: string;
  port: number;
  host: string;
  clusterId: string;
  /** Absolute. */
  dataDir: string;
  engine: Engine;
  /** The maintenance schedule, when `maintenance` was given. */
  maintenance?: MaintenanceSchedule;
  /** The processors running inside the server. */
  processors: LocalProcessors;
  /** The Node HTTP server (e.g. to observe its 'request' events). */
  httpServer: Server;
  /** Requests whose client closed the connection before sending all of the body, since start. */
  readonly clientDisconnects: number;
  /** The idle poller (`idlePollUs`): its window and whether it is polling now. */
  idlePoller: IdlePoller;
  /** The Prometheus sink behind `GET /metrics`; absent with `metrics: false`. */
  metrics?: PrometheusMetrics;
  /**
   * Graceful stop: stops accepting connections, ends long-polls and event streams, lets other
   * requests finish (bounded by `shutdownTimeoutMs`), then closes the metadata store. Idempotent.
   */
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "127.0.0.1";
const SHUTDOWN_TIMEOUT_MS = 10_000;
const STREAM_GRACE_MS = 1_000;
/**
 * Appends this small are carried in the index: on the local server that saves the packed store's
 * SQLite transaction per produce (docs/benchmarks.md, "Small appends carried in the index").
 */
export const DEFAULT_INLINE_MAX_BYTES = 4096;
/**
 * Long enough to bridge a client's hiccup (a young collection, a preemption): with 200 µs, Linux's
 * own bound for guest halt polling, 2–3% of single produces came after a longer gap and found
 * the server halted. What polling may cost is bounded by the poller's budget (half a core), not by
 * this (docs/benchmarks.md, "A longer idle-poll window, within a budget").
 */
export const DEFAULT_IDLE_POLL_US = 1000;
/** The setting's bound: a window this long no longer bridges a wake-up; it keeps a core busy. */
export const MAX_IDLE_POLL_US = 10_000;

/**
 * The local server: every HTTP app in one Node process, over the filesystem object store and a
 * SQLite metadata store in `dataDir`. Data and the cluster id survive restarts.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const dataDir = resolve(options.dataDir);
  const host = options.host ?? DEFAULT_HOST;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS;
  const streamGraceMs = options.streamGraceMs ?? STREAM_GRACE_MS;
  const idlePollUs = options.idlePollUs ?? DEFAULT_IDLE_POLL_US;
  if (!Number.isFinite(idlePollUs) || idlePollUs < 0 || idlePollUs > MAX_IDLE_POLL_US) {
    throw new RangeError(`idlePollUs must be 0 (off) to ${MAX_IDLE_POLL_US} microseconds, got ${idlePollUs}`);
  }
  await mkdir(dataDir, { recursive: true });
  const durability = options.durability ?? "fsync";
  const sqlite = new SqliteMetadataStore({ path: join(dataDir, "metadata.sqlite"), durability });
  let started: LocalProcessors | undefined;
  let objectStore: ReturnType<typeof openObjectStore> | undefined;
  try {
    objectStore = openObjectStore(dataDir, durability, options.objectStore);
    const prometheus =
      options.metrics === false
        ? undefined
        : new PrometheusMetrics({
            processMetrics: options.processMetrics ?? false,
            onCollectError: (name, error) =>
              (options.logger ?? console).error(`sluice metrics: collector ${name} failed`, {
                error: error instanceof Error ? error.message : String(error),
              }),
          });
    const metrics = prometheus ?? noopMetrics;
    const metadata = prometheus ? new MeteredMetadataStore(sqlite, metrics, "sqlite") : sqlite;
    // Packed or a file per object, both are the filesystem backend in the storage metrics.
    const objects = prometheus
      ? new MeteredObjectStore(objectStore.store, metrics, "filesystem")
      : objectStore.store;
    const engine = new Engine({
      objects,
      metadata,
      metrics,
      inlineMaxBytes: options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES,
    });
    const groups = new ConsumerGroups({ engine, metadata });
    prometheus?.addCollector("consumer-group-lag", () =>
      collectConsumerGroupLag({ groups, engine, metrics }),
    );
    const shareGroups = new ShareGroups({ engine, metadata, metrics });
    prometheus?.addCollector("share-groups", () => collectShareGroupMetrics({ shareGroups, metrics }));
    const clusterId = await loadClusterId(metadata);
    const processors = await startLocalProcessors({
      engine,
      metadata,
      ...(options.processorsFile ? { configFile: options.processorsFile } : {}),
      ...(options.logProcessors ? { log: options.logProcessors } : {}),
      ...(options.processorSweepIntervalMs === undefined
        ? {}
        : { sweepIntervalMs: options.processorSweepIntervalMs }),
      run: options.runProcessors ?? true,
      metrics,
    });
    started = processors;
    let clientDisconnects = 0;
    // Waits observe this signal as well as the client's: aborting it ends long-polls and event
    // streams with a proper response instead of a cut connection.
    const shutdown = new AbortController();
    const app = createApp({
      engine,
      metadata,
      groups,
      shareGroups,
      clusterId,
      processors: { admin: processors.admin, changed: () => void processors.runtime.sweep() },
      metrics,
      ...(prometheus ? { metricsExposition: prometheus } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.publicUrl === undefined ? {} : { publicUrl: options.publicUrl }),
      onClientDisconnect: () => {
        clientDisconnects++;
      },
      shutdown: shutdown.signal,
    });

    const server = createAdaptorServer({ hostname: host, fetch: app.fetch }) as Server;

    const inFlight = new Map<ServerResponse, { stream: boolean }>();
    let stopping = false;
    const log = options.logRequests;
    const idlePoller = new IdlePoller({ maxUs: idlePollUs });
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      const stream = isStreamingRead(request);
      inFlight.set(response, { stream });
      if (!stream) idlePoller.requestStarted();
      if (stopping) response.setHeader("connection", "close");
      const started = performance.now();
      log?.(`-> ${request.method} ${request.url}`);
      response.once("close", () => {
        if (!stream) idlePoller.requestEnded();
        if (log) {
          const ms = Math.round(performance.now() - started);
          const cut = response.writableFinished ? "" : " (connection closed before the response ended)";
          log(`<- ${response.statusCode} ${request.method} ${request.url} ${ms} ms${cut}`);
        }
        inFlight.delete(response);
        // A connection whose last response just ended is idle now: close it, so close() completes.
        if (stopping) setImmediate(() => server.closeIdleConnections());
      });
    });

    const port = await listen(server, options.port ?? DEFAULT_PORT, host);
    const maintenance =
      options.maintenance &&
      startMaintenance(
        options.maintenance,
        objects,
        objectStore.store instanceof PackedObjectStore ? objectStore.store : undefined,
        metadata,
        engine,
        metrics,
        options.logger,
      );
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        stopping = true;
        idlePoller.stop();
        const closed = new Promise<void>((done) => server.close(() => done()));
        for (const response of inFlight.keys()) {
          if (!response.headersSent) response.setHeader("connection", "close");
        }
        server.closeIdleConnections();
        shutdown.abort();
        const streamTimer = setTimeout(() => {
          for (const [response, { stream }] of inFlight) if (stream) response.destroy();
        }, streamGraceMs);
        const forceTimer = setTimeout(() => server.closeAllConnections(), shutdownTimeoutMs);
        try {
          await closed;
          await maintenance?.stop();
        } finally {
          clearTimeout(streamTimer);
          clearTimeout(forceTimer);
          // Runners finish their calls in flight, commit them and let go of their leases first.
          await processors.stop().catch(() => undefined);
          sqlite.close();
          objectStore?.close();
        }
      })();
      return closing;
    };

    return {
      url,
      port,
      host,
      clusterId,
      dataDir,
      engine,
      ...(maintenance ? { maintenance } : {}),
      processors,
      httpServer: server,
      idlePoller,
      get clientDisconnects() {
        return clientDisconnects;
      },
      ...(prometheus ? { metrics: prometheus } : {}),
      close,
    };
  } catch (error) {
    await started?.stop().catch(() => undefined);
    sqlite.close();
    objectStore?.close();
    throw error;
  }
}

function startMaintenance(
  options: NonNullable<ServerOptions["maintenance"]>,
  objects: ObjectStore,
  packed: PackedObjectStore | undefined,
  metadata: MetadataStore,
  engine: Engine,
  metrics: Metrics,
  logger: Logger | undefined,
): MaintenanceSchedule {
  const runner = new MaintenanceRunner({
    objects,
    metadata,
    clock: engine.clock,
    metrics,
    ...(options.settings ? { settings: options.settings } : {}),
  });
  const logError = (message: string, details: Record<string, unknown>) =>
    logger ? logger.error(message, details) : console.error(message, details);
  return startMaintenanceSchedule({
    runner,
    clock: engine.clock,
    intervalMs: options.intervalMs,
    onReport: (report) => {
      for (const failure of report.failures) {
        logError("maintenance job failed", {
          job: failure.job,
          topic: failure.topic,
          ...(failure.partition === undefined ? {} : { partition: failure.partition }),
          error: failure.error instanceof Error ? failure.error.message : String(failure.error),
        });
      }
      options.onReport?.(report);
    },
    onError: (error) =>
      logError("maintenance run failed", { error: error instanceof Error ? error.message : String(error) }),
    ...(packed ? { afterRun: async () => options.onReclaim?.(await packed.reclaimSegments()) } : {}),
  });
}

/** Long-polls (timeout_ms > 0) and event streams: they wait, so shutdown ends them rather than waiting. */
function isStreamingRead(request: IncomingMessage): boolean {
  if (request.method !== "GET" || !request.url?.includes("/records")) return false;
  if (request.headers.accept?.includes("text/event-stream")) return true;
  return /[?&]timeout_ms=0*[1-9]/.test(request.url);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      if (error.code === "EADDRINUSE")
        reject(new Error(`port ${port} on ${host} is already in use (set PORT)`));
      else if (error.code === "EACCES") reject(new Error(`no permission to listen on ${host}:${port}`));
      else reject(error);
    };
    const onListening = () => {
      server.off("error", onError);
      resolvePort((server.address() as AddressInfo).port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}
