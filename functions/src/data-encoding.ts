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
  const fail = (problem: string) =>
    new InvalidArgumentError(`${field} is not valid base64: ${problem}`, { details: { field } });
  for (let index = 0; index < text.length; index++) {
    const character = text[index]!;
    if (character !== "=" && !BASE64_CHARACTER.test(character)) {
      throw fail(
        `unexpected character ${JSON.stringify(character)} at position ${index} (base64 uses A-Z, a-z, 0-9, '+' and '/', then '=' padding)`,
      );
    }
  }
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const misplaced = text.indexOf("=");
  if (misplaced >= 0 && misplaced < text.length - padding) {
    throw fail(`unexpected padding '=' at position ${misplaced} (padding only ends the text)`);
  }
  if (text.length % 4 !== 0) {
    throw fail(`length ${text.length} is not a multiple of 4 (pad with '=')`);
  }
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) {
    throw fail("the padding bits are not zero (not canonical base64)");
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
      return utf8.encode(JSON.stringify(value.data));
  }
}

/** The `{type, data}` a reader asked for, or an error naming the record when its bytes do not fit the type. */
export function decodeData(bytes: Uint8Array | null, type: DataType, field: string): Data | null {
  if (bytes === null) return null;
  if (type === "BINARY") return { type, data: encodeBase64(bytes) };
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new InvalidArgumentError(
      `${field} is not valid UTF-8, so it cannot be read as ${type}; read it as BINARY`,
      {
        details: { field },
      },
    );
  }
  if (type === "STRING") return { type, data: text };
  try {
    return { type, data: JSON.parse(text) as unknown };
  } catch {
    throw new InvalidArgumentError(
      `${field} is not valid JSON, so it cannot be read as JSON; read it as STRING or BINARY`,
      {
        details: { field },
      },
    );
  }
}
