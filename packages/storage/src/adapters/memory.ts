// In-process adapters of both ports: tests, and the engine's own scenario suites.
export * from "../metadata-store/memory.js";
export * from "../object-store/memory.js";
