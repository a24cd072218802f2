import { Engine, type Topic } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { JsonObjectSplitter } from "./json-stream.js";
import { FastRecordPreparer } from "./produce-fast-path.js";
import { type ScannedRecord, scanBody, scanRecord } from "./produce-record-scanner.js";
import { type PreparedRecord, prepareRecord } from "./produce-records.js";
import { comparable } from "./produce-records.test-support.js";

let topic: Topic;

beforeAll(async () => {
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() });
  topic = await engine.createTopic({ name: "t", partitions: 3, configs: { "max.message.bytes": "64" } });
});

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** JSON as Python's json.dumps writes it: a space after each colon and comma between tokens. */
function pythonSpaced(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonSpaced).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    const members = Object.entries(value).map(
      ([name, member]) => `${JSON.stringify(name)}: ${pythonSpaced(member)}`,
    );
    return `{${members.join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** How deeply a parsed JSON value nests (an array or object is one level). */
function depthOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

/** JSON text near every edge of the scanner's grammar, built member by member. */
/** Whitespace between tokens: none (JSON.stringify), a space (Python's json.dumps), or more. */
const space = fc.oneof(
  { arbitrary: fc.constant(""), weight: 6 },
  { arbitrary: fc.constantFrom(" ", "\n", "\t", "\r\n  "), weight: 1 },
);
const text = fc.oneof(
  fc.string({ maxLength: 12 }).map((value) => JSON.stringify(value)),
  fc.string({ unit: "grapheme", maxLength: 6 }).map((value) => JSON.stringify(value)),
  fc.constantFrom(
    '"a\\"b"',
    '"\\u0041"',
    '"tab\there"',
    '"é"',
    '"😀"',
    `"${"x".repeat(70)}"`,
    '""',
    '"\\ud800"',
  ),
);
const base64 = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((bytes) => JSON.stringify(Buffer.from(bytes).toString("base64"))),
  fc.constantFrom('"QQ"', '"QR=="', '"QUI="', '""', '"a b="', '"-_=="', '"QQ\\u003d\\u003d"'),
);
const jsonNames = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k");
/** JSON data values: JSON.stringify's own text (which the scanner takes as it stands), and others. */
const jsonData = fc.oneof(
  fc
    .dictionary(
      jsonNames,
      fc.oneof(
        fc.integer({ min: -1000, max: 1000 }),
        fc.boolean(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.stringMatching(/^[a-z é]{0,6}$/),
      ),
      { maxKeys: 4 },
    )
    .map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 1 }).map((value) => JSON.stringify(value)),
  // Written with whitespace: indented, and as Python's json.dumps writes (", " and ": ").
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value, null, 2)),
  fc
    .dictionary(jsonNames, fc.oneof(fc.integer(), fc.stringMatching(/^[a-z ,:é]{0,6}$/)), { maxKeys: 4 })
    .map((value) => pythonSpaced(value)),
  fc.constantFrom(
    "0",
    "-7",
    "123456789012345",
    "-123456789012345",
    "1234567890123456",
    "12345678901234567890",
    "9007199254740993",
    "-9999999999999999",
    "-0",
    "01",
    "1.0",
    "1.50",
    "0.1",
    "1e3",
    "1E+2",
    "1e21",
    "1e+21",
    "1e-7",
    "1e400",
    "true",
    "false",
    "null",
    "tru",
    "nul",
    '"é"',
    '"a\\u0041"',
    '"\\/"',
    '"a\\"b\\\\c\\nd\\te\\u001f\\u000b"',
    '"\\b\\f\\r"',
    '"\\u0008"',
    '"\\u001F"',
    '"\\u00e9"',
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '{"a\\"b":1}',
    '{"a\\"b":1,"a\\"b":2}',
    '{"a\\nb":1,"a\\u000ab":2}',
    '""',
    "[]",
    "{}",
    "[1, 2]",
    "[1,]",
    '{"a" :1}',
    '{"a":1,}',
    '{"a":1,"a":2}',
    '{"a":{"a":1},"b":[{"a":2}]}',
    '{"1":1,"b":2}',
    '{"b":1,"1":2}',
    '{"01":1}',
    '{"-1":1,"b":2}',
    '{"__proto__":1,"b":2}',
    '{"\u00e9":1}',
  ),
  fc.integer({ min: 62, max: 66 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  // Many names, some repeated: past NAMES_IN_LIST_MAX the scanner checks them in a set.
  fc
    .array(fc.tuple(jsonNames, jsonNames), { minLength: 10, maxLength: 24 })
    .map((names) => `{${names.map(([a, b], index) => `"${a}${b}":${index}`).join(",")}}`),
);
const data = fc.oneof(
  fc.constant("null"),
  fc.tuple(space, jsonData).map(([s, j]) => `{"type":"JSON",${s}"data":${s}${j}}`),
  jsonData.map((j) => `{"type":"JSON","data":${j}}`),
  fc.tuple(space, text).map(([s, t]) => `{"type":"STRING",${s}"data":${s}${t}}`),
  fc.tuple(space, text).map(([s, t]) => `{${s}"data":${t},${s}"type"${s}:${s}"STRING"${s}}`),
  fc.tuple(space, base64).map(([s, b]) => `{"type":${s}"BINARY","data":${b}${s}}`),
  fc
    .tuple(fc.array(space, { minLength: 8, maxLength: 8 }), fc.constantFrom("STRING", "JSON"), text)
    .map(
      ([s, type, t]) =>
        `{${s[0]}"type"${s[1]}:${s[2]}"${type}"${s[3]},${s[4]}"data"${s[5]}:${s[6]}${t}${s[7]}}`,
    ),
  fc.constantFrom(
    '{"type":"JSON","data":{"a":[1]}}',
    '{"type":"STRING"}',
    '{"type":"STRING","data":"x","extra":1}',
    '{"type":"STRING","data":5}',
    '{"type":"STRING","data":"x","type":"BINARY"}',
    '{"type":"STRINGS","data":"x"}',
    '{"type":"string","data":"x"}',
    "nul",
    '"raw"',
  ),
);
const number = fc.oneof(
  fc.integer({ min: 0, max: 4 }).map(String),
  fc.constantFrom(
    "01",
    "-1",
    "-0",
    "1.5",
    "1e3",
    "2E0",
    "123456789012345",
    "1234567890123456",
    "9007199254740993",
  ),
  fc.integer({ min: 0, max: 2 ** 50 }).map(String),
);
/** One header's JSON: the common form (name, then a base64 value or null, or no value) and others. */
const headerText = fc.oneof(
  fc
    .tuple(space, text, fc.oneof(base64, fc.constant("null")))
    .map(([s, name, value]) => `{${s}"name"${s}:${s}${name}${s},${s}"value"${s}:${s}${value}${s}}`),
  text.map((name) => `{"name":${name}}`),
  fc.tuple(text, base64).map(([name, value]) => `{"value":${value},"name":${name}}`),
  fc.constantFrom(
    '{"name":"h","value":5}',
    '{"name":5}',
    '{"value":"YQ=="}',
    '{"name":"h","value":"YQ==","x":1}',
    `{"name":"${"x".repeat(70)}"}`,
    '{"name":"h",}',
    "null",
  ),
);
const headers = fc.oneof(
  fc.constantFrom("[]", "[ ]", "null", "{}", "[,]"),
  fc
    .tuple(fc.array(headerText, { minLength: 1, maxLength: 3 }), space)
    .map(([list, s]) => `[${s}${list.join(`${s},${s}`)}${s}]`),
);
const member = fc.oneof(
  data.map((value) => ["key", value] as const),
  data.map((value) => ["value", value] as const),
  data.map((value) => ["value", value] as const),
  number.map((value) => ["partition_id", value] as const),
  number.map((value) => ["timestamp", value] as const),
  fc.constantFrom(["timestamp", '"2024-05-01T12:00:00Z"'] as const, ["partition_id", '"1"'] as const),
  headers.map((value) => ["headers", value] as const),
  headers.map((value) => ["headers", value] as const),
  fc.constantFrom(["vaule", "1"] as const, ["val\\u0075e", "null"] as const, ["type", '"STRING"'] as const),
);
const recordText = fc
  .tuple(fc.array(fc.tuple(member, space, space), { maxLength: 5 }), space)
  .map(
    ([members, end]) =>
      `{${members.map(([[name, value], before, after]) => `${before}"${name}"${after}:${before}${value}${after}`).join(",")}${end}}`,
  );
/** Records of the common form only (some strings with escapes, which the scanner leaves). */
const compactRecord = fc
  .array(
    fc.oneof(
      fc.tuple(
        fc.constantFrom("key", "value"),
        fc.oneof(
          fc.constant("null"),
          text.map((data) => `{"type":"STRING","data":${data}}`),
          base64.map((data) => `{"type":"BINARY","data":${data}}`),
          jsonData.map((data) => `{"type":"JSON","data":${data}}`),
        ),
      ),
      fc.tuple(fc.constantFrom("partition_id", "timestamp"), fc.integer({ min: 0, max: 4 }).map(String)),
      fc.constant(["headers", "[]"] as const),
      fc
        .array(
          fc
            .tuple(text, fc.oneof(base64, fc.constant("null")))
            .map(([name, value]) => `{"name":${name},"value":${value}}`),
          { maxLength: 2 },
        )
        .map((list) => ["headers", `[${list.join(",")}]`] as const),
    ),
    { maxLength: 4 },
  )
  .map((members) => `{${members.map(([name, value]) => `"${name}":${value}`).join(",")}}`);
/** The same text with one byte replaced, as a client with a bug (or a fuzzer) would send. */
const damaged = fc
  .tuple(
    recordText,
    fc.nat(),
    fc.constantFrom(0x5c, 0x22, 0x01, 0xff, 0xc3, 0x2c, 0x7d, 0x7b, 0x20, 0x30, 0x2d),
  )
  .map(([record, at, byte]) => {
    const bytes = Buffer.from(record, "utf8");
    bytes[at % bytes.length] = byte;
    return bytes;
  });

/** What the route answers for a parsed record: the fast preparer, else the full check. */
function outcome(prepare: () => PreparedRecord | undefined, parsed: unknown) {
  try {
    return { prepared: comparable(prepare() ?? prepareRecord(parsed, "record 0", topic)) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** The scanned record is prepared as the parsed one is: the same record, or the same refusal. */
function expectPreparedAlike(record: ScannedRecord, parsed: unknown) {
  const fast = new FastRecordPreparer(topic);
  expect(outcome(() => fast.prepareScanned(record), parsed)).toEqual(
    outcome(() => fast.prepare(parsed), parsed),
  );
}

describe("the JSON produce record scanner", () => {
  it("reads only valid JSON, and reads it as JSON.parse and the preparers do", () => {
    let scanned = 0;
    let refused = 0;
    let json = 0;
    let withHeaders = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          recordText.map((record) => Buffer.from(record, "utf8")),
          damaged,
        ),
        (bytes) => {
          const record = scanRecord(bytes);
          let parsed: unknown;
          try {
            parsed = JSON.parse(strictUtf8.decode(bytes));
          } catch {
            expect(record, bytes.toString("latin1")).toBeUndefined();
            return;
          }
          if (record === undefined) return; // JSON.parse decides, as before
          scanned++;
          const fast = new FastRecordPreparer(topic);
          const expected = outcome(() => fast.prepare(parsed), parsed);
          const actual = outcome(() => fast.prepareScanned(record), parsed);
          if (expected.error !== undefined) refused++;
          if (record.key?.type === "JSON" || record.value?.type === "JSON") json++;
          if ((record.headers ?? []).length > 0) withHeaders++;
          expect(actual, bytes.toString("utf8")).toEqual(expected);
        },
      ),
      { numRuns: 5_000 },
    );
    // The generators reach the scanner, and records the topic refuses after it, often enough.
    expect(scanned).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(20);
    expect(json).toBeGreaterThan(20);
    expect(withHeaders).toBeGreaterThan(20);
  });

  it("stores a JSON value as the parsing path does: its own bytes when they are JSON.stringify's, else written again", () => {
    let taken = 0;
    let rewritten = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          jsonData.map((json) => Buffer.from(json, "utf8")),
          fc
            .tuple(
              jsonData,
              fc.nat(),
              fc.constantFrom(0x5c, 0x22, 0x20, 0x2c, 0x3a, 0x7d, 0x5d, 0x30, 0x2e, 0x65, 0xc3),
            )
            .map(([json, at, byte]) => {
              const bytes = Buffer.from(json, "utf8");
              bytes[at % bytes.length] = byte;
              return bytes;
            }),
        ),
        fc.constantFrom("key", "value"),
        space,
        (json, name, gap) => {
          const bytes = Buffer.concat([
            Buffer.from(`{"${name}":{"type":"JSON","data":${gap}`),
            json,
            Buffer.from(`${gap}}}`),
          ]);
          const record = scanRecord(bytes);
          let parsed: { key?: { data: unknown }; value?: { data: unknown } };
          try {
            parsed = JSON.parse(strictUtf8.decode(bytes));
          } catch {
            expect(record, bytes.toString("latin1")).toBeUndefined();
            return;
          }
          const value = parsed[name as "key"]!.data;
          if (record === undefined) {
            // Only a value nested past what the scanner reads is left to the parsing path.
            expect(depthOf(value), json.toString("utf8")).toBeGreaterThan(64);
            return;
          }
          const data = name === "key" ? record.key : record.value;
          // Byte for byte what the parsing path stores: JSON.stringify of what JSON.parse read.
          expect(Buffer.from(data!.bytes).toString("hex"), json.toString("utf8")).toBe(
            Buffer.from(JSON.stringify(value)).toString("hex"),
          );
          if (data!.bytes.buffer === bytes.buffer) taken++;
          else rewritten++;
          expectPreparedAlike(record, parsed);
        },
      ),
      { numRuns: 5_000 },
    );
    expect(taken).toBeGreaterThan(1_000);
    expect(rewritten).toBeGreaterThan(300);
  });

  it("reads every record of a body where the splitter finds it, as JSON.parse reads each", () => {
    let scannedBodies = 0;
    let acrossWindows = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(compactRecord, compactRecord, recordText),
            fc.constantFrom("", "\n", " ", "\r\n"),
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        // Leading whitespace up to and across the end of the scanner's first 64 KiB window.
        fc.oneof(fc.constant(0), fc.constant(2), fc.integer({ min: 65_400, max: 65_540 })),
        (records, lead) => {
          const body = Buffer.from(" ".repeat(lead) + records.map(([record, gap]) => record + gap).join(""));
          const slices = new JsonObjectSplitter().push(body);
          const scanned = scanBody(body, 10);
          if (scanned === undefined) return;
          scannedBodies++;
          if (lead > 0 && body.length > 65_536) acrossWindows++;
          expect(scanned.records).toHaveLength(slices.length);
          expect(scanned.starts).toEqual(slices.map((slice) => slice.start));
          expect(scanned.ends).toEqual(slices.map((slice) => slice.start + slice.bytes.byteLength));
          scanned.records.forEach((record, index) => {
            const parsed: unknown = JSON.parse(records[index]![0]);
            expectPreparedAlike(record, parsed);
          });
        },
      ),
      { numRuns: 1_000 },
    );
    expect(scannedBodies).toBeGreaterThan(100);
    expect(acrossWindows).toBeGreaterThan(30);
  });

  it("reads a body of many windows, records cut by their ends included", () => {
    const records = Array.from(
      { length: 3_000 },
      (_, index) =>
        `{"partition_id":${index % 3},"value":{"type":"STRING","data":"${"y".repeat(index % 250)}"}}`,
    );
    // Mostly newlines between records; twice, more whitespace than a window holds.
    const gap = (index: number) => (index === 400 || index === 1_900 ? " ".repeat(70_000) : "\n");
    const body = Buffer.from(records.map((record, index) => record + gap(index)).join(""));
    expect(body.length).toBeGreaterThan(7 * 65_536);
    const scanned = scanBody(body, records.length);
    const slices = new JsonObjectSplitter().push(body);
    expect(scanned?.starts).toEqual(slices.map((slice) => slice.start));
    expect(scanned?.ends).toEqual(slices.map((slice) => slice.start + slice.bytes.byteLength));
    scanned!.records.forEach((record, index) => {
      expect(record.partition_id).toBe(index % 3);
      expect(record.value?.bytes.byteLength).toBe(index % 250);
    });
  });

  it("leaves a body with too many records, a record longer than a window, or none to the parser", () => {
    const two = Buffer.from('{"value":null}\n{"value":null}');
    expect(scanBody(two, 2)?.records).toHaveLength(2);
    expect(scanBody(two, 1)).toBeUndefined();
    const long = Buffer.from(`{"value":{"type":"STRING","data":"${"x".repeat(70_000)}"}}`);
    expect(scanBody(long, 10)).toBeUndefined();
    expect(scanBody(Buffer.from(" \n "), 10)).toBeUndefined();
  });

  it("reads the common shapes, a STRING's bytes as a view of the request's", () => {
    const body = Buffer.from('{"value":{"type":"STRING","data":"héllo"}}\n{"key":null,"partition_id":2}');
    const records = scanBody(body, 10)?.records;
    expect(records?.[1]).toEqual({ key: null, value: null, partition_id: 2 });
    expect(records?.[0]?.key).toBeNull();
    expect(records?.[0]?.value?.type).toBe("STRING");
    expect(Buffer.from(records![0]!.value!.bytes).toString("utf8")).toBe("héllo");
    expect(records![0]!.value!.bytes.buffer).toBe(body.buffer);
  });

  it("takes a JSON value's bytes as they stand when they are what JSON.stringify writes", () => {
    const value =
      '{"order":42,"customer":"c-7","items":[{"sku":"é","qty":2}],"total":19.99,"paid":true,"note":null}';
    const body = Buffer.from(`{"key":{"type":"JSON","data":"c-7"},"value":{"type":"JSON","data":${value}}}`);
    const record = scanRecord(body);
    expect(record?.value?.type).toBe("JSON");
    expect(Buffer.from(record!.value!.bytes).toString("utf8")).toBe(JSON.stringify(JSON.parse(value)));
    expect(record!.value!.bytes.buffer).toBe(body.buffer);
    expect(Buffer.from(record!.key!.bytes).toString("utf8")).toBe('"c-7"');
    for (const scalar of ["0", "-7", "0.5", "1e-7", "1e+21", "true", "false", "null", '""', "[]", "{}"]) {
      const one = scanRecord(Buffer.from(`{"value":{"type":"JSON","data":${scalar}}}`));
      expect(Buffer.from(one!.value!.bytes).toString("utf8"), scalar).toBe(scalar);
    }
  });

  it("decodes a STRING's or BINARY's escapes, and keeps a JSON value's that JSON.stringify writes", () => {
    const string = scanRecord(
      Buffer.from('{"value":{"type":"STRING","data":"a\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00"}}'),
    );
    expect(Buffer.from(string!.value!.bytes).toString("utf8")).toBe('a"b\\c/d\né😀');
    const binary = scanRecord(Buffer.from('{"value":{"type":"BINARY","data":"AAEC\\/w=="}}'));
    expect([...binary!.value!.bytes]).toEqual([0, 1, 2, 255]);
    const json = '{"value":{"type":"JSON","data":{"say":"\\"hi\\"\\n","bell":"\\u0007"}}}';
    expect(Buffer.from(scanRecord(Buffer.from(json))!.value!.bytes).toString("utf8")).toBe(
      '{"say":"\\"hi\\"\\n","bell":"\\u0007"}',
    );
    // Read the same as JSON.stringify's own escapes, but written otherwise: written again.
    for (const other of ['"\\/"', '"\\u0041"', '"\\u00E9"', '"\\u0008"', '"\\ud800"']) {
      const body = Buffer.from(`{"value":{"type":"JSON","data":${other}}}`);
      const value = scanRecord(body)?.value;
      expect(Buffer.from(value!.bytes).toString("utf8"), other).toBe(JSON.stringify(JSON.parse(other)));
      expect(value!.bytes.buffer, other).not.toBe(body.buffer);
    }
    // A lone surrogate: the preparers refuse it as a STRING, so the scanner leaves it to them.
    expect(scanRecord(Buffer.from('{"value":{"type":"STRING","data":"\\ud800"}}'))).toBeUndefined();
  });

  it("reads records with whitespace between their tokens, JSON values with any spacing or numbers", () => {
    const spaced = scanBody(
      Buffer.from(
        [
          '{ "value" : { "type" : "STRING" , "data" : "x y" } , "partition_id" : 2 , "headers" : [ ] }',
          '{"key": {"type": "BINARY", "data": "AAE="}, "value": {"type": "JSON", "data": {"a": 1.0, "b": [1, 2]}}}',
          '{\r\n\t"value":\n{\n  "type": "JSON",\n  "data": "\\u0041"\n}\n}',
          "{ }",
        ].join("\n"),
      ),
      10,
    );
    expect(spaced?.records).toHaveLength(4);
    const [first, second, third, empty] = spaced!.records;
    expect(first).toMatchObject({ key: null, partition_id: 2 });
    expect(Buffer.from(first!.value!.bytes).toString("utf8")).toBe("x y");
    expect([...second!.key!.bytes]).toEqual([0, 1]);
    expect(Buffer.from(second!.value!.bytes).toString("utf8")).toBe('{"a":1,"b":[1,2]}');
    expect(Buffer.from(third!.value!.bytes).toString("utf8")).toBe('"A"');
    expect(empty).toEqual({ key: null, value: null });
  });

  it("reads headers: names as strings, values decoded from base64, null or absent", () => {
    const record = scanRecord(
      Buffer.from(
        '{"headers":[{"name":"trace","value":"YWJj"},{ "name" : "h\\u00e9\\"" , "value" : null },{"name":"é"},{"name":"b","value":"AAE\\/"}],"value":null}',
      ),
    );
    expect(record?.headers).toEqual([
      { key: "trace", value: new Uint8Array([0x61, 0x62, 0x63]) },
      { key: 'hé"', value: null },
      { key: "é", value: null },
      { key: "b", value: new Uint8Array([0x00, 0x01, 0x3f]) },
    ]);
    // The last list given wins, as JSON.parse keeps the last.
    const twice = scanRecord(Buffer.from('{"headers":[{"name":"a"}],"headers":[]}'));
    expect(twice?.headers).toEqual([]);
    for (const other of [
      '{"headers":[{"value":"YQ==","name":"h"}]}',
      '{"headers":[{"name":"h","value":"YQ="}]}',
      '{"headers":[{"name":"h","value":"Y Q=="}]}',
      '{"headers":[{"name":"\\ud800"}]}',
      '{"headers":[{"name":"h","value":"YQ==","x":1}]}',
      '{"headers":[{"name":"h"},]}',
      '{"headers":[{"name":"h"}}',
      '{"headers":[{"name":"h","value":5}]}',
      '{"headers":{"name":"h"}}',
      '{"headers":[{"name":"h"x]}',
      '{"headers":[{"name":"h","value":null]}',
    ]) {
      expect(scanRecord(Buffer.from(other)), other).toBeUndefined();
    }
    const latin1Name = Buffer.concat([
      Buffer.from('{"headers":[{"name":"'),
      Buffer.from([0xe9]),
      Buffer.from('"}]}'),
    ]);
    expect(scanRecord(latin1Name)).toBeUndefined();
  });

  it("leaves any other form to JSON.parse", () => {
    for (const other of [
      '{"value":{"data":"x","type":"STRING"}}',
      '{"value":{"type":"JSON","data":1 ,"timestamp":5}',
      '{"value":{"type":"JSON","data":[1,]}}',
      '{"value":{"type":"JSON","data":{"a":1}}',
      '{"value":{"type":"JSON","data":{"a":1}]}}',
      '{"value":{"type":"JSON","data":"open}}',
      '{"value":{"type":"JSON","data":}}',
      `{"value":{"type":"JSON","data":${"[".repeat(65)}${"]".repeat(65)}}}`,
      '{"value":{"type":"STRING","data":"a\\xb"}}',
      '{"value":{"type":"STRING","data":"\\u12"}}',
      '{"value":{"type":"BINARY","data":"QQ\\="}}',
      '{"timestamp":"2024-05-01T12:00:00Z"}',
      '{"partition_id":1.0}',
      '{"value":null,}',
      '{"value":null , }',
      // Whitespace JSON does not have: a no-break space, a vertical tab, a form feed.
      '{"value"\u00a0:null}',
      '{"value"\u000b:null}',
      '{"value":{"type":\u000c"STRING","data":"x"}}',
      '{"value":{"type":"STRING","data":"x"\u000b}}',
      // Data's object not closed after its data.
      '{"value":{"type":"STRING","data":"x"]}',
      '{"value":{"type":"BINARY","data":"QQ=="x}',
      '{"value":{"type":"JSON","data":[1, 2]]}',
    ]) {
      expect(scanRecord(Buffer.from(other)), other).toBeUndefined();
    }
  });

  it("leaves bytes that are not UTF-8 to the parser, which refuses them", () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80] /* a surrogate */, [0xc0, 0xaf] /* overlong */]) {
      // Plain, and beside an escape (a string the scanner decodes).
      for (const before of ["a", "a\\n"]) {
        const bytes = Buffer.concat([
          Buffer.from(`{"value":{"type":"STRING","data":"${before}`),
          Buffer.from(bad),
          Buffer.from('"}}'),
        ]);
        expect(scanRecord(bytes), `${before} ${Buffer.from(bad).toString("hex")}`).toBeUndefined();
      }
    }
  });

  it("gives up on the whole request when one record is not of the common shape", () => {
    const common = Buffer.from('{"value":null} {"value":null}');
    expect(scanBody(common, 10)?.records).toHaveLength(2);
    const mixed = Buffer.from('{"value":null} {"value":{"data":1,"type":"JSON"}}');
    expect(scanBody(mixed, 10)).toBeUndefined();
  });
});
