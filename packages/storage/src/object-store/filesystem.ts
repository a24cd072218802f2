import type { BigIntStats, Dirent } from "node:fs";
import {
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { type FileHandle, link, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  isSluiceError,
  NotFoundError,
  randomHex,
  type SluiceError,
  UnavailableError,
} from "@sluice/core";
import { componentsOf, escapeKey, readComponent, unescapeKey } from "./filesystem-layout.js";
import { withLock } from "./key-lock.js";
import type {
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
} from "./port.js";
import {
  checkCondition,
  checkKey,
  checkKeys,
  checkPrefix,
  checkRange,
  compareKeys,
  listLimit,
  pageOfSortedKeys,
  selectRange,
} from "./rules.js";

/** How many files one call opens at a time (list pages and deleteMany), well under common fd limits. */
const FILES_IN_FLIGHT = 16;

/**
 * ObjectStore on a local directory, for development and single-machine runs. Each object is one
 * file holding exactly its bytes (layout in filesystem-layout.ts); its etag is the file's identity
 * (see identityEtag).
 *
 * Writes never touch a file in place: the bytes go to a temporary file in the target directory,
 * which is fsynced and then moved into place, so readers (which read through one open descriptor)
 * see the old bytes or the new, never a mix.
 * - Unconditional put: rename() over the target.
 * - Create-only: link() the temporary file to the target. link() fails with EEXIST when the name
 *   exists, atomically in the kernel, so exactly one of any number of writers wins, including
 *   writers in other processes. (It needs a filesystem with hard links.)
 * - ifMatch: read the current etag, compare, rename. That is a read-then-write, made safe against
 *   every other write in this process by a per-file lock that unconditional puts and deletes take
 *   too. LIMIT: another process writing the same key between the compare and the rename can be
 *   overwritten; portable cross-process compare-and-swap would need file locks this adapter does
 *   not take. Create-only skips the lock because link() is already atomic.
 *
 * Directories are never removed, even when empty: removing one could race with a writer creating
 * its temporary file there.
 */
export interface FilesystemObjectStoreOptions {
  root: string;
  /**
   * "fsync" (default): every write is fsynced, file and directory, before it resolves, so it
   * survives a power loss. "buffered": writes are left to the OS page cache, as Kafka leaves
   * flushing to the OS by default; they survive a crash or restart of this process, not of the
   * machine. Atomicity and the create-only guarantee are the same in both modes.
   */
  durability?: "fsync" | "buffered";
}

export class FilesystemObjectStore implements ObjectStore {
  readonly #root: string;
  readonly #fsync: boolean;
  /** Directories known to exist: directories are never removed (see above), so this only grows. */
  readonly #directories = new Set<string>();

  constructor(options: FilesystemObjectStoreOptions) {
    this.#root = resolve(options.root);
    this.#fsync = (options.durability ?? "fsync") === "fsync";
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject> {
    checkKey(key);
    const range = options?.range;
    if (range) checkRange(range);
    const path = this.#pathOf(key);
    // Reads use synchronous calls: a read of a cached file takes microseconds, less than the
    // round trip through libuv's thread pool that an asynchronous read costs (about 10× here).
    // Each get still yields to the event loop first, so a caller looping on gets cannot starve
    // other I/O.
    return guard({ operation: "get", key }, async () => {
      await setImmediatePromise();
      const descriptor = openForReadingIfPresent(path);
      if (descriptor === undefined) throw new NotFoundError("object not found", { details: { key } });
      try {
        const stat = fstatSync(descriptor, { bigint: true });
        const size = Number(stat.size);
        const { start, end } = range ? selectRange(size, range) : { start: 0, end: size };
        const body = readExactlySync(descriptor, start, end - start);
        return { key, etag: identityEtag(stat), size, lastModified: stat.mtime, body };
      } finally {
        closeSync(descriptor);
      }
    });
  }

  async head(key: string): Promise<ObjectInfo> {
    checkKey(key);
    const path = this.#pathOf(key);
    return guard({ operation: "head", key }, () =>
      withOpenFile(path, key, (file) => this.#infoOf(key, file)),
    );
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const condition = options?.condition;
    checkCondition(condition);
    const path = this.#pathOf(key);
    return guard({ operation: "put", key }, () => {
      if (condition && "ifNoneMatch" in condition) return this.#create(key, path, body);
      return withLock(path, async () => {
        if (condition) await this.#expectEtag(key, path, condition.ifMatch);
        return this.#replace(key, path, body);
      });
    });
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = listLimit(options);
    return guard({ operation: "list", prefix }, async () => {
      const paths = new Map<string, string>();
      await this.#collect(this.#root, "", escapeKey(prefix), paths);
      const page = pageOfSortedKeys([...paths.keys()].sort(compareKeys), limit, options?.cursor);
      const infos = await mapInBatches(page.keys, (key) => this.#infoIfPresent(key, paths.get(key)!));
      // A key deleted since the directory walk is left out; the cursor still moves past it.
      const objects = infos.filter((info): info is ObjectInfo => info !== undefined);
      return page.cursor === undefined ? { objects } : { objects, cursor: page.cursor };
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await guard({ operation: "delete", key }, () => this.#remove(this.#pathOf(key)));
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    // Validate all first, so a bad key in the batch deletes nothing.
    checkKeys(keys);
    const paths = [...new Set(keys)].map((key) => this.#pathOf(key));
    await guard({ operation: "deleteMany", keys: keys.length }, async () => {
      await mapInBatches(paths, (path) => this.#remove(path));
    });
  }

  #pathOf(key: string): string {
    return join(this.#root, ...componentsOf(key));
  }

  async #create(key: string, path: string, body: Uint8Array): Promise<ObjectInfo> {
    if (!this.#fsync) return this.#createBuffered(key, path, body);
    const temp = await this.#writeTemporaryFile(dirname(path), body);
    try {
      const linked = await linkUnlessExists(temp.path, path);
      // Unlink before fstat: dropping the second name changes the inode's ctime, part of its identity.
      await removeIfPresent(temp.path);
      if (!linked) throw new ConflictError("create-only put: object already exists", { details: { key } });
      if (this.#fsync) await syncDirectory(dirname(path));
      return await this.#settled(key, temp.file, body);
    } finally {
      await temp.file.close();
      await removeIfPresent(temp.path);
    }
  }

  /**
   * Create-only without fsync, in synchronous calls: with nothing to wait for on the disk, the
   * six calls cost less than their round trips through libuv's thread pool. It yields to the
   * event loop first, like get.
   */
  async #createBuffered(key: string, path: string, body: Uint8Array): Promise<ObjectInfo> {
    await setImmediatePromise();
    const dir = dirname(path);
    if (!this.#directories.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.#directories.add(dir);
    }
    const tempPath = join(dir, `.tmp-${randomHex(8)}`);
    const descriptor = openSync(tempPath, "wx", 0o644);
    let tempExists = true;
    try {
      writeAllSync(descriptor, body);
      const linked = linkUnlessExistsSync(tempPath, path);
      // Unlink before fstat: dropping the second name changes the inode's ctime, part of its identity.
      unlinkSync(tempPath);
      tempExists = false;
      if (!linked) throw new ConflictError("create-only put: object already exists", { details: { key } });
      const stat = fstatSync(descriptor, { bigint: true });
      return { key, etag: identityEtag(stat), size: body.byteLength, lastModified: stat.mtime };
    } finally {
      closeSync(descriptor);
      if (tempExists) unlinkSync(tempPath);
    }
  }

  async #replace(key: string, path: string, body: Uint8Array): Promise<ObjectInfo> {
    const temp = await this.#writeTemporaryFile(dirname(path), body);
    try {
      await rename(temp.path, path);
      if (this.#fsync) await syncDirectory(dirname(path));
      return await this.#settled(key, temp.file, body);
    } finally {
      await temp.file.close();
      await removeIfPresent(temp.path);
    }
  }

  /** Throws ConflictError unless the object exists with etag `expected`. Call under the file's lock. */
  async #expectEtag(key: string, path: string, expected: string): Promise<void> {
    const file = await openIfPresent(path);
    if (!file) throw new ConflictError("ifMatch put: object does not exist", { details: { key, expected } });
    try {
      const current = identityEtag(await file.stat({ bigint: true }));
      if (current !== expected) {
        throw new ConflictError("ifMatch put: etag does not match", { details: { key, expected, current } });
      }
    } finally {
      await file.close();
    }
  }

  async #remove(path: string): Promise<void> {
    await withLock(path, async () => {
      if ((await removeIfPresent(path)) && this.#fsync) await syncDirectory(dirname(path));
    });
  }

  /** The info of a file just moved into place, read through its still-open descriptor. */
  async #settled(key: string, file: FileHandle, body: Uint8Array): Promise<ObjectInfo> {
    const stat = await file.stat({ bigint: true });
    const etag = identityEtag(stat);
    return { key, etag, size: body.byteLength, lastModified: stat.mtime };
  }

  async #infoOf(key: string, file: FileHandle): Promise<ObjectInfo> {
    const stat = await file.stat({ bigint: true });
    const etag = identityEtag(stat);
    return { key, etag, size: Number(stat.size), lastModified: stat.mtime };
  }

  async #infoIfPresent(key: string, path: string): Promise<ObjectInfo | undefined> {
    const file = await openIfPresent(path);
    if (!file) return undefined;
    try {
      return await this.#infoOf(key, file);
    } finally {
      await file.close();
    }
  }

  /** Writes `body` to a new temporary file in `dir`, fsynced in "fsync" durability. */
  async #writeTemporaryFile(dir: string, body: Uint8Array): Promise<{ path: string; file: FileHandle }> {
    if (!this.#directories.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#directories.add(dir);
    }
    // A leading "." keeps temporary files out of listings (see readComponent).
    const path = join(dir, `.tmp-${randomHex(8)}`);
    const file = await open(path, "wx", 0o644);
    try {
      await file.writeFile(body);
      if (this.#fsync) await file.sync();
      return { path, file };
    } catch (error) {
      await file.close();
      await removeIfPresent(path);
      throw error;
    }
  }

  /**
   * Adds to `paths` every object under `dir` whose key starts with the prefix. `escapedSoFar` is
   * the escaped key spelled by the path down to `dir`; escaping is a prefix code, so a key starts
   * with the prefix exactly when its escaped form starts with the escaped prefix, and subtrees that
   * cannot match are skipped.
   */
  async #collect(dir: string, escapedSoFar: string, escapedPrefix: string, paths: Map<string, string>) {
    for (const entry of await readDirectory(dir)) {
      const component = readComponent(entry.name);
      if (!component) continue;
      const escaped = escapedSoFar + component.escaped;
      if (!escaped.startsWith(escapedPrefix) && !escapedPrefix.startsWith(escaped)) continue;
      const path = join(dir, entry.name);
      if (component.kind !== "file") {
        if (entry.isDirectory()) await this.#collect(path, escaped, escapedPrefix, paths);
        continue;
      }
      const key = entry.isFile() && escaped.startsWith(escapedPrefix) ? unescapeKey(escaped) : undefined;
      if (key !== undefined) paths.set(key, path);
    }
  }
}

/**
 * The etag of a file: its identity (device, inode, size, modification and change times), not a
 * hash of its bytes. Every write makes a new inode through a temporary file, and any change to an
 * inode moves its ctime, so the identity changes exactly when the object does — and no get, list
 * or put ever hashes a whole file.
 */
function identityEtag(stat: BigIntStats): string {
  const parts = [stat.dev, stat.ino, stat.size, stat.mtimeNs, stat.ctimeNs].map((part) => part.toString(36));
  return `"${parts.join("-")}"`;
}

async function linkUnlessExists(existing: string, target: string): Promise<boolean> {
  try {
    await link(existing, target);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
}

/** Returns whether a file was removed. */
async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

/** Makes a rename, link or unlink in `dir` durable. Skipped where directories cannot be fsynced. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (error) {
    if (!["EISDIR", "EINVAL", "EPERM", "EBADF", "ENOTSUP"].includes(errorCode(error) ?? "")) throw error;
  } finally {
    await handle?.close();
  }
}

async function openIfPresent(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** Runs `work` on the object's file through one descriptor, so it sees one version throughout. */
async function withOpenFile<T>(
  path: string,
  key: string,
  work: (file: FileHandle) => Promise<T>,
): Promise<T> {
  const file = await openIfPresent(path);
  if (!file) throw new NotFoundError("object not found", { details: { key } });
  try {
    return await work(file);
  } finally {
    await file.close();
  }
}

function writeAllSync(descriptor: number, body: Uint8Array): void {
  let written = 0;
  while (written < body.byteLength) {
    written += writeSync(descriptor, body, written, body.byteLength - written);
  }
}

function linkUnlessExistsSync(existing: string, target: string): boolean {
  try {
    linkSync(existing, target);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
}

function openForReadingIfPresent(path: string): number | undefined {
  try {
    return openSync(path, "r");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

function readExactlySync(descriptor: number, position: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(descriptor, bytes, filled, length - filled, position + filled);
    if (bytesRead === 0)
      throw new InternalError("object file shrank while being read", { details: { position } });
    filled += bytesRead;
  }
  return bytes;
}

async function readDirectory(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  }
}

async function mapInBatches<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += FILES_IN_FLIGHT) {
    results.push(...(await Promise.all(items.slice(i, i + FILES_IN_FLIGHT).map(work))));
  }
  return results;
}

async function guard<T>(details: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toSluiceError(error, details);
  }
}

/** Errno codes worth retrying: the resource may come back (descriptors, space, a busy or flaky disk). */
const TRANSIENT_CODES = new Set([
  "EAGAIN",
  "EBUSY",
  "EMFILE",
  "ENFILE",
  "ENOSPC",
  "EDQUOT",
  "EIO",
  "ETIMEDOUT",
]);

export function toSluiceError(error: unknown, details: Record<string, unknown>): SluiceError {
  if (isSluiceError(error)) return error;
  const code = errorCode(error);
  const options = { cause: error, details: { ...details, code } };
  if (code !== undefined && TRANSIENT_CODES.has(code)) {
    return new UnavailableError(`filesystem temporarily failed (${code})`, options);
  }
  if (code === "ENAMETOOLONG") {
    return new InvalidArgumentError("object path too long for this filesystem (root + escaped key)", options);
  }
  return new InternalError(`filesystem error${code ? ` (${code})` : ""}`, options);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
