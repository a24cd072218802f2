import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runEngineScenarios } from "./engine.scenarios.js";

runEngineScenarios({
  name: "memory",
  runs: 60,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
