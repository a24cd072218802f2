// @types/better-sqlite3 is not installed, so this declares the small part of the API the SQLite
// adapter uses. It is a script (no top-level import/export) so the declaration is ambient.
declare module "better-sqlite3" {
  namespace Database {
    interface RunResult {
      changes: number;
      lastInsertRowid: number | bigint;
    }

    interface Statement<Row = unknown> {
      run(...parameters: unknown[]): RunResult;
      get(...parameters: unknown[]): Row | undefined;
      all(...parameters: unknown[]): Row[];
      iterate(...parameters: unknown[]): IterableIterator<Row>;
    }

    interface Transaction<Fn extends (...args: never[]) => unknown> {
      (...args: Parameters<Fn>): ReturnType<Fn>;
      deferred(...args: Parameters<Fn>): ReturnType<Fn>;
      immediate(...args: Parameters<Fn>): ReturnType<Fn>;
      exclusive(...args: Parameters<Fn>): ReturnType<Fn>;
    }

    interface Options {
      readonly?: boolean;
      fileMustExist?: boolean;
      timeout?: number;
    }

    interface Database {
      readonly open: boolean;
      readonly inTransaction: boolean;
      readonly name: string;
      prepare<Row = unknown>(sql: string): Statement<Row>;
      exec(sql: string): this;
      pragma(source: string, options?: { simple?: boolean }): unknown;
      transaction<Fn extends (...args: never[]) => unknown>(fn: Fn): Transaction<Fn>;
      close(): this;
      /** The database as one file's bytes (what it would hold checkpointed). */
      serialize(): Buffer;
    }

    interface DatabaseConstructor {
      new (filename: string, options?: Options): Database;
      (filename: string, options?: Options): Database;
      SqliteError: SqliteErrorConstructor;
    }

    interface SqliteError extends Error {
      code: string;
    }

    interface SqliteErrorConstructor {
      new (message: string, code: string): SqliteError;
      readonly prototype: SqliteError;
    }
  }

  const Database: Database.DatabaseConstructor;
  // The package is CommonJS (`module.exports = Database`); Node hands ESM importers that object as
  // the default export, which is what this declares.
  export default Database;
}
