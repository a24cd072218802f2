// The embedded object store for slow disks: objects packed into append-only segment files (or the index itself), indexed in SQLite.
export * from "../object-store/packed.js";
