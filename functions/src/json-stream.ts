/**
 * Splits a byte stream of concatenated JSON objects (Confluent's streaming produce mode:
 * `{…} {…}\n{…}`) into one byte slice per top-level object, as the bytes arrive. It tracks only
 * what it needs to find where an object ends — string and escape state and nesting depth — and
 * leaves full validation to `JSON.parse` of each slice. JSON's structural characters are ASCII and
 * never occur inside a multi-byte UTF-8 sequence, so scanning bytes is exact.
 */
export class MalformedJsonError extends Error {
  override readonly name = "MalformedJsonError";

  constructor(
    readonly problem: string,
    /** Byte offset in the whole stream. */
    readonly position: number,
  ) {
    super(`${problem} (at byte ${position})`);
  }
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

export interface JsonObjectSlice {
  /** Byte offset of the object's '{' in the whole stream. */
  start: number;
  bytes: Uint8Array;
}

export class JsonObjectSplitter {
  /** Pieces of the object being read, across chunks. */
  private pieces: Uint8Array[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes consumed before the current chunk. */
  private consumed = 0;
  private objectStart = 0;

  /**
   * No depth limit by default: depth here is a counter, and JSON.parse does not recurse. How deep
   * a record's data may nest is checked on the data itself (data-encoding.ts), so that both produce
   * routes draw the line at the same place whatever wraps the record.
   */
  constructor(private readonly depthMax = Number.POSITIVE_INFINITY) {}

  /**
   * Where the stream stopped being a run of objects, once it has: the objects before it were
   * returned, whatever chunk they came in, and any later push or `end` throws it.
   */
  failure: MalformedJsonError | undefined;

  /**
   * Feeds the next bytes; returns the objects completed by them, in order, with their byte
   * offsets, up to a malformation (then `failure` is set).
   */
  push(chunk: Uint8Array): JsonObjectSlice[] {
    if (this.failure) throw this.failure;
    const completed: JsonObjectSlice[] = [];
    try {
      this.scan(chunk, completed);
    } catch (error) {
      if (!(error instanceof MalformedJsonError)) throw error;
      this.failure = error;
    }
    return completed;
  }

  private scan(chunk: Uint8Array, completed: JsonObjectSlice[]): void {
    let start = this.depth > 0 ? 0 : -1;
    let backslash = chunk.indexOf(BACKSLASH);
    for (let index = 0; index < chunk.length; index++) {
      const byte = chunk[index]!;
      if (this.depth === 0) {
        if (isWhitespace(byte)) continue;
        if (byte !== OPEN_BRACE) {
          throw new MalformedJsonError(
            `unexpected ${describeByte(byte)} between records (each record is a JSON object starting with '{')`,
            this.consumed + index,
          );
        }
        this.depth = 1;
        start = index;
        this.objectStart = this.consumed + index;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) this.inString = false;
        else {
          // Most bytes of a record are inside strings: jump to the next quote or backslash natively.
          // The next backslash is looked up once per chunk and again only when passed (they are rare).
          if (backslash !== -1 && backslash <= index) backslash = chunk.indexOf(BACKSLASH, index + 1);
          const quote = chunk.indexOf(QUOTE, index + 1);
          const next = quote < 0 ? backslash : backslash < 0 ? quote : Math.min(quote, backslash);
          index = (next < 0 ? chunk.length : next) - 1;
        }
        continue;
      }
      if (byte === QUOTE) this.inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        if (++this.depth > this.depthMax) {
          throw new MalformedJsonError(
            `JSON nested deeper than ${this.depthMax} levels`,
            this.consumed + index,
          );
        }
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (--this.depth === 0) {
          this.pieces.push(chunk.subarray(start, index + 1));
          completed.push({ start: this.objectStart, bytes: concat(this.pieces) });
          this.pieces = [];
          start = -1;
        }
      }
    }
    if (this.depth > 0) this.pieces.push(chunk.subarray(start));
    this.consumed += chunk.length;
  }

  /** Declares the end of the stream; throws the failure, or when an object was left open. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.depth > 0) {
      throw new MalformedJsonError(
        `the body ends inside the record that starts at byte ${this.objectStart}`,
        this.consumed,
      );
    }
  }
}

function describeByte(byte: number): string {
  if (byte >= 0x21 && byte <= 0x7e) return `character '${String.fromCharCode(byte)}'`;
  return `byte 0x${byte.toString(16).padStart(2, "0")}`;
}

function concat(pieces: Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const size = pieces.reduce((total, piece) => total + piece.length, 0);
  const joined = new Uint8Array(size);
  let position = 0;
  for (const piece of pieces) {
    joined.set(piece, position);
    position += piece.length;
  }
  return joined;
}
