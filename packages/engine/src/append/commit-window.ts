import { type Clock, SluiceError, type SluiceErrorOptions } from "@sluice/core";
import type { MetadataStore, TransactOperation } from "@sluice/storage";
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
  const deadline = uploadedAt + COMMIT_WINDOW_MS;
  return {
    get: (key) => metadata.get(key),
    put: (item, options) => metadata.put(item, options),
    update: (key, changes, options) => metadata.update(key, changes, options),
    delete: (key, options) => metadata.delete(key, options),
    query: (query) => metadata.query(query),
    transactWrite: (operations: readonly TransactOperation[]) => {
      const now = clock.now();
      if (now > deadline) {
        return Promise.reject(
          new CommitWindowClosedError(
            `object ${objectKey} was uploaded ${now - uploadedAt} ms ago, past the ${COMMIT_WINDOW_MS} ms commit window; retry the request`,
            { details: { objectKey, uploadedAt } },
          ),
        );
      }
      return metadata.transactWrite(operations);
    },
  };
}
