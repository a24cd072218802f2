import { createHash } from "node:crypto";
import { InvalidArgumentError } from "@sluice/core";
import type { ByteRange, ListOptions, PutCondition } from "./port.js";
import { OBJECT_KEY_BYTES_MAX } from "./port.js";

/**
 * The port's input rules and orderings, shared by every adapter so that they all accept and
 * reject exactly the same calls (a key the memory store takes must not fail only on S3).
 */

export const LIST_LIMIT_DEFAULT = 1000;
export const LIST_LIMIT_MAX = 1000;

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * A string with a lone surrogate has no UTF-8 form: encoders silently turn it into U+FFFD, which
 * would make two different keys name one object. Rejecting it keeps keys injective.
 */
export function isWellFormed(text: string): boolean {
  return Buffer.from(text, "utf8").toString("utf8") === text;
}

export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new InvalidArgumentError("object key must be a non-empty string", { details: { key } });
  }
  if (key.startsWith("/")) {
    throw new InvalidArgumentError("object key must not start with '/'", { details: { key } });
  }
  if (!isWellFormed(key)) {
    throw new InvalidArgumentError("object key is not valid Unicode (lone surrogate)", { details: { key } });
  }
  const bytes = utf8Length(key);
  if (bytes > OBJECT_KEY_BYTES_MAX) {
    throw new InvalidArgumentError(`object key is ${bytes} UTF-8 bytes; at most ${OBJECT_KEY_BYTES_MAX}`, {
      details: { bytes },
    });
  }
}

export function checkKeys(keys: readonly string[]): void {
  for (const key of keys) checkKey(key);
}

export function checkPrefix(prefix: string): void {
  if (typeof prefix !== "string" || !isWellFormed(prefix)) {
    throw new InvalidArgumentError("list prefix must be a well-formed string", { details: { prefix } });
  }
}

export function checkRange(range: ByteRange): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError("range offset must be an integer >= 0", { details: { offset } });
  }
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new InvalidArgumentError("range length must be an integer > 0", { details: { length } });
  }
}

export function checkCondition(condition: PutCondition | undefined): void {
  if (condition === undefined) return;
  if ("ifNoneMatch" in condition) {
    if (condition.ifNoneMatch !== "*") {
      throw new InvalidArgumentError('ifNoneMatch only accepts "*"', { details: { condition } });
    }
    return;
  }
  if (typeof condition.ifMatch !== "string" || condition.ifMatch.length === 0) {
    throw new InvalidArgumentError("ifMatch needs a non-empty etag", { details: { condition } });
  }
}

export function listLimit(options: ListOptions | undefined): number {
  const limit = options?.limit ?? LIST_LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
    throw new InvalidArgumentError(`list limit must be an integer in 1..${LIST_LIMIT_MAX}`, {
      details: { limit },
    });
  }
  return limit;
}

/**
 * The byte span [start, end) a range selects in an object of `size` bytes. A range that runs past
 * the end is cut; one that starts at or past the end is S3's 416, an InvalidArgumentError.
 */
export function selectRange(size: number, range: ByteRange): { start: number; end: number } {
  if (range.offset >= size) {
    throw new InvalidArgumentError(`range starts at ${range.offset}, object has ${size} bytes`, {
      details: { offset: range.offset, size },
    });
  }
  return { start: range.offset, end: Math.min(range.offset + range.length, size) };
}

/**
 * S3's list order: ascending by the keys' UTF-8 bytes. JavaScript's `<` compares UTF-16 code
 * units, which disagrees for characters above U+FFFF versus U+E000..U+FFFF; comparing code points
 * agrees with UTF-8 byte order, and needs no allocation.
 */
export function compareKeys(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

/** The hash behind in-process adapters' etags: MD5 of the content, like S3's for single-part uploads. */
export const ETAG_HASH = "md5";

export function contentEtag(bytes: Uint8Array): string {
  return createHash(ETAG_HASH).update(bytes).digest("hex");
}

/**
 * Cursors of in-process adapters: the last key returned, encoded so callers treat it as opaque.
 * The leading "k" marks the format, so a cursor is never empty and can change format later.
 */
export function encodeCursor(lastKey: string): string {
  return `k${Buffer.from(lastKey, "utf8").toString("base64url")}`;
}

export function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor.slice(1), "base64url").toString("utf8");
  if (encodeCursor(key) !== cursor) {
    throw new InvalidArgumentError("list cursor was not issued by this store", { details: { cursor } });
  }
  return key;
}

/**
 * One page of `keys` (already filtered by prefix and sorted with compareKeys): the keys after the
 * cursor, at most `limit`, and the cursor for the next page when more remain.
 */
export function pageOfSortedKeys(
  keys: readonly string[],
  limit: number,
  cursor: string | undefined,
): { keys: string[]; cursor?: string } {
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  const start = after === undefined ? 0 : firstIndexAfter(keys, after);
  const page = keys.slice(start, start + limit);
  const more = start + limit < keys.length;
  const last = page.at(-1);
  return more && last !== undefined ? { keys: page, cursor: encodeCursor(last) } : { keys: page };
}

function firstIndexAfter(keys: readonly string[], after: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(keys[middle]!, after) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A plain Uint8Array view of `bytes` (Buffers and SDK arrays compare unequal to plain ones in tests). */
export function asPlainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
