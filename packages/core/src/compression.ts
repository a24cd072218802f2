/**
 * The record-batch codecs, named as Kafka names them and numbered with Kafka's attribute codes
 * (the low three bits of a RecordBatch's attributes). Payload formats follow what the Java client
 * writes, so batches we produce can be served to Kafka consumers byte for byte:
 * - gzip: a gzip member (node:zlib).
 * - snappy: xerial snappy-java framing (see below); raw snappy is also accepted when reading.
 * - lz4: the standard LZ4 frame format (lz4-napi's compressFrame emits 64 KiB independent blocks
 *   without checksums, the same profile Kafka's own LZ4 stream uses).
 * - zstd: a zstd frame (level 3, Kafka's default).
 * Decompression failures are stored bytes failing verification, hence DataCorruptionError.
 */
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { compress as zstdCompress, decompress as zstdDecompress } from "@mongodb-js/zstd";
import { compressFrame, decompressFrame } from "lz4-napi";
import { compress as snappyCompress, uncompress as snappyUncompress } from "snappy";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";

export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Kafka's codec ids, as stored in bits 0–2 of a batch's attributes. */
export const COMPRESSION_CODES: { readonly [C in Compression]: number } = Object.freeze({
  none: 0,
  gzip: 1,
  snappy: 2,
  lz4: 3,
  zstd: 4,
});

const BY_CODE: readonly Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Kafka's default zstd level. */
const ZSTD_LEVEL = 3;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** The attribute code for a codec; an unknown name is a caller error. */
export function compressionCode(compression: Compression): number {
  // hasOwn, not a plain lookup, so that names like "toString" are refused too.
  if (!Object.hasOwn(COMPRESSION_CODES, compression)) {
    throw new InvalidArgumentError(`unknown compression "${String(compression)}"`, {
      details: { compression },
    });
  }
  return COMPRESSION_CODES[compression];
}

/** The codec for an attribute code read from stored bytes; an unknown id means corruption. */
export function compressionFromCode(code: number): Compression {
  const compression = BY_CODE[code];
  if (compression === undefined) {
    throw new DataCorruptionError(`unknown compression codec id ${code}`, { details: { codec: code } });
  }
  return compression;
}

/** Compresses a records payload with the given codec. "none" returns the input itself. */
export async function compress(compression: Compression, data: Uint8Array): Promise<Uint8Array> {
  switch (compressionCode(compression)) {
    case 0:
      return data;
    case 1:
      return plain(await gzipAsync(data));
    case 2:
      return await encodeXerialSnappy(data);
    case 3:
      return plain(await compressFrame(data));
    default:
      return plain(await zstdCompress(asBuffer(data), ZSTD_LEVEL));
  }
}

/** Decompresses a stored records payload; any codec failure becomes DataCorruptionError. */
export async function decompress(compression: Compression, data: Uint8Array): Promise<Uint8Array> {
  const code = compressionCode(compression);
  if (code === 0) return data;
  try {
    switch (code) {
      case 1:
        return plain(await gunzipAsync(data));
      case 2:
        return await decodeSnappy(data);
      case 3:
        return plain(await decompressFrame(data));
      default:
        return plain(await zstdDecompress(asBuffer(data)));
    }
  } catch (error) {
    if (error instanceof DataCorruptionError) throw error;
    throw new DataCorruptionError(
      `${compression} payload of ${data.length} bytes failed to decompress: ${(error as Error).message}`,
      { cause: error, details: { compression, length: data.length } },
    );
  }
}

/**
 * The bindings return Buffers; hand out plain Uint8Arrays over the same memory instead, because
 * Buffer's `slice` returns a view where Uint8Array's copies, a trap behind a Uint8Array type.
 */
function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** A Buffer over the same memory (no copy), for bindings typed to take Buffer. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// ---- snappy with xerial (snappy-java) framing ----
//
// Stream = header, then chunks. Header (16 bytes): the magic 0x82 "SNAPPY" 0x00, a big-endian
// int32 version (1) and a big-endian int32 minimum compatible version (1). Chunk: a big-endian
// int32 length followed by that many bytes of one raw snappy block. snappy-java reads
// concatenated streams, recognising a repeated header where a chunk length would be.
//
// A raw snappy block cannot start with the magic: 0x82 0x53 is a complete length varint, and
// the next byte 'N' (0x4E) is a copy-with-2-byte-offset tag, which is invalid before any literal
// output. So the magic unambiguously distinguishes the two encodings.

/** The first 8 bytes of a xerial-framed snappy stream. */
export const XERIAL_SNAPPY_MAGIC: Uint8Array = Uint8Array.of(0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00);
const XERIAL_HEADER_SIZE = 16;
const XERIAL_VERSION = 1;
const XERIAL_MIN_COMPATIBLE_VERSION = 1;
/** The first four magic bytes read as a big-endian int32, which marks a concatenated stream. */
const XERIAL_MAGIC_HEAD = 0x82534e41 | 0;
/** snappy-java's default block size; Kafka's Java producer uses it unchanged. */
const XERIAL_BLOCK_SIZE = 32 * 1024;

/** True when the payload starts with the xerial header magic. */
export function isXerialSnappy(data: Uint8Array): boolean {
  if (data.length < XERIAL_SNAPPY_MAGIC.length) return false;
  for (let i = 0; i < XERIAL_SNAPPY_MAGIC.length; i++) {
    if (data[i] !== XERIAL_SNAPPY_MAGIC[i]) return false;
  }
  return true;
}

/** Snappy-compresses `data` in 32 KiB blocks inside xerial framing, as snappy-java writes it. */
export async function encodeXerialSnappy(data: Uint8Array): Promise<Uint8Array> {
  const pending: Promise<Buffer>[] = [];
  for (let start = 0; start < data.length; start += XERIAL_BLOCK_SIZE) {
    pending.push(snappyCompress(data.subarray(start, start + XERIAL_BLOCK_SIZE)));
  }
  const blocks = await Promise.all(pending);
  let total = XERIAL_HEADER_SIZE;
  for (const block of blocks) total += 4 + block.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(XERIAL_SNAPPY_MAGIC, 0);
  view.setInt32(8, XERIAL_VERSION);
  view.setInt32(12, XERIAL_MIN_COMPATIBLE_VERSION);
  let pos = XERIAL_HEADER_SIZE;
  for (const block of blocks) {
    view.setInt32(pos, block.length);
    out.set(block, pos + 4);
    pos += 4 + block.length;
  }
  return out;
}

/** Decodes snappy data in xerial framing or, failing the magic check, as one raw block. */
export async function decodeSnappy(data: Uint8Array): Promise<Uint8Array> {
  if (!isXerialSnappy(data)) {
    return plain((await snappyUncompress(data, { asBuffer: true })) as Buffer);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const pending: Promise<Buffer>[] = [];
  let pos = 0;
  while (pos < data.length) {
    // At pos there is either a (possibly repeated) stream header or a chunk.
    if (pos + 4 > data.length) throw framingError("chunk length is cut short", pos);
    if (view.getInt32(pos) === XERIAL_MAGIC_HEAD) {
      if (pos + XERIAL_HEADER_SIZE > data.length) throw framingError("header is cut short", pos);
      if (!isXerialSnappy(data.subarray(pos))) throw framingError("header magic is damaged", pos);
      pos += XERIAL_HEADER_SIZE;
      continue;
    }
    const length = view.getInt32(pos);
    if (length < 0 || pos + 4 + length > data.length) {
      throw framingError(`chunk of ${length} bytes does not fit in the payload`, pos);
    }
    pending.push(
      snappyUncompress(data.subarray(pos + 4, pos + 4 + length), { asBuffer: true }) as Promise<Buffer>,
    );
    pos += 4 + length;
  }
  const blocks = await Promise.all(pending);
  return plain(blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks));
}

function framingError(what: string, position: number): DataCorruptionError {
  return new DataCorruptionError(`xerial snappy framing: ${what} at byte ${position}`, {
    details: { position },
  });
}
