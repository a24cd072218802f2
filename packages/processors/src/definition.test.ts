import { InvalidArgumentError } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { parseProcessorJson, toProcessorJson } from "./definition.js";
import { compileFilter } from "./filter.js";

const base = {
  name: "enrich",
  topics: ["orders"],
  handler: { type: "webhook", url: "http://127.0.0.1:9000/hook" },
};

function fieldOf(json: unknown): string | undefined {
  try {
    parseProcessorJson(json);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as InvalidArgumentError).details.field as string;
  }
}

describe("a processor definition", () => {
  it("fills in the defaults and round-trips through its JSON shape", () => {
    const spec = parseProcessorJson(base);
    expect(spec).toMatchObject({
      batchRecords: 100,
      batchBytes: 1024 * 1024,
      batchWindowMs: 0,
      startingPosition: { kind: "latest" },
      retry: {
        maxAttempts: 3,
        backoffMs: 1_000,
        maxBackoffMs: 60_000,
        maxRecordAgeMs: null,
        timeoutMs: 30_000,
      },
      bisectOnError: false,
      deadLetterTopic: null,
      outputTopics: [],
      ordering: { kind: "partition" },
    });
    expect(parseProcessorJson(toProcessorJson(spec))).toEqual(spec);
    const keyed = parseProcessorJson({
      ...base,
      ordering: "KEY",
      starting_position: "AT_TIMESTAMP",
      starting_timestamp: "2024-05-01T00:00:00Z",
    });
    expect(keyed.ordering).toEqual({ kind: "key", parallelism: 4 });
    expect(keyed.startingPosition).toEqual({
      kind: "timestamp",
      timestampMs: Date.parse("2024-05-01T00:00:00Z"),
    });
  });

  it.each([
    [{ ...base, name: "has space" }, "name"],
    [{ ...base, topics: [] }, "topics"],
    [{ ...base, topics: ["orders", "orders"] }, "topics"],
    [{ ...base, topics: ["bad/name"] }, "topics[0]"],
    [{ ...base, handler: { type: "ftp" } }, "handler.type"],
    [{ ...base, handler: { type: "webhook", url: "file:///etc/passwd" } }, "handler.url"],
    [
      { ...base, handler: { type: "webhook", url: "http://x", headers: { "bad header": "v" } } },
      "handler.headers.bad header",
    ],
    [{ ...base, handler: { type: "lambda", function_name: "not a name!" } }, "handler.function_name"],
    [
      { ...base, handler: { type: "lambda", function_name: "f" }, batch_max_bytes: 5 * 1024 * 1024 },
      "batch_max_bytes",
    ],
    [{ ...base, batch_size: 0 }, "batch_size"],
    [{ ...base, batch_size: 10_001 }, "batch_size"],
    [{ ...base, batch_size: 1.5 }, "batch_size"],
    [{ ...base, batch_window_ms: 300_001 }, "batch_window_ms"],
    [{ ...base, starting_position: "NOW" }, "starting_position"],
    [{ ...base, starting_position: "AT_TIMESTAMP" }, "starting_timestamp"],
    [{ ...base, starting_timestamp: 5 }, "starting_timestamp"],
    [{ ...base, retry: { max_attempts: 0 } }, "retry.max_attempts"],
    [{ ...base, retry: { backoff_ms: 5_000, max_backoff_ms: 1_000 } }, "retry.max_backoff_ms"],
    [{ ...base, retry: { max_record_age_ms: 10 } }, "retry.max_record_age_ms"],
    [{ ...base, retry: { timeout_ms: 900_001 } }, "retry.timeout_ms"],
    [{ ...base, retry: { tries: 3 } }, "retry.tries"],
    [{ ...base, ordering: "PARTITION", parallelism: 4 }, "parallelism"],
    [{ ...base, ordering: "KEY", parallelism: 101 }, "parallelism"],
    [{ ...base, ordering: "RANDOM" }, "ordering"],
    [{ ...base, output_topics: ["orders"] }, "output_topics[0]"],
    [{ ...base, dead_letter_topic: "orders" }, "dead_letter_topic"],
    [{ ...base, output_topics: ["x"], dead_letter_topic: "x" }, "dead_letter_topic"],
    [{ ...base, filter: {} }, "filter"],
    [{ ...base, filter: { value: { "a..b": 1 } } }, "filter.value.a..b"],
    [{ ...base, filter: { key: { regex: "x" } } }, "filter.key"],
    [{ ...base, filter: { key: { any_of: [] } } }, "filter.key.any_of"],
    [{ ...base, bisect_on_error: "yes" }, "bisect_on_error"],
    [{ ...base, colour: "blue" }, "colour"],
  ])("refuses %j naming %s", (json, field) => {
    expect(fieldOf(json)).toBe(field);
  });
});

describe("a filter", () => {
  const encoder = new TextEncoder();
  const record = (key: string | null, value: string | null, headers: Record<string, string> = {}) => ({
    key: key === null ? null : encoder.encode(key),
    value: value === null ? null : encoder.encode(value),
    headers: Object.entries(headers).map(([name, text]) => ({ key: name, value: encoder.encode(text) })),
  });
  const passes = (filter: unknown, candidate: ReturnType<typeof record>) =>
    compileFilter(parseProcessorJson({ ...base, filter }).filter)(candidate);

  it("matches keys, headers and JSON value fields; every condition must hold", () => {
    expect(passes({ key: { prefix: "eu-" } }, record("eu-7", "x"))).toBe(true);
    expect(passes({ key: { prefix: "eu-" } }, record("us-7", "x"))).toBe(false);
    expect(passes({ key: { exists: false } }, record(null, "x"))).toBe(true);
    expect(passes({ headers: { source: "web" } }, record(null, "x", { source: "web" }))).toBe(true);
    expect(passes({ headers: { source: { exists: true } } }, record(null, "x"))).toBe(false);
    const order = JSON.stringify({ kind: "order", customer: { tier: "gold" }, total: 12 });
    expect(
      passes(
        { value: { kind: "order", "customer.tier": { any_of: ["gold", "silver"] } } },
        record(null, order),
      ),
    ).toBe(true);
    expect(passes({ value: { kind: "order", total: 13 } }, record(null, order))).toBe(false);
    expect(passes({ value: { "customer.name": { exists: false } } }, record(null, order))).toBe(true);
    expect(passes({ value: { kind: "order" } }, record(null, "not json"))).toBe(false);
    expect(passes({ value: { kind: "order" } }, record(null, null))).toBe(false);
  });
});
