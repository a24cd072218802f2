/** A key or value as the API carries it. */
export type Data =
  | { type: "BINARY"; data: string /* base64 */ }
  | { type: "STRING"; data: string }
  | { type: "JSON"; data: unknown };

export type DataType = Data["type"];

/**
 * What `produce` accepts for a key or value: a string (sent as STRING, stored as UTF-8), bytes
 * (sent as BINARY), or a `Data` object as is (e.g. `{ type: "JSON", data: { … } }`).
 */
export type DataInput = string | Uint8Array | Data;

/** A header value given as a string is sent as its UTF-8 bytes. */
export type HeaderInput =
  | Array<{ name: string; value: string | Uint8Array | null }>
  | Record<string, string | Uint8Array | null>;

export interface Header {
  name: string;
  value: Uint8Array | null;
}

const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function toBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  if (NodeBuffer) {
    const buffer = NodeBuffer.from(text, "base64");
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toData(input: DataInput): Data {
  if (typeof input === "string") return { type: "STRING", data: input };
  if (input instanceof Uint8Array) return { type: "BINARY", data: toBase64(input) };
  return input;
}

export function toWireHeaders(headers: HeaderInput): Array<{ name: string; value: string | null }> {
  const entries = Array.isArray(headers)
    ? headers.map(({ name, value }) => [name, value] as const)
    : Object.entries(headers);
  return entries.map(([name, value]) => ({
    name,
    value: value === null ? null : toBase64(typeof value === "string" ? utf8.encode(value) : value),
  }));
}

/** The stored bytes of a key or value: BINARY decoded, STRING as UTF-8, JSON as its JSON text. */
export function dataBytes(data: Data | null | undefined): Uint8Array | null {
  if (!data) return null;
  if (data.type === "BINARY") return fromBase64(data.data);
  if (data.type === "STRING") return utf8.encode(data.data);
  return utf8.encode(JSON.stringify(data.data));
}

/** The key or value as text: STRING as is, BINARY decoded as UTF-8, JSON as its JSON text. */
export function dataText(data: Data | null | undefined): string | null {
  if (!data) return null;
  if (data.type === "STRING") return data.data;
  if (data.type === "JSON") return JSON.stringify(data.data);
  return utf8Decoder.decode(fromBase64(data.data));
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Stored bytes as the read route would give them in the `preferred` type, with its per-record
 * fallback (docs/http-api.md, "Reading back what was produced"): JSON falls back to STRING when
 * the bytes are not JSON text, and either falls back to BINARY when they are not UTF-8.
 */
export function dataFromBytes(bytes: Uint8Array | null, preferred: DataType): Data | null {
  if (bytes === null) return null;
  if (preferred === "BINARY") return { type: "BINARY", data: toBase64(bytes) };
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { type: "BINARY", data: toBase64(bytes) };
  }
  if (preferred === "STRING") return { type: "STRING", data: text };
  try {
    return { type: "JSON", data: JSON.parse(text) as unknown };
  } catch {
    return { type: "STRING", data: text };
  }
}

/**
 * Turns byte ranges of one buffer (a binary read's answer) into data as `dataFromBytes` does, with
 * the same fallbacks, but without a view per field: under Node the text is sliced straight out of
 * the buffer, and only text holding U+FFFD (which invalid UTF-8 would turn into) is checked
 * strictly. A read decodes a million fields a second this way at half the cost.
 */
export class RangeDecoder {
  private readonly buffer: (Buffer & { utf8Slice?: (start: number, end: number) => string }) | undefined;

  constructor(private readonly bytes: Uint8Array) {
    this.buffer = NodeBuffer?.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The field at `start` of `length` bytes (-1: null) as `preferred`, falling back per record. */
  data(start: number, length: number, preferred: DataType): Data | null {
    if (length < 0) return null;
    if (preferred === "BINARY")
      return { type: "BINARY", data: toBase64(this.bytes.subarray(start, start + length)) };
    const text = this.text(start, length);
    if (text === undefined)
      return { type: "BINARY", data: toBase64(this.bytes.subarray(start, start + length)) };
    if (preferred === "STRING") return { type: "STRING", data: text };
    try {
      return { type: "JSON", data: JSON.parse(text) as unknown };
    } catch {
      return { type: "STRING", data: text };
    }
  }

  /** The field as UTF-8 text, or undefined when it is not valid UTF-8. */
  private text(start: number, length: number): string | undefined {
    if (this.buffer) {
      // utf8Slice is what toString("utf8", …) calls after checking its arguments, which here
      // cost as much as the decoding; it has been on Buffer.prototype since the first Node.
      const text = this.buffer.utf8Slice
        ? this.buffer.utf8Slice(start, start + length)
        : this.buffer.toString("utf8", start, start + length);
      if (!text.includes("\uFFFD")) return text;
    }
    try {
      return strictUtf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      return undefined;
    }
  }
}

export function headerText(header: Header): string | null {
  return header.value === null ? null : utf8Decoder.decode(header.value);
}
