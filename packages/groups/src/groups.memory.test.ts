import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runGroupScenarios } from "./groups.scenarios.js";

runGroupScenarios({
  name: "memory",
  runs: 100,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
