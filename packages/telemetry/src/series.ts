import type { CounterSeries, GaugeSeries, HistogramSeries, Series } from "./metrics.js";

/**
 * Every series Sluice records, in one place (docs/operations.md lists them; a test keeps the two
 * in step). Names follow Prometheus' conventions — `sluice_` prefix, base units, `_total` on
 * counters — and each says how CloudWatch sees it. Capabilities record into these; none defines
 * its own.
 */

/** Request and storage latencies: 0.5 ms (memory, a cached SQLite read) to 30 s (a slow S3 tail). */
export const LATENCY_SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/** Handler calls of processors run longer: up to Lambda's 15 minutes. */
export const HANDLER_SECONDS_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
] as const;

/** Records per append: one record to the 10,000 an append may hold. */
export const RECORD_COUNT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000] as const;

/** Bytes per append: 64 B to 16 MiB, by powers of four. */
export const SIZE_BYTES_BUCKETS = [
  64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216,
] as const;

// ---- Produce (the engine: every append, whichever route or caller made it) ----

export const produceRequests: CounterSeries<"topic"> = {
  kind: "counter",
  name: "sluice_produce_requests_total",
  help: "Produce calls to the engine (one per append, or per chunked append; concurrent HTTP requests joined into one append count once), acknowledged or not.",
  unit: "requests",
  labels: ["topic"],
  cloudwatch: { metric: "ProduceRequests", dimensions: [["topic"], []] },
};

export const produceRecords: CounterSeries<"topic" | "partition"> = {
  kind: "counter",
  name: "sluice_produce_records_total",
  help: "Records acknowledged (committed, not retries answered from an earlier commit).",
  unit: "records",
  labels: ["topic", "partition"],
  cloudwatch: { metric: "ProduceRecords", dimensions: [["topic"], []] },
};

export const produceBytes: CounterSeries<"topic" | "partition"> = {
  kind: "counter",
  name: "sluice_produce_bytes_total",
  help: "Record bytes acknowledged: each record's key, value, and header names and values.",
  unit: "bytes",
  labels: ["topic", "partition"],
  cloudwatch: { metric: "ProduceBytes", dimensions: [["topic"], []] },
};

export const produceLatency: HistogramSeries<"topic"> = {
  kind: "histogram",
  name: "sluice_produce_latency_seconds",
  help: "Acknowledgement latency: from the engine taking an append to its records being durable (upload and commit), successful appends only.",
  unit: "seconds",
  labels: ["topic"],
  buckets: LATENCY_SECONDS_BUCKETS,
  cloudwatch: { metric: "ProduceLatency", dimensions: [["topic"], []] },
};

export const produceBatchRecords: HistogramSeries<"topic"> = {
  kind: "histogram",
  name: "sluice_produce_batch_records",
  help: "Records per acknowledged append: how well producers batch.",
  unit: "records",
  labels: ["topic"],
  buckets: RECORD_COUNT_BUCKETS,
  cloudwatch: { metric: "ProduceBatchRecords", dimensions: [["topic"]] },
};

export const produceBatchBytes: HistogramSeries<"topic"> = {
  kind: "histogram",
  name: "sluice_produce_batch_bytes",
  help: "Record bytes per acknowledged append.",
  unit: "bytes",
  labels: ["topic"],
  buckets: SIZE_BYTES_BUCKETS,
  cloudwatch: { metric: "ProduceBatchBytes", dimensions: [["topic"]] },
};

// ---- Fetch (the engine: JSON, binary and long-poll reads, v2 consumers) ----

export const fetchRequests: CounterSeries<"topic" | "partition"> = {
  kind: "counter",
  name: "sluice_fetch_requests_total",
  help: "Fetch calls to the engine, answered or not (a long-poll counts once, when it reads).",
  unit: "requests",
  labels: ["topic", "partition"],
  cloudwatch: { metric: "FetchRequests", dimensions: [["topic"], []] },
};

export const fetchRecords: CounterSeries<"topic" | "partition"> = {
  kind: "counter",
  name: "sluice_fetch_records_total",
  help: "Records handed to readers, from the offset asked.",
  unit: "records",
  labels: ["topic", "partition"],
  cloudwatch: { metric: "FetchRecords", dimensions: [["topic"], []] },
};

export const fetchBytes: CounterSeries<"topic" | "partition"> = {
  kind: "counter",
  name: "sluice_fetch_bytes_total",
  help: "Record bytes handed to readers (key, value, headers); a compressed batch read as bytes counts its stored records section.",
  unit: "bytes",
  labels: ["topic", "partition"],
  cloudwatch: { metric: "FetchBytes", dimensions: [["topic"], []] },
};

export const fetchLatency: HistogramSeries<"topic"> = {
  kind: "histogram",
  name: "sluice_fetch_latency_seconds",
  help: "Time the engine spends reading the log for a fetch that answered (index, objects, checks); a long-poll's wait is not included.",
  unit: "seconds",
  labels: ["topic"],
  buckets: LATENCY_SECONDS_BUCKETS,
  cloudwatch: { metric: "FetchLatency", dimensions: [["topic"], []] },
};

// ---- HTTP (the apps: one middleware and the one error boundary) ----

export const httpRequests: CounterSeries<"method" | "route" | "status"> = {
  kind: "counter",
  name: "sluice_http_requests_total",
  help: "HTTP requests answered, by method, route pattern and status.",
  unit: "requests",
  labels: ["method", "route", "status"],
  cloudwatch: { metric: "HttpRequests", dimensions: [[]] },
};

export const httpRequestDuration: HistogramSeries<"method" | "route"> = {
  kind: "histogram",
  name: "sluice_http_request_duration_seconds",
  help: "From the request reaching the app to its response being ready (a stream: its headers).",
  unit: "seconds",
  labels: ["method", "route"],
  buckets: LATENCY_SECONDS_BUCKETS,
  cloudwatch: { metric: "HttpRequestDuration", dimensions: [[]] },
};

export const httpErrors: CounterSeries<"status" | "class" | "code" | "topic"> = {
  kind: "counter",
  name: "sluice_http_errors_total",
  help: "Errors answered: error responses, and rejected records inside a 200 or 207 produce answer. code is the body's code when it has one, else its error_code; class is client (4xx) or server (5xx); topic is empty when the path names none.",
  unit: "count",
  labels: ["status", "class", "code", "topic"],
  cloudwatch: { metric: "HttpErrors", dimensions: [["class"], ["class", "topic"], ["status", "code"]] },
};

// ---- Storage (metered wrappers around each port, wired by the entry points) ----

export const storageRequests: CounterSeries<"backend" | "operation" | "result"> = {
  kind: "counter",
  name: "sluice_storage_requests_total",
  help: "Calls to a storage port. backend: s3, dynamodb, filesystem, sqlite or memory; result: ok, or the error's kind (conflict is a condition that did not hold, which the protocols expect).",
  unit: "requests",
  labels: ["backend", "operation", "result"],
  cloudwatch: {
    metric: "StorageRequests",
    dimensions: [
      ["backend", "operation"],
      ["backend", "result"],
    ],
  },
};

export const storageLatency: HistogramSeries<"backend" | "operation"> = {
  kind: "histogram",
  name: "sluice_storage_latency_seconds",
  help: "Latency of calls to a storage port, failed ones included.",
  unit: "seconds",
  labels: ["backend", "operation"],
  buckets: LATENCY_SECONDS_BUCKETS,
  cloudwatch: { metric: "StorageLatency", dimensions: [["backend", "operation"]] },
};

// ---- Consumer groups (read from the store when collected: a scrape, a scheduled run) ----

export const consumerGroupLagRecords: GaugeSeries<"group" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_consumer_group_lag_records",
  help: "High watermark minus the committed offset (from the log start when nothing is committed).",
  unit: "records",
  labels: ["group", "topic", "partition"],
  cloudwatch: {
    metric: "ConsumerGroupLagRecords",
    dimensions: [["group", "topic"], ["group"], []],
    gaugeAggregate: "sum",
  },
};

export const consumerGroupLagSeconds: GaugeSeries<"group" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_consumer_group_lag_seconds",
  help: "Age of the oldest unconsumed record (now minus its timestamp); 0 when the group has read everything.",
  unit: "seconds",
  labels: ["group", "topic", "partition"],
  cloudwatch: {
    metric: "ConsumerGroupLagSeconds",
    dimensions: [["group", "topic"], ["group"], []],
    gaugeAggregate: "max",
  },
};

// ---- Processors (packages/processors records these) ----

export const processorRecordsProcessed: CounterSeries<"processor" | "topic" | "partition"> = {
  kind: "counter",
  name: "sluice_processor_records_processed_total",
  help: "Source records done: their outputs committed (filtered-out records included).",
  unit: "records",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorRecordsProcessed", dimensions: [["processor"], []] },
};

export const processorFailures: CounterSeries<"processor" | "topic" | "partition"> = {
  kind: "counter",
  name: "sluice_processor_failures_total",
  help: "Handler calls that failed: thrown, timed out, malformed result, non-2xx webhook, or named failures.",
  unit: "count",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorFailures", dimensions: [["processor"], []] },
};

export const processorRetries: CounterSeries<"processor" | "topic" | "partition"> = {
  kind: "counter",
  name: "sluice_processor_retries_total",
  help: "Retry attempts scheduled (each failed attempt of a blocked key's first record).",
  unit: "count",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorRetries", dimensions: [["processor"], []] },
};

export const processorDeadLettered: CounterSeries<"processor" | "topic" | "partition"> = {
  kind: "counter",
  name: "sluice_processor_dead_lettered_total",
  help: "Records given up on: written to the dead-letter topic, or only counted when there is none.",
  unit: "records",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorDeadLettered", dimensions: [["processor"], []] },
};

export const processorIteratorAge: GaugeSeries<"processor" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_processor_iterator_age_seconds",
  help: "Age of the last record of the last batch handed to the handler, when it was handed (Lambda's IteratorAge).",
  unit: "seconds",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorIteratorAge", dimensions: [["processor"]], gaugeAggregate: "max" },
};

export const processorLagRecords: GaugeSeries<"processor" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_processor_lag_records",
  help: "High watermark minus the checkpoint of a source partition.",
  unit: "records",
  labels: ["processor", "topic", "partition"],
  cloudwatch: { metric: "ProcessorLagRecords", dimensions: [["processor"]], gaugeAggregate: "sum" },
};

export const processorHandlerDuration: HistogramSeries<"processor"> = {
  kind: "histogram",
  name: "sluice_processor_handler_duration_seconds",
  help: "Duration of handler calls, failed ones included.",
  unit: "seconds",
  labels: ["processor"],
  buckets: HANDLER_SECONDS_BUCKETS,
  cloudwatch: { metric: "ProcessorHandlerDuration", dimensions: [["processor"]] },
};

// ---- Share groups (packages/queues records these) ----

export const shareGroupRecordsInFlight: GaugeSeries<"group" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_share_group_records_in_flight",
  help: "Records acquired by a member and not yet acknowledged, released or past their lock.",
  unit: "records",
  labels: ["group", "topic", "partition"],
  cloudwatch: {
    metric: "ShareGroupRecordsInFlight",
    dimensions: [["group", "topic"], ["group"]],
    gaugeAggregate: "sum",
  },
};

export const shareGroupRecordsAcquired: CounterSeries<"group" | "topic"> = {
  kind: "counter",
  name: "sluice_share_group_records_acquired_total",
  help: "Records handed to members (each delivery counts, redeliveries included).",
  unit: "records",
  labels: ["group", "topic"],
  cloudwatch: { metric: "ShareGroupRecordsAcquired", dimensions: [["group"]] },
};

export const shareGroupRecordsAcknowledged: CounterSeries<"group" | "topic" | "type"> = {
  kind: "counter",
  name: "sluice_share_group_records_acknowledged_total",
  help: "Acknowledgements applied, by type: accept, release, reject, renew.",
  unit: "records",
  labels: ["group", "topic", "type"],
  cloudwatch: { metric: "ShareGroupRecordsAcknowledged", dimensions: [["group", "type"]] },
};

export const shareGroupRecordsArchived: CounterSeries<"group" | "topic" | "reason"> = {
  kind: "counter",
  name: "sluice_share_group_records_archived_total",
  help: "Records settled without being accepted. reason: delivery-count-limit or rejected.",
  unit: "records",
  labels: ["group", "topic", "reason"],
  cloudwatch: { metric: "ShareGroupRecordsArchived", dimensions: [["group"], []] },
};

export const shareGroupDeadLettered: CounterSeries<"group" | "topic"> = {
  kind: "counter",
  name: "sluice_share_group_dead_lettered_total",
  help: "Archived records appended to the group's dead-letter topic.",
  unit: "records",
  labels: ["group", "topic"],
  cloudwatch: { metric: "ShareGroupDeadLettered", dimensions: [["group"], []] },
};

export const shareGroupLagRecords: GaugeSeries<"group" | "topic" | "partition"> = {
  kind: "gauge",
  name: "sluice_share_group_lag_records",
  help: "Records from the share-partition's start offset to the high watermark not yet settled.",
  unit: "records",
  labels: ["group", "topic", "partition"],
  cloudwatch: {
    metric: "ShareGroupLagRecords",
    dimensions: [["group", "topic"], ["group"]],
    gaugeAggregate: "sum",
  },
};

// ---- Maintenance (packages/maintenance records these) ----

export const maintenanceRuns: CounterSeries<"job" | "result"> = {
  kind: "counter",
  name: "sluice_maintenance_runs_total",
  help: "Maintenance job runs (retention, compaction, key-compaction, gc, purge, time-index), by result: ok, skipped (lease held elsewhere) or error.",
  unit: "count",
  labels: ["job", "result"],
  cloudwatch: { metric: "MaintenanceRuns", dimensions: [["job", "result"]] },
};

export const maintenanceBytesReclaimed: CounterSeries<"job" | "topic"> = {
  kind: "counter",
  name: "sluice_maintenance_reclaimed_bytes_total",
  help: "Object bytes deleted from the object store by a job.",
  unit: "bytes",
  labels: ["job", "topic"],
  cloudwatch: { metric: "MaintenanceBytesReclaimed", dimensions: [["job"], []] },
};

export const maintenanceRecordsRemoved: CounterSeries<"job" | "topic"> = {
  kind: "counter",
  name: "sluice_maintenance_records_removed_total",
  help: "Records no reader can see any more: expired by retention, replaced by key compaction.",
  unit: "records",
  labels: ["job", "topic"],
  cloudwatch: { metric: "MaintenanceRecordsRemoved", dimensions: [["job"]] },
};

export const maintenanceRunDuration: HistogramSeries<"job"> = {
  kind: "histogram",
  name: "sluice_maintenance_run_duration_seconds",
  help: "Duration of maintenance job runs.",
  unit: "seconds",
  labels: ["job"],
  buckets: HANDLER_SECONDS_BUCKETS,
  cloudwatch: { metric: "MaintenanceRunDuration", dimensions: [["job"]] },
};

/** Collectors that failed during a Prometheus scrape or a scheduled collection (lag read from a store that was down). */
export const telemetryCollectFailures: CounterSeries<"collector"> = {
  kind: "counter",
  name: "sluice_telemetry_collect_failures_total",
  help: "Collections of state-read series (lag) that failed; their gauges keep the last values read.",
  unit: "count",
  labels: ["collector"],
  cloudwatch: { metric: "TelemetryCollectFailures", dimensions: [["collector"]] },
};

/** The catalogue, in the order docs/operations.md lists it. */
export const ALL_SERIES: readonly Series[] = [
  produceRequests,
  produceRecords,
  produceBytes,
  produceLatency,
  produceBatchRecords,
  produceBatchBytes,
  fetchRequests,
  fetchRecords,
  fetchBytes,
  fetchLatency,
  httpRequests,
  httpRequestDuration,
  httpErrors,
  storageRequests,
  storageLatency,
  consumerGroupLagRecords,
  consumerGroupLagSeconds,
  processorRecordsProcessed,
  processorFailures,
  processorRetries,
  processorDeadLettered,
  processorIteratorAge,
  processorLagRecords,
  processorHandlerDuration,
  shareGroupRecordsInFlight,
  shareGroupRecordsAcquired,
  shareGroupRecordsAcknowledged,
  shareGroupRecordsArchived,
  shareGroupDeadLettered,
  shareGroupLagRecords,
  maintenanceRuns,
  maintenanceBytesReclaimed,
  maintenanceRecordsRemoved,
  maintenanceRunDuration,
  telemetryCollectFailures,
] as Series[];

/** The CloudWatch namespace of every Sluice metric. */
export const CLOUDWATCH_NAMESPACE = "Sluice";
