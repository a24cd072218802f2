/**
 * Checks a RecordBatch v2 that a producer sent, before it is stored as it is (the binary produce
 * path). Everything a reader will later trust is checked here: magic, lengths, CRC-32C, the
 * record count and offset deltas (the log assigns offsets by counting), each record's framing and
 * size, timestamps. A compressed batch is decompressed to check its records; the stored bytes stay
 * the compressed ones. Failures are the sender's: InvalidArgumentError, naming the batch (`label`)
 * and, where there is one, the record.
 *
 * Accepted as Kafka's clients write them: any baseOffset and partitionLeaderEpoch (both outside the
 * CRC, rewritten by the log), any codec, create-time timestamps. Refused: transactional and control
 * batches, batches carrying a delete horizon, log-append timestamps (only a log may set those).
 */
import { decompress } from "./compression.js";
import { crc32c } from "./crc32c.js";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";
import {
  RECORD_BATCH_HEADER_SIZE,
  RECORD_BATCH_MAGIC,
  type RecordBatchHeader,
  readBatchHeader,
} from "./record-batch.js";
import { type Cursor, readVarint, readVarlong } from "./varint.js";

const LOG_OVERHEAD = 12;
const MAGIC_OFFSET = 16;
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;
const BATCH_LENGTH_OFFSET = 8;
const DELETE_HORIZON_BIT = 0x40;
/** Smallest record body: attributes, three 1-byte varints (timestamp, offset, key), value, headers. */
const MIN_RECORD_BODY = 6;
const SEQUENCE_MAX = 0x7fffffff;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A checked producer batch: its header as sent and what its records hold. */
export interface CheckedProducerBatch {
  header: RecordBatchHeader;
  /** Bytes the batch occupies. */
  byteLength: number;
  /** The earliest and latest record timestamps (the header's maxTimestamp may disagree: see fixMaxTimestamp). */
  minTimestamp: number;
  maxTimestamp: number;
  /** The largest record's index and payload bytes; over the limit, a RecordTooLargeError is the caller's to raise. */
  largestRecord: { index: number; bytes: number };
  /** The records' bytes, decompressed: the batch's own bytes when uncompressed. */
  payload: Uint8Array;
}

/**
 * Checks the batch at `position` of `bytes`. `label` names it in messages (`batch 2 (partition 5)`).
 * A compressed batch that may decompress to more than `maxDecompressedBytes` is refused
 * (InvalidArgumentError, code DECOMPRESSED_TOO_LARGE) before it is decompressed.
 * The records are walked without being decoded into objects.
 */
export async function checkProducerBatch(
  bytes: Uint8Array,
  position: number,
  label: string,
  maxDecompressedBytes = Number.POSITIVE_INFINITY,
): Promise<CheckedProducerBatch> {
  const available = bytes.byteLength - position;
  if (available < RECORD_BATCH_HEADER_SIZE) {
    throw invalid(
      label,
      `is ${available} bytes, shorter than a record batch header (${RECORD_BATCH_HEADER_SIZE})`,
    );
  }
  const magic = bytes[position + MAGIC_OFFSET]!;
  if (magic !== RECORD_BATCH_MAGIC) {
    throw invalid(label, `has magic ${magic}; only RecordBatch v2 (magic 2) is accepted`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const batchLength = view.getInt32(position + BATCH_LENGTH_OFFSET);
  if (batchLength < RECORD_BATCH_HEADER_SIZE - LOG_OVERHEAD) {
    throw invalid(label, `declares a length of ${batchLength} bytes, too short for its header`);
  }
  const byteLength = batchLength + LOG_OVERHEAD;
  if (byteLength > available) {
    throw invalid(label, `declares ${byteLength} bytes but only ${available} remain in the body (truncated)`);
  }
  const end = position + byteLength;
  const expectedCrc = view.getUint32(position + CRC_OFFSET);
  const actualCrc = crc32c(bytes.subarray(position + ATTRIBUTES_OFFSET, end));
  if (actualCrc !== expectedCrc) {
    throw invalid(
      label,
      `failed its CRC-32C check: the batch says ${hex(expectedCrc)}, its bytes give ${hex(actualCrc)}`,
    );
  }
  let header: RecordBatchHeader;
  try {
    header = readBatchHeader(bytes, position);
  } catch (error) {
    throw fromCorruption(label, error);
  }
  checkHeader(header, label);
  let payload: Uint8Array;
  if (header.compression === "none") {
    payload = bytes.subarray(position + RECORD_BATCH_HEADER_SIZE, end);
  } else {
    try {
      payload = await decompress(
        header.compression,
        bytes.subarray(position + RECORD_BATCH_HEADER_SIZE, end),
        maxDecompressedBytes,
      );
    } catch (error) {
      throw fromCorruption(label, error);
    }
  }
  const walked = walkRecords(payload, header, label);
  return { header, byteLength, payload, ...walked };
}

function checkHeader(header: RecordBatchHeader, label: string): void {
  if (header.isTransactional) throw invalid(label, "is transactional; transactions are not supported");
  if (header.isControl) throw invalid(label, "is a control batch; producers send data batches only");
  if (header.attributes & DELETE_HORIZON_BIT) {
    throw invalid(label, "carries a delete horizon (attribute bit 6), which only compaction sets");
  }
  if (header.timestampType === "log_append") {
    throw invalid(label, "has log-append timestamps (attribute bit 3); producers send create times");
  }
  if (header.recordCount === 0) throw invalid(label, "holds no records");
  if (header.lastOffsetDelta !== header.recordCount - 1) {
    throw invalid(
      label,
      `says it holds ${header.recordCount} records but its lastOffsetDelta is ${header.lastOffsetDelta} (expected ${header.recordCount - 1})`,
    );
  }
  if (header.producerId < -1) throw invalid(label, `has producerId ${header.producerId}`);
  if (header.producerId >= 0) {
    if (header.producerEpoch < 0) {
      throw invalid(label, `has producerId ${header.producerId} but producerEpoch ${header.producerEpoch}`);
    }
    if (header.baseSequence < 0) {
      throw invalid(label, `has producerId ${header.producerId} but baseSequence ${header.baseSequence}`);
    }
    if (header.baseSequence + header.recordCount - 1 > SEQUENCE_MAX) {
      throw invalid(
        label,
        `has baseSequence ${header.baseSequence} and ${header.recordCount} records, past the largest sequence ${SEQUENCE_MAX}`,
      );
    }
  }
}

/** Walks every record of `payload` as the header describes them, without building record objects. */
function walkRecords(
  payload: Uint8Array,
  header: RecordBatchHeader,
  label: string,
): Pick<CheckedProducerBatch, "minTimestamp" | "maxTimestamp" | "largestRecord"> {
  const count = header.recordCount;
  if (count * (1 + MIN_RECORD_BODY) > payload.byteLength) {
    throw invalid(
      label,
      `says it holds ${count} records, more than its ${payload.byteLength} bytes of records can`,
    );
  }
  const cursor: Cursor = { pos: 0, end: payload.byteLength };
  let minTimestamp = Number.POSITIVE_INFINITY;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  const largestRecord = { index: 0, bytes: -1 };
  let index = 0;
  try {
    for (; index < count; index++) {
      const length = readVarint(payload, cursor);
      const bodyEnd = cursor.pos + length;
      if (length < MIN_RECORD_BODY || bodyEnd > payload.byteLength) {
        throw invalid(label, `record ${index} declares ${length} bytes, which do not fit the batch`);
      }
      cursor.end = bodyEnd;
      cursor.pos++; // record attributes: unused in v2
      const timestamp = header.firstTimestamp + readVarlong(payload, cursor);
      const offsetDelta = readVarint(payload, cursor);
      if (offsetDelta !== index) {
        throw invalid(
          label,
          `record ${index} has offsetDelta ${offsetDelta}; a producer batch numbers its records 0, 1, 2, …`,
        );
      }
      let bytes = skipBytes(payload, cursor, label, index, "key", true);
      bytes += skipBytes(payload, cursor, label, index, "value", true);
      const headers = readVarint(payload, cursor);
      if (headers < 0 || headers * 2 > bodyEnd - cursor.pos) {
        throw invalid(label, `record ${index} declares ${headers} headers, which do not fit the record`);
      }
      for (let h = 0; h < headers; h++) {
        const keyBytes = skipBytes(payload, cursor, label, index, `header ${h} key`, false);
        try {
          strictUtf8.decode(payload.subarray(cursor.pos - keyBytes, cursor.pos));
        } catch {
          throw invalid(label, `record ${index} header ${h} key is not valid UTF-8`);
        }
        bytes += keyBytes + skipBytes(payload, cursor, label, index, `header ${h} value`, true);
      }
      if (cursor.pos !== bodyEnd) {
        throw invalid(label, `record ${index} has ${bodyEnd - cursor.pos} bytes after its last field`);
      }
      cursor.end = payload.byteLength;
      if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
        throw invalid(
          label,
          `record ${index} has timestamp ${timestamp}; expected non-negative milliseconds`,
        );
      }
      if (timestamp < minTimestamp) minTimestamp = timestamp;
      if (timestamp > maxTimestamp) maxTimestamp = timestamp;
      if (bytes > largestRecord.bytes) {
        largestRecord.index = index;
        largestRecord.bytes = bytes;
      }
    }
  } catch (error) {
    // A varint running past the end: the count or a length lied.
    if (error instanceof DataCorruptionError)
      throw invalid(label, `record ${index} is truncated: ${error.message}`);
    throw error;
  }
  if (cursor.pos !== payload.byteLength) {
    throw invalid(
      label,
      `has ${payload.byteLength - cursor.pos} bytes left over after its ${count} records (its record count is wrong)`,
    );
  }
  return { minTimestamp, maxTimestamp, largestRecord };
}

/** Skips a length-prefixed field (-1 = null when `nullable`) and returns its length. */
function skipBytes(
  payload: Uint8Array,
  cursor: Cursor,
  label: string,
  index: number,
  field: string,
  nullable: boolean,
): number {
  const length = readVarint(payload, cursor);
  if (length === -1 && nullable) return 0;
  if (length < 0 || cursor.pos + length > cursor.end) {
    throw invalid(label, `record ${index} ${field} declares ${length} bytes, which do not fit the record`);
  }
  cursor.pos += length;
  return length;
}

/**
 * Sets the batch's maxTimestamp (and, for log-append time, the timestamp type) in place and
 * recomputes its CRC, as a Kafka broker does: the records are left untouched. Readers rely on
 * maxTimestamp to find offsets by time, so a producer's wrong value is corrected here.
 */
export function rewriteBatchTimestamps(
  batch: Uint8Array,
  maxTimestamp: number,
  timestampType: "create" | "log_append",
): void {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const attributes = view.getInt16(ATTRIBUTES_OFFSET);
  view.setInt16(ATTRIBUTES_OFFSET, timestampType === "log_append" ? attributes | 0x08 : attributes & ~0x08);
  const high = Math.floor(maxTimestamp / 0x1_0000_0000);
  view.setInt32(35, high);
  view.setUint32(39, maxTimestamp - high * 0x1_0000_0000);
  view.setUint32(CRC_OFFSET, crc32c(batch.subarray(ATTRIBUTES_OFFSET)));
}

function invalid(label: string, what: string): InvalidArgumentError {
  return new InvalidArgumentError(`${label} ${what}`);
}

function fromCorruption(label: string, error: unknown): unknown {
  if (error instanceof DataCorruptionError) {
    return new InvalidArgumentError(`${label} is malformed: ${error.message}`, { cause: error });
  }
  if (error instanceof InvalidArgumentError) {
    return new InvalidArgumentError(`${label}: ${error.message}`, {
      cause: error,
      details: error.details,
      ...(error.code === undefined ? {} : { code: error.code }),
    });
  }
  return error;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}
