// The contract suites, for adapters outside this package (and for the engine's own scenario tests).
export * from "./metadata-store/metadata-store.contract.js";
export * from "./object-store/object-store.contract.js";
