import { closeSync, mkdirSync, openSync, readSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import {
  ConflictError,
  DataCorruptionError,
  InternalError,
  InvalidArgumentError,
  isSluiceError,
  NotFoundError,
  randomHex,
  UnavailableError,
} from "@sluice/core";
import Database from "better-sqlite3";
import { fdatasyncAsync, GroupSync, WalSync } from "../group-sync.js";
import { prefixUpperBound } from "../metadata-store/paging.js";
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
  decodeCursor,
  encodeCursor,
  listLimit,
  selectRange,
} from "./rules.js";

export interface PackedObjectStoreOptions {
  /** Holds `index.sqlite` and `segments/`; created when missing. */
  root: string;
  /**
   * "fsync" (default): a put resolves once its bytes and its index row are on disk, group
   * committed (one fdatasync covers every put made while the previous one ran). "buffered":
   * left to the OS page cache; puts survive a crash of this process, not of the machine.
   */
  durability?: "fsync" | "buffered";
  /** Objects up to this many bytes live in the index database itself. Default 16 KiB. */
  inlineBytesMax?: number;
  /** A segment file is closed and another begun once it passes this size. Default 64 MiB. */
  segmentBytesMax?: number;
  /** How long a write waits for another process's lock on the index. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * The process id recorded as the writer of this instance's segments (default: this process's).
   * `reclaimSegments` closes the open segments of writers no longer running. For tests.
   */
  ownerPid?: number;
}

interface Row {
  etag: string;
  size: number;
  modified: number;
  body: Buffer | null;
  segment: string | null;
  position: number | null;
}

/** What `reclaimSegments` did: segment files deleted, objects moved, bytes copied and freed. */
export interface ReclaimReport {
  segments: number;
  objects: number;
  bytesCopied: number;
  bytesFreed: number;
}

interface SegmentRow {
  name: string;
  live: number;
}

interface Segment {
  name: string;
  descriptor: number;
  size: number;
  sync: GroupSync;
}

const READ_DESCRIPTORS_MAX = 64;

/**
 * ObjectStore on a directory, for the local server on a slow disk: no file per object. Creating a
 * file costs about a millisecond on the VM disks this runs on (docs/benchmarks.md), which capped
 * the one-file-per-object store near 1,000 puts a second; here a put appends to a file that stays
 * open, or writes a row.
 *
 * - An index (SQLite, WAL) holds one row per key: its etag, size and time, and either the bytes
 *   themselves (objects up to `inlineBytesMax`) or where they lie in a segment file.
 * - Segments are append-only files, each written by one store instance only (its name carries the
 *   instance's random id), so processes sharing the directory never write to the same file; any
 *   of them reads any segment. A segment is closed past `segmentBytesMax`.
 * - A put appends the bytes first, then writes the row in one `BEGIN IMMEDIATE` transaction that
 *   also checks the condition, so create-only and ifMatch hold across processes: exactly one of
 *   concurrent create-only puts of a key inserts its row. A put that loses leaves dead bytes.
 * - "fsync": the segment's bytes are synced before the row is written (a row never points at
 *   bytes a power loss could take), then the index's WAL is synced; both are group commits.
 * - Etags are random per write; a replaced or deleted object's bytes stay in its segment until no
 *   row in the segment is live, when the segment file is deleted (a closed one). An instance
 *   closes its open segment on `close()`; the open segment of a process that died (its id is
 *   recorded with the segment) is closed by the next `reclaimSegments` of any instance. A put's
 *   row is written only while its segment's row exists (same transaction), so a segment closed
 *   and deleted under a writer that still runs costs a second write, never a dangling row.
 *   `reclaimSegments` moves the few live objects out of closed segments that are mostly dead, so
 *   their files go too.
 */
export class PackedObjectStore implements ObjectStore {
  readonly #root: string;
  readonly #segmentsDir: string;
  readonly #db: Database.Database;
  /** One transaction function for every write (see the SQLite metadata store). */
  readonly #inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  readonly #fsync: boolean;
  readonly #inlineBytesMax: number;
  readonly #segmentBytesMax: number;
  readonly #writer = randomHex(6);
  readonly #ownerPid: number;
  readonly #wal: WalSync | undefined;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #readers = new Map<string, number>();
  #active: Segment | undefined;
  #segmentNumber = 0;

  constructor(options: PackedObjectStoreOptions) {
    this.#root = resolve(options.root);
    this.#segmentsDir = join(this.#root, "segments");
    this.#fsync = (options.durability ?? "fsync") === "fsync";
    this.#inlineBytesMax = options.inlineBytesMax ?? 16 * 1024;
    this.#segmentBytesMax = options.segmentBytesMax ?? 64 * 1024 * 1024;
    this.#ownerPid = options.ownerPid ?? process.pid;
    mkdirSync(this.#segmentsDir, { recursive: true });
    const path = join(this.#root, "index.sqlite");
    this.#db = guard(() => openIndex(path, options.busyTimeoutMs ?? 5_000, this.#fsync));
    this.#inTransaction = this.#db.transaction((work: () => unknown) => work());
    this.#wal = this.#fsync ? new WalSync(`${path}-wal`, (wal) => openSync(wal, "r")) : undefined;
  }

  /** SQLite's `synchronous` setting of the index (0 OFF, 1 NORMAL), for tests. */
  get synchronousLevel(): number {
    return Number(this.#db.pragma("synchronous", { simple: true }));
  }

  /** fdatasyncs so far, of segments and of the index's WAL ("fsync" durability). */
  get syncs(): number {
    return (this.#wal?.syncs ?? 0) + this.#segmentSyncs;
  }
  #segmentSyncs = 0;

  /**
   * Closes the index and every file; the store cannot be used afterwards. Idempotent. The open
   * segment is closed for good, so it goes once its objects do.
   */
  close(): void {
    const segment = this.#active;
    this.#active = undefined;
    if (segment) {
      const dead = this.#db.open ? guard(() => this.#transaction(() => this.#sealRow(segment.name))) : [];
      closeSync(segment.descriptor);
      this.#unlink(dead);
    }
    for (const descriptor of this.#readers.values()) closeSync(descriptor);
    this.#readers.clear();
    this.#wal?.close(closeSync);
    if (this.#db.open) this.#db.close();
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject> {
    checkKey(key);
    const range = options?.range;
    if (range) checkRange(range);
    // Yields first, so a caller looping on gets cannot starve other I/O (reads are synchronous).
    await setImmediatePromise();
    return this.#settled(() => {
      for (let attempt = 0; ; attempt++) {
        const row = this.#row(key);
        if (!row) throw new NotFoundError("object not found", { details: { key } });
        const { start, end } = range ? selectRange(row.size, range) : { start: 0, end: row.size };
        const info = infoOf(key, row);
        if (row.body) return { ...info, body: plain(row.body.subarray(start, end)) };
        const body = this.#readSegment(row.segment!, row.position! + start, end - start);
        // The segment was deleted after the row was read (the object replaced meanwhile): read again.
        if (body === undefined && attempt < 2) continue;
        if (body === undefined) throw new InternalError("object segment vanished", { details: { key } });
        return { ...info, body };
      }
    });
  }

  async head(key: string): Promise<ObjectInfo> {
    checkKey(key);
    return this.#settled(() => {
      const row = this.#row(key);
      if (!row) throw new NotFoundError("object not found", { details: { key } });
      return infoOf(key, row);
    });
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const condition = options?.condition;
    checkCondition(condition);
    const etag = `"${randomHex(12)}"`;
    const modified = Date.now();
    let dead: string[];
    for (let attempt = 1; ; attempt++) {
      let location: { segment: Segment; position: number } | undefined;
      if (body.byteLength > this.#inlineBytesMax) {
        location = guard(() => this.#append(body));
        if (this.#fsync) await this.#syncSegment(location.segment);
      }
      const written = this.#transaction(() => {
        // The segment went while the bytes were written (closed, then emptied: by this instance's
        // roll-over and deletes during a sync, or by another's reclaim that took this process for
        // gone): a row must not point into it. Write the bytes again, elsewhere.
        if (location && !this.#segmentExists(location.segment.name)) return undefined;
        const current = this.#statement("SELECT etag, size, segment FROM objects WHERE key = ?").get(key) as
          | Pick<Row, "etag" | "size" | "segment">
          | undefined;
        if (condition && "ifNoneMatch" in condition && current) {
          throw new ConflictError("create-only put: object already exists", { details: { key } });
        }
        if (condition && "ifMatch" in condition) {
          if (!current) throw new ConflictError("ifMatch put: object does not exist", { details: { key } });
          if (current.etag !== condition.ifMatch) {
            throw new ConflictError("ifMatch put: etag does not match", {
              details: { key, expected: condition.ifMatch, current: current.etag },
            });
          }
        }
        this.#statement(
          "INSERT INTO objects (key, etag, size, modified, body, segment, position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, size = excluded.size, modified = excluded.modified, body = excluded.body, segment = excluded.segment, position = excluded.position",
        ).run(
          key,
          etag,
          body.byteLength,
          modified,
          location ? null : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          location?.segment.name ?? null,
          location?.position ?? null,
        );
        if (location) this.#addLive(location.segment.name, body.byteLength);
        return current?.segment ? this.#removeLive(current.segment, current.size) : [];
      });
      if (written) {
        dead = written;
        break;
      }
      if (location && this.#active === location.segment) this.#dropActive();
      if (attempt >= SEGMENT_GONE_ATTEMPTS_MAX)
        throw new UnavailableError(`packed store: the segment of put ${key} kept being deleted under it`);
    }
    await this.#settleIndex();
    this.#unlink(dead);
    return { key, etag, size: body.byteLength, lastModified: new Date(modified) };
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = listLimit(options);
    const after = options?.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const upper = prefixUpperBound(prefix);
    const clauses = ["key >= ?"];
    const parameters: unknown[] = [prefix];
    if (upper !== undefined) {
      clauses.push("key < ?");
      parameters.push(upper);
    }
    if (after !== undefined) {
      clauses.push("key > ?");
      parameters.push(after);
    }
    const sql = `SELECT key, etag, size, modified FROM objects WHERE ${clauses.join(" AND ")} ORDER BY key LIMIT ?`;
    return this.#settled(() => {
      const rows = this.#statement(sql).all(...parameters, limit + 1) as (Row & { key: string })[];
      const page = rows.slice(0, limit).map((row) => infoOf(row.key, row));
      const last = page.at(-1);
      return rows.length > limit && last
        ? { objects: page, cursor: encodeCursor(last.key) }
        : { objects: page };
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#remove([key]);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    checkKeys(keys);
    await this.#remove([...new Set(keys)]);
  }

  async #remove(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const dead = this.#transaction(() => {
      const emptied: string[] = [];
      for (const key of keys) {
        const current = this.#statement("DELETE FROM objects WHERE key = ? RETURNING size, segment").get(
          key,
        ) as Pick<Row, "size" | "segment"> | undefined;
        if (current?.segment) emptied.push(...this.#removeLive(current.segment, current.size));
      }
      return emptied;
    });
    await this.#settleIndex();
    this.#unlink(dead);
  }

  /**
   * Reclaims the disk of closed segments that are mostly dead — objects from several topics share
   * a segment, and one kept topic would otherwise keep every file its objects landed in: each
   * closed segment whose live bytes are under `liveFractionMax` of its file has its live objects
   * copied into this instance's open segment and their rows moved there, after which the file is
   * deleted like any dead segment. A row moves only if it still points where it was read (an
   * object replaced or deleted meanwhile, by this process or another, is left alone), with its
   * etag unchanged: a reader sees the same object before and after, and a reader that read the
   * old row after the file went reads the row again (get). Copies are synced before rows move in
   * fsync durability. Safe beside writers and other instances on the same root; a crash leaves at
   * worst dead copies. Yields between objects so a large segment does not hold the event loop.
   */
  async reclaimSegments(options: { liveFractionMax?: number } = {}): Promise<ReclaimReport> {
    const liveFractionMax = options.liveFractionMax ?? 0.5;
    if (!(liveFractionMax > 0 && liveFractionMax <= 1))
      throw new InvalidArgumentError(`liveFractionMax must be above 0 and at most 1, got ${liveFractionMax}`);
    const report: ReclaimReport = { segments: 0, objects: 0, bytesCopied: 0, bytesFreed: 0 };
    this.#closeSegmentsOfDeadWriters(report);
    const closed = guard(
      () => this.#statement("SELECT name, live FROM segments WHERE sealed = 1").all() as SegmentRow[],
    );
    for (const { name, live } of closed) {
      const size = this.#segmentFileSize(name);
      if (size === undefined || size === 0 || live >= size * liveFractionMax) continue;
      const rows = guard(
        () =>
          this.#statement("SELECT key, size, position FROM objects WHERE segment = ? ORDER BY position").all(
            name,
          ) as { key: string; size: number; position: number }[],
      );
      const copies: {
        key: string;
        size: number;
        from: number;
        to: { segment: Segment; position: number };
      }[] = [];
      const synced: Promise<void>[] = [];
      for (const row of rows) {
        await setImmediatePromise();
        const body = guard(() => this.#readSegment(name, row.position, row.size));
        if (body === undefined) break; // deleted meanwhile: nothing left to move
        const to = guard(() => this.#append(body));
        copies.push({ key: row.key, size: row.size, from: row.position, to });
        if (this.#fsync) {
          // Asked for now, before anything can close the segment it went to.
          const sync = this.#syncSegment(to.segment);
          sync.catch(() => undefined);
          synced.push(sync);
        }
      }
      await Promise.all(synced);
      const dead = this.#transaction(() => {
        const emptied: string[] = [];
        for (const copy of copies) {
          if (!this.#segmentExists(copy.to.segment.name)) continue; // its copy went: it stays
          const moved = this.#statement(
            "UPDATE objects SET segment = ?, position = ? WHERE key = ? AND segment = ? AND position = ?",
          ).run(copy.to.segment.name, copy.to.position, copy.key, name, copy.from);
          if (moved.changes === 0) continue;
          report.objects++;
          report.bytesCopied += copy.size;
          this.#addLive(copy.to.segment.name, copy.size);
          emptied.push(...this.#removeLive(name, copy.size));
        }
        // No row points into it (none did, or all went meanwhile): the segment is dead as it is.
        if (
          !emptied.includes(name) &&
          this.#statement("SELECT 1 FROM objects WHERE segment = ? LIMIT 1").get(name) === undefined
        ) {
          if (this.#statement("DELETE FROM segments WHERE name = ?").run(name).changes > 0)
            emptied.push(name);
        }
        return emptied;
      });
      await this.#settleIndex();
      this.#unlink(dead);
      if (dead.includes(name)) {
        report.segments++;
        report.bytesFreed += size;
      }
    }
    return report;
  }

  /**
   * Closes the open segments of writers that are not running (their process id is gone), as their
   * own `close()` would have: a segment left open is never deleted. Segments recorded before
   * writers were (no id) are left alone. A reused process id reads as running: kept, never lost.
   */
  #closeSegmentsOfDeadWriters(report: ReclaimReport): void {
    const open = guard(
      () =>
        this.#statement("SELECT name, owner FROM segments WHERE sealed = 0 AND owner IS NOT NULL").all() as {
          name: string;
          owner: number;
        }[],
    );
    for (const { name, owner } of open) {
      if (name.startsWith(`${this.#writer}-`) || processRunning(owner)) continue;
      const size = this.#segmentFileSize(name) ?? 0;
      const dead = guard(() => this.#transaction(() => this.#sealRow(name)));
      this.#unlink(dead);
      if (dead.includes(name)) {
        report.segments++;
        report.bytesFreed += size;
      }
    }
  }

  #segmentFileSize(name: string): number | undefined {
    try {
      return statSync(join(this.#segmentsDir, name)).size;
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw toSluiceError(error, { segment: name });
    }
  }

  // --- segments ----------------------------------------------------------------------------

  /** Appends `body` to this instance's open segment (a new one when there is none or it is full). */
  #append(body: Uint8Array): { segment: Segment; position: number } {
    let segment = this.#active;
    if (!segment || segment.size >= this.#segmentBytesMax) {
      if (segment) this.#sealFull(segment);
      const name = `${this.#writer}-${String(this.#segmentNumber++).padStart(6, "0")}.seg`;
      const descriptor = openSync(join(this.#segmentsDir, name), "wx", 0o644);
      this.#transaction(() =>
        this.#statement("INSERT INTO segments (name, live, sealed, owner) VALUES (?, 0, 0, ?)").run(
          name,
          this.#ownerPid,
        ),
      );
      const created: Segment = { name, descriptor, size: 0, sync: undefined as unknown as GroupSync };
      created.sync = new GroupSync(async () => {
        await fdatasyncAsync(descriptor);
        this.#segmentSyncs++;
      });
      segment = created;
      this.#active = segment;
    }
    const position = segment.size;
    let written = 0;
    while (written < body.byteLength) {
      written += writeSync(segment.descriptor, body, written, body.byteLength - written, position + written);
    }
    segment.size += body.byteLength;
    return { segment, position };
  }

  async #syncSegment(segment: Segment): Promise<void> {
    try {
      await segment.sync.request();
    } catch (error) {
      throw toSluiceError(error, { operation: "sync", segment: segment.name });
    }
  }

  /**
   * Marks the full open segment closed: once none of its rows is live it may be deleted. Puts
   * still syncing into it keep their place: it is not deleted here, even with nothing live yet.
   */
  #sealFull(segment: Segment): void {
    this.#transaction(() => {
      this.#statement("UPDATE segments SET sealed = 1 WHERE name = ?").run(segment.name);
    });
    this.#dropActive();
  }

  #segmentExists(name: string): boolean {
    return this.#statement("SELECT 1 FROM segments WHERE name = ?").get(name) !== undefined;
  }

  /**
   * Stops writing to the open segment (closed, or its row gone): the next put begins another. Its
   * descriptor closes after the syncs already asked of it.
   */
  #dropActive(): void {
    const segment = this.#active;
    if (!segment) return;
    this.#active = undefined;
    void segment.sync
      .request()
      .catch(() => undefined)
      .finally(() => closeSync(segment.descriptor));
  }

  /** Marks the segment closed (in a transaction); returns it when it is dead already, row deleted. */
  #sealRow(segment: string): string[] {
    const row = this.#statement("UPDATE segments SET sealed = 1 WHERE name = ? RETURNING live").get(
      segment,
    ) as { live: number } | undefined;
    if (!row || row.live > 0) return [];
    this.#statement("DELETE FROM segments WHERE name = ?").run(segment);
    return [segment];
  }

  #addLive(segment: string, bytes: number): void {
    this.#statement("UPDATE segments SET live = live + ? WHERE name = ?").run(bytes, segment);
  }

  /** Takes `bytes` off the segment's live count; returns it when it is now dead and closed. */
  #removeLive(segment: string, bytes: number): string[] {
    const row = this.#statement(
      "UPDATE segments SET live = live - ? WHERE name = ? RETURNING live, sealed",
    ).get(bytes, segment) as { live: number; sealed: number } | undefined;
    if (!row || row.live > 0 || row.sealed === 0) return [];
    this.#statement("DELETE FROM segments WHERE name = ?").run(segment);
    return [segment];
  }

  #unlink(segments: string[]): void {
    for (const name of segments) {
      const reader = this.#readers.get(name);
      if (reader !== undefined) {
        closeSync(reader);
        this.#readers.delete(name);
      }
      try {
        unlinkSync(join(this.#segmentsDir, name));
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOENT") throw toSluiceError(error, { segment: name });
      }
    }
  }

  /** Bytes of a segment, or undefined when the segment no longer exists. */
  #readSegment(name: string, position: number, length: number): Uint8Array | undefined {
    let descriptor = this.#readers.get(name);
    if (descriptor === undefined) {
      try {
        descriptor = openSync(join(this.#segmentsDir, name), "r");
      } catch (error) {
        if ((error as { code?: string }).code === "ENOENT") return undefined;
        throw error;
      }
      if (this.#readers.size >= READ_DESCRIPTORS_MAX) {
        const [oldest, oldestDescriptor] = this.#readers.entries().next().value!;
        closeSync(oldestDescriptor);
        this.#readers.delete(oldest);
      }
      this.#readers.set(name, descriptor);
    }
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const read = readSync(descriptor, bytes, filled, length - filled, position + filled);
      if (read === 0) {
        throw new DataCorruptionError("object segment is shorter than its index says", {
          details: { segment: name, position, length },
        });
      }
      filled += read;
    }
    return bytes;
  }

  // --- index -------------------------------------------------------------------------------

  #row(key: string): Row | undefined {
    return this.#statement(
      "SELECT etag, size, modified, body, segment, position FROM objects WHERE key = ?",
    ).get(key) as Row | undefined;
  }

  #transaction<T>(work: () => T): T {
    const result = guard(() => this.#inTransaction.immediate(work) as T);
    this.#wal?.committed();
    return result;
  }

  /** Runs a read and, in "fsync" durability, answers only once every commit so far is durable. */
  async #settled<T>(work: () => T): Promise<T> {
    const result = guard(work);
    if (this.#wal?.pending) await this.#settleIndex();
    return result;
  }

  async #settleIndex(): Promise<void> {
    if (!this.#wal) return;
    try {
      await this.#wal.settle();
    } catch (error) {
      throw toSluiceError(error, { operation: "sync" });
    }
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function openIndex(path: string, busyTimeoutMs: number, fsync: boolean): Database.Database {
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    db.pragma("encoding = 'UTF-8'");
    db.pragma("journal_mode = WAL");
    // As the SQLite metadata store: "buffered" waits for the disk nowhere, checkpoints included.
    db.pragma(fsync ? "synchronous = NORMAL" : "synchronous = OFF");
    // Keys compare as UTF-8 bytes (BINARY collation on UTF-8 text): the port's list order.
    db.exec(
      "CREATE TABLE IF NOT EXISTS objects (key TEXT NOT NULL PRIMARY KEY, etag TEXT NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL, body BLOB, segment TEXT, position INTEGER)",
    );
    db.exec(
      "CREATE TABLE IF NOT EXISTS segments (name TEXT NOT NULL PRIMARY KEY, live INTEGER NOT NULL, sealed INTEGER NOT NULL, owner INTEGER) WITHOUT ROWID",
    );
    // An index from before segments recorded their writer's process id.
    const columns = db.pragma("table_info(segments)") as { name: string }[];
    if (!columns.some((column) => column.name === "owner"))
      db.exec("ALTER TABLE segments ADD COLUMN owner INTEGER");
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Whether a process with this id runs on this machine (one that is not ours to signal counts). */
function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== "ESRCH";
  }
}

function infoOf(key: string, row: Pick<Row, "etag" | "size" | "modified">): ObjectInfo {
  return { key, etag: row.etag, size: row.size, lastModified: new Date(row.modified) };
}

function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Times a put writes its bytes again when the segment it wrote them to went meanwhile. */
const SEGMENT_GONE_ATTEMPTS_MAX = 3;

function guard<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw toSluiceError(error, {});
  }
}

function toSluiceError(error: unknown, details: Record<string, unknown>): Error {
  if (isSluiceError(error)) return error;
  const code = error instanceof Database.SqliteError ? error.code : (error as { code?: string } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, details: { ...details, code } };
  if (
    typeof code === "string" &&
    /^SQLITE_(BUSY|LOCKED|FULL|IOERR)|^(EAGAIN|EBUSY|EMFILE|ENFILE|ENOSPC|EDQUOT|EIO|ETIMEDOUT)$/.test(code)
  ) {
    return new UnavailableError(`packed object store temporarily failed: ${message}`, options);
  }
  if (typeof code === "string" && /^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
    return new DataCorruptionError(`packed object store index is corrupt: ${message}`, options);
  }
  return new InternalError(`packed object store failed: ${message}`, options);
}
