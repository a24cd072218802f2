import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Compression } from "./compression.js";
import { crc32c } from "./crc32c.js";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";
import {
  type DecodedRecord,
  decodeRecordBatches,
  type EncodeRecordBatchOptions,
  encodeRecordBatch,
  patchBaseOffset,
  RECORD_BATCH_HEADER_SIZE,
  type Record,
  readBatchHeader,
} from "./record-batch.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const utf8 = (s: string) => new TextEncoder().encode(s);

// ---- generators ----

const bytesOrNull = fc.option(fc.uint8Array({ maxLength: 48 }), { nil: null, freq: 4 });
const headerKey = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.constantFrom("", "trace-id", "ключ", "键", "🔑 emoji", "a\u0000b"),
);
const header = fc.record({ key: headerKey, value: bytesOrNull });
/** Realistic epoch-millisecond timestamps mixed with anything whose spread stays below 2^53. */
const timestamp = fc.oneof(
  fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 }),
  fc.constantFrom(0, -1),
);
const record: fc.Arbitrary<Record> = fc.record({
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.array(header, { maxLength: 4 }),
  timestamp,
});

const hexOrNull = (b: Uint8Array | null) =>
  b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/** Records as plain strings and numbers: toEqual walks typed arrays element by element, slowly. */
function comparable(records: readonly DecodedRecord[]) {
  return records.map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: hexOrNull(r.key),
    value: hexOrNull(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: hexOrNull(h.value) })),
  }));
}

function expectedRecords(records: readonly Record[], baseOffset: number): DecodedRecord[] {
  return records.map((r, i) => ({ ...r, offset: baseOffset + i }));
}

/** Recomputes a batch's CRC after a test tampers with the covered bytes on purpose. */
function resign(batch: Uint8Array, position = 0): Uint8Array {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const end = position + 12 + view.getInt32(position + 8);
  view.setUint32(position + 17, crc32c(batch.subarray(position + 21, end)));
  return batch;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const SIMPLE: Record[] = [
  {
    key: utf8("k1"),
    value: utf8("v1"),
    headers: [{ key: "h", value: utf8("x") }],
    timestamp: 1_700_000_000_500,
  },
  { key: null, value: null, headers: [], timestamp: 1_700_000_000_000 },
  {
    key: new Uint8Array(0),
    value: utf8("third"),
    headers: [{ key: "n", value: null }],
    timestamp: 1_700_000_000_900,
  },
];

// ---- round trips ----

describe("encodeRecordBatch / decodeRecordBatches round trip", () => {
  it("preserves every record field and header field, for every codec", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 30 }),
        fc.constantFrom(...CODECS),
        fc.integer({ min: 0, max: 2 ** 50 }),
        fc.integer({ min: -1, max: 2 ** 40 }),
        fc.integer({ min: -1, max: 0x7fff }),
        fc.integer({ min: -1, max: 0x7fffffff - 100 }),
        async (records, compression, baseOffset, producerId, producerEpoch, baseSequence) => {
          const bytes = await encodeRecordBatch(records, {
            compression,
            baseOffset,
            producerId,
            producerEpoch,
            baseSequence,
          });
          const [batch, ...rest] = await decodeRecordBatches(bytes);
          expect(rest).toHaveLength(0);
          const timestamps = records.map((r) => r.timestamp);
          expect(batch).toMatchObject({
            baseOffset,
            lastOffset: baseOffset + records.length - 1,
            lastOffsetDelta: records.length - 1,
            byteLength: bytes.length,
            batchLength: bytes.length - 12,
            magic: 2,
            compression,
            timestampType: "create",
            isTransactional: false,
            isControl: false,
            firstTimestamp: Math.min(...timestamps),
            maxTimestamp: Math.max(...timestamps),
            producerId,
            producerEpoch,
            baseSequence,
            recordCount: records.length,
            partitionLeaderEpoch: -1,
          });
          expect(batch!.records).toEqual(expectedRecords(records, baseOffset));
        },
      ),
      { numRuns: 150 },
    );
  });

  it.each(CODECS)("%s: handles many records and large values", async (compression) => {
    const records: Record[] = Array.from({ length: 5000 }, (_, i) => ({
      key: i % 7 === 0 ? null : utf8(`key-${i}`),
      value: i % 11 === 0 ? new Uint8Array(0) : utf8(`value-${i}-${"x".repeat(i % 200)}`),
      headers: i % 3 === 0 ? [{ key: `h${i}`, value: utf8(String(i)) }] : [],
      timestamp: 1_700_000_000_000 + i * 17,
    }));
    const large = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff);
    records.push({ key: null, value: large, headers: [], timestamp: 1_700_000_000_000 });
    const bytes = await encodeRecordBatch(records, { compression, baseOffset: 1_000_000n });
    const [batch] = await decodeRecordBatches(bytes);
    const decoded = batch!.records;
    expect(Buffer.from(decoded.at(-1)!.value!).equals(large)).toBe(true);
    expect(comparable(decoded.slice(0, -1))).toEqual(
      comparable(expectedRecords(records.slice(0, -1), 1_000_000)),
    );
    expect(decoded.at(-1)!.offset).toBe(1_005_000);
  });

  it("keeps timestamps exact across the widest spread a number allows", async () => {
    for (const timestamps of [
      [Number.MAX_SAFE_INTEGER, 0],
      [Number.MIN_SAFE_INTEGER, 0],
      [-(2 ** 52), 2 ** 52 - 1],
      [2 ** 40, 2 ** 40 + 2 ** 31, 2 ** 40 - 2 ** 31],
    ]) {
      const records = timestamps.map((t) => ({ key: null, value: null, headers: [], timestamp: t }));
      const [batch] = await decodeRecordBatches(await encodeRecordBatch(records, { compression: "none" }));
      expect(batch!.records.map((r) => r.timestamp)).toEqual(timestamps);
    }
  });

  it("refuses timestamps whose spread passes 2^53 rather than rounding them", async () => {
    const records = [Number.MAX_SAFE_INTEGER, -1].map((t) => ({
      key: null,
      value: null,
      headers: [],
      timestamp: t,
    }));
    await expect(encodeRecordBatch(records, { compression: "none" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it("preserves header order, duplicates and unicode keys", async () => {
    const headers = [
      { key: "dup", value: utf8("1") },
      { key: "ключ", value: utf8("значение") },
      { key: "dup", value: null },
      { key: "🔑", value: new Uint8Array(0) },
      { key: "", value: utf8("empty key") },
    ];
    const [batch] = await decodeRecordBatches(
      await encodeRecordBatch([{ key: null, value: null, headers, timestamp: 5 }], { compression: "none" }),
    );
    expect(batch!.records[0]!.headers).toEqual(headers);
  });

  it("decodes header keys that repeat, alternate or share a length without mixing them up", async () => {
    const keys = ["ab", "cd", "ab", "ab", "é", "ab", "cd", "dc"];
    const records = keys.map((key, i) => ({
      key: null,
      value: null,
      headers: [
        { key, value: null },
        { key: key.toUpperCase(), value: utf8(String(i)) },
      ],
      timestamp: i,
    }));
    const [batch] = await decodeRecordBatches(await encodeRecordBatch(records, { compression: "none" }));
    expect(batch!.records.map((r) => r.headers)).toEqual(records.map((r) => r.headers));
  });

  it("returns keys and values as plain Uint8Array views", async () => {
    const [batch] = await decodeRecordBatches(await encodeRecordBatch(SIMPLE, { compression: "none" }));
    const key = batch!.records[0]!.key!;
    expect(Object.getPrototypeOf(key)).toBe(Uint8Array.prototype);
    expect(Buffer.isBuffer(key)).toBe(false);
  });

  it("decodes input that sits at an offset inside a larger buffer", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    const shifted = Buffer.concat([Buffer.from("junk"), bytes]).subarray(4);
    const [batch] = await decodeRecordBatches(shifted);
    expect(batch!.records).toEqual(expectedRecords(SIMPLE, 0));
  });

  it("decodes nothing from empty input", async () => {
    expect(await decodeRecordBatches(new Uint8Array(0))).toEqual([]);
  });
});

// ---- byte layout ----

describe("batch layout", () => {
  it("writes the v2 header fields where the spec puts them", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, {
      compression: "gzip",
      baseOffset: 42,
      producerId: 7n,
      producerEpoch: 3,
      baseSequence: 11,
      timestampType: "log_append",
    });
    const view = viewOf(bytes);
    expect(view.getBigInt64(0)).toBe(42n);
    expect(view.getInt32(8)).toBe(bytes.length - 12);
    expect(view.getInt32(12)).toBe(-1); // partitionLeaderEpoch: producers write -1
    expect(view.getInt8(16)).toBe(2);
    expect(view.getUint32(17)).toBe(crc32c(bytes.subarray(21)));
    expect(view.getInt16(21)).toBe(1 | 0x08); // gzip | log-append time
    expect(view.getInt32(23)).toBe(2);
    expect(view.getBigInt64(27)).toBe(1_700_000_000_000n);
    expect(view.getBigInt64(35)).toBe(1_700_000_000_900n);
    expect(view.getBigInt64(43)).toBe(7n);
    expect(view.getInt16(51)).toBe(3);
    expect(view.getInt32(53)).toBe(11);
    expect(view.getInt32(57)).toBe(3);
  });

  it("uses -1 for producer fields by default", async () => {
    const view = viewOf(await encodeRecordBatch(SIMPLE, { compression: "none" }));
    expect(view.getBigInt64(43)).toBe(-1n);
    expect(view.getInt16(51)).toBe(-1);
    expect(view.getInt32(53)).toBe(-1);
    expect(view.getInt16(21)).toBe(0);
  });

  it("encodes a record exactly as the spec lays it out", async () => {
    const bytes = await encodeRecordBatch(
      [{ key: utf8("k"), value: utf8("v"), headers: [], timestamp: 1000 }],
      {
        compression: "none",
      },
    );
    // length 8, attributes 0, timestampDelta 0, offsetDelta 0, key len 1 "k", value len 1 "v", 0 headers
    expect([...bytes.subarray(RECORD_BATCH_HEADER_SIZE)]).toEqual([
      0x10, 0, 0, 0, 0x02, 0x6b, 0x02, 0x76, 0x00,
    ]);
  });

  it("makes timestamp deltas relative to the smallest timestamp", async () => {
    const records = [300, 100, 200].map((timestamp) => ({ key: null, value: null, headers: [], timestamp }));
    const bytes = await encodeRecordBatch(records, { compression: "none" });
    expect(viewOf(bytes).getBigInt64(27)).toBe(100n);
    expect(viewOf(bytes).getBigInt64(35)).toBe(300n);
    // Records: [length, attrs, timestampDelta (zigzag), ...]; 200 → 0x90 0x03, 0 → 0x00.
    const first = bytes.subarray(RECORD_BATCH_HEADER_SIZE);
    expect([...first.subarray(2, 4)]).toEqual([0x90, 0x03]);
  });

  it("gives every record the batch's maxTimestamp under log-append time, as Kafka does", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none", timestampType: "log_append" });
    const [batch] = await decodeRecordBatches(bytes);
    expect(batch!.timestampType).toBe("log_append");
    expect(batch!.records.map((r) => r.timestamp)).toEqual([
      1_700_000_000_900, 1_700_000_000_900, 1_700_000_000_900,
    ]);
  });

  it("exposes the transactional and control bits of stored batches", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    viewOf(bytes).setInt16(21, 0x10 | 0x20);
    const [batch] = await decodeRecordBatches(resign(bytes));
    expect(batch!.isTransactional).toBe(true);
    expect(batch!.isControl).toBe(true);
  });
});

// ---- several batches, offsets ----

describe("concatenated batches and offsets", () => {
  it("decodes several batches in order, each with its own codec", async () => {
    const parts = await Promise.all(
      CODECS.map((compression, i) => encodeRecordBatch(SIMPLE, { compression, baseOffset: i * 3 })),
    );
    const batches = await decodeRecordBatches(Buffer.concat(parts));
    expect(batches.map((b) => b.compression)).toEqual(CODECS);
    expect(batches.flatMap((b) => b.records.map((r) => r.offset))).toEqual(
      Array.from({ length: 15 }, (_, i) => i),
    );
  });

  it("applies baseOffsetOverride to the first batch and continues contiguously", async () => {
    const one = await encodeRecordBatch(SIMPLE, { compression: "none" });
    const two = await encodeRecordBatch(SIMPLE.slice(0, 2), { compression: "lz4" });
    const batches = await decodeRecordBatches(Buffer.concat([one, two, one]), { baseOffsetOverride: 100n });
    expect(batches.map((b) => [b.baseOffset, b.lastOffset])).toEqual([
      [100, 102],
      [103, 104],
      [105, 107],
    ]);
    expect(batches.flatMap((b) => b.records.map((r) => r.offset))).toEqual([
      100, 101, 102, 103, 104, 105, 106, 107,
    ]);
    await expect(decodeRecordBatches(one, { baseOffsetOverride: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it("patches baseOffset in place and the batch stays valid (baseOffset is outside the CRC)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(...CODECS),
        fc.oneof(fc.integer({ min: 0, max: 2 ** 52 }), fc.bigInt({ min: 0n, max: 2n ** 52n })),
        async (records, compression, newBase) => {
          const bytes = await encodeRecordBatch(records, { compression });
          const before = Uint8Array.from(bytes);
          patchBaseOffset(bytes, newBase);
          // Only the 8 baseOffset bytes changed; the CRC field is untouched and still verifies.
          expect(bytes.subarray(8)).toEqual(before.subarray(8));
          expect(viewOf(bytes).getBigInt64(0)).toBe(BigInt(newBase));
          const [batch] = await decodeRecordBatches(bytes);
          expect(batch!.records).toEqual(expectedRecords(records, Number(newBase)));
        },
      ),
      { numRuns: 50 },
    );
  });

  it("patches a batch at a position inside a larger buffer", async () => {
    const one = await encodeRecordBatch(SIMPLE, { compression: "none" });
    const both = Buffer.concat([one, one]);
    patchBaseOffset(both, 3, one.length);
    const batches = await decodeRecordBatches(both);
    expect(batches.map((b) => b.baseOffset)).toEqual([0, 3]);
  });

  it("refuses offsets that cannot be stored exactly", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER, 2n ** 60n, -1n]) {
      expect(() => patchBaseOffset(bytes, bad)).toThrow(InvalidArgumentError);
    }
    expect(() => patchBaseOffset(bytes, 0, bytes.length + 1)).toThrow(InvalidArgumentError);
    expect(() => patchBaseOffset(bytes.subarray(0, 60), 0)).toThrow(DataCorruptionError);
  });
});

// ---- header-only parsing ----

describe("batches that skip offsets (key compaction)", () => {
  const records = (values: string[]) =>
    values.map((value, index) => ({
      key: utf8(`k${index}`),
      value: utf8(value),
      timestamp: 1_700_000_000_000 + index,
    }));

  it.each(CODECS)(
    "keeps each record's offset delta and a last offset delta past the last record (%s)",
    async (codec) => {
      const bytes = await encodeRecordBatch(records(["a", "b", "c"]), {
        compression: codec,
        offsetDeltas: [1, 4, 5],
        lastOffsetDelta: 9,
      });
      const [batch] = await decodeRecordBatches(bytes, { baseOffsetOverride: 100 });
      expect(batch!.records.map((record) => record.offset)).toEqual([101, 104, 105]);
      expect(batch!.lastOffset).toBe(109);
      expect(batch!.recordCount).toBe(3);
      const [next] = await decodeRecordBatches(new Uint8Array([...bytes, ...bytes]), {
        baseOffsetOverride: 100,
      }).then((batches) => batches.slice(1));
      expect(next!.records.map((record) => record.offset)).toEqual([111, 114, 115]);
    },
  );

  it("writes an empty batch that spans its offsets and carries the given timestamp", async () => {
    const bytes = await encodeRecordBatch([], {
      compression: "none",
      lastOffsetDelta: 6,
      timestamp: 1_700_000_000_123,
    });
    const [batch] = await decodeRecordBatches(bytes, { baseOffsetOverride: 10 });
    expect(batch).toMatchObject({
      recordCount: 0,
      lastOffset: 16,
      maxTimestamp: 1_700_000_000_123,
      records: [],
    });
    expect(readBatchHeader(bytes).byteLength).toBe(RECORD_BATCH_HEADER_SIZE);
  });

  it("refuses offset deltas that do not increase, a short last delta, and an empty batch without a span", async () => {
    const three = records(["a", "b", "c"]);
    await expect(encodeRecordBatch(three, { compression: "none", offsetDeltas: [0, 2, 2] })).rejects.toThrow(
      /increasing/,
    );
    await expect(encodeRecordBatch(three, { compression: "none", offsetDeltas: [0, 1] })).rejects.toThrow(
      /2 entries for 3 records/,
    );
    await expect(
      encodeRecordBatch(three, { compression: "none", offsetDeltas: [0, 1, 7], lastOffsetDelta: 6 }),
    ).rejects.toThrow(/lastOffsetDelta 6/);
    await expect(encodeRecordBatch([], { compression: "none", timestamp: 1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe("decoding part of the records (fromOffset, maxRecords)", () => {
  /** Two or three batches, some skipping offsets, concatenated as an index entry holds them. */
  const batchesOf = async (sizes: number[], codec: Compression, gaps: boolean) => {
    const parts: Uint8Array[] = [];
    for (const [index, size] of sizes.entries()) {
      const records = Array.from({ length: size }, (_, i) => ({
        key: utf8(`k${index}-${i}`),
        value: utf8(`value ${index}-${i}`),
        headers: i % 3 === 0 ? [{ key: "h", value: utf8(String(i)) }] : [],
        timestamp: 1_700_000_000_000 + i,
      }));
      const offsetDeltas = gaps ? records.map((_, i) => i * 2) : undefined;
      parts.push(
        await encodeRecordBatch(records, {
          compression: codec,
          ...(offsetDeltas ? { offsetDeltas, lastOffsetDelta: size * 2 } : {}),
        }),
      );
    }
    return new Uint8Array(parts.flatMap((part) => [...part]));
  };

  it("property: builds exactly the records a full decode has from the offset on, up to the count", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom<Compression>("none", "gzip", "lz4"),
        fc.boolean(),
        fc.integer({ min: 90, max: 160 }),
        fc.integer({ min: 1, max: 40 }),
        async (sizes, codec, gaps, fromOffset, maxRecords) => {
          const bytes = await batchesOf(sizes, codec, gaps);
          const whole = await decodeRecordBatches(bytes, { baseOffsetOverride: 100 });
          const part = await decodeRecordBatches(bytes, { baseOffsetOverride: 100, fromOffset, maxRecords });
          const expected = whole
            .flatMap((batch) => batch.records)
            .filter((record) => record.offset >= fromOffset)
            .slice(0, maxRecords);
          expect(comparable(part.flatMap((batch) => batch.records))).toEqual(comparable(expected));
          // Headers still describe every batch whole.
          expect(part.map((batch) => [batch.baseOffset, batch.lastOffset, batch.recordCount])).toEqual(
            whole.map((batch) => [batch.baseOffset, batch.lastOffset, batch.recordCount]),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("still refuses a record whose framing is broken among those it does not build", async () => {
    const six = await batchesOf([6], "none", false);
    // Records encode alike in both batches: the sixth starts where the five-record batch ends.
    const lastRecordAt = (await batchesOf([5], "none", false)).length;
    for (const [at, range] of [
      [RECORD_BATCH_HEADER_SIZE, { fromOffset: 4 }], // skipped as before the offset
      [lastRecordAt, { fromOffset: 0, maxRecords: 2 }], // skipped as past the count
    ] as const) {
      const broken = six.slice();
      broken[at] = 0x7e; // its length varint says 63 bytes: more than the record holds
      await expect(
        decodeRecordBatches(resign(broken), { baseOffsetOverride: 0, ...range }),
      ).rejects.toBeInstanceOf(DataCorruptionError);
    }
    // Unbroken, the same reads decode.
    const [part] = await decodeRecordBatches(six, { baseOffsetOverride: 0, fromOffset: 0, maxRecords: 2 });
    expect(part!.records.map((record) => record.offset)).toEqual([0, 1]);
  });
});

describe("readBatchHeader", () => {
  it("parses the header from the first 61 bytes alone", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, {
      compression: "zstd",
      baseOffset: 900,
      producerId: 5,
      producerEpoch: 1,
      baseSequence: 0,
    });
    const header = readBatchHeader(bytes.subarray(0, RECORD_BATCH_HEADER_SIZE));
    const [decoded] = await decodeRecordBatches(bytes);
    const { records: _records, ...decodedHeader } = decoded!;
    expect(header).toEqual(decodedHeader);
    expect(header).toMatchObject({
      baseOffset: 900,
      lastOffset: 902,
      recordCount: 3,
      byteLength: bytes.length,
    });
  });

  it("walks a log by byteLength", async () => {
    const parts = await Promise.all(
      [1, 2, 3].map((n) => encodeRecordBatch(SIMPLE.slice(0, n), { compression: "snappy" })),
    );
    const log = Buffer.concat(parts);
    const seen: number[] = [];
    for (let pos = 0; pos < log.length; pos += readBatchHeader(log, pos).byteLength) {
      seen.push(readBatchHeader(log, pos).recordCount);
    }
    expect(seen).toEqual([1, 2, 3]);
  });

  it("does not look at the records or their CRC", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    bytes[bytes.length - 1]! ^= 0xff;
    expect(readBatchHeader(bytes).recordCount).toBe(3);
    await expect(decodeRecordBatches(bytes)).rejects.toBeInstanceOf(DataCorruptionError);
  });

  it("refuses short headers, wrong magic, impossible lengths and unknown codecs", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    expect(() => readBatchHeader(bytes.subarray(0, 60))).toThrow(DataCorruptionError);
    const wrongMagic = Uint8Array.from(bytes);
    wrongMagic[16] = 1;
    expect(() => readBatchHeader(wrongMagic)).toThrow(DataCorruptionError);
    const shortLength = Uint8Array.from(bytes);
    viewOf(shortLength).setInt32(8, 48);
    expect(() => readBatchHeader(shortLength)).toThrow(DataCorruptionError);
    const unknownCodec = Uint8Array.from(bytes);
    viewOf(unknownCodec).setInt16(21, 5);
    expect(() => readBatchHeader(unknownCodec)).toThrow(DataCorruptionError);
    expect(() => readBatchHeader(bytes, -1)).toThrow(InvalidArgumentError);
    expect(() => readBatchHeader(bytes, 0.5)).toThrow(InvalidArgumentError);
  });

  it("refuses stored int64 values a number cannot hold exactly", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    viewOf(bytes).setBigInt64(0, 2n ** 60n);
    expect(() => readBatchHeader(bytes)).toThrow(DataCorruptionError);
  });
});

// ---- corruption ----

describe("corruption", () => {
  it.each(CODECS)(
    "%s: any single damaged byte in the CRC-covered region is DataCorruptionError",
    async (compression) => {
      const bytes = await encodeRecordBatch(SIMPLE, { compression, baseOffset: 10 });
      for (let i = 21; i < bytes.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const damaged = Uint8Array.from(bytes);
          damaged[i]! ^= mask;
          const error = await rejection(decodeRecordBatches(damaged));
          expect(error, `byte ${i} ^ ${mask}`).toBeInstanceOf(DataCorruptionError);
        }
      }
    },
  );

  it("names the expected and the actual CRC", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    const expected = viewOf(bytes).getUint32(17);
    bytes[RECORD_BATCH_HEADER_SIZE + 3]! ^= 0x10;
    const actual = crc32c(bytes.subarray(21));
    const error = (await rejection(decodeRecordBatches(bytes))) as DataCorruptionError;
    expect(error).toBeInstanceOf(DataCorruptionError);
    expect(error.message).toContain(`expected 0x${expected.toString(16).padStart(8, "0")}`);
    expect(error.message).toContain(`actual 0x${actual.toString(16).padStart(8, "0")}`);
    expect(error.details).toMatchObject({ expectedCrc: expected, actualCrc: actual, position: 0 });
  });

  it("detects damage to the stored CRC, the magic and the length", async () => {
    const bytes = await encodeRecordBatch(SIMPLE, { compression: "none" });
    for (const i of [8, 9, 10, 11, 16, 17, 18, 19, 20]) {
      const damaged = Uint8Array.from(bytes);
      damaged[i]! ^= 0x01;
      expect(await rejection(decodeRecordBatches(damaged)), `byte ${i}`).toBeInstanceOf(DataCorruptionError);
    }
  });

  it("reports damage in a later batch of a concatenation", async () => {
    const one = await encodeRecordBatch(SIMPLE, { compression: "none" });
    const both = Buffer.concat([one, one]);
    both[one.length + 30]! ^= 0x04;
    const error = (await rejection(decodeRecordBatches(both))) as DataCorruptionError;
    expect(error).toBeInstanceOf(DataCorruptionError);
    expect(error.details).toMatchObject({ position: one.length });
  });

  it("property: a random single-byte change in the covered region never decodes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...CODECS),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (records, compression, where, mask) => {
          const bytes = await encodeRecordBatch(records, { compression });
          const i = 21 + (where % (bytes.length - 21));
          bytes[i]! ^= mask;
          expect(await rejection(decodeRecordBatches(bytes))).toBeInstanceOf(DataCorruptionError);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("truncation anywhere is DataCorruptionError (except at a batch boundary)", async () => {
    for (const compression of ["none", "gzip"] as const) {
      const one = await encodeRecordBatch(SIMPLE, { compression });
      const two = await encodeRecordBatch(SIMPLE.slice(1), { compression });
      const log = Buffer.concat([one, two]);
      for (let length = 1; length < log.length; length++) {
        const prefix = log.subarray(0, length);
        if (length === one.length) {
          expect(await decodeRecordBatches(prefix)).toHaveLength(1);
          continue;
        }
        expect(await rejection(decodeRecordBatches(prefix)), `prefix ${length}`).toBeInstanceOf(
          DataCorruptionError,
        );
      }
    }
  });

  describe("structurally broken records behind a valid CRC", () => {
    // The single record [len 8, attrs, tsDelta 0, offsetDelta 0, key "k", value "v", 0 headers].
    async function single(): Promise<Uint8Array> {
      return encodeRecordBatch([{ key: utf8("k"), value: utf8("v"), headers: [], timestamp: 1 }], {
        compression: "none",
      });
    }

    it.each([
      ["record length too long", RECORD_BATCH_HEADER_SIZE, 0x12],
      ["record length too short", RECORD_BATCH_HEADER_SIZE, 0x0e],
      ["offsetDelta past lastOffsetDelta", RECORD_BATCH_HEADER_SIZE + 3, 0x02],
      ["negative offsetDelta", RECORD_BATCH_HEADER_SIZE + 3, 0x01],
      ["key length below -1", RECORD_BATCH_HEADER_SIZE + 4, 0x03],
      ["key longer than the record", RECORD_BATCH_HEADER_SIZE + 4, 0x10],
      ["negative header count", RECORD_BATCH_HEADER_SIZE + 8, 0x01],
      ["header count beyond the record", RECORD_BATCH_HEADER_SIZE + 8, 0x02],
    ])("%s", async (_name, index, byte) => {
      const bytes = await single();
      bytes[index] = byte;
      expect(await rejection(decodeRecordBatches(resign(bytes)))).toBeInstanceOf(DataCorruptionError);
    });

    it("a record count that does not match the records", async () => {
      for (const count of [0, 2, 1000, -1]) {
        const bytes = await single();
        viewOf(bytes).setInt32(57, count);
        expect(await rejection(decodeRecordBatches(resign(bytes))), `count ${count}`).toBeInstanceOf(
          DataCorruptionError,
        );
      }
    });

    it("bytes left over after the last record", async () => {
      const bytes = await single();
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      viewOf(longer).setInt32(8, longer.length - 12);
      expect(await rejection(decodeRecordBatches(resign(longer)))).toBeInstanceOf(DataCorruptionError);
    });

    it("a null header key", async () => {
      const bytes = await encodeRecordBatch(
        [{ key: null, value: null, headers: [{ key: "h", value: null }], timestamp: 1 }],
        {
          compression: "none",
        },
      );
      // Record: len, attrs, ts, offset, key -1, value -1, count 1, key length at +7.
      expect(bytes[RECORD_BATCH_HEADER_SIZE + 7]).toBe(0x02);
      bytes[RECORD_BATCH_HEADER_SIZE + 7] = 0x01;
      expect(await rejection(decodeRecordBatches(resign(bytes)))).toBeInstanceOf(DataCorruptionError);
    });

    it("an unknown codec id", async () => {
      const bytes = await single();
      viewOf(bytes).setInt16(21, 6);
      expect(await rejection(decodeRecordBatches(resign(bytes)))).toBeInstanceOf(DataCorruptionError);
    });

    it("a compressed payload that does not decompress, or holds other records than counted", async () => {
      const garbage = await encodeRecordBatch(SIMPLE, { compression: "gzip" });
      garbage.fill(0x5a, RECORD_BATCH_HEADER_SIZE + 12, RECORD_BATCH_HEADER_SIZE + 20);
      expect(await rejection(decodeRecordBatches(resign(garbage)))).toBeInstanceOf(DataCorruptionError);
      const miscounted = await encodeRecordBatch(SIMPLE, { compression: "zstd" });
      viewOf(miscounted).setInt32(57, 2);
      expect(await rejection(decodeRecordBatches(resign(miscounted)))).toBeInstanceOf(DataCorruptionError);
    });
  });
});

// ---- caller errors ----

describe("encodeRecordBatch input validation", () => {
  const one: Record[] = [{ key: null, value: null, headers: [], timestamp: 0 }];

  it.each([
    ["no records", [], { compression: "none" }],
    ["an unknown codec", one, { compression: "brotli" }],
    ["a negative baseOffset", one, { compression: "none", baseOffset: -1 }],
    ["a fractional baseOffset", one, { compression: "none", baseOffset: 0.5 }],
    ["a baseOffset past 2^53", one, { compression: "none", baseOffset: 2n ** 53n }],
    ["an unknown timestamp type", one, { compression: "none", timestampType: "broker" }],
    ["a transactional batch", one, { compression: "none", isTransactional: true }],
    ["a producerId below -1", one, { compression: "none", producerId: -2 }],
    ["a producerEpoch beyond int16", one, { compression: "none", producerEpoch: 0x8000 }],
    ["a baseSequence beyond int32", one, { compression: "none", baseSequence: 2 ** 31 }],
    ["a fractional timestamp", [{ ...one[0]!, timestamp: 1.5 }], { compression: "none" }],
    ["a NaN timestamp", [{ ...one[0]!, timestamp: Number.NaN }], { compression: "none" }],
    ["a string value", [{ ...one[0]!, value: "text" }], { compression: "none" }],
    ["a non-array headers", [{ ...one[0]!, headers: {} }], { compression: "none" }],
    [
      "a non-string header key",
      [{ ...one[0]!, headers: [{ key: 1, value: null }] }],
      { compression: "none" },
    ],
  ])("refuses %s with InvalidArgumentError", async (_name, records, options) => {
    const error = await rejection(
      encodeRecordBatch(records as unknown as Record[], options as unknown as EncodeRecordBatchOptions),
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });
});
