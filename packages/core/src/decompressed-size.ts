/**
 * Upper bounds on what a compressed payload decodes to, read from its framing without decoding it,
 * so that a payload that would decode to more than a caller allows (a decompression bomb: a few
 * kilobytes that claim gigabytes) is refused before any output is allocated. The native decoders
 * allocate as the data tells them to; the bound is what stops them.
 *
 * For honest data the bound is close to the real size, because encoders fill their blocks:
 * - snappy: exact — every raw block starts with its uncompressed length (xerial framing is a
 *   sequence of such blocks).
 * - LZ4 frame: per block, the block's maximum size, or 255 times its compressed size when that is
 *   less (a sequence of n+3 bytes writes at most 255n+19 bytes); uncompressed blocks exactly.
 *   Loose for very compressible data in large blocks, so compression.ts decodes a frame over its
 *   limit with the JavaScript decoder, which stops at the limit, rather than refusing it.
 * - zstd: per block, 128 KiB (the format's block maximum) for a compressed block; raw and RLE
 *   blocks exactly (an RLE block of one byte may say 128 KiB).
 * gzip has no such framing; node:zlib bounds it while decoding (`maxOutputLength`).
 *
 * Framing that cannot be walked throws a plain Error; compression.ts turns it into
 * DataCorruptionError, as it does the decoders' own failures.
 */

const LZ4_MAGIC = 0x184d2204;
const LZ4_FLG_BLOCK_CHECKSUM = 0x10;
const LZ4_FLG_CONTENT_SIZE = 0x08;
const LZ4_FLG_CONTENT_CHECKSUM = 0x04;
const LZ4_FLG_DICT_ID = 0x01;
const LZ4_UNCOMPRESSED_BIT = 0x80000000;
const LZ4_BLOCK_MAX_SIZES: Readonly<Record<number, number>> = {
  4: 64 << 10,
  5: 256 << 10,
  6: 1 << 20,
  7: 4 << 20,
};
/** The most output one byte of an LZ4 block can yield: a match-length byte of 255. */
const LZ4_MAX_EXPANSION = 255;

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 << 10;

/** LZ4 and zstd share the skippable-frame convention: magic 0x184D2A5?, a 4-byte size, content. */
const SKIPPABLE_MAGIC = 0x184d2a50;
const SKIPPABLE_MASK = 0xfffffff0;

const XERIAL_HEADER_SIZE = 16;
const XERIAL_MAGIC_HEAD = 0x82534e41;

function u32le(data: Uint8Array, at: number): number {
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
}

function u32be(data: Uint8Array, at: number): number {
  return ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
}

/** The length a raw snappy block declares (its leading varint). */
function snappyDeclaredLength(block: Uint8Array): number {
  let length = 0;
  for (let at = 0, shift = 0; ; at++, shift += 7) {
    if (at >= block.length || shift > 28) throw new Error("bad snappy uncompressed length varint");
    const byte = block[at]!;
    length += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return length;
  }
}

/** Exact: the sum of the declared lengths of the blocks, raw or inside xerial framing. */
export function snappySizeBound(data: Uint8Array, xerial: boolean): number {
  if (!xerial) return snappyDeclaredLength(data);
  let total = 0;
  let pos = 0;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw new Error(`xerial snappy chunk length is cut short at byte ${pos}`);
    const word = u32be(data, pos);
    if (word === XERIAL_MAGIC_HEAD) {
      pos += XERIAL_HEADER_SIZE;
      continue;
    }
    const length = word | 0;
    if (length < 0 || pos + 4 + length > data.length) {
      throw new Error(`xerial snappy chunk of ${length} bytes does not fit in the payload`);
    }
    total += snappyDeclaredLength(data.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return total;
}

export function lz4SizeBound(data: Uint8Array): number {
  let total = 0;
  let pos = 0;
  while (pos < data.length) {
    if (pos + 8 > data.length) throw new Error(`LZ4 frame header cut short at byte ${pos}`);
    const magic = u32le(data, pos);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      pos += 8 + u32le(data, pos + 4);
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new Error(`bad LZ4 frame magic 0x${magic.toString(16)} at byte ${pos}`);
    const flg = data[pos + 4]!;
    const blockMax = LZ4_BLOCK_MAX_SIZES[(data[pos + 5]! >>> 4) & 7];
    if (blockMax === undefined) throw new Error(`invalid LZ4 block maximum size code at byte ${pos + 5}`);
    pos +=
      4 +
      2 +
      (flg & LZ4_FLG_CONTENT_SIZE ? 8 : 0) +
      (flg & LZ4_FLG_DICT_ID ? 4 : 0) +
      1; /* header checksum */
    for (;;) {
      if (pos + 4 > data.length) throw new Error(`LZ4 block size cut short at byte ${pos}`);
      const word = u32le(data, pos);
      pos += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      total += word & LZ4_UNCOMPRESSED_BIT ? size : Math.min(blockMax, size * LZ4_MAX_EXPANSION);
      pos += size + (flg & LZ4_FLG_BLOCK_CHECKSUM ? 4 : 0);
    }
    if (flg & LZ4_FLG_CONTENT_CHECKSUM) pos += 4;
  }
  if (pos > data.length) throw new Error("LZ4 frame runs past the end of the payload");
  return total;
}

export function zstdSizeBound(data: Uint8Array): number {
  let total = 0;
  let pos = 0;
  while (pos < data.length) {
    if (pos + 5 > data.length) throw new Error(`zstd frame header cut short at byte ${pos}`);
    const magic = u32le(data, pos);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (pos + 8 > data.length) throw new Error(`zstd skippable frame cut short at byte ${pos}`);
      pos += 8 + u32le(data, pos + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new Error(`bad zstd frame magic 0x${magic.toString(16)} at byte ${pos}`);
    const descriptor = data[pos + 4]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    const contentSizeFlag = descriptor >>> 6;
    const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3]!;
    const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]!;
    pos += 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
    for (;;) {
      if (pos + 3 > data.length) throw new Error(`zstd block header cut short at byte ${pos}`);
      const header = data[pos]! | (data[pos + 1]! << 8) | (data[pos + 2]! << 16);
      pos += 3;
      const last = header & 1;
      const type = (header >>> 1) & 3;
      const size = header >>> 3;
      if (type === 0) {
        total += size;
        pos += size;
      } else if (type === 1) {
        total += size;
        pos += 1;
      } else if (type === 2) {
        total += ZSTD_BLOCK_MAX;
        pos += size;
      } else {
        throw new Error(`reserved zstd block type at byte ${pos - 3}`);
      }
      if (last) break;
    }
    if (descriptor & 0x04) pos += 4;
  }
  if (pos > data.length) throw new Error("zstd frame runs past the end of the payload");
  return total;
}
