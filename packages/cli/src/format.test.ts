import type { ConsumedRecord } from "@sluice/client";
import { describe, expect, it } from "vitest";
import { UsageError } from "./args.js";
import { compileFormat, recordJson } from "./format.js";

const record: ConsumedRecord = {
  topicName: "orders",
  partitionId: 2,
  offset: 41,
  timestamp: 1_700_000_000_000,
  key: { type: "STRING", data: "k1" },
  value: { type: "BINARY", data: Buffer.from("héllo").toString("base64") },
  headers: [
    { name: "a", value: new TextEncoder().encode("1") },
    { name: "b", value: null },
  ],
};
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("compileFormat", () => {
  it("renders kcat tokens and escapes", () => {
    const format = compileFormat("%t[%p]@%o %T %k=%v|%s (%K/%S) {%h} 100%%\\t.\\n");
    expect(text(format(record))).toBe("orders[2]@41 1700000000000 k1=héllo|héllo (2/6) {a=1,b=} 100%\t.\n");
  });

  it("writes raw bytes and nothing for null keys", () => {
    const binary = {
      ...record,
      key: null,
      value: { type: "BINARY" as const, data: Buffer.from([0xff, 0, 1]).toString("base64") },
    };
    expect([...compileFormat("%k%v")(binary)]).toEqual([0xff, 0, 1]);
    expect(text(compileFormat("%K")(binary))).toBe("-1");
  });

  it("rejects unknown tokens", () => {
    expect(() => compileFormat("%q")).toThrow(UsageError);
  });
});

describe("recordJson", () => {
  it("gives UTF-8 as strings and other bytes as base64", () => {
    expect(JSON.parse(recordJson(record))).toEqual({
      topic: "orders",
      partition: 2,
      offset: 41,
      timestamp: 1_700_000_000_000,
      key: "k1",
      value: "héllo",
      headers: [
        { name: "a", value: "1" },
        { name: "b", value: null },
      ],
    });
    const binary = { ...record, value: { type: "BINARY" as const, data: "/wA=" } };
    expect(JSON.parse(recordJson(binary)).value).toEqual({ base64: "/wA=" });
  });
});
