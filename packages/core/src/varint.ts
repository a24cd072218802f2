/**
 * Variable-length integers as Kafka's record format uses them: little-endian base-128 groups
 * (7 bits per byte, high bit = "more follows") of the zigzag-encoded value, so small negative
 * numbers stay short. `varint` is a 32-bit signed value (at most 5 bytes), `varlong` a 64-bit
 * signed value (at most 10 bytes).
 *
 * JavaScript numbers hold integers exactly only up to 2^53, so the number-typed varlong functions
 * accept and return safe integers and refuse anything wider; the `BigInt` variants cover the full
 * 64-bit range for the rare caller that needs it. The number paths never build the zigzag value
 * for wide inputs (it would need 54 bits); they carry the sign bit separately instead.
 *
 * Writers take a pre-sized buffer and return the position after what they wrote, so encoders can
 * size once and fill without bounds checks. Readers advance a caller-owned {@link Cursor} to avoid
 * allocating a `[value, position]` pair per read, and throw `DataCorruptionError` on malformed or
 * truncated input since they only ever read stored bytes.
 */
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";

/** Read position within `[pos, end)` of a buffer; readers move `pos` forward. */
export interface Cursor {
  pos: number;
  end: number;
}

const MAX_VARINT_BYTES = 5;
const MAX_VARLONG_BYTES = 10;
/** Values in [-2^30, 2^30) have a zigzag form that fits in 31 bits, so int32 bit tricks apply. */
const SMALL_LIMIT = 0x40000000;

function truncated(kind: string, pos: number): DataCorruptionError {
  return new DataCorruptionError(`${kind} runs past the end of its buffer at byte ${pos}`, {
    details: { position: pos },
  });
}

function tooLong(kind: string, pos: number): DataCorruptionError {
  return new DataCorruptionError(`${kind} starting at byte ${pos} is longer than its type allows`, {
    details: { position: pos },
  });
}

// ---- unsigned (no zigzag), used as the building block and by flexible protocol fields ----

/** Bytes needed for an unsigned 32-bit value. */
export function sizeOfUnsignedVarint(value: number): number {
  const v = value >>> 0;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** Writes an unsigned 32-bit value at `pos`; returns the position after it. */
export function writeUnsignedVarint(buf: Uint8Array, pos: number, value: number): number {
  let v = value >>> 0;
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Reads an unsigned 32-bit value. */
export function readUnsignedVarint(buf: Uint8Array, cursor: Cursor): number {
  return readRawVarint32(buf, cursor, "unsigned varint") >>> 0;
}

/** The 32-bit pattern of a base-128 group sequence of at most 5 bytes. */
function readRawVarint32(buf: Uint8Array, cursor: Cursor, kind: string): number {
  let p = cursor.pos;
  const end = cursor.end;
  if (p >= end) throw truncated(kind, p);
  let b = buf[p++]!;
  if (b < 0x80) {
    cursor.pos = p;
    return b;
  }
  const start = p - 1;
  let result = b & 0x7f;
  for (let shift = 7; ; shift += 7) {
    if (p >= end) throw truncated(kind, start);
    b = buf[p++]!;
    // The fifth byte may only carry the top 4 bits of 32.
    if (shift === 28 && b > 0x0f) throw tooLong(kind, start);
    result |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    if (p - start >= MAX_VARINT_BYTES) throw tooLong(kind, start);
  }
  cursor.pos = p;
  return result;
}

// ---- varint: zigzag int32 ----

/** Bytes needed for a signed 32-bit value. */
export function sizeOfVarint(value: number): number {
  return sizeOfUnsignedVarint((value << 1) ^ (value >> 31));
}

/** Writes a signed 32-bit value (the caller guarantees the range) at `pos`. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  return writeUnsignedVarint(buf, pos, (value << 1) ^ (value >> 31));
}

/** Reads a signed 32-bit value. */
export function readVarint(buf: Uint8Array, cursor: Cursor): number {
  // Single-byte fast path: most lengths and deltas in small records.
  const p = cursor.pos;
  if (p < cursor.end) {
    const b = buf[p]!;
    if (b < 0x80) {
      cursor.pos = p + 1;
      return (b >>> 1) ^ -(b & 1);
    }
  }
  const z = readRawVarint32(buf, cursor, "varint");
  return (z >>> 1) ^ -(z & 1);
}

// ---- varlong: zigzag int64, number-typed for safe integers ----

/** Bytes needed for a safe-integer value written as a varlong. */
export function sizeOfVarlong(value: number): number {
  if (value >= -SMALL_LIMIT && value < SMALL_LIMIT) return sizeOfVarint(value);
  // The first byte carries the sign and 6 magnitude bits; every further byte 7 more.
  let m = Math.floor((value < 0 ? -value - 1 : value) / 64);
  let size = 1;
  while (m > 0) {
    size++;
    m = Math.floor(m / 128);
  }
  return size;
}

/** Writes a safe integer (the caller guarantees it) as a varlong at `pos`. */
export function writeVarlong(buf: Uint8Array, pos: number, value: number): number {
  if (value >= -SMALL_LIMIT && value < SMALL_LIMIT) {
    return writeUnsignedVarint(buf, pos, (value << 1) ^ (value >> 31));
  }
  // zigzag(v) = 2v for v >= 0 and 2(-v-1)+1 for v < 0: the low bit is the sign and the rest is
  // `m`, so emit m in groups without ever forming the 54-bit zigzag number.
  const sign = value < 0 ? 1 : 0;
  let m = sign ? -value - 1 : value;
  let group = ((m % 64) << 1) | sign;
  m = Math.floor(m / 64);
  while (m > 0) {
    buf[pos++] = group | 0x80;
    group = m % 128;
    m = Math.floor(m / 128);
  }
  buf[pos++] = group;
  return pos;
}

/**
 * Reads a varlong as a number. Values outside the safe-integer range are refused rather than
 * rounded: silently wrong timestamps or offsets are worse than a loud failure.
 */
export function readVarlong(buf: Uint8Array, cursor: Cursor): number {
  let p = cursor.pos;
  const end = cursor.end;
  if (p >= end) throw truncated("varlong", p);
  let b = buf[p++]!;
  if (b < 0x80) {
    cursor.pos = p;
    return (b >>> 1) ^ -(b & 1);
  }
  const start = p - 1;
  const sign = b & 1;
  // Exact while m stays <= 2^53; once it passes that it can only grow, so the check below holds.
  let m = (b & 0x7f) >>> 1;
  let scale = 64;
  for (;;) {
    if (p >= end) throw truncated("varlong", start);
    b = buf[p++]!;
    m += (b & 0x7f) * scale;
    if (b < 0x80) break;
    if (p - start >= MAX_VARLONG_BYTES) throw tooLong("varlong", start);
    scale *= 128;
  }
  if (m > (sign ? Number.MAX_SAFE_INTEGER - 1 : Number.MAX_SAFE_INTEGER)) {
    throw new DataCorruptionError(`varlong at byte ${start} is outside the safe integer range`, {
      details: { position: start },
    });
  }
  cursor.pos = p;
  return sign ? -m - 1 : m;
}

// ---- varlong: full 64-bit range as bigint ----

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function zigzag64(value: bigint): bigint {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new InvalidArgumentError(`${value} does not fit in a signed 64-bit integer`, {
      details: { value: value.toString() },
    });
  }
  return value >= 0n ? value << 1n : ((-value - 1n) << 1n) | 1n;
}

/** Bytes needed for a signed 64-bit value written as a varlong. */
export function sizeOfVarlongBigInt(value: bigint): number {
  let z = zigzag64(value);
  let size = 1;
  while (z >= 0x80n) {
    size++;
    z >>= 7n;
  }
  return size;
}

/** Writes a signed 64-bit value as a varlong at `pos`. */
export function writeVarlongBigInt(buf: Uint8Array, pos: number, value: bigint): number {
  let z = zigzag64(value);
  while (z >= 0x80n) {
    buf[pos++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  buf[pos++] = Number(z);
  return pos;
}

/** Reads a varlong over its full signed 64-bit range. */
export function readVarlongBigInt(buf: Uint8Array, cursor: Cursor): bigint {
  let p = cursor.pos;
  const end = cursor.end;
  const start = p;
  let z = 0n;
  let shift = 0n;
  for (;;) {
    if (p >= end) throw truncated("varlong", start);
    const b = buf[p++]!;
    z |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) break;
    if (p - start >= MAX_VARLONG_BYTES) throw tooLong("varlong", start);
    shift += 7n;
  }
  if (z >> 64n !== 0n) throw tooLong("varlong", start);
  cursor.pos = p;
  return z & 1n ? -(z >> 1n) - 1n : z >> 1n;
}
