import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";
import {
  readUnsignedVarint,
  readVarint,
  readVarlong,
  readVarlongBigInt,
  sizeOfUnsignedVarint,
  sizeOfVarint,
  sizeOfVarlong,
  sizeOfVarlongBigInt,
  writeUnsignedVarint,
  writeVarint,
  writeVarlong,
  writeVarlongBigInt,
} from "./varint.js";

const cursorOver = (buf: Uint8Array) => ({ pos: 0, end: buf.length });

function encodeVarint(n: number): Uint8Array {
  const buf = new Uint8Array(sizeOfVarint(n));
  expect(writeVarint(buf, 0, n)).toBe(buf.length);
  return buf;
}

function encodeVarlong(n: number): Uint8Array {
  const buf = new Uint8Array(sizeOfVarlong(n));
  expect(writeVarlong(buf, 0, n)).toBe(buf.length);
  return buf;
}

function encodeVarlongBigInt(n: bigint): Uint8Array {
  const buf = new Uint8Array(sizeOfVarlongBigInt(n));
  expect(writeVarlongBigInt(buf, 0, n)).toBe(buf.length);
  return buf;
}

describe("varint (zigzag int32)", () => {
  it("encodes the known zigzag examples", () => {
    expect([...encodeVarint(0)]).toEqual([0]);
    expect([...encodeVarint(-1)]).toEqual([1]);
    expect([...encodeVarint(1)]).toEqual([2]);
    expect([...encodeVarint(-64)]).toEqual([0x7f]);
    expect([...encodeVarint(64)]).toEqual([0x80, 0x01]);
    expect([...encodeVarint(300)]).toEqual([0xd8, 0x04]);
    expect([...encodeVarint(2147483647)]).toEqual([0xfe, 0xff, 0xff, 0xff, 0x0f]);
    expect([...encodeVarint(-2147483648)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it("round-trips every int32 with the size it predicts", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (n) => {
        const buf = encodeVarint(n);
        const cursor = cursorOver(buf);
        expect(readVarint(buf, cursor)).toBe(n);
        expect(cursor.pos).toBe(buf.length);
      }),
    );
  });

  it("round-trips unsigned values", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => {
        const buf = new Uint8Array(sizeOfUnsignedVarint(n));
        writeUnsignedVarint(buf, 0, n);
        expect(readUnsignedVarint(buf, cursorOver(buf))).toBe(n);
      }),
    );
  });

  it("reads from the cursor position and stops at its end", () => {
    const buf = Uint8Array.of(0x02, 0xd8, 0x04, 0x01);
    const cursor = { pos: 1, end: 3 };
    expect(readVarint(buf, cursor)).toBe(300);
    expect(cursor.pos).toBe(3);
    expect(() => readVarint(buf, cursor)).toThrow(DataCorruptionError);
    // A varint that would continue past `end` is truncated even though the buffer goes on.
    expect(() => readVarint(Uint8Array.of(0x80, 0x01), { pos: 0, end: 1 })).toThrow(DataCorruptionError);
  });

  it("refuses over-long and overflowing varints", () => {
    expect(() => readVarint(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), { pos: 0, end: 6 })).toThrow(
      DataCorruptionError,
    );
    expect(() => readVarint(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x1f), { pos: 0, end: 5 })).toThrow(
      DataCorruptionError,
    );
  });
});

describe("varlong (zigzag int64)", () => {
  it("matches int32 varints where the ranges overlap", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (n) => {
        expect([...encodeVarlong(n)]).toEqual([...encodeVarint(n)]);
      }),
    );
  });

  it("round-trips every safe integer, including the extremes", () => {
    const edges = [
      0,
      -1,
      2 ** 30,
      -(2 ** 30),
      2 ** 30 - 1,
      -(2 ** 30) - 1,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 32,
      2 ** 52,
      -(2 ** 52),
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ];
    for (const n of edges) {
      const buf = encodeVarlong(n);
      expect(readVarlong(buf, cursorOver(buf))).toBe(n);
    }
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        const buf = encodeVarlong(n);
        const cursor = cursorOver(buf);
        expect(readVarlong(buf, cursor)).toBe(n);
        expect(cursor.pos).toBe(buf.length);
      }),
    );
  });

  it("writes the same bytes as the bigint path", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect([...encodeVarlong(n)]).toEqual([...encodeVarlongBigInt(BigInt(n))]);
      }),
    );
  });

  it("refuses stored values a number cannot hold exactly", () => {
    for (const n of [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)]) {
      const buf = encodeVarlongBigInt(n);
      expect(() => readVarlong(buf, cursorOver(buf))).toThrow(DataCorruptionError);
      expect(readVarlongBigInt(buf, cursorOver(buf))).toBe(n);
    }
  });

  it("round-trips the full int64 range as bigint", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => {
        const buf = encodeVarlongBigInt(n);
        const cursor = cursorOver(buf);
        expect(readVarlongBigInt(buf, cursor)).toBe(n);
        expect(cursor.pos).toBe(buf.length);
      }),
    );
    expect(encodeVarlongBigInt(-(2n ** 63n)).length).toBe(10);
    expect(() => sizeOfVarlongBigInt(2n ** 63n)).toThrow(InvalidArgumentError);
  });

  it("refuses truncated and over-long varlongs", () => {
    const long = encodeVarlong(2 ** 40);
    expect(() => readVarlong(long, { pos: 0, end: long.length - 1 })).toThrow(DataCorruptionError);
    const eleven = new Uint8Array(11).fill(0x80);
    eleven[10] = 0x01;
    expect(() => readVarlong(eleven, cursorOver(eleven))).toThrow(DataCorruptionError);
    expect(() => readVarlongBigInt(eleven, cursorOver(eleven))).toThrow(DataCorruptionError);
  });
});
