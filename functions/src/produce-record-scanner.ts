import { isUtf8 } from "node:buffer";
import { type DataType, decodeBase64 } from "./data-encoding.js";

/**
 * A record read straight from its JSON bytes, without JSON.parse. It reads only the compact form
 * JSON.stringify writes of the common record: members `key` and `value` (null, or `{"type":…,
 * "data":…}` in that order, with type STRING or BINARY and data a string without escapes),
 * `partition_id` and `timestamp` (unsigned integers, no fraction or exponent) and `headers` (an
 * empty list), in any order, with no whitespace. That is what the SDK and most clients send.
 * Anything else gives undefined and the record is parsed as JSON as before, so the scanner changes
 * no answer, only how fast the usual one comes (produce-record-scanner.test.ts checks it against
 * JSON.parse and the fast preparer).
 *
 * Why: on batched JSON produce, JSON.parse of the records and encoding their strings back to
 * UTF-8 took about a fifth of the server's time. Here a STRING's bytes are the request's own (a
 * view; JSON text is UTF-8 and a string without escapes is its bytes as they stand, once they are
 * checked to be UTF-8), and one regular expression a member finds the structure.
 */
export interface ScannedRecord {
  key: ScannedData | null;
  value: ScannedData | null;
  /** Named as in the JSON, so code that reads a parsed record's partition reads this one too. */
  partition_id?: number;
  timestamp?: number;
}

export interface ScannedData {
  type: DataType;
  bytes: Uint8Array;
}

/**
 * One member, matched where the last ended (sticky), over the record's bytes read as Latin-1 (one
 * character a byte, so positions in the text are positions in the bytes). Data may hold any byte
 * but a quote, a backslash or a control character: bytes above 0x7f are then checked as UTF-8.
 * At most 15 digits, so every number read is a safe integer and no timestamp passes TIMESTAMP_MAX.
 */
const MEMBER =
  /"(key|value)":(?:null|\{"type":"(STRING|BINARY)","data":"([^"\\\x00-\x1f]*)"\})|"(partition_id|timestamp)":(0|[1-9][0-9]{0,14})|"headers":\[\]/y;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
/** The `"}` after a data string. */
const DATA_END_CHARACTERS = 2;

/** Reads one record (a top-level object's bytes); undefined when its form is not the common one. */
export function scanRecord(bytes: Uint8Array): ScannedRecord | undefined {
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return scanObject(body.toString("latin1"), body, 0, body.length);
}

/**
 * Every record of a body, each where the splitter found it (`start`, and its bytes' length), or
 * undefined if any is not of the common form. The body is read as text once, not once a record.
 */
export function scanRecords(
  body: Buffer,
  slices: readonly { start: number; bytes: Uint8Array }[],
): ScannedRecord[] | undefined {
  const text = body.toString("latin1");
  const records: ScannedRecord[] = new Array(slices.length);
  for (let index = 0; index < slices.length; index++) {
    const { start, bytes } = slices[index]!;
    const record = scanObject(text, body, start, start + bytes.byteLength);
    if (record === undefined) return undefined;
    records[index] = record;
  }
  return records;
}

/** The object in `text` from `from` to `to` (`bytes` holds the same, as bytes). */
function scanObject(text: string, bytes: Buffer, from: number, to: number): ScannedRecord | undefined {
  if (text.charCodeAt(from) !== OPEN_BRACE) return undefined;
  const record: ScannedRecord = { key: null, value: null };
  if (to - from === 2 && text.charCodeAt(from + 1) === CLOSE_BRACE) return record;
  let at = from + 1;
  for (;;) {
    MEMBER.lastIndex = at;
    const match = MEMBER.exec(text);
    if (match === null) return undefined;
    at = MEMBER.lastIndex;
    const [, dataName, type, data, numberName, digits] = match;
    if (dataName !== undefined) {
      // A name given twice keeps its last value, as JSON.parse keeps it.
      let read: ScannedData | null | undefined = null;
      if (type !== undefined) {
        const length = data!.length;
        const view = new Uint8Array(
          bytes.buffer,
          bytes.byteOffset + at - DATA_END_CHARACTERS - length,
          length,
        );
        read = scanData(type as DataType, view, data!);
        if (read === undefined) return undefined;
      }
      if (dataName === "key") record.key = read;
      else record.value = read;
    } else if (numberName !== undefined) {
      // 15 digits at most: below TIMESTAMP_MAX (16 digits), and a safe integer.
      if (numberName === "partition_id") record.partition_id = Number(digits);
      else record.timestamp = Number(digits);
    }
    const next = text.charCodeAt(at);
    if (next === COMMA) at++;
    else return next === CLOSE_BRACE && at + 1 === to ? record : undefined;
  }
}

/** A STRING's bytes once they are UTF-8; a BINARY's decoded; undefined when JSON.parse must decide. */
function scanData(type: DataType, bytes: Uint8Array, text: string): ScannedData | undefined {
  if (type === "STRING") return isUtf8(bytes) ? { type, bytes } : undefined;
  try {
    return { type, bytes: decodeBase64(text, "") };
  } catch {
    return undefined;
  }
}
