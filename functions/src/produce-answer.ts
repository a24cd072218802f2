import type { DataType } from "./data-encoding.js";
import type { ErrorBody } from "./http-errors.js";
import type { PreparedRecord } from "./produce-records.js";
import { isoTimestamp } from "./timestamps.js";

const utf8 = new TextEncoder();

/** Longest line a report makes after its prefix: numbers of 16 digits, a 27-character timestamp. */
const REPORT_TAIL_BYTES_MAX = 256;
/** What a report's line takes after its prefix, mostly. */
const LINE_BYTES_USUAL = 110;

/**
 * The streaming produce answer — one DeliveryReport or error body per line — written into one
 * byte buffer, byte for byte what JSON.stringify of each report gives (produce-answer.test.ts),
 * without report objects. Built as one string by `+=`, a thousand reports had to be flattened,
 * measured and then encoded: about a twelfth of the server's time on batched produce.
 */
export class ProduceAnswer {
  private buffer: Buffer;
  private used = 0;
  /** `{"error_code":200,"cluster_id":…,"topic_name":…,"partition_id":`, encoded once. */
  private readonly prefix: Uint8Array;
  private lastTail: {
    timestamp: number;
    keyType: DataType | undefined;
    keySize: number | undefined;
    valueType: DataType | undefined;
    valueSize: number | undefined;
    bytes: Uint8Array;
  } = {
    timestamp: Number.NaN,
    keyType: undefined,
    keySize: undefined,
    valueType: undefined,
    valueSize: undefined,
    bytes: new Uint8Array(0),
  };

  /** `lines`: how many lines to make room for at once (a report is about 200 bytes). */
  constructor(clusterId: string, topicName: string, lines = 1) {
    this.prefix = utf8.encode(
      `{"error_code":200,"cluster_id":${JSON.stringify(clusterId)},"topic_name":${JSON.stringify(topicName)},"partition_id":`,
    );
    this.buffer = Buffer.allocUnsafe(lines * (this.prefix.byteLength + LINE_BYTES_USUAL));
  }

  report(prepared: PreparedRecord, appended: { partition: number; offset: number; timestamp: number }): void {
    this.reserve(this.prefix.byteLength + REPORT_TAIL_BYTES_MAX);
    const buffer = this.buffer;
    buffer.set(this.prefix, this.used);
    this.used = writeDigits(buffer, this.prefix.byteLength + this.used, appended.partition);
    buffer.set(OFFSET_LABEL, this.used);
    this.used = writeDigits(buffer, this.used + OFFSET_LABEL.byteLength, appended.offset);
    const tail = this.tailOf(prepared, appended.timestamp);
    buffer.set(tail, this.used);
    this.used += tail.byteLength;
  }

  /**
   * `,"timestamp":…,"key":…,"value":…}\n`, encoded once for as long as it stays the same: the
   * records of one request mostly share their append time, and often their sizes.
   */
  private tailOf(prepared: PreparedRecord, timestamp: number): Uint8Array {
    const { key, value } = prepared;
    const last = this.lastTail;
    if (
      last.timestamp === timestamp &&
      last.keyType === key?.type &&
      last.keySize === key?.size &&
      last.valueType === value?.type &&
      last.valueSize === value?.size
    ) {
      return last.bytes;
    }
    // Numbers, a timestamp and type names: ASCII, so Latin-1 is their UTF-8.
    const bytes = Buffer.from(
      `,"timestamp":"${isoTimestamp(timestamp)}","key":${size(key)},"value":${size(value)}}\n`,
      "latin1",
    );
    this.lastTail = {
      timestamp,
      keyType: key?.type,
      keySize: key?.size,
      valueType: value?.type,
      valueSize: value?.size,
      bytes,
    };
    return bytes;
  }

  error(body: ErrorBody): void {
    const line = `${JSON.stringify(body)}\n`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.reserve(line.length * 3);
    this.used += this.buffer.write(line, this.used);
  }

  bytes(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.buffer.buffer as ArrayBuffer, this.buffer.byteOffset, this.used);
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.buffer.byteLength) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.byteLength * 2, this.used + bytes));
    this.buffer.copy(grown, 0, 0, this.used);
    this.buffer = grown;
  }
}

const OFFSET_LABEL = Buffer.from(',"offset":', "latin1");
const ZERO = 0x30;

/** The decimal digits of a non-negative safe integer at `at`; returns where they end. */
function writeDigits(buffer: Uint8Array, at: number, value: number): number {
  let length = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) length++;
  let rest = value;
  for (let index = at + length - 1; index >= at; index--) {
    buffer[index] = ZERO + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return at + length;
}

function size(data: { type: DataType; size: number } | null): string {
  return data === null ? "null" : `{"type":"${data.type}","size":${data.size}}`;
}
