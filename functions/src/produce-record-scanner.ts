import { isUtf8 } from "node:buffer";
import type { RecordHeader } from "@sluice/engine";
import { anyJsonEnd, canonicalJsonEnd, spacedCanonicalJsonEnd, withoutWhitespace } from "./canonical-json.js";
import { type DataType, decodeBase64 } from "./data-encoding.js";

/**
 * A record read straight from its JSON bytes, without parsing the body. It reads the common record:
 * members `key` and `value` (null, or `{"type":…, "data":…}` in that order, with type STRING or
 * BINARY and data a string, or type JSON and data any JSON value), `partition_id` and `timestamp`
 * (unsigned integers, no fraction or exponent) and `headers` (a list of `{"name":…, "value":…}`, in
 * that order, the value a string or null, or just `{"name":…}`), in any order, with or
 * without whitespace between the tokens (JSON.stringify writes none; Python's json.dumps a space
 * after each colon and comma; a person at a terminal, anything). That is what the SDK and most
 * clients send.
 * Any other form, in any record of a body, gives undefined and the body is read as JSON as before,
 * so the scanner changes no answer, only how fast the usual one comes
 * (produce-record-scanner.test.ts checks it against JSON.parse and the fast preparer).
 *
 * Why: on batched JSON produce, JSON.parse of the records and encoding their strings back to
 * UTF-8 took about a fifth of the server's time. Here a STRING's bytes are the request's own (a
 * view; JSON text is UTF-8 and a string without escapes is its bytes as they stand, once they are
 * checked to be UTF-8; one with escapes is decoded on its own), and one regular expression a
 * member finds the structure. A JSON value is stored as JSON.stringify writes it: when its text is
 * already that (canonical-json.ts), its bytes are taken as they stand; when only whitespace
 * between its tokens stands in the way, its bytes without that whitespace; otherwise that value
 * alone is parsed and written again, as the parsing path would, instead of the whole body.
 */
export interface ScannedRecord {
  key: ScannedData | null;
  value: ScannedData | null;
  /** Named as in the JSON, so code that reads a parsed record's partition reads this one too. */
  partition_id?: number;
  timestamp?: number;
  /** As the engine takes them: each name as a string, each value's bytes (base64 decoded) or null. */
  headers?: RecordHeader[];
}

export interface ScannedData {
  type: DataType;
  bytes: Uint8Array;
}

/** JSON's whitespace, which may stand between any two tokens. */
const _ = String.raw`[ \t\n\r]*`;
/** A string's characters up to its first escape: any byte from 0x20 up but a quote or a backslash. */
const UNESCAPED = String.raw`[\x20\x21\x23-\x5b\x5d-\xff]*`;
const ESCAPE = String.raw`\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})`;

/**
 * One member, matched where the last ended (sticky), over the record's bytes read as Latin-1 (one
 * character a byte, so positions in the text are positions in the bytes). A STRING's or BINARY's
 * match ends with its data's closing quote, a JSON value's just before the value. Data may hold
 * any byte from 0x20 up but a quote or a backslash, and JSON's escapes (no control characters):
 * bytes above 0x7f are then checked as UTF-8. A string without escapes is matched first, by one
 * tight loop (group 3); one with escapes only when that fails (group 4).
 * At most 15 digits, so every number read is a safe integer and no timestamp passes TIMESTAMP_MAX.
 * `headers` is matched up to its opening bracket; `scanHeaders` reads the list.
 */
const MEMBER = new RegExp(
  [
    String.raw`"(key|value)"${_}:${_}(?:null|\{${_}"type"${_}:${_}`,
    `(?:"(STRING|BINARY)"${_},${_}"data"${_}:${_}(?:"(${UNESCAPED})"|"(${UNESCAPED}(?:${ESCAPE}${UNESCAPED})+)")`,
    `|("JSON"${_},${_}"data"${_}:${_})))`,
    `|"(partition_id|timestamp)"${_}:${_}(0|[1-9][0-9]{0,14})`,
    String.raw`|"headers"${_}:${_}\[`,
  ].join(""),
  "y",
);

/** A header's name, up to its closing quote: `{"name":"…"`, the name plain (group 1) or with escapes (group 2). */
const HEADER_NAME = new RegExp(
  String.raw`\{${_}"name"${_}:${_}(?:"(${UNESCAPED})"|"(${UNESCAPED}(?:${ESCAPE}${UNESCAPED})+)")`,
  "y",
);
/** After the name's comma: `"value":null`, or the value's base64 up to its closing quote (plain: group 1). */
const HEADER_VALUE = new RegExp(
  `"value"${_}:${_}(?:null|"(${UNESCAPED})"|"(${UNESCAPED}(?:${ESCAPE}${UNESCAPED})+)")`,
  "y",
);

const utf8 = new TextEncoder();

const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
/** The quote after a data string. */
const DATA_END_CHARACTERS = 1;

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
  let at = afterWhitespace(text, from + 1);
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
          const bytes = stringBytes(body, windowStart + at, data.length);
          read = scanData(type as DataType, bytes, data, escaped !== undefined);
          if (read === undefined) return -1;
        } else if (json !== undefined) {
          // Canonical text, with or without whitespace between its tokens, ends where
          // canonical-json.ts finds; any other, where its strings and brackets end (JSON.parse
          // then checks it).
          let form: JsonForm = "canonical";
          let end = canonicalJsonEnd(text, at);
          if (end < 0) {
            form = "spaced";
            end = spacedCanonicalJsonEnd(text, at);
          }
          if (end < 0) {
            form = "other";
            end = anyJsonEnd(text, at);
          }
          if (end < 0) return -1;
          read = jsonData(body, windowStart, at, end, form);
          if (read === undefined) return -1;
          at = end;
        }
        if (read !== null) {
          // The data's object closes here: `}` after its data.
          at = afterWhitespace(text, at);
          if (text.charCodeAt(at) !== CLOSE_BRACE) return -1;
          at++;
        }
        if (dataName === "key") record.key = read;
        else record.value = read;
      } else if (numberName !== undefined) {
        // 15 digits at most: below TIMESTAMP_MAX (16 digits), and a safe integer.
        if (numberName === "partition_id") record.partition_id = Number(digits);
        else record.timestamp = Number(digits);
      } else {
        at = scanHeaders(text, body, windowStart, at, record);
        if (at < 0) return -1;
      }
      at = afterWhitespace(text, at);
      if (text.charCodeAt(at) !== COMMA) break;
      at = afterWhitespace(text, at + 1);
    }
    if (text.charCodeAt(at) !== CLOSE_BRACE) return -1;
  }
  scanned.records.push(record);
  scanned.starts.push(windowStart + from);
  scanned.ends.push(windowStart + at + 1);
  return at + 1;
}

/** How a JSON value's text stands to what JSON.stringify writes (canonical-json.ts). */
type JsonForm = "canonical" | "spaced" | "other";

/**
 * A JSON value's stored bytes, as the parsing path stores them (JSON.stringify of what JSON.parse
 * read), from its text at `from` to `end`: its own bytes when its text is canonical; the same
 * bytes without the whitespace between its tokens when only that stands between it and canonical
 * (as Python's json.dumps writes, or indented); else this value alone parsed and written again.
 * Undefined when they are not UTF-8 or not JSON, so the parsing path answers as before.
 */
function jsonData(
  body: Buffer,
  windowStart: number,
  from: number,
  end: number,
  form: JsonForm,
): ScannedData | undefined {
  const bytes = new Uint8Array(body.buffer, body.byteOffset + windowStart + from, end - from);
  if (!isUtf8(bytes)) return undefined;
  if (form === "canonical") return { type: "JSON", bytes };
  if (form === "spaced") return { type: "JSON", bytes: withoutWhitespace(bytes) };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
  return { type: "JSON", bytes: utf8.encode(JSON.stringify(value)) };
}

/**
 * The header list whose opening bracket ends at `from`, into `record.headers` (a later list
 * replaces an earlier one, as JSON.parse keeps the last); returns where the list ends, or -1 when
 * it is not of the common form or a name or value is one the preparers refuse (they then word the
 * error).
 */
function scanHeaders(
  text: string,
  body: Buffer,
  windowStart: number,
  from: number,
  record: ScannedRecord,
): number {
  const headers: RecordHeader[] = [];
  let at = afterWhitespace(text, from);
  if (text.charCodeAt(at) !== CLOSE_BRACKET) {
    for (;;) {
      HEADER_NAME.lastIndex = at;
      const name = HEADER_NAME.exec(text);
      if (name === null) return -1;
      at = HEADER_NAME.lastIndex;
      const [, plainName, escapedName] = name;
      // A name of ASCII characters without escapes (the usual one) is its text as it stands.
      const key =
        plainName !== undefined && isAscii(plainName)
          ? plainName
          : headerName(
              stringBytes(body, windowStart + at, (plainName ?? escapedName!).length),
              escapedName !== undefined,
            );
      if (key === undefined) return -1;
      let value: Uint8Array | null = null;
      at = afterWhitespace(text, at);
      if (text.charCodeAt(at) === COMMA) {
        HEADER_VALUE.lastIndex = afterWhitespace(text, at + 1);
        const match = HEADER_VALUE.exec(text);
        if (match === null) return -1;
        at = HEADER_VALUE.lastIndex;
        const [, plain, escaped] = match;
        if (plain !== undefined || escaped !== undefined) {
          const read =
            escaped === undefined
              ? binaryBytes(plain!, undefined)
              : binaryBytes(escaped, stringBytes(body, windowStart + at, escaped.length));
          if (read === undefined) return -1;
          value = read;
        }
        at = afterWhitespace(text, at);
      }
      if (text.charCodeAt(at) !== CLOSE_BRACE) return -1;
      headers.push({ key, value });
      at = afterWhitespace(text, at + 1);
      if (text.charCodeAt(at) !== COMMA) break;
      at = afterWhitespace(text, at + 1);
    }
    if (text.charCodeAt(at) !== CLOSE_BRACKET) return -1;
  }
  record.headers = headers;
  return at + 1;
}

/** The bytes of a string of `length` bytes whose closing quote ends at `end` in the body: a view. */
function stringBytes(body: Buffer, end: number, length: number): Uint8Array {
  return new Uint8Array(body.buffer, body.byteOffset + end - DATA_END_CHARACTERS - length, length);
}

/** A header's name as a string; undefined when it is not UTF-8 or holds a lone surrogate. */
function headerName(bytes: Uint8Array, escaped: boolean): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const name = escaped
    ? unescaped(bytes)
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  return (name as string & { isWellFormed(): boolean }).isWellFormed() ? name : undefined;
}

/** Whether every character of `text` is ASCII (below 0x80): its Latin-1 reading is then its UTF-8 one. */
function isAscii(text: string): boolean {
  for (let at = 0; at < text.length; at++) if (text.charCodeAt(at) > 0x7f) return false;
  return true;
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
  const decoded = binaryBytes(text, escaped ? bytes : undefined);
  return decoded === undefined ? undefined : { type, bytes: decoded };
}

/**
 * A BINARY string's bytes, base64 decoded: from its text, or from its JSON bytes when it has
 * escapes; undefined when JSON.parse or the preparers must decide.
 */
function binaryBytes(text: string, escapedBytes: Uint8Array | undefined): Uint8Array | undefined {
  try {
    return decodeBase64(escapedBytes === undefined ? text : unescaped(escapedBytes), "");
  } catch {
    return undefined;
  }
}

/** The string whose JSON text (between its quotes, escapes valid, no control characters) is `bytes`. */
function unescaped(bytes: Uint8Array): string {
  return JSON.parse(`"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")}"`);
}
