import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32c, crc32cIsNative, crc32cPortable } from "./crc32c.js";

/** Bit-at-a-time reference: slow and obviously right, to check the sliced tables against. */
function referenceCrc32c(bytes: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

const ascii = (s: string) => new TextEncoder().encode(s);

describe("crc32c", () => {
  it("matches the published check value and the RFC 3720 (iSCSI) vectors", () => {
    expect(crc32c(ascii("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("returns an unsigned 32-bit value", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const crc = crc32c(bytes);
        expect(Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff).toBe(true);
      }),
    );
  });

  it("agrees with a bitwise reference for every length around the 8-byte stride", () => {
    const data = Uint8Array.from({ length: 80 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let length = 0; length <= data.length; length++) {
      expect(crc32c(data.subarray(0, length))).toBe(referenceCrc32c(data.subarray(0, length)));
    }
  });

  it("agrees with the reference on random data, including views at odd offsets", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(7), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        expect(crc32c(view)).toBe(referenceCrc32c(view));
      }),
    );
  });

  it("chains through `initial`: crc(a ++ b) = crc(b, crc(a))", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const joined = new Uint8Array(a.length + b.length);
        joined.set(a);
        joined.set(b, a.length);
        expect(crc32c(b, crc32c(a))).toBe(crc32c(joined));
        expect(crc32c(b, crc32c(a))).toBe(referenceCrc32c(b, referenceCrc32c(a)));
      }),
    );
  });
});

describe("crc32c, native and portable", () => {
  it("agree on inputs on both sides of the native threshold, with chaining", () => {
    expect(crc32cIsNative).toBe(true);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat(), (bytes, initial) => {
        const seed = initial >>> 0;
        expect(crc32c(bytes, seed)).toBe(crc32cPortable(bytes, seed));
        expect(crc32c(bytes, seed)).toBe(referenceCrc32c(bytes, seed));
      }),
      { numRuns: 200 },
    );
  });

  it("portable agrees with the reference on views at any byte offset (the word loop's alignment)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 700 }),
        fc.nat(7),
        fc.nat(),
        (content, offset, initial) => {
          const buffer = new Uint8Array(offset + content.length);
          buffer.set(content, offset);
          const view = buffer.subarray(offset);
          expect(crc32cPortable(view, initial >>> 0)).toBe(referenceCrc32c(content, initial >>> 0));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("checks a view into a larger buffer, not the whole buffer", () => {
    const whole = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
    const view = whole.subarray(100, 2900);
    expect(crc32c(view)).toBe(referenceCrc32c(view));
  });
});
