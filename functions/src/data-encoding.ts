import { InvalidArgumentError } from "@sluice/core";

/**
 * Confluent's key/value encodings. Produce turns `{type, data}` into the bytes stored; reads turn
 * bytes back into `{type, data}` in the type the reader asks for. Headers travel as base64.
 */
export const DATA_TYPES = ["BINARY", "JSON", "STRING"] as const;
export type DataType = (typeof DATA_TYPES)[number];

export interface Data {
  type: DataType;
  data: unknown;
}

const BASE64_CHARACTER = /[A-Za-z0-9+/]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes canonical base64 (RFC 4648 §4: `A-Z a-z 0-9 + /`, `=` padding to a multiple of four, zero
 * padding bits). Anything else — whitespace, the URL-safe alphabet, missing padding — is rejected
 * rather than guessed at, so two different strings never store the same bytes. `field` names the
 * value in the error, e.g. `record 2: value.data`.
 */
export function decodeBase64(text: string, field: string): Uint8Array {
  // One pattern for the whole text: a test per character was a fifth of the server's time on
  // records with a header (docs/benchmarks.md). Only text it refuses is walked, to word the error.
  if (!BASE64_TEXT.test(text) || text.length % 4 !== 0) throw base64Problem(text, field);
  // With padding, the last character before it carries bits past the data's end: 4 of them
  // before `==`, 2 before `=`. Canonical base64 leaves them zero.
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (
    padding > 0 &&
    (base64Value(text.charCodeAt(text.length - padding - 1)) & (padding === 2 ? 0x0f : 0x03)) !== 0
  ) {
    throw notBase64(field, "the padding bits are not zero (not canonical base64)");
  }
  const bytes = Buffer.from(text, "base64");
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The six bits a base64 character stands for (the character is one of the alphabet's). */
function base64Value(character: number): number {
  if (character >= 0x61) return character - 0x61 + 26; // a-z
  if (character >= 0x41) return character - 0x41; // A-Z
  if (character >= 0x30) return character - 0x30 + 52; // 0-9
  return character === 0x2b ? 62 : 63; // '+', '/'
}

/** Base64's alphabet, then at most two `=` of padding (the length is checked apart). */
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

/** The first thing wrong with text BASE64_TEXT refuses or whose length is not a multiple of four. */
function base64Problem(text: string, field: string): InvalidArgumentError {
  for (let index = 0; index < text.length; index++) {
    const character = text[index]!;
    if (character !== "=" && !BASE64_CHARACTER.test(character)) {
      return notBase64(
        field,
        `unexpected character ${JSON.stringify(character)} at position ${index} (base64 uses A-Z, a-z, 0-9, '+' and '/', then '=' padding)`,
      );
    }
  }
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const misplaced = text.indexOf("=");
  if (misplaced >= 0 && misplaced < text.length - padding) {
    return notBase64(field, `unexpected padding '=' at position ${misplaced} (padding only ends the text)`);
  }
  return notBase64(field, `length ${text.length} is not a multiple of 4 (pad with '=')`);
}

function notBase64(field: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field} is not valid base64: ${problem}`, { details: { field } });
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Encodes a string as UTF-8, refusing lone surrogates (which UTF-8 cannot carry). */
export function encodeUtf8(text: string, field: string): Uint8Array {
  if (LONE_SURROGATE.test(text)) {
    throw new InvalidArgumentError(`${field} contains a lone UTF-16 surrogate, which is not valid Unicode`, {
      details: { field },
    });
  }
  return utf8.encode(text);
}

/** The bytes a `{type, data}` value stores. `field` is e.g. `record 0: key`. */
export function encodeData(value: Data, field: string): Uint8Array {
  switch (value.type) {
    case "BINARY":
      if (typeof value.data !== "string") {
        throw new InvalidArgumentError(`${field}.data must be a base64 string for type BINARY`, {
          details: { field },
        });
      }
      return decodeBase64(value.data, `${field}.data`);
    case "STRING":
      if (typeof value.data !== "string") {
        throw new InvalidArgumentError(`${field}.data must be a string for type STRING`, {
          details: { field },
        });
      }
      return encodeUtf8(value.data, `${field}.data`);
    case "JSON":
      if (value.data === undefined) {
        throw new InvalidArgumentError(
          `${field}.data is required for type JSON (any JSON value, null included)`,
          {
            details: { field },
          },
        );
      }
      checkJsonDepth(value.data, `${field}.data`);
      return utf8.encode(JSON.stringify(value.data));
  }
}

/**
 * How deeply a JSON `data` may nest (an array or object is one level; `[[1]]` is two). Both
 * produce routes apply it to the value itself, wherever the record sits in the body. It keeps
 * encoding (JSON.stringify recurses) and any consumer's recursive parser well inside its stack.
 */
export const JSON_DATA_DEPTH_MAX = 512;

/** Walks without recursion, so that the check itself cannot overflow the stack. */
function checkJsonDepth(data: unknown, field: string): void {
  const pending: [unknown, number][] = [[data, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth + 1 > JSON_DATA_DEPTH_MAX) {
      throw new InvalidArgumentError(
        `${field} is nested deeper than ${JSON_DATA_DEPTH_MAX} levels (arrays and objects)`,
        { details: { field, depthMax: JSON_DATA_DEPTH_MAX } },
      );
    }
    for (const child of Array.isArray(node) ? node : Object.values(node)) pending.push([child, depth + 1]);
  }
}

/**
 * The `{type, data}` of stored bytes, in the type the reader prefers when the bytes allow it.
 * Records are bytes (Kafka's rule): nothing stored says how they were produced, so a reader names a
 * preference and each record says what it got. JSON falls back to STRING when the bytes are UTF-8
 * but not JSON text, and either falls back to BINARY when they are not UTF-8; BINARY always fits.
 * One odd record therefore never fails a page.
 */
export function decodeData(bytes: Uint8Array | null, preferred: DataType): Data | null {
  if (bytes === null) return null;
  if (preferred === "BINARY") return { type: "BINARY", data: encodeBase64(bytes) };
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { type: "BINARY", data: encodeBase64(bytes) };
  }
  if (preferred === "STRING") return { type: "STRING", data: text };
  try {
    return { type: "JSON", data: JSON.parse(text) as unknown };
  } catch {
    return { type: "STRING", data: text };
  }
}
