import { type Clock, SluiceError, type SluiceErrorOptions } from "@sluice/core";
import type {
  Item,
  ItemKey,
  MetadataStore,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "@sluice/storage";
import { objectKeyTimeMs } from "../keys.js";

/**
 * How long after its upload began an object may still be named by a new index entry. Garbage
 * collection deletes only objects no entry names and older than this plus a margin, so a commit
 * that would land later is refused instead (ARCHITECTURE.md, "Garbage collection").
 */
export const COMMIT_WINDOW_MS = 5 * 60 * 1000;

/**
 * A commit refused because its object's commit window has passed: retryable (HTTP 503), as a
 * timeout is. The caller retries the request, which uploads a new object. Not an
 * UnavailableError, which the commit would retry with the same object.
 */
export class CommitWindowClosedError extends SluiceError {
  override readonly name: string = "CommitWindowClosedError";
  readonly kind = "unavailable";
  readonly retryable = true;
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "COMMIT_WINDOW_CLOSED", ...options });
  }
}

/**
 * The metadata store as a commit of `objectKey` sees it: transactions are refused once the
 * object's commit window has passed on `clock`. Everything else passes through.
 */
export function withinCommitWindow(metadata: MetadataStore, clock: Clock, objectKey: string): MetadataStore {
  const uploadedAt = objectKeyTimeMs(objectKey);
  if (uploadedAt === undefined) return metadata;
  return new CommitWindowStore(metadata, clock, objectKey, uploadedAt);
}

/**
 * A class rather than an object of arrow functions: one is made per commit, and its methods are
 * not closures made and named again each time.
 */
class CommitWindowStore implements MetadataStore {
  private readonly deadline: number;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly clock: Clock,
    private readonly objectKey: string,
    private readonly uploadedAt: number,
  ) {
    this.deadline = uploadedAt + COMMIT_WINDOW_MS;
  }

  get(key: ItemKey) {
    return this.metadata.get(key);
  }
  put(item: Item, options?: WriteOptions) {
    return this.metadata.put(item, options);
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    return this.metadata.update(key, changes, options);
  }
  delete(key: ItemKey, options?: WriteOptions) {
    return this.metadata.delete(key, options);
  }
  query(query: Query) {
    return this.metadata.query(query);
  }
  transactWrite(operations: readonly TransactOperation[]) {
    const now = this.clock.now();
    if (now > this.deadline) {
      return Promise.reject(
        new CommitWindowClosedError(
          `object ${this.objectKey} was uploaded ${now - this.uploadedAt} ms ago, past the ${COMMIT_WINDOW_MS} ms commit window; retry the request`,
          { details: { objectKey: this.objectKey, uploadedAt: this.uploadedAt } },
        ),
      );
    }
    return this.metadata.transactWrite(operations);
  }
}
