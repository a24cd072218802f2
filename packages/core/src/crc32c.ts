import { createRequire } from "node:module";

/**
 * CRC-32C (Castagnoli), the checksum Kafka's RecordBatch v2 uses over everything from the
 * attributes field to the end of the batch. It sits on the hot path of every produce and fetch,
 * so it is table-driven with slicing-by-8: eight 256-entry tables let one loop iteration fold
 * eight input bytes with eight independent lookups instead of eight dependent ones.
 */

/** The reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed). */
const POLYNOMIAL = 0x82f63b78;

/**
 * Eight tables of 256 entries laid end to end. Int32Array rather than Uint32Array so that V8 keeps
 * every entry a small integer instead of boxing values above 2^31 as doubles.
 */
const TABLES = buildTables();

function buildTables(): Int32Array {
  const tables = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) {
      c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    }
    tables[n] = c;
  }
  // Table k maps a byte to its contribution after k further zero bytes have been folded in.
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const previous = tables[(k - 1) * 256 + n]!;
      tables[k * 256 + n] = (previous >>> 8) ^ tables[previous & 0xff]!;
    }
  }
  return tables;
}

/**
 * CRC-32C of `bytes`, as an unsigned 32-bit number. `initial` is the CRC of the data that came
 * before, so `crc32c(b, crc32c(a))` equals the CRC of `a` followed by `b`.
 *
 * Large inputs go to the native SSE4.2/ARMv8 implementation of @node-rs/crc32 when its binary
 * loaded (about 8 GB/s against about 1 GB/s here); small ones stay in JavaScript, where a call
 * costs less than crossing into native code.
 */
export function crc32c(bytes: Uint8Array, initial = 0): number {
  if (nativeCrc32c && bytes.length >= NATIVE_THRESHOLD_BYTES) {
    return nativeCrc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), initial) >>> 0;
  }
  return crc32cPortable(bytes, initial);
}

const NATIVE_THRESHOLD_BYTES = 512;

/** The native function, or undefined where no binary exists for this platform. */
const nativeCrc32c = loadNative();

type NativeCrc32c = (input: Buffer, initial?: number) => number;

function loadNative(): NativeCrc32c | undefined {
  try {
    // In a CommonJS bundle (Lambda) `require` exists and the literal lets the bundler include the
    // package and its binary; under ESM (tests, the local server) it is made from this module's URL.
    if (typeof require === "function") return (require("@node-rs/crc32") as { crc32c?: NativeCrc32c }).crc32c;
    return (createRequire(import.meta.url)("@node-rs/crc32") as { crc32c?: NativeCrc32c }).crc32c;
  } catch {
    return undefined;
  }
}

/** Whether the native implementation is in use (reported by benchmarks). */
export const crc32cIsNative = nativeCrc32c !== undefined;

/** The portable JavaScript implementation (slicing-by-8). */
export function crc32cPortable(bytes: Uint8Array, initial = 0): number {
  const t = TABLES;
  let crc = ~initial;
  let i = 0;
  const length = bytes.length;
  const fastEnd = length - (length % 8);
  while (i < fastEnd) {
    const low = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[7 * 256 + (low & 0xff)]! ^
      t[6 * 256 + ((low >>> 8) & 0xff)]! ^
      t[5 * 256 + ((low >>> 16) & 0xff)]! ^
      t[4 * 256 + (low >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < length) {
    crc = (crc >>> 8) ^ t[(crc ^ bytes[i]!) & 0xff]!;
    i++;
  }
  return ~crc >>> 0;
}
