import { closeSync, openSync } from "node:fs";
import { DataCorruptionError, InternalError, isSluiceError, UnavailableError } from "@sluice/core";
import Database from "better-sqlite3";
import { WalSync } from "../group-sync.js";
import { applyChanges } from "./apply-changes.js";
import { evaluateCondition, itemBytes } from "./condition-eval.js";
import { ConditionFailedError, TransactionCanceledError, type TransactionFailure } from "./errors.js";
import { decodeCursor, encodeCursor, prefixUpperBound, QUERY_PAGE_BYTES_MAX } from "./paging.js";
import type {
  Condition,
  Item,
  ItemKey,
  MetadataStore,
  Query,
  QueryPage,
  SortKeyRange,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "./port.js";
import { decodeItem, encodeAttributes } from "./sqlite-codec.js";
import {
  checkChanges,
  checkCondition,
  checkItem,
  checkKey,
  checkOperation,
  checkQuery,
  checkTransaction,
} from "./validate.js";

export interface SqliteMetadataStoreOptions {
  /** Database file, or ":memory:" for a private in-memory database. */
  path: string;
  /** How long a write waits for another connection's lock before UnavailableError. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * "fsync" (default): every commit is on disk before it resolves, so it survives a power loss.
   * Commits are group-committed: they are written without waiting (synchronous=NORMAL) and one
   * fdatasync of the WAL, in the thread pool, covers every commit made while the one before ran
   * (WalSync). Every call, reads included, resolves only once what this store had committed when
   * it completed is durable, so nothing a caller learns from it can be lost. "buffered":
   * synchronous=OFF, so nothing waits for the disk, checkpoints included (at NORMAL a checkpoint's
   * two fsyncs stalled about one commit in 250 by 2–25 ms on a VM disk); commits survive a crash
   * of this process, not of the machine.
   */
  durability?: "fsync" | "buffered";
}

const BUSY_TIMEOUT_MS_DEFAULT = 5_000;

interface Row {
  sk: string;
  item: string;
}

/**
 * MetadataStore on one SQLite file, for single-node deployments and tests. Writes run inside
 * `BEGIN IMMEDIATE` transactions, which take the database write lock before reading, so a
 * condition is always evaluated against the latest committed item even when several stores or
 * processes share the file. Sort keys are TEXT in the BINARY collation, which compares UTF-8
 * bytes: exactly the port's order.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly #db: Database.Database;
  /**
   * One transaction function for every write: better-sqlite3 builds several wrappers for each
   * `transaction()` call, which made it about a twentieth of what a single produce allocates.
   */
  readonly #inTransaction: Database.Transaction<(work: () => unknown) => unknown>;
  readonly #statements = new Map<string, Database.Statement<Row>>();
  /** In "fsync" durability on a file: the WAL's group commit. */
  readonly #wal: WalSync | undefined;

  constructor(options: SqliteMetadataStoreOptions) {
    const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS_DEFAULT;
    const durability = options.durability ?? "fsync";
    this.#db = guard(() => openDatabase(options.path, busyTimeoutMs, durability));
    this.#inTransaction = this.#db.transaction((work: () => unknown) => work());
    this.#wal =
      durability === "fsync" && options.path !== ":memory:" && options.path !== ""
        ? new WalSync(`${options.path}-wal`, (path) => openSync(path, "r"))
        : undefined;
  }

  /** SQLite's `synchronous` setting in use (0 OFF, 1 NORMAL), for tests. */
  get synchronousLevel(): number {
    return Number(this.#db.pragma("synchronous", { simple: true }));
  }

  /** fdatasyncs of the WAL so far ("fsync" durability), for tests and benchmarks. */
  get syncs(): number {
    return this.#wal?.syncs ?? 0;
  }

  /** Closes the database; the store cannot be used afterwards. Idempotent. */
  close(): void {
    this.#wal?.close(closeSync);
    if (this.#db.open) this.#db.close();
  }

  async get(key: ItemKey): Promise<Item | undefined> {
    const checkedKey = checkKey(key);
    return this.#durable(() => this.#guarded(() => this.#read(checkedKey)));
  }

  async put(item: Item, options: WriteOptions = {}): Promise<void> {
    const next = checkItem(item);
    if (options.condition) checkCondition(options.condition);
    return this.#durable(() =>
      this.#inWriteTransaction(() => {
        this.#require(next, options.condition);
        this.#write(next);
      }),
    );
  }

  async update(key: ItemKey, changes: UpdateChanges, options: WriteOptions = {}): Promise<Item> {
    const checkedKey = checkKey(key);
    const checkedChanges = checkChanges(changes);
    if (options.condition) checkCondition(options.condition);
    return this.#durable(() =>
      this.#inWriteTransaction(() => {
        const current = this.#require(checkedKey, options.condition);
        const next = applyChanges(current, checkedKey, checkedChanges);
        this.#write(next);
        return next;
      }),
    );
  }

  async delete(key: ItemKey, options: WriteOptions = {}): Promise<void> {
    const checkedKey = checkKey(key);
    if (options.condition) checkCondition(options.condition);
    return this.#durable(() =>
      this.#inWriteTransaction(() => {
        this.#require(checkedKey, options.condition);
        this.#statement("DELETE FROM items WHERE pk = ? AND sk = ?").run(checkedKey.pk, checkedKey.sk);
      }),
    );
  }

  async query(query: Query): Promise<QueryPage> {
    checkQuery(query);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, query.pk).sk;
    const { sql, parameters } = querySql(query, after);
    return this.#durable(() => this.#guarded(() => this.#page(query, sql, parameters)));
  }

  /**
   * Runs `work` (synchronous SQLite) and, in "fsync" durability, resolves or rejects only once
   * everything committed so far is durable: a write's own commit, and for reads and failed
   * conditions the commits whose effects they may report (a caller must never act on a value a
   * power loss could take back).
   */
  async #durable<T>(work: () => T): Promise<T> {
    if (!this.#wal) return work();
    let result: T;
    try {
      result = work();
    } catch (error) {
      if (this.#wal.pending) await this.#settle();
      throw error;
    }
    if (this.#wal.pending) await this.#settle();
    return result;
  }

  async #settle(): Promise<void> {
    try {
      await this.#wal!.settle();
    } catch (error) {
      throw new UnavailableError("SQLite metadata store: syncing the write-ahead log failed", {
        cause: error,
      });
    }
  }

  async transactWrite(operations: readonly TransactOperation[]): Promise<void> {
    checkTransaction(operations);
    const checked = operations.map(checkOperation);
    return this.#durable(() => this.#transact(checked));
  }

  #transact(checked: ReturnType<typeof checkOperation>[]): void {
    this.#inWriteTransaction(() => {
      // Evaluate every condition first: all failures are reported, and nothing is written.
      const currents = checked.map((operation) =>
        this.#read(operation.kind === "put" ? operation.item : operation.key),
      );
      const failures: TransactionFailure[] = [];
      checked.forEach((operation, index) => {
        const current = currents[index];
        if (operation.condition && !evaluateCondition(operation.condition, current)) {
          failures.push({ index, current });
        }
      });
      if (failures.length > 0) {
        throw new TransactionCanceledError(
          `transaction canceled: ${failures.length} condition(s) failed`,
          failures,
        );
      }
      checked.forEach((operation, index) => {
        if (operation.kind === "put") this.#write(operation.item);
        if (operation.kind === "update") {
          this.#write(applyChanges(currents[index], operation.key, operation.changes));
        }
        if (operation.kind === "delete") {
          this.#statement("DELETE FROM items WHERE pk = ? AND sk = ?").run(
            operation.key.pk,
            operation.key.sk,
          );
        }
      });
    });
  }

  /** Runs `work` in BEGIN IMMEDIATE … COMMIT; any throw rolls back before it propagates. */
  #inWriteTransaction<T>(work: () => T): T {
    const result = this.#guarded(() => this.#inTransaction.immediate(work) as T);
    this.#wal?.committed();
    return result;
  }

  #guarded<T>(work: () => T): T {
    if (!this.#db.open) throw new InternalError("the SQLite metadata store is closed");
    return guard(work);
  }

  #read(key: ItemKey): Item | undefined {
    const row = this.#statement("SELECT sk, item FROM items WHERE pk = ? AND sk = ?").get(key.pk, key.sk);
    return row ? decodeItem(key, row.item) : undefined;
  }

  #write(item: Item): void {
    this.#statement(
      "INSERT INTO items (pk, sk, item) VALUES (?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE SET item = excluded.item",
    ).run(item.pk, item.sk, encodeAttributes(item));
  }

  #require(key: ItemKey, condition: Condition | undefined): Item | undefined {
    const current = this.#read(key);
    if (condition !== undefined && !evaluateCondition(condition, current)) {
      throw new ConditionFailedError("the condition did not hold", current, {
        details: { pk: key.pk, sk: key.sk },
      });
    }
    return current;
  }

  /** Reads one page: `limit` items or 1 MB, then peeks one row further to decide on a cursor. */
  #page(query: Query, sql: string, parameters: unknown[]): QueryPage {
    const rows = this.#statement(sql).iterate(...parameters);
    const items: Item[] = [];
    let bytes = 0;
    let more = false;
    try {
      for (let next = rows.next(); !next.done; next = rows.next()) {
        if (query.limit !== undefined && items.length >= query.limit) {
          more = true;
          break;
        }
        const item = decodeItem({ pk: query.pk, sk: next.value.sk }, next.value.item);
        const size = itemBytes(item);
        if (items.length > 0 && bytes + size > QUERY_PAGE_BYTES_MAX) {
          more = true;
          break;
        }
        items.push(item);
        bytes += size;
      }
    } finally {
      rows.return?.();
    }
    const last = items.at(-1);
    return more && last ? { items, cursor: encodeCursor(last) } : { items };
  }

  #statement(sql: string): Database.Statement<Row> {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare<Row>(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function openDatabase(
  path: string,
  busyTimeoutMs: number,
  durability: "fsync" | "buffered",
): Database.Database {
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    // Only takes effect on a new file; checked below because byte order relies on UTF-8 text.
    db.pragma("encoding = 'UTF-8'");
    db.pragma("journal_mode = WAL");
    // Both durabilities commit without waiting for the disk; "fsync" then syncs the WAL (WalSync)
    // and keeps checkpoints' fsyncs, "buffered" leaves everything to the OS.
    db.pragma(durability === "fsync" ? "synchronous = NORMAL" : "synchronous = OFF");
    db.exec(
      "CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID",
    );
    const encoding = db.pragma("encoding", { simple: true });
    if (encoding !== "UTF-8") {
      throw new InternalError(`SQLite file ${path} uses ${String(encoding)}; sort order needs UTF-8`);
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Builds the SELECT for a query: pk, the sort key range, the cursor position, order. */
function querySql(query: Query, after: string | undefined): { sql: string; parameters: unknown[] } {
  const descending = query.order === "desc";
  const bounds: Array<[string, string]> = [
    ["pk = ?", query.pk],
    ...(query.sk ? rangeBounds(query.sk) : []),
    ...(after === undefined ? [] : [[descending ? "sk < ?" : "sk > ?", after] as [string, string]]),
  ];
  const where = bounds.map(([clause]) => clause).join(" AND ");
  return {
    sql: `SELECT sk, item FROM items WHERE ${where} ORDER BY sk ${descending ? "DESC" : "ASC"}`,
    parameters: bounds.map(([, value]) => value),
  };
}

/** SQL comparisons (with their parameter) that select a sort key range. */
function rangeBounds(range: SortKeyRange): Array<[string, string]> {
  switch (range.kind) {
    case "eq":
      return [["sk = ?", range.value]];
    case "lt":
      return [["sk < ?", range.value]];
    case "lte":
      return [["sk <= ?", range.value]];
    case "gt":
      return [["sk > ?", range.value]];
    case "gte":
      return [["sk >= ?", range.value]];
    case "between":
      return [
        ["sk >= ?", range.low],
        ["sk <= ?", range.high],
      ];
    case "begins_with": {
      // A range scan instead of LIKE/substr, so the primary key index bounds the search.
      const bound = prefixUpperBound(range.prefix);
      return bound === undefined
        ? [["sk >= ?", range.prefix]]
        : [
            ["sk >= ?", range.prefix],
            ["sk < ?", bound],
          ];
    }
  }
}

/** Runs synchronous SQLite work, translating driver errors into the typed set. */
function guard<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw translateSqliteError(error);
  }
}

function translateSqliteError(error: unknown): Error {
  if (isSluiceError(error)) return error;
  const code = error instanceof Database.SqliteError ? error.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, details: { code } };
  if (code === undefined) return new InternalError(`SQLite metadata store failed: ${message}`, options);
  if (/^SQLITE_(BUSY|LOCKED)/.test(code)) {
    return new UnavailableError(`SQLite database is locked by another connection: ${message}`, options);
  }
  if (/^SQLITE_(FULL|IOERR)/.test(code))
    return new UnavailableError(`SQLite I/O failed: ${message}`, options);
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code))
    return new DataCorruptionError(`SQLite file is corrupt: ${message}`, options);
  return new InternalError(`SQLite metadata store failed: ${message}`, options);
}
