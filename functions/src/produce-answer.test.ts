import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DataType } from "./data-encoding.js";
import { ProduceAnswer } from "./produce-answer.js";
import { deliveryReport, type PreparedRecord } from "./produce-records.js";

const data = fc.option(
  fc.record({
    type: fc.constantFrom<DataType>("BINARY", "JSON", "STRING"),
    size: fc.oneof(fc.nat(), fc.constantFrom(0, 9, 10, 99, 100, 1_048_576)),
  }),
);
const line = fc.oneof(
  fc.record({
    kind: fc.constant("report" as const),
    key: data,
    value: data,
    partition: fc.oneof(fc.nat({ max: 20 }), fc.constant(2_147_483_647)),
    offset: fc.oneof(fc.nat(), fc.constantFrom(0, 10, 2 ** 31, Number.MAX_SAFE_INTEGER)),
    // The same append time for many records, as in one request, and the edges of the range.
    timestamp: fc.oneof(
      fc.constant(1_714_564_800_123),
      fc.integer({ min: 0, max: 8_640_000_000_000_000 }),
      fc.constantFrom(0, 8_640_000_000_000_000),
    ),
  }),
  fc.record({
    kind: fc.constant("error" as const),
    error_code: fc.constantFrom(400, 413, 503),
    message: fc.string({ unit: "grapheme", maxLength: 40 }),
  }),
);

describe("the streaming produce answer", () => {
  it("writes each line exactly as JSON.stringify of the report or error, however far it grows", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 30 }),
        fc.string({ maxLength: 30 }),
        fc.array(line, { maxLength: 400 }),
        (topicName, clusterId, lines) => {
          const answer = new ProduceAnswer(clusterId, topicName);
          let expected = "";
          for (const item of lines) {
            if (item.kind === "error") {
              const body = { error_code: item.error_code, message: item.message };
              answer.error(body);
              expected += `${JSON.stringify(body)}\n`;
              continue;
            }
            const prepared = { key: item.key, value: item.value } as PreparedRecord;
            const appended = { partition: item.partition, offset: item.offset, timestamp: item.timestamp };
            answer.report(prepared, appended);
            const report = deliveryReport({ clusterId } as never, topicName, prepared, appended);
            expected += `${JSON.stringify(report)}\n`;
          }
          expect(Buffer.from(answer.bytes()).toString("utf8")).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("writes each report's own timestamp and sizes, where only one of them changes from the last", () => {
    const answer = new ProduceAnswer("c", "t");
    const string = (size: number) => ({ type: "STRING" as const, size });
    const reports: [PreparedRecord, { partition: number; offset: number; timestamp: number }][] = [];
    const add = (key: PreparedRecord["key"], value: PreparedRecord["value"], timestamp = 1_000) =>
      reports.push([{ key, value } as PreparedRecord, { partition: 0, offset: reports.length, timestamp }]);
    add(null, string(5));
    add(null, string(5));
    add(null, string(6));
    add(null, { type: "BINARY", size: 6 });
    add(string(1), { type: "BINARY", size: 6 });
    add(string(2), { type: "BINARY", size: 6 });
    add({ type: "JSON", size: 2 }, { type: "BINARY", size: 6 });
    add({ type: "JSON", size: 2 }, { type: "BINARY", size: 6 }, 1_001);
    add({ type: "JSON", size: 2 }, null, 1_001);
    let expected = "";
    for (const [prepared, appended] of reports) {
      answer.report(prepared, appended);
      expected += `${JSON.stringify(deliveryReport({ clusterId: "c" } as never, "t", prepared, appended))}\n`;
    }
    expect(Buffer.from(answer.bytes()).toString("utf8")).toBe(expected);
  });
});
