import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runProcessorScenarios } from "./processors.scenarios.js";
import { runSharedProcessorScenarios } from "./shared-processors.scenarios.js";

runProcessorScenarios({
  name: "memory",
  runs: 100,
  timeoutMs: 300_000,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});

runSharedProcessorScenarios({
  name: "memory",
  runs: 60,
  timeoutMs: 300_000,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
