/**
 * Reads a produce record of the usual shape straight from its JSON bytes, without JSON.parse and
 * without a string per field: on batched JSON produce, parsing the body and encoding each string
 * back to UTF-8 was a quarter of the server's time.
 *
 * It takes a strict subset of JSON: an object whose members are `key` and `value` (null, or an
 * object of exactly `type` "STRING" or "BINARY" and `data`, a string of printable ASCII without
 * escapes), `partition_id` and `timestamp` (digits only), and `headers` (an empty array), each
 * at most once, in any order, with any JSON whitespace between tokens. Printable ASCII is its own
 * UTF-8 and JSON text, so a STRING's stored bytes are the very bytes between its quotes. Anything
 * else (an escape, a non-ASCII character, a number with a sign, fraction or exponent, another
 * member, a repeated one) answers undefined, and the record goes through JSON.parse as before: the
 * scanner never decides an answer, it only finds the usual one sooner (produce-record-scanner.test.ts
 * checks that whatever it takes, JSON.parse reads the same).
 */

/** `{type, data}` as it stands in the body: for BINARY, the base64 text still to decode. */
export interface ScannedData {
  type: "STRING" | "BINARY";
  /** The bytes between the quotes of `data`: printable ASCII, no backslash. */
  text: Uint8Array;
}

/** A record the scanner read; `partition_id` is where the routes look for it on any record. */
export class ScannedRecord {
  /** The JSON object's bytes, for JSON.parse when the record has to take the full path. */
  readonly source: Uint8Array;
  key: ScannedData | null | undefined = undefined;
  value: ScannedData | null | undefined = undefined;
  /** Named as in the JSON record: the routes read `partition_id` of any record, parsed or scanned. */
  partition_id: number | undefined = undefined;
  timestamp: number | undefined = undefined;
  /** Whether the record had `"headers": []`. */
  headers = false;

  constructor(source: Uint8Array) {
    this.source = source;
  }
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;

/** More digits than this may not be a safe integer: the full path decides. */
const DIGITS_MAX = 15;

const ascii = (text: string) => Uint8Array.from(text, (character) => character.charCodeAt(0));
const KEY = ascii("key");
const VALUE = ascii("value");
const PARTITION_ID = ascii("partition_id");
const TIMESTAMP = ascii("timestamp");
const HEADERS = ascii("headers");
const TYPE = ascii("type");
const DATA = ascii("data");
const STRING = ascii("STRING");
const BINARY = ascii("BINARY");
const NULL = ascii("null");

/** Where a string token ends: the index of its closing quote, or -1 when it is not plain ASCII. */
function plainStringEnd(bytes: Uint8Array, start: number): number {
  for (let index = start; index < bytes.length; index++) {
    const byte = bytes[index]!;
    if (byte === QUOTE) return index;
    // Control characters are not JSON; a backslash starts an escape; above 0x7e is not ASCII.
    if (byte < 0x20 || byte > 0x7e || byte === BACKSLASH) return -1;
  }
  return -1;
}

function skipWhitespace(bytes: Uint8Array, index: number): number {
  for (;;) {
    const byte = bytes[index];
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return index;
    index++;
  }
}

function matches(bytes: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let index = 0; index < word.length; index++) if (bytes[start + index] !== word[index]) return false;
  return true;
}

/** Reads one record's bytes (one JSON object, as the stream splitter cut it); undefined: use JSON.parse. */
export function scanRecord(bytes: Uint8Array): ScannedRecord | undefined {
  const record = new ScannedRecord(bytes);
  let index = skipWhitespace(bytes, 0);
  if (bytes[index] !== OPEN_BRACE) return undefined;
  index = skipWhitespace(bytes, index + 1);
  if (bytes[index] === CLOSE_BRACE)
    return skipWhitespace(bytes, index + 1) === bytes.length ? record : undefined;
  let seen = 0; // one bit per member, so a repeated member (JSON.parse keeps the last) goes the full way
  for (;;) {
    if (bytes[index] !== QUOTE) return undefined;
    const nameEnd = plainStringEnd(bytes, index + 1);
    if (nameEnd < 0) return undefined;
    const nameStart = index + 1;
    index = skipWhitespace(bytes, nameEnd + 1);
    if (bytes[index] !== COLON) return undefined;
    index = skipWhitespace(bytes, index + 1);
    let bit: number;
    if (matches(bytes, nameStart, nameEnd, VALUE) || matches(bytes, nameStart, nameEnd, KEY)) {
      const isValue = nameEnd - nameStart === VALUE.length;
      bit = isValue ? 1 : 2;
      let data: ScannedData | null;
      if (bytes[index] === OPEN_BRACE) {
        const scanned = scanData(bytes, index);
        if (scanned === undefined) return undefined;
        data = scanned.data;
        index = scanned.end;
      } else if (matches(bytes, index, index + NULL.length, NULL)) {
        data = null;
        index += NULL.length;
      } else return undefined;
      if (isValue) record.value = data;
      else record.key = data;
    } else if (
      matches(bytes, nameStart, nameEnd, PARTITION_ID) ||
      matches(bytes, nameStart, nameEnd, TIMESTAMP)
    ) {
      const isPartition = nameEnd - nameStart === PARTITION_ID.length;
      bit = isPartition ? 4 : 8;
      const number = scanDigits(bytes, index);
      if (number === undefined) return undefined;
      if (isPartition) record.partition_id = number.value;
      else record.timestamp = number.value;
      index = number.end;
    } else if (matches(bytes, nameStart, nameEnd, HEADERS)) {
      bit = 16;
      if (bytes[index] !== OPEN_BRACKET) return undefined;
      index = skipWhitespace(bytes, index + 1);
      if (bytes[index] !== CLOSE_BRACKET) return undefined;
      index++;
      record.headers = true;
    } else return undefined;
    if (seen & bit) return undefined;
    seen |= bit;
    index = skipWhitespace(bytes, index);
    if (bytes[index] === COMMA) {
      index = skipWhitespace(bytes, index + 1);
      continue;
    }
    if (bytes[index] !== CLOSE_BRACE) return undefined;
    return skipWhitespace(bytes, index + 1) === bytes.length ? record : undefined;
  }
}

/** `{"type": "STRING"|"BINARY", "data": "…"}` in either order, from its '{'. */
function scanData(bytes: Uint8Array, start: number): { data: ScannedData; end: number } | undefined {
  let type: ScannedData["type"] | undefined;
  let text: Uint8Array | undefined;
  let index = skipWhitespace(bytes, start + 1);
  for (let member = 0; member < 2; member++) {
    if (bytes[index] !== QUOTE) return undefined;
    const nameEnd = plainStringEnd(bytes, index + 1);
    if (nameEnd < 0) return undefined;
    const isType = matches(bytes, index + 1, nameEnd, TYPE);
    if (!isType && !matches(bytes, index + 1, nameEnd, DATA)) return undefined;
    index = skipWhitespace(bytes, nameEnd + 1);
    if (bytes[index] !== COLON) return undefined;
    index = skipWhitespace(bytes, index + 1);
    if (bytes[index] !== QUOTE) return undefined;
    const valueEnd = plainStringEnd(bytes, index + 1);
    if (valueEnd < 0) return undefined;
    if (isType) {
      if (type !== undefined) return undefined;
      if (matches(bytes, index + 1, valueEnd, STRING)) type = "STRING";
      else if (matches(bytes, index + 1, valueEnd, BINARY)) type = "BINARY";
      else return undefined;
    } else {
      if (text !== undefined) return undefined;
      // A plain view: a Buffer's own subarray looks up its species first, which costs more here.
      text = new Uint8Array(bytes.buffer, bytes.byteOffset + index + 1, valueEnd - index - 1);
    }
    index = skipWhitespace(bytes, valueEnd + 1);
    if (member === 0) {
      if (bytes[index] !== COMMA) return undefined;
      index = skipWhitespace(bytes, index + 1);
    }
  }
  if (bytes[index] !== CLOSE_BRACE || type === undefined || text === undefined) return undefined;
  return { data: { type, text }, end: index + 1 };
}

/** A non-negative integer in JSON's form (no leading zero), of at most DIGITS_MAX digits. */
function scanDigits(bytes: Uint8Array, start: number): { value: number; end: number } | undefined {
  let index = start;
  let value = 0;
  while (index < bytes.length) {
    const byte = bytes[index]!;
    if (byte < ZERO || byte > NINE) break;
    value = value * 10 + (byte - ZERO);
    index++;
  }
  const digits = index - start;
  if (digits === 0 || digits > DIGITS_MAX || (digits > 1 && bytes[start] === ZERO)) return undefined;
  // A fraction or an exponent makes it another number: the full path reads it.
  const next = bytes[index];
  if (next === 0x2e || next === 0x65 || next === 0x45) return undefined;
  return { value, end: index };
}
