import { ConflictError, NotFoundError } from "@sluice/core";
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
  contentEtag,
  listLimit,
  pageOfSortedKeys,
  selectRange,
} from "./rules.js";

interface Entry {
  body: Uint8Array;
  etag: string;
  lastModified: number;
}

/**
 * ObjectStore in a Map, for unit tests and the engine's scenario tests. Every check-and-write runs
 * without an `await` in between, so the event loop makes conditional puts atomic. Bytes are copied
 * on the way in and out: a caller reusing its buffer must not change what is stored.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly #objects = new Map<string, Entry>();

  async get(key: string, options?: GetOptions): Promise<StoredObject> {
    checkKey(key);
    if (options?.range) checkRange(options.range);
    const entry = this.#existing(key);
    const size = entry.body.byteLength;
    const { start, end } = options?.range ? selectRange(size, options.range) : { start: 0, end: size };
    // slice() on a plain Uint8Array copies.
    return { ...infoOf(key, entry), body: entry.body.slice(start, end) };
  }

  async head(key: string): Promise<ObjectInfo> {
    checkKey(key);
    return infoOf(key, this.#existing(key));
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const condition = options?.condition;
    checkCondition(condition);
    const current = this.#objects.get(key);
    if (condition && "ifNoneMatch" in condition && current) {
      throw new ConflictError("object already exists", { details: { key } });
    }
    if (condition && "ifMatch" in condition && current?.etag !== condition.ifMatch) {
      const reason = current ? "etag does not match" : "object does not exist";
      throw new ConflictError(`ifMatch failed: ${reason}`, { details: { key, expected: condition.ifMatch } });
    }
    const copy = new Uint8Array(body);
    const entry: Entry = { body: copy, etag: contentEtag(copy), lastModified: Date.now() };
    this.#objects.set(key, entry);
    return infoOf(key, entry);
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = listLimit(options);
    const matching = [...this.#objects.keys()].filter((key) => key.startsWith(prefix)).sort(compareKeys);
    const page = pageOfSortedKeys(matching, limit, options?.cursor);
    const objects = page.keys.map((key) => infoOf(key, this.#objects.get(key)!));
    return page.cursor === undefined ? { objects } : { objects, cursor: page.cursor };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.#objects.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    // Validate all first, so a bad key in the batch deletes nothing.
    checkKeys(keys);
    for (const key of keys) this.#objects.delete(key);
  }

  #existing(key: string): Entry {
    const entry = this.#objects.get(key);
    if (!entry) throw new NotFoundError("object not found", { details: { key } });
    return entry;
  }
}

function infoOf(key: string, entry: Entry): ObjectInfo {
  return { key, etag: entry.etag, size: entry.body.byteLength, lastModified: new Date(entry.lastModified) };
}
