import { isUtf8 } from "node:buffer";
import { type DataType, decodeBase64 } from "./data-encoding.js";

/**
 * A record read straight from its JSON bytes, without JSON.parse. It reads only the compact form
 * JSON.stringify writes of the common record: members `key` and `value` (null, or `{"type":…,
 * "data":…}` in that order, with type STRING or BINARY and data a string, or type JSON and data a
 * value written as JSON.stringify writes it: see `jsonValueEnd`), `partition_id`
 * and `timestamp` (unsigned integers, no fraction or exponent) and `headers` (an empty list), in
 * any order, with no whitespace. That is what the SDK and most clients send.
 * Any other form, in any record of a body, gives undefined and the body is read as JSON as before,
 * so the scanner changes no answer, only how fast the usual one comes
 * (produce-record-scanner.test.ts checks it against JSON.parse and the fast preparer).
 *
 * Why: on batched JSON produce, JSON.parse of the records and encoding their strings back to
 * UTF-8 took about a fifth of the server's time. Here a STRING's bytes are the request's own (a
 * view; JSON text is UTF-8 and a string without escapes is its bytes as they stand, once they are
 * checked to be UTF-8; one with escapes is decoded on its own), and one regular expression a
 * member finds the structure. A JSON value is
 * stored as JSON.stringify writes it; when its text is already that, its bytes are taken as they
 * stand too, instead of parsing the value and writing it again.
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
 * from 0x20 up but a quote or a backslash, and JSON's escapes (no control characters): bytes
 * above 0x7f are then checked as UTF-8. A string without escapes is matched first, by one tight
 * loop (group 3); one with escapes only when that fails (group 4).
 * At most 15 digits, so every number read is a safe integer and no timestamp passes TIMESTAMP_MAX.
 */
const MEMBER =
  /"(key|value)":(?:null|\{"type":"(STRING|BINARY)","data":(?:"([\x20\x21\x23-\x5b\x5d-\xff]*)"|"([\x20\x21\x23-\x5b\x5d-\xff]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[\x20\x21\x23-\x5b\x5d-\xff]*)+)")\}|(\{"type":"JSON","data":))|"(partition_id|timestamp)":(0|[1-9][0-9]{0,14})|"headers":\[\]/y;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
/** The `"}` after a data string. */
const DATA_END_CHARACTERS = 2;

/**
 * Text is read from the body in windows of this many bytes: a longer string would be allocated
 * outside V8's young generation (a 138 KB body read as one string took 180 µs; 120 KB, 12 µs).
 */
const WINDOW_BYTES = 64 * 1024;

/** The records of a body and where each lies in it (`starts[i]` to `ends[i]`). */
export interface ScannedBody {
  records: ScannedRecord[];
  starts: number[];
  ends: number[];
}

/**
 * Every record of a body of concatenated JSON objects (whitespace between them allowed, as the
 * splitter allows it), or undefined when any is not of the common form, there are none, there are
 * more than `recordsMax`, or one is longer than a window: the caller then reads the body as before.
 */
export function scanBody(body: Buffer, recordsMax: number): ScannedBody | undefined {
  const scanned: ScannedBody = { records: [], starts: [], ends: [] };
  let windowStart = 0;
  let text = body.toString("latin1", 0, WINDOW_BYTES);
  let at = 0;
  for (;;) {
    at = afterWhitespace(text, at);
    const windowEnd = windowStart + text.length;
    if (at === text.length) {
      if (windowEnd === body.length) break;
      windowStart += at;
      text = body.toString("latin1", windowStart, windowStart + WINDOW_BYTES);
      at = 0;
      continue;
    }
    if (scanned.records.length === recordsMax) return undefined;
    const end = scanObject(text, body, windowStart, at, scanned);
    if (end < 0) {
      // Perhaps cut by the window's end: once more, in a window that begins with this record.
      if (at === 0 || windowEnd === body.length) return undefined;
      windowStart += at;
      text = body.toString("latin1", windowStart, windowStart + WINDOW_BYTES);
      at = 0;
      continue;
    }
    at = end;
  }
  return scanned.records.length > 0 ? scanned : undefined;
}

/** Reads one record (a top-level object's bytes); undefined when its form is not the common one. */
export function scanRecord(bytes: Uint8Array): ScannedRecord | undefined {
  const scanned = scanBody(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 1);
  const ends = scanned?.ends ?? [];
  return scanned?.starts[0] === 0 && ends[0] === bytes.byteLength ? scanned.records[0] : undefined;
}

/**
 * The object at `from` in `text` (the body's bytes from `windowStart`, as Latin-1), added to
 * `scanned`; returns where it ends in `text`, or -1 when it is not of the common form.
 */
function scanObject(
  text: string,
  body: Buffer,
  windowStart: number,
  from: number,
  scanned: ScannedBody,
): number {
  if (text.charCodeAt(from) !== OPEN_BRACE) return -1;
  const record: ScannedRecord = { key: null, value: null };
  let at = from + 1;
  if (text.charCodeAt(at) !== CLOSE_BRACE) {
    for (;;) {
      MEMBER.lastIndex = at;
      const match = MEMBER.exec(text);
      if (match === null) return -1;
      at = MEMBER.lastIndex;
      const [, dataName, type, plain, escaped, json, numberName, digits] = match;
      if (dataName !== undefined) {
        // A name given twice keeps its last value, as JSON.parse keeps it.
        let read: ScannedData | null | undefined = null;
        if (type !== undefined) {
          const data = plain ?? escaped!;
          const length = data.length;
          const start = body.byteOffset + windowStart + at - DATA_END_CHARACTERS - length;
          const bytes = new Uint8Array(body.buffer, start, length);
          read = scanData(type as DataType, bytes, data, escaped !== undefined);
          if (read === undefined) return -1;
        } else if (json !== undefined) {
          const end = jsonValueEnd(text, at, 0);
          if (end < 0 || text.charCodeAt(end) !== CLOSE_BRACE) return -1;
          const bytes = new Uint8Array(body.buffer, body.byteOffset + windowStart + at, end - at);
          if (!isUtf8(bytes)) return -1;
          read = { type: "JSON", bytes };
          at = end + 1;
        }
        if (dataName === "key") record.key = read;
        else record.value = read;
      } else if (numberName !== undefined) {
        // 15 digits at most: below TIMESTAMP_MAX (16 digits), and a safe integer.
        if (numberName === "partition_id") record.partition_id = Number(digits);
        else record.timestamp = Number(digits);
      }
      if (text.charCodeAt(at) !== COMMA) break;
      at++;
    }
    if (text.charCodeAt(at) !== CLOSE_BRACE) return -1;
  }
  scanned.records.push(record);
  scanned.starts.push(windowStart + from);
  scanned.ends.push(windowStart + at + 1);
  return at + 1;
}

function afterWhitespace(text: string, from: number): number {
  let at = from;
  for (;;) {
    const character = text.charCodeAt(at);
    if (character !== 0x20 && character !== 0x0a && character !== 0x0d && character !== 0x09) return at;
    at++;
  }
}

/**
 * A STRING's bytes once they are UTF-8; a BINARY's decoded; undefined when JSON.parse must decide.
 * A string with escapes is decoded by JSON.parse on its own (its text between the quotes, as
 * UTF-8), and a STRING's must then have no lone surrogate, as the preparers require.
 */
function scanData(
  type: DataType,
  bytes: Uint8Array,
  text: string,
  escaped: boolean,
): ScannedData | undefined {
  if (type === "STRING") {
    if (!isUtf8(bytes)) return undefined;
    if (!escaped) return { type, bytes };
    const decoded = unescaped(bytes);
    if (!(decoded as string & { isWellFormed(): boolean }).isWellFormed()) return undefined;
    return { type, bytes: Buffer.from(decoded, "utf8") };
  }
  try {
    return { type, bytes: decodeBase64(escaped ? unescaped(bytes) : text, "") };
  } catch {
    return undefined;
  }
}

/** The string whose JSON text (between its quotes, escapes valid, no control characters) is `bytes`. */
function unescaped(bytes: Uint8Array): string {
  return JSON.parse(`"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")}"`);
}

/**
 * How deeply a JSON data value is read here (an array or object is one level); a deeper one is
 * left to JSON.parse, which allows up to JSON_DATA_DEPTH_MAX and says so when it is passed.
 */
const JSON_DEPTH_SCANNED_MAX = 64;
/**
 * A string as JSON.stringify writes it: no control characters, and only the escapes it writes
 * itself (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00xx` in lower case for the other
 * control characters). `\/`, `\u0041`, `\u00E9` or a surrogate pair written as escapes read as
 * the same string but are written otherwise; a lone surrogate's escape, which JSON.stringify does
 * write, is left to JSON.parse as well. Bytes above 0x7f are checked as UTF-8 after.
 */
const JSON_STRING =
  /"[\x20\x21\x23-\x5b\x5d-\xff]*(?:\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))[\x20\x21\x23-\x5b\x5d-\xff]*)*"/y;
/** An object's member name, as JSON_STRING, and its colon. */
const JSON_NAME =
  /"[\x20\x21\x23-\x5b\x5d-\xff]*(?:\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))[\x20\x21\x23-\x5b\x5d-\xff]*)*":/y;
/** A name V8 would order before the others (an array index), so JSON.stringify would move it. */
const ALL_DIGITS = /^[0-9]+$/;
/** Past this many names, an object's names are checked for repeats in a set. */
const NAMES_IN_LIST_MAX = 16;

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const LETTER_T = 0x74;
const LETTER_N = 0x6e;
const LETTER_F = 0x66;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const LETTER_E = 0x65;
const LETTER_CAPITAL_E = 0x45;

/**
 * Where the JSON value at `from` ends, if its text is exactly what JSON.stringify(JSON.parse(text))
 * writes, so its bytes can be stored as they stand; -1 otherwise (JSON.parse then decides). That
 * rules out whitespace, escapes JSON.stringify would not write (JSON_STRING), numbers not written
 * the way JavaScript writes them (`1.0`, `1e3`, `-0`, more digits than a double holds), a name
 * given twice in one object (JSON.parse keeps the last value at the first one's place), names of
 * digits only (V8 puts array indices first) and nesting past JSON_DEPTH_SCANNED_MAX. Bytes above
 * 0x7f are left to the caller's UTF-8 check.
 */
function jsonValueEnd(text: string, from: number, depth: number): number {
  const first = text.charCodeAt(from);
  if (first === QUOTE) {
    JSON_STRING.lastIndex = from;
    return JSON_STRING.test(text) ? JSON_STRING.lastIndex : -1;
  }
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    if (depth === JSON_DEPTH_SCANNED_MAX) return -1;
    return first === OPEN_BRACE ? jsonObjectEnd(text, from, depth + 1) : jsonArrayEnd(text, from, depth + 1);
  }
  if (first === LETTER_T) return text.startsWith("true", from) ? from + 4 : -1;
  if (first === LETTER_N) return text.startsWith("null", from) ? from + 4 : -1;
  if (first === LETTER_F) return text.startsWith("false", from) ? from + 5 : -1;
  return jsonNumberEnd(text, from);
}

/**
 * Where the number at `from` ends, if JSON.stringify writes it as it stands: an integer of at most
 * 15 digits (exact as a double) does, other than `-0`; anything else is written once more to see.
 * Walked by hand: numbers are short, and a regular expression's call costs more than the walk.
 */
function jsonNumberEnd(text: string, from: number): number {
  let at = from;
  const negative = text.charCodeAt(at) === MINUS;
  if (negative) at++;
  const lead = text.charCodeAt(at);
  if (lead === DIGIT_0) at++;
  else if (isDigit(lead)) at = digitsEnd(text, at + 1);
  else return -1;
  const integerDigits = at - from - (negative ? 1 : 0);
  let plain = true;
  if (text.charCodeAt(at) === DOT) {
    if (!isDigit(text.charCodeAt(at + 1))) return -1;
    at = digitsEnd(text, at + 2);
    plain = false;
  }
  const exponent = text.charCodeAt(at);
  if (exponent === LETTER_E || exponent === LETTER_CAPITAL_E) {
    at++;
    const sign = text.charCodeAt(at);
    if (sign === PLUS || sign === MINUS) at++;
    if (!isDigit(text.charCodeAt(at))) return -1;
    at = digitsEnd(text, at + 1);
    plain = false;
  }
  if (plain && integerDigits <= 15 && !(negative && lead === DIGIT_0)) return at;
  const written = text.slice(from, at);
  return String(Number(written)) === written ? at : -1;
}

function digitsEnd(text: string, from: number): number {
  let at = from;
  while (isDigit(text.charCodeAt(at))) at++;
  return at;
}

function isDigit(character: number): boolean {
  return character >= DIGIT_0 && character <= DIGIT_9;
}

function jsonObjectEnd(text: string, from: number, depth: number): number {
  let at = from + 1;
  if (text.charCodeAt(at) === CLOSE_BRACE) return at + 1;
  const names: string[] = [];
  let named: Set<string> | undefined;
  for (;;) {
    JSON_NAME.lastIndex = at;
    if (!JSON_NAME.test(text)) return -1;
    const valueAt = JSON_NAME.lastIndex;
    const name = text.slice(at + 1, valueAt - 2);
    if (isDigit(name.charCodeAt(0)) && ALL_DIGITS.test(name)) return -1;
    if (named === undefined) {
      if (names.includes(name)) return -1;
      names.push(name);
      if (names.length > NAMES_IN_LIST_MAX) named = new Set(names);
    } else {
      if (named.has(name)) return -1;
      named.add(name);
    }
    at = jsonValueEnd(text, valueAt, depth);
    if (at < 0) return -1;
    const next = text.charCodeAt(at);
    if (next === CLOSE_BRACE) return at + 1;
    if (next !== COMMA) return -1;
    at++;
  }
}

function jsonArrayEnd(text: string, from: number, depth: number): number {
  let at = from + 1;
  if (text.charCodeAt(at) === CLOSE_BRACKET) return at + 1;
  for (;;) {
    at = jsonValueEnd(text, at, depth);
    if (at < 0) return -1;
    const next = text.charCodeAt(at);
    if (next === CLOSE_BRACKET) return at + 1;
    if (next !== COMMA) return -1;
    at++;
  }
}
