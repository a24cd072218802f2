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

  /** `lines`: how many lines to make room for at once (a report is about 200 bytes). */
  constructor(clusterId: string, topicName: string, lines = 1) {
    this.prefix = utf8.encode(
      `{"error_code":200,"cluster_id":${JSON.stringify(clusterId)},"topic_name":${JSON.stringify(topicName)},"partition_id":`,
    );
    this.buffer = Buffer.allocUnsafe(lines * (this.prefix.byteLength + LINE_BYTES_USUAL));
  }

  report(prepared: PreparedRecord, appended: { partition: number; offset: number; timestamp: number }): void {
    this.reserve(this.prefix.byteLength + REPORT_TAIL_BYTES_MAX);
    this.buffer.set(this.prefix, this.used);
    this.used += this.prefix.byteLength;
    // Numbers, a timestamp and type names: ASCII, so written as Latin-1 (no UTF-8 encoder needed).
    this.used += this.buffer.write(
      `${appended.partition},"offset":${appended.offset},"timestamp":"${isoTimestamp(appended.timestamp)}","key":${size(prepared.key)},"value":${size(prepared.value)}}\n`,
      this.used,
      "latin1",
    );
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

function size(data: { type: DataType; size: number } | null): string {
  return data === null ? "null" : `{"type":"${data.type}","size":${data.size}}`;
}
