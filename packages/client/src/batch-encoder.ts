/**
 * Encodes producer batches as Kafka RecordBatch v2 (the layout is in record-batch.ts), for the
 * binary produce route, and chooses partitions as Kafka's default partitioner does. Dependency-free
 * like the rest of the client: gzip comes from the platform's CompressionStream; other codecs are
 * functions the caller supplies, writing Kafka's payload format for that codec.
 */
import { crc32c } from "./record-batch.js";

/** A record ready to encode: bytes, and the timestamp the producer gave it. */
export interface EncodableRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: readonly { name: Uint8Array; value: Uint8Array | null }[];
  timestamp: number;
}

export type Codec = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Kafka's codec ids (attributes bits 0–2). */
export const CODEC_IDS: { readonly [C in Codec]: number } = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

export type CompressFunction = (records: Uint8Array) => Promise<Uint8Array>;

export interface BatchFields {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  codec: Codec;
  /** Required for every codec but "none". */
  compress?: CompressFunction;
}

const HEADER_SIZE = 61;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * One RecordBatch v2 of `records` with baseOffset 0 (the log assigns offsets). Timestamps are
 * deltas from the earliest, so every delta is non-negative.
 */
export async function encodeBatch(
  records: readonly EncodableRecord[],
  fields: BatchFields,
): Promise<Uint8Array> {
  const count = records.length;
  let first = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const record of records) {
    if (record.timestamp < first) first = record.timestamp;
    if (record.timestamp > max) max = record.timestamp;
  }
  const bodySizes = new Int32Array(count);
  let size = 0;
  for (let i = 0; i < count; i++) {
    const record = records[i]!;
    let body = 1 + sizeOfVarlong(record.timestamp - first) + sizeOfVarint(i);
    body += sizeOfField(record.key) + sizeOfField(record.value) + sizeOfVarint(record.headers.length);
    for (const header of record.headers) body += sizeOfField(header.name) + sizeOfField(header.value);
    bodySizes[i] = body;
    size += sizeOfVarint(body) + body;
  }
  let batch: Uint8Array;
  if (fields.codec === "none") {
    batch = new Uint8Array(HEADER_SIZE + size);
    writeRecords(batch, HEADER_SIZE, records, bodySizes, first);
  } else {
    const raw = new Uint8Array(size);
    writeRecords(raw, 0, records, bodySizes, first);
    if (!fields.compress) throw new Error(`no compress function for codec ${fields.codec}`);
    const payload = await fields.compress(raw);
    batch = new Uint8Array(HEADER_SIZE + payload.byteLength);
    batch.set(payload, HEADER_SIZE);
  }
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  // baseOffset 0 (bytes 0–7 already zero), batchLength, partitionLeaderEpoch -1, magic 2.
  view.setInt32(8, batch.byteLength - 12);
  view.setInt32(12, -1);
  batch[16] = 2;
  view.setInt16(21, CODEC_IDS[fields.codec]);
  view.setInt32(23, count - 1);
  writeInt64(view, 27, first);
  writeInt64(view, 35, max);
  writeInt64(view, 43, fields.producerId);
  view.setInt16(51, fields.producerEpoch);
  view.setInt32(53, fields.baseSequence);
  view.setInt32(57, count);
  view.setUint32(17, crc32c(batch, 21));
  return batch;
}

function writeRecords(
  out: Uint8Array,
  start: number,
  records: readonly EncodableRecord[],
  bodySizes: Int32Array,
  firstTimestamp: number,
): void {
  let pos = start;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    pos = writeVarint(out, pos, bodySizes[i]!);
    out[pos++] = 0; // record attributes
    pos = writeVarlong(out, pos, record.timestamp - firstTimestamp);
    pos = writeVarint(out, pos, i);
    pos = writeField(out, pos, record.key);
    pos = writeField(out, pos, record.value);
    pos = writeVarint(out, pos, record.headers.length);
    for (const header of record.headers) {
      pos = writeField(out, pos, header.name);
      pos = writeField(out, pos, header.value);
    }
  }
}

function sizeOfField(bytes: Uint8Array | null): number {
  return bytes === null ? 1 : sizeOfVarint(bytes.byteLength) + bytes.byteLength;
}

function writeField(out: Uint8Array, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    out[pos] = 1; // zigzag(-1)
    return pos + 1;
  }
  pos = writeVarint(out, pos, bytes.byteLength);
  if (bytes.byteLength < 16) {
    for (let i = 0; i < bytes.byteLength; i++) out[pos + i] = bytes[i]!;
  } else {
    out.set(bytes, pos);
  }
  return pos + bytes.byteLength;
}

/** Zigzag varint of a 32-bit signed value. */
function sizeOfVarint(value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (v >= 0x80) {
    v >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

/** Zigzag varlong of a non-negative safe integer (timestamp deltas are never negative here). */
function sizeOfVarlong(value: number): number {
  let v = value * 2;
  let size = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    size++;
  }
  return size;
}

function writeVarlong(out: Uint8Array, pos: number, value: number): number {
  let v = value * 2;
  while (v >= 0x80) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

function writeInt64(view: DataView, pos: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32);
  view.setInt32(pos, high);
  view.setUint32(pos + 4, value - high * TWO_POW_32);
}

/** gzip through the platform's CompressionStream (Node 18+, browsers). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// --- Kafka's default partitioner ---------------------------------------------------------------

/**
 * Kafka's murmur2 (`Utils.murmur2`, seed 0x9747b28c), bit-exact, so a key lands on the partition a
 * Java producer (and the server, for JSON records) would choose.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const blocksEnd = length & ~3;
  for (let i = 0; i < blocksEnd; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= data[blocksEnd + 2]! << 16;
    if (tail >= 2) h ^= data[blocksEnd + 1]! << 8;
    h ^= data[blocksEnd]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
