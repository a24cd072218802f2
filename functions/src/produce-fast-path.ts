import { type ProduceRecord, type RecordHeader, recordPayloadBytes, type Topic } from "@sluice/engine";
import { type DataType, decodeBase64, JSON_DATA_DEPTH_MAX } from "./data-encoding.js";
import { TIMESTAMP_MAX } from "./patterns.js";
import type { ScannedRecord } from "./produce-record-scanner.js";
import type { PreparedRecord } from "./produce-records.js";

/**
 * The hot path of JSON produce. Records of the common shapes — `key` and `value` absent, null or
 * `{type, data}`, headers absent or a list of `{name, value}` with a base64 value or null, a
 * numeric timestamp or none, a partition the topic has, a key where the topic is compacted — are
 * checked and turned into engine records here, without a schema library and without an allocation
 * per string (their UTF-8 goes into shared buffers). Anything else, and anything this path would
 * refuse, returns undefined: prepareRecord then checks the record in full and writes the error
 * message. So the fast path changes no answer, only how fast the usual one comes
 * (produce-fast-path.test.ts checks both paths agree).
 */
export class FastRecordPreparer {
  constructor(private readonly topic: Topic) {}

  prepare(input: unknown): PreparedRecord | undefined {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return undefined;
    const fields = input as Record<string, unknown>;
    let partition: number | undefined;
    let timestamp: number | undefined;
    let headers: RecordHeader[] = NO_HEADERS;
    for (const name in fields) {
      const value = fields[name];
      switch (name) {
        case "key":
        case "value":
          break;
        case "partition_id":
          if (value === undefined) break;
          if (
            typeof value !== "number" ||
            !Number.isInteger(value) ||
            value < 0 ||
            value >= this.topic.partitions
          )
            return undefined;
          partition = value;
          break;
        case "timestamp":
          if (value === undefined) break;
          if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > TIMESTAMP_MAX)
            return undefined;
          timestamp = value;
          break;
        case "headers": {
          if (value === undefined) break;
          const read = readHeaders(value);
          if (read === undefined) return undefined;
          headers = read;
          break;
        }
        default:
          return undefined;
      }
    }
    const key = this.data(fields.key);
    if (key === false) return undefined;
    const value = this.data(fields.value);
    if (value === false) return undefined;
    return assemble(this.topic, key, value, partition, timestamp, headers);
  }

  /** A record the scanner read from its bytes, checked against the topic as `prepare` checks. */
  prepareScanned(scanned: ScannedRecord): PreparedRecord | undefined {
    const partition = scanned.partition_id;
    if (partition !== undefined && partition >= this.topic.partitions) return undefined;
    return assemble(
      this.topic,
      scanned.key,
      scanned.value,
      partition,
      scanned.timestamp,
      scanned.headers ?? NO_HEADERS,
    );
  }

  /** The bytes of a `{type, data}`, null for null or absent, false when the slow path must decide. */
  private data(input: unknown): { type: DataType; bytes: Uint8Array } | null | false {
    if (input === undefined || input === null) return null;
    if (typeof input !== "object" || Array.isArray(input)) return false;
    const { type, data } = input as { type?: unknown; data?: unknown };
    let count = 0;
    for (const _ in input) count++;
    if (count !== 2 || data === undefined) return false;
    switch (type) {
      case "STRING":
        if (typeof data !== "string" || !isWellFormed(data)) return false;
        return { type, bytes: recordText.utf8(data) };
      case "JSON": {
        if (typeof data === "object" && data !== null && !shallowerThan(data, JSON_DATA_DEPTH_MAX))
          return false;
        return { type, bytes: recordText.utf8(JSON.stringify(data)) };
      }
      case "BINARY":
        if (typeof data !== "string") return false;
        try {
          return { type, bytes: decodeBase64(data, "") };
        } catch {
          return false;
        }
      default:
        return false;
    }
  }
}

/**
 * The engine's record and its report's sizes; undefined when the topic refuses it (too large, or
 * without a key on a compacted topic), so that prepareRecord refuses that record alone. Were it
 * let through, the engine's own check would refuse the whole append it is part of.
 */
function assemble(
  topic: Topic,
  key: { type: DataType; bytes: Uint8Array } | null,
  value: { type: DataType; bytes: Uint8Array } | null,
  partition: number | undefined,
  timestamp: number | undefined,
  headers: RecordHeader[],
): PreparedRecord | undefined {
  if (key === null && topic.settings.cleanupPolicy.compact) return undefined;
  const record: ProduceRecord = {
    key: key?.bytes ?? null,
    value: value?.bytes ?? null,
    headers: headers === NO_HEADERS ? [] : headers,
  };
  // The engine's own count: key, value, and each header's name and value.
  if (recordPayloadBytes(record) > topic.settings.maxMessageBytes) return undefined;
  if (timestamp !== undefined) record.timestamp = timestamp;
  if (partition !== undefined) record.partition = partition;
  return {
    record,
    key: key ? { type: key.type, size: key.bytes.byteLength } : null,
    value: value ? { type: value.type, size: value.bytes.byteLength } : null,
  };
}

/** Shared by records without headers; never handed to the engine (each record gets its own list). */
const NO_HEADERS: RecordHeader[] = [];

/**
 * A parsed `headers` list as the engine's headers: each `{name, value}` (no other member) with a
 * well-formed name and a base64 value, null or none; undefined for anything else, which
 * prepareRecord then refuses in its own words.
 */
function readHeaders(input: unknown): RecordHeader[] | undefined {
  if (!Array.isArray(input)) return undefined;
  const headers: RecordHeader[] = [];
  for (const item of input as unknown[]) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return undefined;
    for (const member in item) if (member !== "name" && member !== "value") return undefined;
    const { name, value } = item as { name?: unknown; value?: unknown };
    if (typeof name !== "string" || !isWellFormed(name)) return undefined;
    if (value === undefined || value === null) {
      headers.push({ key: name, value: null });
      continue;
    }
    if (typeof value !== "string") return undefined;
    try {
      headers.push({ key: name, value: decodeBase64(value, "") });
    } catch {
      return undefined;
    }
  }
  return headers;
}

/**
 * UTF-8 of record strings, written one after another into shared 64 KiB buffers: a record holds a
 * view of its bytes, and a full buffer is left to the views that still hold it, never written
 * again, so no view's bytes change. One for the process rather than one per request: a buffer of
 * its own cost every single-record produce a fresh 64 KiB backing store, which the young
 * collection then had to sweep.
 */
class Utf8Arena {
  private buffer = Buffer.allocUnsafeSlow(0);
  private used = 0;

  /** The UTF-8 of a well-formed string, as a view nothing else will write over. */
  utf8(text: string): Uint8Array {
    const most = text.length * 3;
    if (most > ARENA_BYTES) return ownBytes(text);
    if (this.used + most > this.buffer.byteLength) {
      this.buffer = Buffer.allocUnsafeSlow(ARENA_BYTES);
      this.used = 0;
    }
    const written = this.buffer.write(text, this.used, "utf8");
    const bytes = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + this.used, written);
    this.used += written;
    return bytes;
  }
}

const ARENA_BYTES = 64 * 1024;
const recordText = new Utf8Arena();

/** A long string's UTF-8 in a buffer of its own, so no small view keeps a large buffer alive. */
function ownBytes(text: string): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(Buffer.byteLength(text, "utf8"));
  buffer.write(text, 0, "utf8");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** No lone surrogate (which UTF-8 cannot carry): String.prototype.isWellFormed, native in Node 20. */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** True when `data` nests fewer than `limit` levels (arrays and objects), without recursion. */
function shallowerThan(data: object, limit: number): boolean {
  const pending: [unknown, number][] = [[data, 1]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth > limit) return false;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) pending.push([child, depth + 1]);
    }
  }
  return true;
}
