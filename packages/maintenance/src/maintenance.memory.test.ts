import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runMaintenanceScenarios } from "./maintenance.scenarios.js";

runMaintenanceScenarios({
  name: "memory",
  runs: 60,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
