import { Engine, type Topic } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { FastRecordPreparer } from "./produce-fast-path.js";
import { type PreparedRecord, prepareRecord } from "./produce-records.js";
import { comparable } from "./produce-records.test-support.js";

let topic: Topic;
let roomy: Topic;
/** Compacted: every record needs a key. */
let keyed: Topic;

beforeAll(async () => {
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() });
  topic = await engine.createTopic({ name: "t", partitions: 3, configs: { "max.message.bytes": "64" } });
  roomy = await engine.createTopic({
    name: "roomy",
    partitions: 1,
    configs: { "max.message.bytes": "1048576" },
  });
  keyed = await engine.createTopic({
    name: "keyed",
    partitions: 4,
    configs: { "max.message.bytes": "64", "cleanup.policy": "compact" },
  });
});

/** Values near every edge the two paths must agree on. */
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.constantFrom("\uD800", "a\uDC00b", "😀", "x".repeat(70), ""),
);
const jsonValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, 0, -1.5, "", [[[1]]], { a: { b: [] } }),
);
const base64 = fc.oneof(
  fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes).toString("base64")),
  fc.constantFrom("not base64", "QQ", "QR==", "QUI=", "", "a b=", "-_=="),
);
const data = fc.oneof(
  fc.record({ type: fc.constant("STRING"), data: fc.oneof(text, fc.integer()) }),
  fc.record({ type: fc.constant("JSON"), data: jsonValue }),
  fc.record({ type: fc.constant("BINARY"), data: fc.oneof(base64, fc.constant(7)) }),
  fc.record({ type: fc.constantFrom("TEXT", "string", 3), data: text }),
  fc.record({ type: fc.constant("STRING") }),
  fc.record({ type: fc.constant("STRING"), data: text, extra: fc.constant(1) }),
  fc.constantFrom(null, "raw", 5, [], { type: "JSON", data: null }),
);
/** Header lists: the common shapes, and each way off them the full check refuses or words. */
const header = fc.oneof(
  fc.record({ name: text, value: fc.oneof(base64, fc.constant(null)) }),
  fc.record({ name: fc.string({ maxLength: 8 }) }),
  fc.record({ value: base64, name: fc.string({ maxLength: 8 }) }),
  fc.constantFrom(
    { name: "h", value: 5 },
    { name: 5, value: "YQ==" },
    { value: "YQ==" },
    { name: "h", value: "YQ==", extra: 1 },
    { name: "x".repeat(70), value: null },
    null,
    "h",
  ),
);
const headers = fc.oneof(
  fc.constant([]),
  fc.array(header, { maxLength: 3 }),
  fc.constantFrom("no", null, { name: "h" }),
);
const record = fc.record(
  {
    key: data,
    value: data,
    partition_id: fc.oneof(fc.integer({ min: -1, max: 4 }), fc.constantFrom(1.5, "1", 2 ** 31)),
    timestamp: fc.oneof(
      fc.integer({ min: -1, max: 2 ** 53 }),
      fc.constantFrom("2024-05-01T12:00:00Z", "1714564800000", 1.5, 8_640_000_000_000_001),
    ),
    headers: headers,
    vaule: fc.constant("typo"),
  },
  { requiredKeys: [] },
);

/** Records that are mostly of the common shapes, with one field at a time off the edge. */
const usual = fc.record(
  {
    key: fc.oneof(
      fc.constant(null),
      fc.record({ type: fc.constant("STRING"), data: fc.string({ maxLength: 12 }) }),
      data,
    ),
    value: fc.oneof(
      fc.record({ type: fc.constant("STRING"), data: text }),
      fc.record({ type: fc.constant("JSON"), data: jsonValue }),
      fc.record({ type: fc.constant("BINARY"), data: base64 }),
    ),
    partition_id: fc.integer({ min: 0, max: 3 }),
    timestamp: fc.oneof(fc.integer({ min: 0, max: 2 ** 50 }), fc.constant(-5)),
    headers: fc.oneof(
      fc.constant([]),
      fc.array(
        fc.oneof(
          { arbitrary: fc.record({ name: fc.string({ maxLength: 8 }), value: base64 }), weight: 3 },
          { arbitrary: header, weight: 1 },
        ),
        { maxLength: 2 },
      ),
    ),
  },
  { requiredKeys: ["value"] },
);

describe("the JSON produce fast path", () => {
  it("accepts only what prepareRecord accepts, and prepares it to the same bytes", () => {
    let fast = 0;
    let withHeaders = 0;
    fc.assert(
      fc.property(fc.oneof(record, usual), fc.boolean(), (input, compacted) => {
        const target = compacted ? keyed : topic;
        const preparer = new FastRecordPreparer(target);
        const quick = preparer.prepare(input);
        let full: PreparedRecord | undefined;
        try {
          full = prepareRecord(input, "record 0", target);
        } catch {
          full = undefined;
        }
        if (quick === undefined) return; // the slow path decides, as before
        fast++;
        if ((quick.record.headers ?? []).length > 0) withHeaders++;
        expect(full, JSON.stringify(input)).toBeDefined();
        expect(comparable(quick)).toEqual(comparable(full!));
      }),
      { numRuns: 3_000 },
    );
    // The generator reaches the fast path often enough for the comparison to mean something.
    expect(fast).toBeGreaterThan(100);
    expect(withHeaders).toBeGreaterThan(15);
  });

  it("keeps every record's bytes as they were prepared, across requests and filled buffers", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: "grapheme", maxLength: 40 }),
            fc.integer({ min: 1, max: 30_000 }).map((length) => "é".repeat(length)),
            fc.integer({ min: 20_000, max: 70_000 }).map((length) => "z".repeat(length)),
          ),
          { minLength: 1, maxLength: 40 },
        ),
        (texts) => {
          // One preparer per request, as the routes make them; all records kept until the end.
          const kept = texts.map((data) =>
            new FastRecordPreparer(roomy).prepare({ value: { type: "STRING", data } }),
          );
          kept.forEach((prepared, index) => {
            expect(Buffer.from(prepared!.record.value!).toString("utf8")).toBe(texts[index]);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it("takes the common shapes", () => {
    const preparer = new FastRecordPreparer(topic);
    for (const input of [
      { value: { type: "STRING", data: "hello" } },
      { key: { type: "STRING", data: "k" }, value: { type: "JSON", data: { a: [1, 2] } }, partition_id: 2 },
      { value: { type: "BINARY", data: "AAEC" }, timestamp: 1_714_564_800_000, headers: [] },
      { value: null, headers: [{ name: "trace", value: "YWJj" }, { name: "é", value: null }, { name: "n" }] },
      { key: null, value: null },
      {},
    ]) {
      expect(preparer.prepare(input), JSON.stringify(input)).toBeDefined();
    }
  });
});
