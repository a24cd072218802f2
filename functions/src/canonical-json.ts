/**
 * Canonical JSON: whether a JSON value's text is exactly what JSON.stringify(JSON.parse(text))
 * writes. Where it is, a value can be stored as the bytes it came in, which is what the JSON
 * produce route stores for a value of type JSON (produce-record-scanner.ts), without parsing it and
 * writing it again.
 *
 * The text is a request's bytes read as Latin-1 (one character a byte): bytes above 0x7f are
 * left to the caller's UTF-8 check. Conservative by design: a value it says no to may still be
 * valid JSON; `anyJsonEnd` then finds where it ends, for JSON.parse to read that value alone.
 * Text that differs from canonical only by whitespace between its tokens (`spacedCanonicalJsonEnd`)
 * is stored without it (`withoutWhitespace`), which is what JSON.stringify would write.
 */

/**
 * Where the value at `from` ends, or -1 when its text is not JSON.stringify's own: see
 * `jsonValueEnd`.
 */
export function canonicalJsonEnd(text: string, from: number): number {
  return jsonValueEnd(text, from, 0, false);
}

/**
 * Where the value at `from` ends (its last token's end), if its text is JSON.stringify's own once
 * the whitespace between its tokens is taken out (as Python's json.dumps writes, or indented); -1
 * otherwise. Whitespace inside a number or literal (`1 2`, `- 1`, `tr ue`) is not between tokens:
 * -1. `withoutWhitespace` then gives the stored bytes.
 */
export function spacedCanonicalJsonEnd(text: string, from: number): number {
  return jsonValueEnd(text, from, 0, true);
}

/**
 * Where the JSON value at `from` ends, found from its strings and brackets alone: nothing else is
 * checked, so its text is JSON only if JSON.parse says so. -1 when a string or bracket is left
 * open, a bracket closes what it did not open, or it nests past JSON_DEPTH_SCANNED_MAX (deeper
 * values are left to the parsing path, which allows more and says when a value passes that).
 */
export function anyJsonEnd(text: string, from: number): number {
  const first = text.charCodeAt(from);
  if (first === QUOTE) return anyStringEnd(text, from);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    // A number or a literal: up to the first character that cannot be part of one.
    let at = from;
    while (isScalarCharacter(text.charCodeAt(at))) at++;
    return at > from ? at : -1;
  }
  const open: number[] = [];
  for (let at = from; at < text.length; at++) {
    const character = text.charCodeAt(at);
    if (character === QUOTE) {
      at = anyStringEnd(text, at) - 1;
      if (at < 0) return -1;
    } else if (character === OPEN_BRACE || character === OPEN_BRACKET) {
      if (open.length === JSON_DEPTH_SCANNED_MAX) return -1;
      open.push(character === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET);
    } else if (character === CLOSE_BRACE || character === CLOSE_BRACKET) {
      if (open.pop() !== character) return -1;
      if (open.length === 0) return at + 1;
    }
  }
  return -1;
}

/**
 * A JSON text's UTF-8 bytes without the whitespace between its tokens; strings are copied as they
 * stand. For a text `spacedCanonicalJsonEnd` ended: that is then what JSON.stringify writes. Reads
 * bytes, not a string, so the stored value is made without a string in between.
 */
export function withoutWhitespace(json: Uint8Array): Uint8Array {
  // Byte by byte: values are short, and a view per run of bytes costs more than the loop.
  const compact = Buffer.allocUnsafe(json.length);
  let written = 0;
  let inString = false;
  for (let at = 0; at < json.length; at++) {
    const byte = json[at]!;
    if (inString) {
      if (byte === BACKSLASH && at + 1 < json.length) {
        compact[written++] = byte;
        at++;
        compact[written++] = json[at]!;
        continue;
      }
      if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (isWhitespace(byte)) {
      continue;
    }
    compact[written++] = byte;
  }
  return compact.subarray(0, written);
}

function isWhitespace(character: number): boolean {
  return character === SPACE || character === NEWLINE || character === RETURN || character === TAB;
}

/** Where the string at `from` ends (its closing quote's next position), any escape allowed; -1 if it does not. */
function anyStringEnd(text: string, from: number): number {
  ANY_STRING.lastIndex = from;
  return ANY_STRING.test(text) ? ANY_STRING.lastIndex : -1;
}

/** A string, read for where it ends: an escape's backslash takes the character after it. */
const ANY_STRING = /"[^"\\]*(?:\\[\s\S][^"\\]*)*"/y;
/** Whether a number or a literal (true, false, null) may be written with this character. */
function isScalarCharacter(character: number): boolean {
  const lower = character | 0x20; // a letter in lower case; digits, '-', '+' and '.' are kept
  return (
    (lower >= 0x61 && lower <= 0x7a) ||
    isDigit(character) ||
    character === MINUS ||
    character === PLUS ||
    character === DOT
  );
}

const OPEN_BRACE = 0x7b;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

/**
 * How deeply a value is read here (an array or object is one level); a deeper one is left to
 * JSON.parse, and the route allows up to JSON_DATA_DEPTH_MAX and says so when it is passed.
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
/** A name V8 would order before the others (an array index), so JSON.stringify would move it. */
const ALL_DIGITS = /^[0-9]+$/;
/** Past this many names, an object's names are checked for repeats in a set. */
const NAMES_IN_LIST_MAX = 16;

const SPACE = 0x20;
const NEWLINE = 0x0a;
const RETURN = 0x0d;
const TAB = 0x09;
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
 * rules out whitespace (with `spaced`, allowed between tokens and nowhere else: the text is then
 * canonical once it is taken out), escapes JSON.stringify would not write (JSON_STRING), numbers not written
 * the way JavaScript writes them (`1.0`, `1e3`, `-0`, more digits than a double holds), a name
 * given twice in one object (JSON.parse keeps the last value at the first one's place), names of
 * digits only (V8 puts array indices first) and nesting past JSON_DEPTH_SCANNED_MAX. Bytes above
 * 0x7f are left to the caller's UTF-8 check.
 */
function jsonValueEnd(text: string, from: number, depth: number, spaced: boolean): number {
  const first = text.charCodeAt(from);
  if (first === QUOTE) {
    JSON_STRING.lastIndex = from;
    return JSON_STRING.test(text) ? JSON_STRING.lastIndex : -1;
  }
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    if (depth === JSON_DEPTH_SCANNED_MAX) return -1;
    return first === OPEN_BRACE
      ? jsonObjectEnd(text, from, depth + 1, spaced)
      : jsonArrayEnd(text, from, depth + 1, spaced);
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

/** `at`, or with `spaced` the first position from `at` that is not JSON whitespace. */
function token(text: string, at: number, spaced: boolean): number {
  if (!spaced) return at;
  let next = at;
  while (isWhitespace(text.charCodeAt(next))) next++;
  return next;
}

function jsonObjectEnd(text: string, from: number, depth: number, spaced: boolean): number {
  let at = token(text, from + 1, spaced);
  if (text.charCodeAt(at) === CLOSE_BRACE) return at + 1;
  const names: string[] = [];
  let named: Set<string> | undefined;
  for (;;) {
    JSON_STRING.lastIndex = at;
    if (!JSON_STRING.test(text)) return -1;
    const nameEnd = JSON_STRING.lastIndex;
    const name = text.slice(at + 1, nameEnd - 1);
    if (isDigit(name.charCodeAt(0)) && ALL_DIGITS.test(name)) return -1;
    if (named === undefined) {
      if (names.includes(name)) return -1;
      names.push(name);
      if (names.length > NAMES_IN_LIST_MAX) named = new Set(names);
    } else {
      if (named.has(name)) return -1;
      named.add(name);
    }
    at = token(text, nameEnd, spaced);
    if (text.charCodeAt(at) !== COLON) return -1;
    at = jsonValueEnd(text, token(text, at + 1, spaced), depth, spaced);
    if (at < 0) return -1;
    at = token(text, at, spaced);
    const next = text.charCodeAt(at);
    if (next === CLOSE_BRACE) return at + 1;
    if (next !== COMMA) return -1;
    at = token(text, at + 1, spaced);
  }
}

function jsonArrayEnd(text: string, from: number, depth: number, spaced: boolean): number {
  let at = token(text, from + 1, spaced);
  if (text.charCodeAt(at) === CLOSE_BRACKET) return at + 1;
  for (;;) {
    at = jsonValueEnd(text, at, depth, spaced);
    if (at < 0) return -1;
    at = token(text, at, spaced);
    const next = text.charCodeAt(at);
    if (next === CLOSE_BRACKET) return at + 1;
    if (next !== COMMA) return -1;
    at = token(text, at + 1, spaced);
  }
}
