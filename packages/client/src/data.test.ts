import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DataType, dataFromBytes, RangeDecoder } from "./data.js";

const text = new TextEncoder();
const TYPES: DataType[] = ["BINARY", "STRING", "JSON"];

describe("RangeDecoder", () => {
  it("gives what dataFromBytes gives, for any bytes at any place of a buffer", () => {
    const field = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => text.encode(s)),
      fc.json().map((s) => text.encode(s)),
      // Text holding U+FFFD itself is valid and must stay STRING or JSON, not fall back to BINARY.
      fc.string({ maxLength: 10 }).map((s) => text.encode(`${s}\uFFFD${s}`)),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 9 }),
        field,
        fc.uint8Array({ maxLength: 9 }),
        (before, bytes, after) => {
          const buffer = new Uint8Array([...before, ...bytes, ...after]);
          const decoder = new RangeDecoder(buffer);
          for (const type of TYPES) {
            expect(decoder.data(before.length, bytes.length, type)).toEqual(dataFromBytes(bytes, type));
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("keeps a byte-order mark, falls back from invalid UTF-8 to BINARY, and reads -1 as null", () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
    expect(new RangeDecoder(bom).data(0, 4, "STRING")).toEqual({ type: "STRING", data: "\uFEFFa" });
    const invalid = new Uint8Array([0x61, 0xff, 0x62]);
    expect(new RangeDecoder(invalid).data(0, 3, "JSON")).toEqual({ type: "BINARY", data: "Yf9i" });
    expect(new RangeDecoder(invalid).data(1, -1, "STRING")).toBeNull();
  });
});
