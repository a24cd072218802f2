// The embedded metadata store (better-sqlite3): the local server's default.
export * from "../metadata-store/sqlite.js";
