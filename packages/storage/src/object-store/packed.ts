import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import {
  ConflictError,
  crc32c,
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
import {
  commitFrame,
  DATA_FRAME_BYTES_MAX,
  dataFrameHeader,
  readFrame,
  readFully,
  scanSegment,
} from "./segment-frames.js";
import { processStart, writerRunning } from "./writer-process.js";

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
   * How a file (a segment, the segments' directory, the index's WAL) is made durable in "fsync"
   * durability: an fdatasync in the thread pool. Tests wrap it to learn what each flush covers.
   */
  flush?: (descriptor: number, path: string) => Promise<void>;
  /**
   * The process id recorded as the writer of this instance's segments (default: this process's).
   * `reclaimSegments` closes the open segments of writers no longer running. For tests.
   */
  ownerPid?: number;
  /**
   * The start time recorded beside `ownerPid` (writer-process.ts): default, that process's own, or
   * none where the system does not report it. For tests of a process id taken by another process.
   */
  ownerStart?: string | null;
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
  /** Its file's name and its row in the index are durable ("fsync" durability); resolves then. */
  created: Promise<void>;
  /** Set once `created` resolved: puts into it may be fast. */
  rowDurable: boolean;
}

/** Where a put's bytes went. */
interface Location {
  segment: Segment;
  position: number;
}

/** A put on its way: what its row will hold. */
interface PendingRow {
  key: string;
  etag: string;
  modified: number;
  body: Uint8Array;
  condition: PutOptions["condition"];
}

/** What writing a put's row came to: the segments it emptied, or why it wrote nothing. */
type RowOutcome = string[] | typeof SEGMENT_GONE | typeof HAS_ROW;
/** The segment the bytes went to was deleted meanwhile: write them again elsewhere. */
const SEGMENT_GONE = Symbol("segment gone");
/** A fast put found the key with a row: it is written as a replace, after its segment's sync. */
const HAS_ROW = Symbol("has row");

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
 * - Segments are written as frames (segment-frames.ts): a data frame per object and, for a fast
 *   put, a commit frame that carries its row.
 * - "fsync", a key without a row into a segment (a fast put): data frame, row, commit frame in
 *   one turn, then one sync of the segment; the index's WAL is not waited for, and opening a
 *   store writes again the rows a power loss took (ARCHITECTURE.md, "One sync for a new object").
 *   Any other put: the segment's bytes are synced before the row is written (a row never points
 *   at bytes a power loss could take), then the index's WAL is synced. All syncs group-commit.
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
  readonly #ownerStart: string | null;
  readonly #wal: WalSync | undefined;
  readonly #flush: (descriptor: number, path: string) => Promise<void>;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #readers = new Map<string, number>();
  #active: Segment | undefined;
  #segmentNumber = 0;
  /** Segment syncs of fast puts still running: reads wait for them (their rows are visible). */
  readonly #fastSyncs = new Set<Promise<void>>();

  constructor(options: PackedObjectStoreOptions) {
    this.#root = resolve(options.root);
    this.#segmentsDir = join(this.#root, "segments");
    this.#fsync = (options.durability ?? "fsync") === "fsync";
    this.#inlineBytesMax = options.inlineBytesMax ?? 16 * 1024;
    this.#segmentBytesMax = options.segmentBytesMax ?? 64 * 1024 * 1024;
    this.#ownerPid = options.ownerPid ?? process.pid;
    this.#ownerStart =
      options.ownerStart === undefined ? (processStart(this.#ownerPid) ?? null) : options.ownerStart;
    mkdirSync(this.#segmentsDir, { recursive: true });
    const path = join(this.#root, "index.sqlite");
    this.#db = guard(() => openIndex(path, options.busyTimeoutMs ?? 5_000, this.#fsync));
    this.#inTransaction = this.#db.transaction((work: () => unknown) => work());
    this.#flush = options.flush ?? fdatasyncAsync;
    this.#wal = this.#fsync
      ? new WalSync(`${path}-wal`, (wal) => openSync(wal, "r"), this.#flush)
      : undefined;
    this.#checkUnsyncedRows();
    this.#recoverRows();
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
      const dead = this.#db.open
        ? guard(() => this.#transaction(() => this.#sealRow(segment.name, segment.size)))
        : [];
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
    if (body.byteLength > DATA_FRAME_BYTES_MAX)
      throw new InvalidArgumentError(`packed store: objects are at most ${DATA_FRAME_BYTES_MAX} bytes`);
    const etag = `"${randomHex(12)}"`;
    const modified = Date.now();
    const row = { key, etag, modified, body, condition };
    let dead: string[];
    let fastSync: Promise<void> | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        let location: Location | undefined;
        let fast = false;
        if (body.byteLength > this.#inlineBytesMax) {
          location = guard(() => this.#append(body));
          // Fast (ARCHITECTURE.md, "One sync for a new object"): the row first, the segment carries it.
          fast = this.#fsync && location.segment.rowDurable;
          if (this.#fsync && !fast) await this.#syncSegment(location.segment, true);
        }
        let written = this.#writeRow(row, location, fast);
        if (written === HAS_ROW) {
          // A replace: its row must not point at bytes a power loss could take.
          fast = false;
          await this.#syncSegment(location!.segment);
          written = this.#writeRow(row, location, false);
        }
        if (written !== SEGMENT_GONE && written !== HAS_ROW) {
          dead = written;
          // Same turn as the row's transaction: the commit frame follows the data frame.
          if (fast && location) fastSync = this.#commitFast(row, location);
          break;
        }
        if (location && this.#active === location.segment) this.#dropActive();
        if (attempt >= SEGMENT_GONE_ATTEMPTS_MAX)
          throw new UnavailableError(`packed store: the segment of put ${key} kept being deleted under it`);
      }
    } catch (error) {
      // A failed condition reports the current row: answered once that row is durable.
      if (error instanceof ConflictError) await this.#settleReads();
      throw error;
    }
    if (fastSync) await fastSync;
    else await this.#settleIndex();
    this.#unlink(dead);
    return { key, etag, size: body.byteLength, lastModified: new Date(modified) };
  }

  /**
   * The put's row, in one transaction that checks its condition. A fast put writes it only for a
   * key without a row (HAS_ROW otherwise) and leaves the index's WAL alone: its segment's sync
   * makes it durable.
   */
  #writeRow(row: PendingRow, location: Location | undefined, fast: boolean): RowOutcome {
    const { key, condition, body } = row;
    return this.#transaction(() => {
      // The segment went while the bytes were written (closed, then emptied: by this instance's
      // roll-over and deletes during a sync, or by another's reclaim that took this process for
      // gone): a row must not point into it. Write the bytes again, elsewhere.
      if (location && !this.#segmentExists(location.segment.name)) return SEGMENT_GONE;
      const current = this.#statement("SELECT etag, size, segment, position FROM objects WHERE key = ?").get(
        key,
      ) as Pick<Row, "etag" | "size" | "segment" | "position"> | undefined;
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
      if (fast && current) return HAS_ROW;
      // Until its segment's sync ends the row may outlive its bytes in a power loss: recovery
      // checks every row listed here against its commit frame.
      if (fast) this.#statement(UNSYNCED_UPSERT).run(key, row.etag);
      this.#statement(
        "INSERT INTO objects (key, etag, size, modified, body, segment, position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, size = excluded.size, modified = excluded.modified, body = excluded.body, segment = excluded.segment, position = excluded.position",
      ).run(
        key,
        row.etag,
        body.byteLength,
        row.modified,
        location ? null : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        location?.segment.name ?? null,
        location?.position ?? null,
      );
      if (location) this.#addLive(location.segment.name, body.byteLength);
      return current?.segment ? this.#removeLive(current.segment, current.size, current.position!) : [];
    }, !fast);
  }

  /**
   * Appends a fast put's commit frame after its data frame and asks for the segment's sync, which
   * makes both durable; the row is in the index already. Until that sync ends, reads wait for it.
   * A failed sync takes the row out again (the put was not acknowledged).
   */
  #commitFast(row: PendingRow, location: Location): Promise<void> {
    const frame = commitFrame({
      position: location.position,
      size: row.body.byteLength,
      dataCrc: crc32c(row.body),
      modified: row.modified,
      etag: row.etag,
      key: row.key,
    });
    try {
      guard(() => this.#appendFrame(location.segment, frame));
    } catch (error) {
      // No commit frame (a full disk): the row must not stay for a put that was not acknowledged.
      guard(() => this.#undoFastRow(row, location));
      return Promise.reject(error);
    }
    const sync = this.#syncSegment(location.segment).then(
      () => this.#forgetUnsynced(row.key, row.etag),
      (error: unknown) => {
        try {
          this.#undoFastRow(row, location);
        } catch {
          // The put fails with the sync's error either way.
        }
        throw error;
      },
    );
    this.#fastSyncs.add(sync);
    const forget = () => this.#fastSyncs.delete(sync);
    sync.then(forget, forget);
    return sync;
  }

  /**
   * A fast put's sync ended: its row no longer needs checking after a power loss. Taken out in one
   * transaction for all the puts whose syncs ended in the same turn, not waited for: if a power
   * loss takes it, recovery checks the rows again and finds them whole.
   */
  #forgetUnsynced(key: string, etag: string): void {
    this.#synced.push(key, etag);
    if (this.#synced.length > 2) return;
    setImmediate(() => {
      const synced = this.#synced;
      this.#synced = [];
      if (!this.#db.open) return;
      try {
        this.#transaction(() => {
          for (let i = 0; i < synced.length; i += 2)
            this.#statement("DELETE FROM unsynced WHERE key = ? AND etag = ?").run(synced[i], synced[i + 1]);
        }, false);
      } catch {
        // Left listed: recovery checks them, finds them whole and takes them out then.
      }
    });
  }
  #synced: string[] = [];

  #undoFastRow(row: PendingRow, location: Location): void {
    const dead = this.#transaction(() => {
      this.#statement("DELETE FROM unsynced WHERE key = ? AND etag = ?").run(row.key, row.etag);
      const removed = this.#statement(
        "DELETE FROM objects WHERE key = ? AND etag = ? AND segment = ? AND position = ? RETURNING size",
      ).get(row.key, row.etag, location.segment.name, location.position) as { size: number } | undefined;
      return removed ? this.#removeLive(location.segment.name, removed.size, location.position) : [];
    });
    this.#unlink(dead);
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
        const current = this.#statement(
          "DELETE FROM objects WHERE key = ? RETURNING size, segment, position",
        ).get(key) as Pick<Row, "size" | "segment" | "position"> | undefined;
        if (current?.segment)
          emptied.push(...this.#removeLive(current.segment, current.size, current.position!));
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
          const sync = this.#syncSegment(to.segment, true);
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
          emptied.push(...this.#removeLive(name, copy.size, copy.from));
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
   * Closes the open segments of writers that are not running (their process id is gone, or taken
   * by a process that started at another time: writer-process.ts), as their own `close()` would
   * have: a segment left open is never deleted. Segments recorded before writers were (no id) are
   * left alone.
   */
  #closeSegmentsOfDeadWriters(report: ReclaimReport): void {
    const open = guard(
      () =>
        this.#statement(
          "SELECT name, owner, owner_start FROM segments WHERE sealed = 0 AND owner IS NOT NULL",
        ).all() as {
          name: string;
          owner: number;
          owner_start: string | null;
        }[],
    );
    for (const { name, owner, owner_start } of open) {
      if (name.startsWith(`${this.#writer}-`) || writerRunning(owner, owner_start)) continue;
      const size = this.#segmentFileSize(name) ?? 0;
      // Its rows may point at bytes its writer never synced (a fast put killed before its sync).
      if (this.#fsync && size > 0) guard(() => this.#syncFile(name));
      const dead = guard(() => this.#transaction(() => this.#sealRow(name, size)));
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

  /**
   * Appends `body` as a data frame to this instance's open segment (a new one when there is none
   * or it is full); the position returned is that of the bytes.
   */
  #append(body: Uint8Array): Location {
    let segment = this.#active;
    if (!segment || segment.size >= this.#segmentBytesMax) {
      if (segment) this.#sealFull(segment);
      const name = `${this.#writer}-${String(this.#segmentNumber++).padStart(6, "0")}.seg`;
      const descriptor = openSync(join(this.#segmentsDir, name), "wx", 0o644);
      this.#transaction(() =>
        this.#statement(
          "INSERT INTO segments (name, live, sealed, owner, owner_start, framed, replayed_from) VALUES (?, 0, 0, ?, ?, 1, 0)",
        ).run(name, this.#ownerPid, this.#ownerStart),
      );
      const created: Segment = {
        name,
        descriptor,
        size: 0,
        sync: undefined as unknown as GroupSync,
        rowDurable: false,
        created: Promise.resolve(),
      };
      const path = join(this.#segmentsDir, name);
      created.sync = new GroupSync(async () => {
        await this.#flush(descriptor, path);
        this.#segmentSyncs++;
      });
      if (this.#fsync) {
        // Puts into it wait until its name in the directory and its row are durable (recovery
        // scans only segments with a row); until then none is fast.
        created.created = Promise.all([this.#flushDirectory(), this.#settleIndex()]).then(
          () => {
            created.rowDurable = true;
          },
          (error: unknown) => {
            // Puts into it fail with this; the next put begins another segment.
            if (this.#active === created) this.#dropActive();
            throw error;
          },
        );
        created.created.catch(() => undefined);
      }
      segment = created;
      this.#active = segment;
    }
    this.#appendFrame(segment, dataFrameHeader(body.byteLength));
    const position = segment.size;
    this.#appendFrame(segment, body);
    return { segment, position };
  }

  /** Writes `bytes` at the end of the segment, whatever its size. */
  #appendFrame(segment: Segment, bytes: Uint8Array): void {
    const position = segment.size;
    let written = 0;
    while (written < bytes.byteLength) {
      written += writeSync(
        segment.descriptor,
        bytes,
        written,
        bytes.byteLength - written,
        position + written,
      );
    }
    segment.size += bytes.byteLength;
  }

  /** Makes the segments' directory durable: the names of the files created in it so far. */
  async #flushDirectory(): Promise<void> {
    const descriptor = openSync(this.#segmentsDir, "r");
    try {
      await this.#flush(descriptor, this.#segmentsDir);
    } finally {
      closeSync(descriptor);
    }
  }

  /** fdatasync of a segment file by name (one this instance may not have open for writing). */
  #syncFile(name: string): void {
    let descriptor: number;
    try {
      descriptor = openSync(join(this.#segmentsDir, name), "r");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return;
      throw error;
    }
    try {
      fdatasyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
  }

  /** A sync of the segment; `created` also waits until the segment's file and row are durable. */
  async #syncSegment(segment: Segment, created = false): Promise<void> {
    try {
      // Asked for at once: a segment dropped meanwhile closes its descriptor after the syncs asked
      // of it so far.
      const synced = segment.sync.request();
      if (created) await Promise.all([segment.created, synced]);
      else await synced;
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
      this.#statement(
        "UPDATE segments SET sealed = 1, replayed_from = max(replayed_from, ?) WHERE name = ?",
      ).run(segment.size, segment.name);
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

  /**
   * Marks the segment closed (in a transaction), its replay watermark raised to `end`, where its
   * writer stopped; returns it when it is dead already, row deleted.
   */
  #sealRow(segment: string, end: number): string[] {
    const row = this.#statement(
      "UPDATE segments SET sealed = 1, replayed_from = max(replayed_from, ?) WHERE name = ? RETURNING live",
    ).get(end, segment) as { live: number } | undefined;
    if (!row || row.live > 0) return [];
    this.#statement("DELETE FROM segments WHERE name = ?").run(segment);
    return [segment];
  }

  #addLive(segment: string, bytes: number): void {
    this.#statement("UPDATE segments SET live = live + ? WHERE name = ?").run(bytes, segment);
  }

  /**
   * A row stopped pointing at `bytes` at `position` in the segment (deleted, replaced or moved):
   * takes them off its live count and raises its replay watermark past them, so recovery never
   * writes that row again. Returns the segment when it is now dead and closed.
   */
  #removeLive(segment: string, bytes: number, position: number): string[] {
    const row = this.#statement(
      "UPDATE segments SET live = live - ?, replayed_from = max(replayed_from, ?) WHERE name = ? RETURNING live, sealed",
    ).get(bytes, position + bytes, segment) as { live: number; sealed: number } | undefined;
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
    if (!readFully(descriptor, bytes, position)) {
      throw new DataCorruptionError("object segment is shorter than its index says", {
        details: { segment: name, position, length },
      });
    }
    return bytes;
  }

  // --- index -------------------------------------------------------------------------------

  #row(key: string): Row | undefined {
    return this.#statement(
      "SELECT etag, size, modified, body, segment, position FROM objects WHERE key = ?",
    ).get(key) as Row | undefined;
  }

  /** A write transaction; `durableByWal` false for a fast put's, which its segment makes durable. */
  #transaction<T>(work: () => T, durableByWal = true): T {
    const result = guard(() => this.#inTransaction.immediate(work) as T);
    if (durableByWal) this.#wal?.committed();
    return result;
  }

  /** Runs a read and, in "fsync" durability, answers only once every commit so far is durable. */
  async #settled<T>(work: () => T): Promise<T> {
    const result = guard(work);
    await this.#settleReads();
    return result;
  }

  /** Waits until every row written so far is durable: the WAL's commits and the fast puts'. */
  async #settleReads(): Promise<void> {
    if (this.#wal?.pending) await this.#settleIndex();
    if (this.#fastSyncs.size > 0) await Promise.all(this.#fastSyncs);
  }

  /**
   * Takes out the rows of fast puts whose segment sync never ended (a power loss during it): each
   * row listed as unsynced keeps its place only if the commit frame right after its data is whole
   * and names it, and its data matches that frame's CRC. Rows in segments whose writer still runs
   * are left to it (its commit frame may not be written yet); the others' segments are flushed
   * before their rows leave the list, so what was checked is on disk, not only in the page cache
   * of a writer that died.
   */
  #checkUnsyncedRows(): void {
    const listed = guard(
      () =>
        this.#statement(
          "SELECT u.key, u.etag AS listed, o.etag, o.size, o.segment, o.position, s.owner, s.owner_start FROM unsynced u LEFT JOIN objects o ON o.key = u.key LEFT JOIN segments s ON s.name = o.segment",
        ).all() as ({
          key: string;
          listed: string;
          owner: number | null;
          owner_start: string | null;
        } & Partial<Pick<Row, "etag" | "size" | "segment" | "position">>)[],
    ).filter(
      (row) => row.etag !== row.listed || row.owner == null || !writerRunning(row.owner, row.owner_start),
    );
    if (listed.length === 0) return;
    const broken = listed.filter(
      (row) =>
        row.etag === row.listed &&
        row.segment != null &&
        !guard(() => this.#commitIsWhole(row.segment!, row.key, row.etag!, row.position!, row.size!)),
    );
    if (this.#fsync) {
      for (const segment of new Set(listed.map((row) => row.segment).filter((name) => name != null)))
        guard(() => this.#syncFile(segment!));
    }
    const dead = this.#transaction(() => {
      const emptied: string[] = [];
      for (const row of broken) {
        const removed = this.#statement(
          "DELETE FROM objects WHERE key = ? AND etag = ? AND segment = ? AND position = ? RETURNING size",
        ).get(row.key, row.etag, row.segment, row.position) as { size: number } | undefined;
        if (removed) emptied.push(...this.#removeLive(row.segment!, removed.size, row.position!));
      }
      for (const row of listed)
        this.#statement("DELETE FROM unsynced WHERE key = ? AND etag = ?").run(row.key, row.listed);
      return emptied;
    });
    this.#unlink(dead);
  }

  /** Whether the commit frame after the data at `position` names this object and its data is whole. */
  #commitIsWhole(segment: string, key: string, etag: string, position: number, size: number): boolean {
    const path = join(this.#segmentsDir, segment);
    let descriptor: number;
    try {
      descriptor = openSync(path, "r");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return false;
      throw error;
    }
    try {
      const frame = readFrame(descriptor, position + size, fstatSync(descriptor).size);
      const commit = frame?.commit;
      return (
        commit !== undefined &&
        commit.key === key &&
        commit.etag === etag &&
        commit.position === position &&
        commit.size === size &&
        dataIsWhole(descriptor, position, size, commit.dataCrc)
      );
    } finally {
      closeSync(descriptor);
    }
  }

  /**
   * Writes again the rows of fast puts that a power loss took from the index while their segment
   * kept them (ARCHITECTURE.md, "One sync for a new object"): each closed-or-not framed segment
   * whose file runs past its replay watermark is scanned from there. A commit frame above the
   * watermark whose data is whole and whose key has no row gets its row back; a row that points
   * at a commit frame's data that is not whole (its put never acknowledged) is taken out.
   */
  #recoverRows(): void {
    const segments = guard(
      () =>
        this.#statement("SELECT name, replayed_from FROM segments WHERE framed = 1").all() as {
          name: string;
          replayed_from: number;
        }[],
    );
    for (const { name, replayed_from: watermark } of segments) {
      const size = this.#segmentFileSize(name);
      if (size === undefined || size <= watermark) continue;
      let descriptor: number;
      try {
        descriptor = openSync(join(this.#segmentsDir, name), "r");
      } catch (error) {
        if ((error as { code?: string }).code === "ENOENT") continue;
        throw toSluiceError(error, { segment: name });
      }
      try {
        const scan = guard(() => scanSegment(descriptor, watermark, size));
        const commits = scan.commits.map((commit) => ({
          ...commit,
          whole: guard(() => dataIsWhole(descriptor, commit.position, commit.size, commit.dataCrc)),
        }));
        const dead = this.#transaction(() => {
          const now = this.#statement("SELECT replayed_from FROM segments WHERE name = ?").get(name) as
            | { replayed_from: number }
            | undefined;
          if (!now) return [];
          const emptied: string[] = [];
          for (const commit of commits) {
            if (commit.position < now.replayed_from) continue;
            const current = this.#statement("SELECT etag, segment, position FROM objects WHERE key = ?").get(
              commit.key,
            ) as Pick<Row, "etag" | "segment" | "position"> | undefined;
            if (!current && commit.whole) {
              this.#statement(
                "INSERT INTO objects (key, etag, size, modified, body, segment, position) VALUES (?, ?, ?, ?, NULL, ?, ?)",
              ).run(commit.key, commit.etag, commit.size, commit.modified, name, commit.position);
              this.#addLive(name, commit.size);
            } else if (
              current &&
              !commit.whole &&
              current.etag === commit.etag &&
              current.segment === name &&
              current.position === commit.position
            ) {
              this.#statement("DELETE FROM objects WHERE key = ?").run(commit.key);
              emptied.push(...this.#removeLive(name, commit.size, commit.position));
            }
          }
          // Every commit frame below the last whole one was written after its row's transaction.
          if (scan.lastCommitEnd > now.replayed_from)
            this.#statement("UPDATE segments SET replayed_from = ? WHERE name = ?").run(
              scan.lastCommitEnd,
              name,
            );
          return emptied;
        });
        this.#unlink(dead);
      } finally {
        closeSync(descriptor);
      }
    }
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
      "CREATE TABLE IF NOT EXISTS unsynced (key TEXT NOT NULL PRIMARY KEY, etag TEXT NOT NULL) WITHOUT ROWID",
    );
    db.exec(
      "CREATE TABLE IF NOT EXISTS segments (name TEXT NOT NULL PRIMARY KEY, live INTEGER NOT NULL, sealed INTEGER NOT NULL, owner INTEGER, owner_start TEXT, framed INTEGER NOT NULL DEFAULT 0, replayed_from INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
    );
    // An index from before segments recorded their writer's process id.
    const columns = db.pragma("table_info(segments)") as { name: string }[];
    if (!columns.some((column) => column.name === "owner"))
      db.exec("ALTER TABLE segments ADD COLUMN owner INTEGER");
    // An index from before segments recorded their writer's start time (writer-process.ts).
    if (!columns.some((column) => column.name === "owner_start"))
      db.exec("ALTER TABLE segments ADD COLUMN owner_start TEXT");
    // An index from before segments were written as frames (ARCHITECTURE.md, "One sync for a new
    // object"): its segments are raw bytes, never scanned.
    if (!columns.some((column) => column.name === "framed")) {
      db.exec("ALTER TABLE segments ADD COLUMN framed INTEGER NOT NULL DEFAULT 0");
      db.exec("ALTER TABLE segments ADD COLUMN replayed_from INTEGER NOT NULL DEFAULT 0");
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Whether the bytes at `position` in the segment are all there and match their CRC-32C. */
function dataIsWhole(descriptor: number, position: number, size: number, dataCrc: number): boolean {
  const bytes = Buffer.allocUnsafe(size);
  return readFully(descriptor, bytes, position) && crc32c(bytes) === dataCrc;
}

function infoOf(key: string, row: Pick<Row, "etag" | "size" | "modified">): ObjectInfo {
  return { key, etag: row.etag, size: row.size, lastModified: new Date(row.modified) };
}

function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

const UNSYNCED_UPSERT =
  "INSERT INTO unsynced (key, etag) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag";

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
