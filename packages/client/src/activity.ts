/** What a partition did over the server's recent window (the `activity` of a partition resource). */
export interface PartitionActivity {
  /** The window the rates cover, in seconds (the last 10 s, less while the server is younger). */
  windowSeconds: number;
  recordsInPerSecond: number;
  bytesInPerSecond: number;
  recordsOutPerSecond: number;
  bytesOutPerSecond: number;
}

/** What a topic did over the server's recent window, as the answering process saw it. */
export interface TopicActivity extends PartitionActivity {
  errors: number;
  errorsPerSecond: number;
  /** null without appends in the window. */
  produceLatencyP99Ms: number | null;
  /** null without fetches in the window. */
  fetchLatencyP99Ms: number | null;
}

type Json = Record<string, unknown>;

const num = (value: unknown) => Number(value ?? 0);
const numOrNull = (value: unknown) => (value === null || value === undefined ? null : Number(value));

export function toPartitionActivity(body: unknown): PartitionActivity | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const json = body as Json;
  return {
    windowSeconds: num(json.window_seconds),
    recordsInPerSecond: num(json.records_in_per_second),
    bytesInPerSecond: num(json.bytes_in_per_second),
    recordsOutPerSecond: num(json.records_out_per_second),
    bytesOutPerSecond: num(json.bytes_out_per_second),
  };
}

export function toTopicActivity(body: unknown): TopicActivity | undefined {
  const rates = toPartitionActivity(body);
  if (!rates) return undefined;
  const json = body as Json;
  return {
    ...rates,
    errors: num(json.errors),
    errorsPerSecond: num(json.errors_per_second),
    produceLatencyP99Ms: numOrNull(json.produce_latency_p99_ms),
    fetchLatencyP99Ms: numOrNull(json.fetch_latency_p99_ms),
  };
}
