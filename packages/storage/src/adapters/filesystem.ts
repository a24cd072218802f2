// The embedded object store: one file per object under a root directory.
export * from "../object-store/filesystem.js";
