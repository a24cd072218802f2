import { Engine, type Topic } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { FastRecordPreparer } from "./produce-fast-path.js";
import { type ScannedData, type ScannedRecord, scanRecord } from "./produce-record-scanner.js";
import { type PreparedRecord, prepareRecord } from "./produce-records.js";

let topic: Topic;

beforeAll(async () => {
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() });
  topic = await engine.createTopic({ name: "t", partitions: 3, configs: { "max.message.bytes": "64" } });
});

const utf8 = new TextEncoder();

/** JSON whitespace, mostly none. */
const space = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(" ", "\n", "\r", "\t"), maxLength: 3 }) },
);

/** A JSON text for a value: mostly JSON.stringify's, sometimes a number written another valid way. */
const numberText = fc.oneof(
  fc.integer({ min: -2, max: 4 }).map(String),
  fc.constantFrom(
    "0",
    "1.0",
    "1e0",
    "2E1",
    "-0",
    "10",
    "123456789012345",
    "1234567890123456",
    "9007199254740993",
  ),
  fc.integer({ min: 0, max: 2 ** 50 }).map(String),
);
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.constantFrom("", 'a"b', "back\\slash", "tab\there", "x".repeat(70), "\u007f", "é", "\uD800", "/"),
);
const base64 = fc.oneof(
  fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes).toString("base64")),
  fc.constantFrom("not base64", "QQ", "QR==", "QUI=", "", "-_=="),
);

/** `{type, data}` written with its members in either order, whitespace, and sometimes a third. */
const dataText = fc
  .record({
    type: fc.constantFrom("STRING", "BINARY", "JSON", "string", "STRING\u0000"),
    data: fc.oneof(text, base64, fc.constantFrom(5, null, { a: 1 })),
    typeFirst: fc.boolean(),
    extra: fc.option(fc.constantFrom('"x":1', '"type":"STRING"', '"data":"d"'), { freq: 6 }),
    gaps: fc.array(space, { minLength: 6, maxLength: 6 }),
  })
  .map(({ type, data, typeFirst, extra, gaps }) => {
    const members = [
      `"type"${gaps[0]}:${gaps[1]}${JSON.stringify(type)}`,
      `"data":${gaps[2]}${JSON.stringify(data)}`,
    ];
    if (!typeFirst) members.reverse();
    if (extra) members.push(extra);
    return `{${gaps[3]}${members.join(`${gaps[4]},`)}${gaps[5]}}`;
  });

const memberText = fc.oneof(
  fc.tuple(fc.constantFrom("key", "value"), fc.oneof(dataText, fc.constantFrom("null", '"raw"', "5", "[]"))),
  fc.tuple(
    fc.constantFrom("partition_id", "timestamp"),
    fc.oneof(numberText, fc.constantFrom('"1"', "null")),
  ),
  fc.tuple(fc.constant("headers"), fc.constantFrom("[]", "[ ]", '[{"name":"h","value":"YQ=="}]', '"no"')),
  fc.tuple(fc.constantFrom("vaule", "Key", "val\\u0075e", "valué"), fc.constant('"x"')),
);

/** Records written as JSON text, most of them of the usual shape. */
const recordText = fc
  .record({
    members: fc.array(memberText, { maxLength: 5 }),
    gaps: fc.array(space, { minLength: 4, maxLength: 4 }),
  })
  .map(({ members, gaps }) => {
    const written = members.map(([name, value]) => `"${name}"${gaps[0]}:${gaps[1]}${value}`);
    return `${gaps[2]}{${written.join(`,${gaps[3]}`)}}${gaps[2]}`;
  });

/** The usual shape, so the comparison sees the scanner's answers often. */
const usualText = fc
  .record({
    key: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    value: fc.oneof(fc.string({ maxLength: 40 }), base64),
    binary: fc.boolean(),
    partition: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    timestamp: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
  })
  .map(({ key, value, binary, partition, timestamp }) =>
    JSON.stringify({
      ...(key === undefined ? {} : { key: { type: "STRING", data: key } }),
      value: { type: binary ? "BINARY" : "STRING", data: value },
      ...(partition === undefined ? {} : { partition_id: partition }),
      ...(timestamp === undefined ? {} : { timestamp }),
    }),
  );

function comparable(prepared: PreparedRecord) {
  const bytes = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("hex"));
  return {
    key: prepared.key,
    value: prepared.value,
    record: {
      key: bytes(prepared.record.key),
      value: bytes(prepared.record.value),
      headers: prepared.record.headers ?? [],
      timestamp: prepared.record.timestamp,
      partition: prepared.record.partition,
    },
  };
}

/** What JSON.parse makes of the text, as the scanner's fields: they must agree wherever it scans. */
function expectSameFields(scanned: ScannedRecord, parsed: Record<string, unknown>): void {
  const data = (value: ScannedData | null | undefined) =>
    value === undefined || value === null
      ? value
      : { type: value.type, data: Buffer.from(value.text).toString("latin1") };
  expect(
    Object.keys(parsed).every((name) =>
      ["key", "value", "partition_id", "timestamp", "headers"].includes(name),
    ),
  ).toBe(true);
  expect(data(scanned.key)).toEqual(parsed.key);
  expect(data(scanned.value)).toEqual(parsed.value);
  expect(scanned.partition_id).toBe(parsed.partition_id);
  expect(scanned.timestamp).toBe(parsed.timestamp);
  expect(scanned.headers ? [] : undefined).toEqual(parsed.headers);
}

describe("the produce record scanner", () => {
  it("takes only records JSON.parse reads the same, and prepares them as the full path does", () => {
    let scans = 0;
    fc.assert(
      fc.property(fc.oneof(recordText, usualText), (json) => {
        const scanned = scanRecord(utf8.encode(json));
        if (scanned === undefined) return;
        scans++;
        const parsed = JSON.parse(json) as Record<string, unknown>;
        expectSameFields(scanned, parsed);
        const quick = new FastRecordPreparer(topic).prepare(scanned);
        if (quick === undefined) return; // the full path decides, as for any record
        expect(comparable(quick)).toEqual(comparable(prepareRecord(parsed, "record 0", topic)));
      }),
      { numRuns: 4_000 },
    );
    // The generators reach the scanner often enough for the comparison to mean something.
    expect(scans).toBeGreaterThan(800);
  });

  it("never takes bytes that are not the JSON they seem: one byte changed anywhere", () => {
    fc.assert(
      fc.property(
        usualText,
        fc.nat(),
        fc.constantFrom(...'{}[]":,\\ \n0129-.eEnul\u0000\u00ff'.split("").map((c) => c.charCodeAt(0))),
        (json, at, byte) => {
          const bytes = utf8.encode(json);
          bytes[at % bytes.length] = byte;
          const scanned = scanRecord(bytes);
          if (scanned === undefined) return;
          const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
          expectSameFields(scanned, parsed);
        },
      ),
      { numRuns: 4_000 },
    );
  });

  it("reads the usual shapes", () => {
    for (const json of [
      '{"value":{"type":"STRING","data":"hello"}}',
      ' { "key" : { "data" : "k" , "type" : "STRING" } ,\n"value":null, "partition_id": 2, "timestamp": 0, "headers": [ ] } ',
      '{"value":{"type":"BINARY","data":"AAEC"}}',
      "{}",
    ]) {
      expect(scanRecord(utf8.encode(json)), json).toBeDefined();
    }
  });

  it("leaves everything else to JSON.parse", () => {
    for (const json of [
      '{"value":{"type":"STRING","data":"esc\\"aped"}}',
      '{"value":{"type":"STRING","data":"caf\u00e9"}}',
      '{"value":{"type":"JSON","data":"x"}}',
      '{"value":{"type":"STRING","data":"a"},"value":null}',
      '{"value":{"type":"STRING","data":"a","type":"STRING"}}',
      '{"partition_id":-1}',
      '{"partition_id":01}',
      '{"partition_id":1.0}',
      '{"timestamp":1e3}',
      '{"timestamp":1234567890123456}',
      '{"headers":[{"name":"h"}]}',
      '{"value":{"type":"STRING","data":"a"},}',
      '{"value":{"type":"STRING","data":"a"}} x',
      '{"value":{"type":"STRING","data":"a\tb"}}',
    ]) {
      expect(scanRecord(utf8.encode(json)), json).toBeUndefined();
    }
  });
});
