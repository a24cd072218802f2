/**
 * Kafka RecordBatch v2 (magic 2), the unit Sluice stores, so that a Kafka-protocol gateway can
 * later serve stored bytes to Kafka consumers without re-encoding them.
 *
 * Batch layout (big-endian; byte offsets from the start of the batch):
 *
 *    0 baseOffset int64         27 firstTimestamp int64    57 recordCount int32
 *    8 batchLength int32        35 maxTimestamp int64      61 records (compressed as a whole
 *   12 partitionLeaderEpoch i32 43 producerId int64            when attributes say so)
 *   16 magic int8 (= 2)         51 producerEpoch int16
 *   17 crc uint32               53 baseSequence int32
 *   21 attributes int16
 *   23 lastOffsetDelta int32
 *
 * `batchLength` counts the bytes after itself, so a batch occupies 12 + batchLength bytes. The CRC
 * (CRC-32C) covers attributes through the end of the records; baseOffset, batchLength,
 * partitionLeaderEpoch and magic sit outside it, which is what lets a broker (or Sluice) assign
 * offsets by patching baseOffset in place without recomputing the CRC.
 *
 * Record layout: length varint, attributes int8 (unused, 0), timestampDelta varlong, offsetDelta
 * varint, key (varint length, -1 = null, then bytes), value (likewise), header count varint, then
 * per header a key (varint length + UTF-8, never null) and a value (like key/value).
 *
 * Attributes: bits 0–2 codec, bit 3 timestamp type (1 = log append time), bit 4 transactional,
 * bit 5 control batch, bit 6 delete horizon set (compaction; then firstTimestamp is the horizon).
 *
 * Offsets and timestamps are JavaScript numbers: exact to 2^53, which no partition offset or
 * millisecond timestamp will reach. Stored values outside that range are refused, never rounded.
 *
 * Performance: encode sizes every record first and fills one exactly-sized buffer (no growing,
 * no per-record buffers); decode returns keys and values as views into the input (or into the
 * decompressed payload), never copies. Callers must not mutate the input while they hold records.
 */
import {
  type Compression,
  compress,
  compressionCode,
  compressionFromCode,
  decompress,
} from "./compression.js";
import { crc32c } from "./crc32c.js";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";
import {
  type Cursor,
  readVarint,
  readVarlong,
  sizeOfUnsignedVarint,
  sizeOfVarint,
  sizeOfVarlong,
  writeUnsignedVarint,
  writeVarint,
  writeVarlong,
} from "./varint.js";

// ---- public types ----

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

/** One record as producers give it and consumers see it. `timestamp` is in milliseconds. */
export interface Record {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  timestamp: number;
}

/** A decoded record: its absolute offset (baseOffset + offsetDelta) added. */
export interface DecodedRecord extends Record {
  offset: number;
}

/** "create": producer-supplied timestamps. "log_append": the batch's maxTimestamp applies to all. */
export type TimestampType = "create" | "log_append";

/**
 * A record to encode. Headers may be left out (none), and so may the timestamp when the options
 * give `defaultTimestamp` or `timestamp`. Producers' own record objects can be passed as they are.
 */
export interface RecordInput {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: readonly RecordHeader[];
  timestamp?: number;
}

export interface EncodeRecordBatchOptions {
  compression: Compression;
  /** The timestamp of records that carry none. */
  defaultTimestamp?: number;
  /** When set, every record gets this timestamp, whatever it carries (log-append time). */
  timestamp?: number;
  /** Offset of the first record; default 0 (producers send 0 and the log assigns offsets). */
  baseOffset?: bigint | number;
  /** Default "create". "log_append" sets attribute bit 3. */
  timestampType?: TimestampType;
  /** Idempotent-producer id; default -1 (none). */
  producerId?: number | bigint;
  /** Default -1 (none). */
  producerEpoch?: number;
  /** Sequence number of the first record; default -1 (none). */
  baseSequence?: number;
  /** Transactions are not supported yet; only `false` is accepted. */
  isTransactional?: false;
  /** Default -1, as producers write it; outside the CRC, so it may be patched later. */
  partitionLeaderEpoch?: number;
  /**
   * Each record's offset delta, increasing from 0 or more; default 0, 1, 2, … Key compaction
   * keeps its records' original offsets, so a batch may skip offsets (as Kafka's cleaner writes).
   */
  offsetDeltas?: readonly number[];
  /**
   * The batch's last offset delta, at least the last record's; default the last record's. A
   * batch may end past its last record, and may hold no record at all (Kafka's cleaner keeps such
   * batches so offsets stay accounted for); an empty batch needs this and a `timestamp`.
   */
  lastOffsetDelta?: number;
}

/** The fixed-size batch header, parsed without touching the records. */
export interface RecordBatchHeader {
  /** Offset of the first record (or the override given to `decodeRecordBatches`). */
  baseOffset: number;
  /** baseOffset + lastOffsetDelta. */
  lastOffset: number;
  /** The stored length field: bytes following it, i.e. byteLength - 12. */
  batchLength: number;
  /** Bytes the whole batch occupies. */
  byteLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** The stored CRC-32C (unsigned). */
  crc: number;
  attributes: number;
  compression: Compression;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  lastOffsetDelta: number;
  firstTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface DecodedBatch extends RecordBatchHeader {
  records: DecodedRecord[];
}

export interface DecodeRecordBatchesOptions {
  /**
   * Report the first batch as starting at this offset and each later batch as starting right
   * after the previous one's last offset, ignoring the stored baseOffsets. For batches stored
   * as the producer sent them (baseOffset 0) whose offsets the log assigns elsewhere.
   */
  baseOffsetOverride?: bigint | number;
  /**
   * Decode only records at or after this offset (after `baseOffsetOverride` applies): the ones
   * before are walked for their framing, not built. For a read from the middle of a batch.
   */
  fromOffset?: number;
  /**
   * Decode at most this many records per call (counted from `fromOffset`); the rest are walked
   * for their framing, not built. A batch's `records` then holds only what was decoded, while
   * its header still counts all of them.
   */
  maxRecords?: number;
}

// ---- layout ----

export const RECORD_BATCH_MAGIC = 2;

/** The headers of a decoded record that has none; frozen, as decoded records are read-only. */
const NO_HEADERS: RecordHeader[] = Object.freeze([]) as unknown as RecordHeader[];
/** Bytes before the first record. */
export const RECORD_BATCH_HEADER_SIZE = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
const LOG_OVERHEAD = 12;

const BATCH_LENGTH_OFFSET = 8;
const PARTITION_LEADER_EPOCH_OFFSET = 12;
const MAGIC_OFFSET = 16;
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;
const LAST_OFFSET_DELTA_OFFSET = 23;
const FIRST_TIMESTAMP_OFFSET = 27;
const MAX_TIMESTAMP_OFFSET = 35;
const PRODUCER_ID_OFFSET = 43;
const PRODUCER_EPOCH_OFFSET = 51;
const BASE_SEQUENCE_OFFSET = 53;
const RECORD_COUNT_OFFSET = 57;

const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;

/** Smallest encoded record: a 1-byte length, then attributes, three 1-byte varints, key, value. */
const MIN_RECORD_BODY = 6;
const MIN_RECORD_SIZE = 1 + MIN_RECORD_BODY;
const MAX_BATCH_SIZE = 0x7fffffff;
/** Below this, a byte loop beats the call overhead of `Uint8Array.set`. */
const SMALL_COPY = 16;

const TWO_POW_32 = 0x1_0000_0000;

// ---- encoding ----

/** Encodes `records` as one RecordBatch v2; offsets are consecutive from `baseOffset`. */
export async function encodeRecordBatch(
  records: readonly RecordInput[],
  options: EncodeRecordBatchOptions,
): Promise<Uint8Array> {
  const codec = compressionCode(options.compression);
  const count = records.length;
  const offsetDeltas = checkOffsetDeltas(options.offsetDeltas, count);
  const lastRecordDelta = count === 0 ? -1 : offsetDeltas ? offsetDeltas[count - 1]! : count - 1;
  const lastOffsetDelta = options.lastOffsetDelta ?? lastRecordDelta;
  if (count === 0 && (options.lastOffsetDelta === undefined || options.timestamp === undefined)) {
    throw new InvalidArgumentError(
      "a record batch needs at least one record, or a lastOffsetDelta and a timestamp to be empty",
    );
  }
  if (
    !Number.isInteger(lastOffsetDelta) ||
    lastOffsetDelta < Math.max(0, lastRecordDelta) ||
    lastOffsetDelta > 0x7fffffff
  ) {
    throw new InvalidArgumentError(
      `lastOffsetDelta ${lastOffsetDelta} must be an integer from the last record's offset delta (${lastRecordDelta}) to 2^31-1`,
      { details: { lastOffsetDelta } },
    );
  }
  const baseOffset = toOffset(options.baseOffset ?? 0, "baseOffset");
  if (baseOffset + lastOffsetDelta > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`baseOffset ${baseOffset} + ${count} records passes 2^53`, {
      details: { baseOffset, count },
    });
  }
  const timestampType = options.timestampType ?? "create";
  if (timestampType !== "create" && timestampType !== "log_append") {
    throw new InvalidArgumentError(`unknown timestampType "${String(timestampType)}"`, {
      details: { timestampType },
    });
  }
  if (options.isTransactional !== undefined && options.isTransactional !== false) {
    throw new InvalidArgumentError("transactional batches are not supported");
  }
  const producerId = toProducerId(options.producerId ?? -1);
  const producerEpoch = checkInt(options.producerEpoch ?? -1, -1, 0x7fff, "producerEpoch");
  const baseSequence = checkInt(options.baseSequence ?? -1, -1, 0x7fffffff, "baseSequence");
  const partitionLeaderEpoch = checkInt(
    options.partitionLeaderEpoch ?? -1,
    -1,
    0x7fffffff,
    "partitionLeaderEpoch",
  );

  // Pass 1: every record's timestamp and their bounds, which every record's delta depends on.
  const timestamps = new Float64Array(count);
  let firstTimestamp = count === 0 ? options.timestamp! : Number.POSITIVE_INFINITY;
  let maxTimestamp = count === 0 ? options.timestamp! : Number.NEGATIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    const timestamp = options.timestamp ?? records[i]!.timestamp ?? options.defaultTimestamp;
    if (timestamp === undefined) {
      throw new InvalidArgumentError(`record ${i} has no timestamp and no default was given`, {
        details: { index: i },
      });
    }
    timestamps[i] = timestamp;
    if (!Number.isSafeInteger(timestamp)) {
      throw new InvalidArgumentError(
        `record ${i} has timestamp ${timestamp}; expected integer milliseconds`,
        {
          details: { index: i, timestamp },
        },
      );
    }
    if (timestamp < firstTimestamp) firstTimestamp = timestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
  }
  if (!Number.isSafeInteger(maxTimestamp - firstTimestamp)) {
    throw new InvalidArgumentError("record timestamps span more than 2^53 ms", {
      details: { firstTimestamp, maxTimestamp },
    });
  }

  // Pass 2: exact size of every record body, so pass 3 writes into one buffer with no checks.
  const bodySizes = new Int32Array(count);
  let recordsSize = 0;
  for (let i = 0; i < count; i++) {
    const record = records[i]!;
    const body =
      1 +
      sizeOfVarlong(timestamps[i]! - firstTimestamp) +
      sizeOfVarint(offsetDeltas ? offsetDeltas[i]! : i) +
      sizeOfBytesField(record.key, i, "key") +
      sizeOfBytesField(record.value, i, "value") +
      sizeOfHeaders(record.headers ?? NO_HEADERS, i);
    bodySizes[i] = body;
    recordsSize += sizeOfVarint(body) + body;
    if (recordsSize > MAX_BATCH_SIZE) throw tooLarge();
  }

  let out: Uint8Array;
  if (codec === 0) {
    out = allocate(RECORD_BATCH_HEADER_SIZE + recordsSize);
    writeRecords(out, RECORD_BATCH_HEADER_SIZE, records, bodySizes, timestamps, firstTimestamp, offsetDeltas);
  } else {
    const raw = allocate(recordsSize);
    writeRecords(raw, 0, records, bodySizes, timestamps, firstTimestamp, offsetDeltas);
    const payload = await compress(options.compression, raw);
    if (RECORD_BATCH_HEADER_SIZE + payload.length > MAX_BATCH_SIZE) throw tooLarge();
    out = allocate(RECORD_BATCH_HEADER_SIZE + payload.length);
    out.set(payload, RECORD_BATCH_HEADER_SIZE);
  }

  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  writeInt64(view, 0, baseOffset);
  view.setInt32(BATCH_LENGTH_OFFSET, out.length - LOG_OVERHEAD);
  view.setInt32(PARTITION_LEADER_EPOCH_OFFSET, partitionLeaderEpoch);
  out[MAGIC_OFFSET] = RECORD_BATCH_MAGIC;
  view.setInt16(ATTRIBUTES_OFFSET, codec | (timestampType === "log_append" ? TIMESTAMP_TYPE_BIT : 0));
  view.setInt32(LAST_OFFSET_DELTA_OFFSET, lastOffsetDelta);
  writeInt64(view, FIRST_TIMESTAMP_OFFSET, firstTimestamp);
  writeInt64(view, MAX_TIMESTAMP_OFFSET, maxTimestamp);
  writeInt64(view, PRODUCER_ID_OFFSET, producerId);
  view.setInt16(PRODUCER_EPOCH_OFFSET, producerEpoch);
  view.setInt32(BASE_SEQUENCE_OFFSET, baseSequence);
  view.setInt32(RECORD_COUNT_OFFSET, count);
  view.setUint32(CRC_OFFSET, crc32c(out.subarray(ATTRIBUTES_OFFSET)));
  return out;
}

function checkOffsetDeltas(
  deltas: readonly number[] | undefined,
  count: number,
): readonly number[] | undefined {
  if (deltas === undefined) return undefined;
  if (deltas.length !== count) {
    throw new InvalidArgumentError(`offsetDeltas has ${deltas.length} entries for ${count} records`);
  }
  let previous = -1;
  for (const delta of deltas) {
    if (!Number.isInteger(delta) || delta <= previous || delta > 0x7fffffff) {
      throw new InvalidArgumentError(
        `offsetDeltas must be increasing integers from 0 to 2^31-1, got ${delta} after ${previous}`,
      );
    }
    previous = delta;
  }
  return deltas;
}

/** Uninitialised memory (every byte gets written) as a plain Uint8Array, not a pooled Buffer. */
function allocate(size: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
}

function tooLarge(): InvalidArgumentError {
  return new InvalidArgumentError(`a record batch cannot exceed ${MAX_BATCH_SIZE} bytes`);
}

function sizeOfBytesField(bytes: Uint8Array | null, index: number, field: string): number {
  if (bytes === null) return 1;
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`record ${index} ${field} must be a Uint8Array or null`, {
      details: { index, field },
    });
  }
  return sizeOfUnsignedVarint(bytes.length << 1) + bytes.length;
}

function sizeOfHeaders(headers: readonly RecordHeader[], index: number): number {
  if (!Array.isArray(headers)) {
    throw new InvalidArgumentError(`record ${index} headers must be an array`, { details: { index } });
  }
  let size = sizeOfVarint(headers.length);
  for (let h = 0; h < headers.length; h++) {
    const header = headers[h]!;
    if (typeof header?.key !== "string") {
      throw new InvalidArgumentError(`record ${index} header ${h} key must be a string`, {
        details: { index, header: h },
      });
    }
    const keyLength = utf8Length(header.key);
    size += sizeOfVarint(keyLength) + keyLength + sizeOfBytesField(header.value, index, `header ${h} value`);
  }
  return size;
}

function writeRecords(
  out: Uint8Array,
  start: number,
  records: readonly RecordInput[],
  bodySizes: Int32Array,
  timestamps: Float64Array,
  firstTimestamp: number,
  offsetDeltas: readonly number[] | undefined,
): void {
  // A Buffer over the same memory, only for its fast UTF-8 writer; made once, only if needed.
  let text: Buffer | undefined;
  let pos = start;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    pos = writeUnsignedVarint(out, pos, bodySizes[i]! << 1);
    out[pos++] = 0; // record attributes: unused in v2
    pos = writeVarlong(out, pos, timestamps[i]! - firstTimestamp);
    pos = writeUnsignedVarint(out, pos, (offsetDeltas ? offsetDeltas[i]! : i) << 1);
    pos = writeBytesField(out, pos, record.key);
    pos = writeBytesField(out, pos, record.value);
    const headers = record.headers ?? NO_HEADERS;
    pos = writeVarint(out, pos, headers.length);
    for (let h = 0; h < headers.length; h++) {
      const header = headers[h]!;
      const key = header.key;
      const keyLength = utf8Length(key);
      pos = writeVarint(out, pos, keyLength);
      if (keyLength === key.length) {
        // As many bytes as UTF-16 units means all ASCII: copy the char codes directly.
        for (let c = 0; c < keyLength; c++) out[pos + c] = key.charCodeAt(c);
        pos += keyLength;
      } else {
        text ??= Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        pos += text.write(key, pos, keyLength, "utf8");
      }
      pos = writeBytesField(out, pos, header.value);
    }
  }
}

/**
 * UTF-8 byte length of a string. Header keys are short and nearly always ASCII, where scanning
 * the char codes is cheaper than a call into Buffer.byteLength; anything else defers to it.
 */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
  }
  return s.length;
}

function writeBytesField(out: Uint8Array, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    out[pos] = 1; // zigzag(-1)
    return pos + 1;
  }
  const length = bytes.length;
  pos = writeUnsignedVarint(out, pos, length << 1);
  if (length < SMALL_COPY) {
    for (let j = 0; j < length; j++) out[pos + j] = bytes[j]!;
  } else {
    out.set(bytes, pos);
  }
  return pos + length;
}

// ---- decoding ----

/**
 * Decodes one or more concatenated batches, verifying each one's magic, lengths and CRC-32C.
 * Any failure of the stored bytes is a DataCorruptionError; nothing unverified is returned.
 */
export async function decodeRecordBatches(
  bytes: Uint8Array,
  options: DecodeRecordBatchesOptions = {},
): Promise<DecodedBatch[]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let nextBaseOffset =
    options.baseOffsetOverride === undefined
      ? undefined
      : toOffset(options.baseOffsetOverride, "baseOffsetOverride");
  const batches: DecodedBatch[] = [];
  let decoded = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const header = parseHeader(bytes, view, pos);
    const end = pos + header.byteLength;
    if (end > bytes.length) {
      throw new DataCorruptionError(
        `record batch at byte ${pos} declares ${header.byteLength} bytes but only ${bytes.length - pos} remain`,
        { details: { position: pos, byteLength: header.byteLength, available: bytes.length - pos } },
      );
    }
    const actualCrc = crc32c(bytes.subarray(pos + ATTRIBUTES_OFFSET, end));
    if (actualCrc !== header.crc) {
      throw new DataCorruptionError(
        `record batch at byte ${pos} failed its CRC-32C check: expected ${hex(header.crc)}, actual ${hex(actualCrc)}`,
        { details: { position: pos, expectedCrc: header.crc, actualCrc } },
      );
    }
    if (nextBaseOffset !== undefined) {
      header.baseOffset = nextBaseOffset;
      header.lastOffset = nextBaseOffset + header.lastOffsetDelta;
      if (!Number.isSafeInteger(header.lastOffset + 1)) {
        throw new InvalidArgumentError("baseOffsetOverride pushes offsets past 2^53", {
          details: { baseOffsetOverride: nextBaseOffset },
        });
      }
      nextBaseOffset = header.lastOffset + 1;
    }
    const records: DecodedRecord[] = [];
    const payloadStart = pos + RECORD_BATCH_HEADER_SIZE;
    const range: DecodeRange = {
      fromOffset: options.fromOffset ?? Number.NEGATIVE_INFINITY,
      left: (options.maxRecords ?? Number.POSITIVE_INFINITY) - decoded,
    };
    if (header.compression === "none") {
      decodeRecords(bytes, payloadStart, end, header, pos, records, range);
    } else {
      const payload = await decompress(header.compression, bytes.subarray(payloadStart, end));
      decodeRecords(payload, 0, payload.length, header, pos, records, range);
    }
    decoded += records.length;
    const batch = header as DecodedBatch;
    batch.records = records;
    batches.push(batch);
    pos = end;
  }
  return batches;
}

/**
 * Parses the 61-byte header at `position` without decompressing or CRC-checking the records,
 * for indexing. Only the header must be present (a ranged read of 61 bytes is enough); `byteLength`
 * says where the next batch starts. Checks magic and that the declared length can hold a header.
 */
export function readBatchHeader(bytes: Uint8Array, position = 0): RecordBatchHeader {
  checkPosition(bytes, position);
  return parseHeader(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), position);
}

/**
 * Checks the batch at `position` as `decodeRecordBatches` does before it decodes — magic, lengths,
 * CRC-32C — without decoding (or decompressing) its records, and returns its header. For readers
 * that pass stored batches on as bytes. Failures are DataCorruptionErrors.
 */
export function verifyRecordBatch(bytes: Uint8Array, position = 0): RecordBatchHeader {
  checkPosition(bytes, position);
  const header = parseHeader(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), position);
  const end = position + header.byteLength;
  if (end > bytes.length) {
    throw new DataCorruptionError(
      `record batch at byte ${position} declares ${header.byteLength} bytes but only ${bytes.length - position} remain`,
      { details: { position, byteLength: header.byteLength, available: bytes.length - position } },
    );
  }
  const actualCrc = crc32c(bytes.subarray(position + ATTRIBUTES_OFFSET, end));
  if (actualCrc !== header.crc) {
    throw new DataCorruptionError(
      `record batch at byte ${position} failed its CRC-32C check: expected ${hex(header.crc)}, actual ${hex(actualCrc)}`,
      { details: { position, expectedCrc: header.crc, actualCrc } },
    );
  }
  return header;
}

/**
 * Writes `baseOffset` into the batch at `position`, in place. The CRC starts at the attributes
 * field, after baseOffset, so the batch stays valid: this is how offsets get assigned to a
 * producer's batch without re-encoding it.
 */
export function patchBaseOffset(batchBytes: Uint8Array, baseOffset: bigint | number, position = 0): void {
  const header = readBatchHeader(batchBytes, position);
  const offset = toOffset(baseOffset, "baseOffset");
  if (!Number.isSafeInteger(offset + header.lastOffsetDelta)) {
    throw new InvalidArgumentError(`baseOffset ${offset} puts the batch's last offset past 2^53`, {
      details: { baseOffset: offset, lastOffsetDelta: header.lastOffsetDelta },
    });
  }
  const view = new DataView(batchBytes.buffer, batchBytes.byteOffset, batchBytes.byteLength);
  writeInt64(view, position, offset);
}

function checkPosition(bytes: Uint8Array, position: number): void {
  if (!Number.isInteger(position) || position < 0 || position > bytes.length) {
    throw new InvalidArgumentError(`position ${position} is not within the ${bytes.length} bytes given`, {
      details: { position, length: bytes.length },
    });
  }
}

function parseHeader(bytes: Uint8Array, view: DataView, pos: number): RecordBatchHeader {
  const available = bytes.length - pos;
  if (available < RECORD_BATCH_HEADER_SIZE) {
    throw new DataCorruptionError(
      `record batch header at byte ${pos} needs ${RECORD_BATCH_HEADER_SIZE} bytes but only ${available} remain`,
      { details: { position: pos, available } },
    );
  }
  const magic = bytes[pos + MAGIC_OFFSET]!;
  if (magic !== RECORD_BATCH_MAGIC) {
    throw new DataCorruptionError(`record batch at byte ${pos} has magic ${magic}, expected 2`, {
      details: { position: pos, magic },
    });
  }
  const batchLength = view.getInt32(pos + BATCH_LENGTH_OFFSET);
  if (batchLength < RECORD_BATCH_HEADER_SIZE - LOG_OVERHEAD) {
    throw new DataCorruptionError(
      `record batch at byte ${pos} declares length ${batchLength}, too short for its header`,
      { details: { position: pos, batchLength } },
    );
  }
  const attributes = view.getInt16(pos + ATTRIBUTES_OFFSET);
  const baseOffset = readInt64(view, pos, "baseOffset");
  const lastOffsetDelta = view.getInt32(pos + LAST_OFFSET_DELTA_OFFSET);
  const recordCount = view.getInt32(pos + RECORD_COUNT_OFFSET);
  if (lastOffsetDelta < 0 || recordCount < 0) {
    throw new DataCorruptionError(
      `record batch at byte ${pos} has lastOffsetDelta ${lastOffsetDelta} and recordCount ${recordCount}`,
      { details: { position: pos, lastOffsetDelta, recordCount } },
    );
  }
  const lastOffset = baseOffset + lastOffsetDelta;
  if (!Number.isSafeInteger(lastOffset)) {
    throw new DataCorruptionError(`record batch at byte ${pos} has offsets past 2^53`, {
      details: { position: pos, baseOffset, lastOffsetDelta },
    });
  }
  return {
    baseOffset,
    lastOffset,
    batchLength,
    byteLength: batchLength + LOG_OVERHEAD,
    partitionLeaderEpoch: view.getInt32(pos + PARTITION_LEADER_EPOCH_OFFSET),
    magic,
    crc: view.getUint32(pos + CRC_OFFSET),
    attributes,
    compression: compressionFromCode(attributes & COMPRESSION_MASK),
    timestampType: attributes & TIMESTAMP_TYPE_BIT ? "log_append" : "create",
    isTransactional: (attributes & TRANSACTIONAL_BIT) !== 0,
    isControl: (attributes & CONTROL_BIT) !== 0,
    lastOffsetDelta,
    firstTimestamp: readInt64(view, pos + FIRST_TIMESTAMP_OFFSET, "firstTimestamp"),
    maxTimestamp: readInt64(view, pos + MAX_TIMESTAMP_OFFSET, "maxTimestamp"),
    producerId: readInt64(view, pos + PRODUCER_ID_OFFSET, "producerId"),
    producerEpoch: view.getInt16(pos + PRODUCER_EPOCH_OFFSET),
    baseSequence: view.getInt32(pos + BASE_SEQUENCE_OFFSET),
    recordCount,
  };
}

/** Which records of a batch to build: from an offset on, up to a count. */
interface DecodeRange {
  fromOffset: number;
  left: number;
}

/**
 * Walks `header.recordCount` records filling `buf[start, end)` exactly, building those `range`
 * asks for (the others are checked for their framing only). `batchPosition` is only for error
 * messages.
 */
function decodeRecords(
  buf: Uint8Array,
  start: number,
  end: number,
  header: RecordBatchHeader,
  batchPosition: number,
  out: DecodedRecord[],
  range: DecodeRange,
): void {
  const count = header.recordCount;
  if (count * MIN_RECORD_SIZE > end - start) {
    throw recordError(batchPosition, -1, `${count} records cannot fit in ${end - start} bytes`);
  }
  const cursor: Cursor = { pos: start, end };
  const baseOffset = header.baseOffset;
  const lastOffsetDelta = header.lastOffsetDelta;
  const firstTimestamp = header.firstTimestamp;
  // Kafka semantics: with log-append time every record carries the batch's maxTimestamp.
  const logAppend = header.timestampType === "log_append";
  const maxTimestamp = header.maxTimestamp;
  let text: Buffer | undefined;
  let lastKey = "";
  let lastKeyStart = 0;
  let lastKeyLength = -1;
  for (let i = 0; i < count; i++) {
    const length = readVarint(buf, cursor);
    const bodyEnd = cursor.pos + length;
    if (length < MIN_RECORD_BODY || bodyEnd > end) {
      throw recordError(batchPosition, i, `length ${length} does not fit the batch`);
    }
    if (out.length >= range.left) {
      cursor.pos = bodyEnd; // past what was asked for: framing only
      continue;
    }
    cursor.end = bodyEnd;
    cursor.pos++; // record attributes: unused in v2
    const timestampDelta = readVarlong(buf, cursor);
    const offsetDelta = readVarint(buf, cursor);
    if (offsetDelta < 0 || offsetDelta > lastOffsetDelta) {
      throw recordError(batchPosition, i, `offsetDelta ${offsetDelta} is outside 0..${lastOffsetDelta}`);
    }
    if (baseOffset + offsetDelta < range.fromOffset) {
      cursor.pos = bodyEnd; // before what was asked for: framing only
      cursor.end = end;
      continue;
    }
    const key = readBytesField(buf, cursor, batchPosition, i);
    const value = readBytesField(buf, cursor, batchPosition, i);
    const headerCount = readVarint(buf, cursor);
    // Most records carry no headers: they share one frozen empty list instead of allocating one each.
    const headers: RecordHeader[] = headerCount === 0 ? NO_HEADERS : [];
    if (headerCount !== 0) {
      if (headerCount < 0 || headerCount * 2 > bodyEnd - cursor.pos) {
        throw recordError(batchPosition, i, `header count ${headerCount} does not fit the record`);
      }
      text ??= Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
      for (let h = 0; h < headerCount; h++) {
        const keyLength = readVarint(buf, cursor);
        if (keyLength < 0 || cursor.pos + keyLength > bodyEnd) {
          throw recordError(batchPosition, i, `header ${h} key length ${keyLength} is invalid`);
        }
        const keyStart = cursor.pos;
        // Header keys repeat from record to record ("trace-id", ...): reuse the string decoded
        // last time when the bytes match, instead of decoding UTF-8 again.
        let headerKey: string;
        if (keyLength === lastKeyLength && sameBytes(buf, keyStart, lastKeyStart, keyLength)) {
          headerKey = lastKey;
        } else {
          headerKey = text.toString("utf8", keyStart, keyStart + keyLength);
          lastKey = headerKey;
          lastKeyStart = keyStart;
          lastKeyLength = keyLength;
        }
        cursor.pos = keyStart + keyLength;
        headers.push({ key: headerKey, value: readBytesField(buf, cursor, batchPosition, i) });
      }
    }
    if (cursor.pos !== bodyEnd) {
      throw recordError(
        batchPosition,
        i,
        `fields end at ${cursor.pos - start}, length says ${bodyEnd - start}`,
      );
    }
    cursor.end = end;
    let timestamp = maxTimestamp;
    if (!logAppend) {
      timestamp = firstTimestamp + timestampDelta;
      if (!Number.isSafeInteger(timestamp)) {
        throw recordError(batchPosition, i, "timestamp is outside the safe integer range");
      }
    }
    out.push({ key, value, headers, timestamp, offset: baseOffset + offsetDelta });
  }
  if (cursor.pos !== end) {
    throw recordError(batchPosition, -1, `${end - cursor.pos} bytes left over after ${count} records`);
  }
}

function sameBytes(buf: Uint8Array, a: number, b: number, length: number): boolean {
  for (let j = 0; j < length; j++) {
    if (buf[a + j] !== buf[b + j]) return false;
  }
  return true;
}

function readBytesField(
  buf: Uint8Array,
  cursor: Cursor,
  batchPosition: number,
  index: number,
): Uint8Array | null {
  const length = readVarint(buf, cursor);
  if (length === -1) return null;
  const pos = cursor.pos;
  if (length < -1 || pos + length > cursor.end) {
    throw recordError(batchPosition, index, `field length ${length} does not fit the record`);
  }
  cursor.pos = pos + length;
  return new Uint8Array(buf.buffer, buf.byteOffset + pos, length);
}

function recordError(batchPosition: number, index: number, what: string): DataCorruptionError {
  const where = index < 0 ? "records" : `record ${index}`;
  return new DataCorruptionError(`record batch at byte ${batchPosition}: ${where}: ${what}`, {
    details: { position: batchPosition, record: index },
  });
}

// ---- numeric helpers ----

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** Big-endian int64 as a number, refusing values a double cannot hold exactly. */
function readInt64(view: DataView, pos: number, field: string): number {
  const value = view.getInt32(pos) * TWO_POW_32 + view.getUint32(pos + 4);
  if (!Number.isSafeInteger(value)) {
    throw new DataCorruptionError(`${field} at byte ${pos} is outside the safe integer range`, {
      details: { position: pos, field },
    });
  }
  return value;
}

/** Writes a safe integer as a big-endian int64 without going through BigInt. */
function writeInt64(view: DataView, pos: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32);
  view.setInt32(pos, high);
  view.setUint32(pos + 4, value - high * TWO_POW_32);
}

/** A caller-supplied offset: a non-negative integer within 2^53. */
function toOffset(value: bigint | number, name: string): number {
  const n = typeof value === "bigint" ? bigintToSafe(value) : value;
  if (n === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(
      `${name} must be a non-negative integer below 2^53, got ${String(value)}`,
      {
        details: { [name]: String(value) },
      },
    );
  }
  return n;
}

function toProducerId(value: bigint | number): number {
  const n = typeof value === "bigint" ? bigintToSafe(value) : value;
  if (n === undefined || !Number.isSafeInteger(n) || n < -1) {
    throw new InvalidArgumentError(
      `producerId must be -1 or a non-negative integer below 2^53, got ${value}`,
      {
        details: { producerId: String(value) },
      },
    );
  }
  return n;
}

function bigintToSafe(value: bigint): number | undefined {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : undefined;
}

function checkInt(value: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got ${value}`, {
      details: { [name]: value },
    });
  }
  return value;
}
