import { crc32c as coreCrc32c, encodeRecordBatch, patchBaseOffset } from "@sluice/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  crc32c,
  crc32cIsNative,
  crc32cPortable,
  decodeRecordBatches,
  RecordBatchFormatError,
} from "./record-batch.js";

const text = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.byteLength;
  }
  return out;
}

describe("crc32c", () => {
  it("gives the check value of the standard test string and agrees with @sluice/core's", () => {
    expect(crc32c(text.encode("123456789"))).toBe(0xe3069283);
    const bytes = Uint8Array.from({ length: 1_037 }, (_, n) => (n * 131 + 7) & 0xff);
    for (const [start, end] of [
      [0, 0],
      [0, 1],
      [3, 11],
      [5, 1_037],
    ] as const) {
      expect(crc32c(bytes, start, end), `${start}..${end}`).toBe(coreCrc32c(bytes.subarray(start, end)));
    }
  });

  it("uses the native implementation under Node, and it agrees with the portable one on batch-sized ranges", () => {
    expect(crc32cIsNative).toBe(true); // @node-rs/crc32 is installed with the workspace
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 512, maxLength: 4_096 }), fc.nat(511), (content, skip) => {
        const start = skip % (content.length - 511);
        expect(crc32c(content, start)).toBe(crc32cPortable(content, start));
        expect(crc32c(content, start)).toBe(coreCrc32c(content.subarray(start)));
      }),
      { numRuns: 500 },
    );
  });

  it("agrees with @sluice/core's for any range of any view, aligned or not (the word loop and its edges)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 600 }),
        fc.nat(7),
        fc.nat(),
        fc.nat(),
        (content, viewOffset, a, b) => {
          // A view that starts `viewOffset` bytes into its buffer, so words are misaligned too.
          const buffer = new Uint8Array(viewOffset + content.length);
          buffer.set(content, viewOffset);
          const view = buffer.subarray(viewOffset);
          const start = content.length === 0 ? 0 : a % (content.length + 1);
          const end = start + (content.length === 0 ? 0 : b % (content.length - start + 1));
          expect(crc32c(view, start, end)).toBe(coreCrc32c(content.subarray(start, end)));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("decodeRecordBatches", () => {
  it("decodes what @sluice/core encodes: keys, nulls, headers, long fields, timestamps out of order", async () => {
    const long = new Uint8Array(300).fill(0x61);
    const first = await encodeRecordBatch(
      [
        { key: text.encode("k0"), value: text.encode("v0"), timestamp: 1_700_000_000_500 },
        {
          key: null,
          value: long,
          timestamp: 1_700_000_000_000,
          headers: [
            { key: "trace-id", value: text.encode("abc") },
            { key: "empty", value: null },
            { key: "naïve", value: new Uint8Array(0) },
          ],
        },
        { key: text.encode(""), value: null, timestamp: 1_700_000_000_250 },
      ],
      { compression: "none", baseOffset: 40 },
    );
    const second = await encodeRecordBatch([{ key: null, value: text.encode("v3") }], {
      compression: "none",
      timestamp: 1_800_000_000_000,
      timestampType: "log_append",
    });
    // Offsets set the way the server sets them: in place, outside the CRC.
    patchBaseOffset(second, 43);
    const decoded = decodeRecordBatches(concat([first, second]));
    expect(decoded.compressed).toBe(false);
    expect(decoded.firstBaseOffset).toBe(40);
    expect(decoded.records).toEqual([
      {
        offset: 40,
        timestamp: 1_700_000_000_500,
        key: text.encode("k0"),
        value: text.encode("v0"),
        headers: [],
      },
      {
        offset: 41,
        timestamp: 1_700_000_000_000,
        key: null,
        value: long,
        headers: [
          { name: "trace-id", value: text.encode("abc") },
          { name: "empty", value: null },
          { name: "naïve", value: new Uint8Array(0) },
        ],
      },
      { offset: 42, timestamp: 1_700_000_000_250, key: new Uint8Array(0), value: null, headers: [] },
      { offset: 43, timestamp: 1_800_000_000_000, key: null, value: text.encode("v3"), headers: [] },
    ]);
  });

  it("decodes nothing from no bytes", () => {
    expect(decodeRecordBatches(new Uint8Array(0))).toEqual({
      records: [],
      firstBaseOffset: undefined,
      compressed: false,
    });
  });

  it("reports a compressed batch instead of decoding it", async () => {
    const plain = await encodeRecordBatch([{ key: null, value: text.encode("a"), timestamp: 1 }], {
      compression: "none",
    });
    const gzip = await encodeRecordBatch([{ key: null, value: text.encode("b"), timestamp: 1 }], {
      compression: "gzip",
      baseOffset: 1,
    });
    const decoded = decodeRecordBatches(concat([plain, gzip]));
    expect(decoded.compressed).toBe(true);
    expect(decoded.firstBaseOffset).toBe(0);
  });

  it("refuses a changed byte (CRC-32C), a wrong magic and a truncated batch", async () => {
    const batch = await encodeRecordBatch(
      [{ key: text.encode("key"), value: text.encode("precious value"), timestamp: 1 }],
      { compression: "none" },
    );
    const flipped = batch.slice();
    flipped[flipped.length - 3]! ^= 0x01;
    expect(() => decodeRecordBatches(flipped)).toThrow(/CRC-32C/);
    const magic = batch.slice();
    magic[16] = 1;
    expect(() => decodeRecordBatches(magic)).toThrow(/magic 1/);
    expect(() => decodeRecordBatches(batch.subarray(0, batch.length - 1))).toThrow(RecordBatchFormatError);
    expect(() => decodeRecordBatches(batch.subarray(0, 20))).toThrow(RecordBatchFormatError);
  });
});
