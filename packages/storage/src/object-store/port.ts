/**
 * ObjectStore: the port for immutable partition data (S3 in AWS, files locally, memory in tests).
 *
 * Guarantees every adapter gives (checked by object-store.contract.ts):
 * - Read-after-write: once `put` resolves, every `get`, `head` and `list` sees the new object.
 * - `put` replaces the whole object atomically: a reader sees the old bytes or the new, never a mix.
 * - `put` with `{ ifNoneMatch: "*" }` creates only: when the key exists it fails with ConflictError
 *   and leaves the object untouched. Among concurrent create-only puts of one key exactly one wins.
 * - `put` with `{ ifMatch: etag }` replaces only if the current etag equals `etag`; otherwise, or
 *   when the key is missing, ConflictError (S3 answers 412 and 404 respectively; both are
 *   "your expectation did not hold").
 * - `get` with a range returns bytes [offset, min(offset + length, size)): a range that runs past
 *   the end is cut at the end. A range that starts at or past the end is an InvalidArgumentError
 *   (S3's 416). `size` in the answer is always the whole object's size.
 * - `get`/`head` of a missing key: NotFoundError.
 * - `list` returns keys with the prefix in ascending lexicographic order of their UTF-8 bytes, at
 *   most `limit` per page (default 1000), with a `cursor` when more remain; pages neither skip
 *   nor repeat keys when nothing changes in between.
 * - `delete` and `deleteMany` are idempotent: deleting a missing key succeeds.
 * - Backend errors are mapped to the typed set in @sluice/core; transient ones are UnavailableError.
 */
export interface ObjectStore {
  get(key: string, options?: GetOptions): Promise<StoredObject>;
  head(key: string): Promise<ObjectInfo>;
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo>;
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  delete(key: string): Promise<void>;
  deleteMany(keys: readonly string[]): Promise<void>;
}

export interface ByteRange {
  /** First byte, from 0. */
  offset: number;
  /** Number of bytes wanted, > 0. */
  length: number;
}

export interface GetOptions {
  range?: ByteRange;
}

/** Create-only, or replace-if-unchanged. Absent: unconditional put. */
export type PutCondition = { ifNoneMatch: "*" } | { ifMatch: string };

export interface PutOptions {
  condition?: PutCondition;
}

export interface ObjectInfo {
  key: string;
  /** Opaque version tag; pass it back unchanged as `ifMatch`. */
  etag: string;
  /** Size of the whole object in bytes. */
  size: number;
  lastModified: Date;
}

export interface StoredObject extends ObjectInfo {
  /** The whole object, or the requested range of it. */
  body: Uint8Array;
}

export interface ListOptions {
  /** Maximum keys per page, 1..1000. Default 1000. */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Present when more keys remain. */
  cursor?: string;
}

/** Keys are non-empty, at most 1024 UTF-8 bytes, and never start with "/" (S3's rules, kept everywhere). */
export const OBJECT_KEY_BYTES_MAX = 1024;
