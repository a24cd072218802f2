import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runQueueScenarios } from "./queues.scenarios.js";

runQueueScenarios({
  name: "memory",
  runs: 100,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
