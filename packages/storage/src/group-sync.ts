import { fdatasync } from "node:fs";

/**
 * Group commit for the embedded stores' "fsync" durability. Writers apply their change without
 * waiting for the disk, then ask for a sync; every writer that asks while a sync is running waits
 * for the next one, which starts when the running one ends and covers all of them. So one fsync
 * covers every write made while the previous one ran, however many writers there are, and the
 * sync runs in libuv's thread pool, leaving the event loop free to prepare the next writes.
 *
 * `sync()` must make durable everything written before it was called (an fdatasync of the
 * written files); writes made while a sync runs may or may not be covered by it, which is why
 * later askers wait for the next.
 */
export class GroupSync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** Syncs done, for tests and benchmarks. */
  syncs = 0;

  constructor(private readonly sync: () => Promise<void>) {}

  /** Resolves once a sync that began after this call has finished; rejects when that sync fails. */
  request(): Promise<void> {
    if (this.running === undefined) return this.start();
    this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<void> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.sync()
      .then(() => {
        this.syncs++;
      })
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
    return run;
  }
}

/** fdatasync of a descriptor, through the thread pool. */
export function fdatasyncAsync(descriptor: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fdatasync(descriptor, (error) => (error ? reject(error) : resolve())),
  );
}

/**
 * Durability of a SQLite database in WAL mode run with synchronous=NORMAL, which commits without
 * waiting for the disk: commits are counted, and `settle` resolves once an fdatasync of the WAL
 * file begun after them has finished (group commit, see GroupSync). The WAL is append-only with
 * checksummed frames, so after a power loss the database is as of some commit: everything up to
 * the last synced one survives, anything after it may not.
 */
export class WalSync {
  private committedCount = 0;
  private durableCount = 0;
  private descriptor: number | undefined;
  private readonly group: GroupSync;

  constructor(
    private readonly walPath: string,
    private readonly open: (path: string) => number,
    /** How the WAL is made durable: an fdatasync, unless a test watches what each one covers. */
    private readonly flush: (descriptor: number, path: string) => Promise<void> = fdatasyncAsync,
  ) {
    this.group = new GroupSync(() => this.syncNow());
  }

  get syncs(): number {
    return this.group.syncs;
  }

  /** A write transaction has committed. */
  committed(): void {
    this.committedCount++;
  }

  /** True when some commit is not yet known durable. */
  get pending(): boolean {
    return this.durableCount < this.committedCount;
  }

  /** Resolves once every commit counted so far is durable. */
  async settle(): Promise<void> {
    const target = this.committedCount;
    while (this.durableCount < target) await this.group.request();
  }

  private async syncNow(): Promise<void> {
    const upTo = this.committedCount;
    // The WAL file exists once the first transaction committed; it stays the same file (SQLite
    // rewinds it after checkpoints, never replaces it) while this connection is open.
    this.descriptor ??= this.open(this.walPath);
    await this.flush(this.descriptor, this.walPath);
    this.durableCount = Math.max(this.durableCount, upTo);
  }

  close(close: (descriptor: number) => void): void {
    if (this.descriptor !== undefined) close(this.descriptor);
    this.descriptor = undefined;
  }
}
