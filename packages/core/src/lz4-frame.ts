/**
 * The LZ4 frame format in JavaScript, the portable stand-in for lz4-napi where its native binary
 * is absent (an arm64 Lambda bundled on an x64 machine).
 *
 * Writing follows Kafka's Java producer (KafkaLZ4BlockOutputStream): frame version 01,
 * independent blocks, 64 KiB maximum block size, no block or content checksums, no content size.
 * Blocks that do not shrink are stored uncompressed.
 *
 * Reading accepts what any conforming writer emits: independent or linked blocks, every block
 * size, block checksums, content checksums and content size (all verified), uncompressed blocks,
 * concatenated frames and skippable frames. Frames that need a dictionary are refused.
 *
 * lz4js (the npm package) is used for its xxHash-32 only. Its frame writer links blocks and, for
 * full blocks, starts matches closer to the block end than the format allows (the last match must
 * start at least 12 bytes before the end); the reference decoder (LZ4_decompress_safe, which
 * lz4-java uses, and so Kafka's Java consumers) rejects such blocks. The block compressor here
 * keeps those end-of-block rules; compression-portable.test.ts checks it against the `lz4` CLI.
 *
 * Every failure to decode throws a plain Error; compression.ts turns it into DataCorruptionError.
 */
import { xxh32 } from "./compression-vendor.js";

const FRAME_MAGIC = 0x184d2204;
/** Skippable frames use magics 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC = 0x184d2a50;
const SKIPPABLE_MASK = 0xfffffff0;

const FLG_VERSION_01 = 0x40;
const FLG_VERSION_MASK = 0xc0;
const FLG_BLOCK_INDEPENDENCE = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICT_ID = 0x01;

/** Block maximum sizes by the BD byte's 3-bit code. */
const BLOCK_MAX_SIZES: Readonly<Record<number, number>> = {
  4: 64 << 10,
  5: 256 << 10,
  6: 1 << 20,
  7: 4 << 20,
};
const BD_64KB = 4 << 4;
const BD_RESERVED = 0x8f;
const WRITE_BLOCK_SIZE = 64 << 10;

const UNCOMPRESSED_BIT = 0x80000000;

// Block format limits (lz4_Block_format.md): a match is at least 4 bytes, the last 5 bytes of a
// block are literals, and the last match starts at least 12 bytes before the end.
const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MATCH_START_LIMIT = 12;
const MAX_OFFSET = 65535;

const HASH_LOG = 14;
/** One table reused by every call: compression is synchronous, so calls never interleave. */
const hashTable = new Int32Array(1 << HASH_LOG);

// ---- writing ----

/** Compresses `data` into one LZ4 frame. */
export function lz4CompressFrame(data: Uint8Array): Uint8Array {
  const blocks = Math.ceil(data.length / WRITE_BLOCK_SIZE);
  // Header (7) + per block a 4-byte size and at most the block itself + end mark (4).
  const out = new Uint8Array(7 + blocks * 4 + data.length + 4);
  writeU32(out, 0, FRAME_MAGIC);
  out[4] = FLG_VERSION_01 | FLG_BLOCK_INDEPENDENCE;
  out[5] = BD_64KB;
  out[6] = (xxh32(0, out, 4, 2) >>> 8) & 0xff;
  let pos = 7;
  const scratch = new Uint8Array(lz4BlockBound(Math.min(data.length, WRITE_BLOCK_SIZE)));
  for (let start = 0; start < data.length; start += WRITE_BLOCK_SIZE) {
    const block = data.subarray(start, start + WRITE_BLOCK_SIZE);
    const size = lz4CompressBlock(block, scratch);
    if (size < block.length) {
      writeU32(out, pos, size);
      out.set(scratch.subarray(0, size), pos + 4);
      pos += 4 + size;
    } else {
      writeU32(out, pos, (UNCOMPRESSED_BIT | block.length) >>> 0);
      out.set(block, pos + 4);
      pos += 4 + block.length;
    }
  }
  writeU32(out, pos, 0);
  pos += 4;
  return out.subarray(0, pos);
}

/** The largest compressed size of a block of `n` bytes. */
export function lz4BlockBound(n: number): number {
  return n + Math.ceil(n / 255) + 16;
}

/**
 * Compresses one block (greedy, one hash probe per position, skipping faster through data that
 * does not match) into `dst`, which must hold lz4BlockBound(src.length) bytes. Returns the size.
 */
export function lz4CompressBlock(src: Uint8Array, dst: Uint8Array): number {
  const n = src.length;
  let d = 0;
  let anchor = 0;
  if (n > MATCH_START_LIMIT) {
    hashTable.fill(0);
    const lastMatchStart = n - MATCH_START_LIMIT;
    const matchEndLimit = n - LAST_LITERALS;
    let i = 0;
    let misses = 0;
    while (i <= lastMatchStart) {
      const sequence = readU32(src, i);
      const slot = Math.imul(sequence, 2654435761) >>> (32 - HASH_LOG);
      let ref = hashTable[slot]! - 1;
      hashTable[slot] = i + 1;
      if (ref < 0 || i - ref > MAX_OFFSET || readU32(src, ref) !== sequence) {
        i += 1 + (misses++ >> 6);
        continue;
      }
      misses = 0;
      // Extend backwards over literals not yet written, then forwards up to the end limit.
      while (i > anchor && ref > 0 && src[i - 1] === src[ref - 1]) {
        i--;
        ref--;
      }
      let end = i + MIN_MATCH;
      while (end < matchEndLimit && src[end] === src[ref + end - i]) end++;
      d = writeSequence(src, anchor, i, dst, d, i - ref, end - i);
      // Remember a position inside the match so that the next one can find it.
      if (end - 2 <= lastMatchStart) {
        hashTable[Math.imul(readU32(src, end - 2), 2654435761) >>> (32 - HASH_LOG)] = end - 2 + 1;
      }
      i = end;
      anchor = end;
    }
  }
  // The last sequence: literals only.
  const literals = n - anchor;
  dst[d++] = Math.min(literals, 15) << 4;
  d = writeLength(dst, d, literals);
  dst.set(src.subarray(anchor, n), d);
  return d + literals;
}

function writeSequence(
  src: Uint8Array,
  anchor: number,
  matchStart: number,
  dst: Uint8Array,
  d: number,
  offset: number,
  matchLength: number,
): number {
  const literals = matchStart - anchor;
  const extra = matchLength - MIN_MATCH;
  dst[d++] = (Math.min(literals, 15) << 4) | Math.min(extra, 15);
  d = writeLength(dst, d, literals);
  if (literals < 32) {
    for (let k = anchor; k < matchStart; k++) dst[d++] = src[k]!;
  } else {
    dst.set(src.subarray(anchor, matchStart), d);
    d += literals;
  }
  dst[d++] = offset & 0xff;
  dst[d++] = offset >>> 8;
  return writeLength(dst, d, extra);
}

/** The bytes that continue a 4-bit length field of 15 or more. */
function writeLength(dst: Uint8Array, d: number, length: number): number {
  if (length < 15) return d;
  let rest = length - 15;
  while (rest >= 255) {
    dst[d++] = 255;
    rest -= 255;
  }
  dst[d++] = rest;
  return d;
}

// ---- reading ----

/** Thrown by lz4DecompressFrame when the output would pass its `maxBytes`. */
export class Lz4OutputLimitError extends Error {}

/**
 * Decompresses one or more concatenated LZ4 frames (skippable frames are skipped). Stops with
 * Lz4OutputLimitError as soon as the output passes `maxBytes` (checked per block, so it never
 * holds more than one block beyond it).
 */
export function lz4DecompressFrame(data: Uint8Array, maxBytes = Number.POSITIVE_INFINITY): Uint8Array {
  let out: Uint8Array = new Uint8Array(Math.min(Math.max(64 << 10, data.length * 4), maxBytes + 1));
  let outPos = 0;
  let pos = 0;
  do {
    if (pos + 4 > data.length) throw new Error(`frame magic cut short at byte ${pos}`);
    const magic = readU32(data, pos) >>> 0;
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (pos + 8 > data.length) throw new Error(`skippable frame cut short at byte ${pos}`);
      pos += 8 + (readU32(data, pos + 4) >>> 0);
      if (pos > data.length) throw new Error("skippable frame runs past the end");
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Error(`bad frame magic 0x${magic.toString(16)} at byte ${pos}`);
    if (pos + 7 > data.length) throw new Error(`frame header cut short at byte ${pos}`);
    const flg = data[pos + 4]!;
    const bd = data[pos + 5]!;
    if ((flg & FLG_VERSION_MASK) !== FLG_VERSION_01)
      throw new Error(`unsupported frame version in FLG ${flg}`);
    if (flg & FLG_RESERVED || bd & BD_RESERVED) throw new Error("reserved frame descriptor bits are set");
    if (flg & FLG_DICT_ID) throw new Error("frames that need a dictionary are not supported");
    const maxBlockSize = BLOCK_MAX_SIZES[(bd >>> 4) & 7];
    if (maxBlockSize === undefined) throw new Error(`invalid block maximum size code ${(bd >>> 4) & 7}`);
    const descriptorLength = 2 + (flg & FLG_CONTENT_SIZE ? 8 : 0);
    if (pos + 4 + descriptorLength + 1 > data.length) throw new Error("frame header cut short");
    const headerChecksum = (xxh32(0, data, pos + 4, descriptorLength) >>> 8) & 0xff;
    if (headerChecksum !== data[pos + 4 + descriptorLength])
      throw new Error("frame header checksum mismatch");
    let contentSize = -1;
    if (flg & FLG_CONTENT_SIZE) {
      contentSize = (readU32(data, pos + 6) >>> 0) + (readU32(data, pos + 10) >>> 0) * 2 ** 32;
      if (contentSize > 2 ** 31) throw new Error(`content size ${contentSize} is too large`);
    }
    pos += 4 + descriptorLength + 1;
    const frameStart = outPos;
    if (contentSize > maxBytes - outPos)
      throw new Lz4OutputLimitError(`content size ${contentSize} passes ${maxBytes} bytes`);
    if (contentSize >= 0) out = ensureCapacity(out, outPos, contentSize);
    const independent = (flg & FLG_BLOCK_INDEPENDENCE) !== 0;
    for (;;) {
      if (pos + 4 > data.length) throw new Error(`block size cut short at byte ${pos}`);
      const word = readU32(data, pos) >>> 0;
      pos += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      if (size > maxBlockSize)
        throw new Error(`block of ${size} bytes exceeds the ${maxBlockSize}-byte maximum`);
      const end = pos + size;
      const checksumEnd = end + (flg & FLG_BLOCK_CHECKSUM ? 4 : 0);
      if (checksumEnd > data.length) throw new Error(`block at byte ${pos - 4} runs past the end`);
      if (flg & FLG_BLOCK_CHECKSUM && xxh32(0, data, pos, size) !== readU32(data, end) >>> 0) {
        throw new Error(`block checksum mismatch at byte ${pos - 4}`);
      }
      out = ensureCapacity(out, outPos, maxBlockSize);
      if (word & UNCOMPRESSED_BIT) {
        out.set(data.subarray(pos, end), outPos);
        outPos += size;
      } else {
        outPos = lz4DecompressBlock(
          data,
          pos,
          end,
          out,
          outPos,
          outPos + maxBlockSize,
          independent ? outPos : frameStart,
        );
      }
      pos = checksumEnd;
      if (outPos > maxBytes) throw new Lz4OutputLimitError(`output passes ${maxBytes} bytes`);
    }
    if (flg & FLG_CONTENT_CHECKSUM) {
      if (pos + 4 > data.length) throw new Error("content checksum cut short");
      if (xxh32(0, out, frameStart, outPos - frameStart) !== readU32(data, pos) >>> 0) {
        throw new Error("content checksum mismatch");
      }
      pos += 4;
    }
    if (contentSize >= 0 && outPos - frameStart !== contentSize) {
      throw new Error(`frame decoded to ${outPos - frameStart} bytes, its header says ${contentSize}`);
    }
  } while (pos < data.length);
  // Do not hand out a view that pins much more memory than it shows.
  return out.length - outPos > outPos >>> 2 ? out.slice(0, outPos) : out.subarray(0, outPos);
}

/**
 * Decodes the block `src[start, end)` into `out` from `outPos`, writing nothing at or past
 * `outLimit` and copying nothing from before `refMin`. Returns the new output position.
 */
export function lz4DecompressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outPos: number,
  outLimit: number,
  refMin: number,
): number {
  let s = start;
  let o = outPos;
  for (;;) {
    if (s >= end) throw new Error("block ends inside a sequence");
    const token = src[s++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let byte: number;
      do {
        if (s >= end) throw new Error("literal length runs past the block");
        byte = src[s++]!;
        literals += byte;
      } while (byte === 255);
    }
    if (s + literals > end || o + literals > outLimit) throw new Error("literals run past the block");
    if (literals < 32) {
      for (let k = 0; k < literals; k++) out[o++] = src[s++]!;
    } else {
      out.set(src.subarray(s, s + literals), o);
      s += literals;
      o += literals;
    }
    if (s === end) return o;
    if (s + 2 > end) throw new Error("match offset cut short");
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || o - offset < refMin) throw new Error(`match offset ${offset} points before the data`);
    let length = token & 15;
    if (length === 15) {
      let byte: number;
      do {
        if (s >= end) throw new Error("match length runs past the block");
        byte = src[s++]!;
        length += byte;
      } while (byte === 255);
    }
    length += MIN_MATCH;
    if (o + length > outLimit) throw new Error("match runs past the block");
    let from = o - offset;
    if (offset >= length && length >= 32) {
      out.copyWithin(o, from, from + length);
      o += length;
    } else {
      // Overlapping copies repeat the last `offset` bytes, so they go byte by byte.
      for (const stop = o + length; o < stop; ) out[o++] = out[from++]!;
    }
  }
}

function ensureCapacity(out: Uint8Array, used: number, more: number): Uint8Array {
  if (used + more <= out.length) return out;
  const grown = new Uint8Array(Math.max(used + more, out.length * 2));
  grown.set(out.subarray(0, used));
  return grown;
}

function readU32(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}
