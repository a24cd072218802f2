/**
 * Per-name async mutual exclusion within one process. The filesystem adapter's compare-and-replace
 * reads the current etag and then renames; every other write to the same file must wait outside
 * that window. The table is module-wide, so two store instances on one root share it (when the
 * root is spelled alike once resolved; a symlinked spelling gets separate locks).
 */
const tails = new Map<string, Promise<void>>();

export async function withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
  const previous = tails.get(name) ?? Promise.resolve();
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => released);
  tails.set(name, tail);
  await previous;
  try {
    return await work();
  } finally {
    release();
    // Drop the entry when nobody queued behind us, so the table does not grow with every key.
    if (tails.get(name) === tail) tails.delete(name);
  }
}
