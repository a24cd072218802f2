import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { runMaintenanceScenarios } from "./maintenance.scenarios.js";

runMaintenanceScenarios({
  name: "memory",
  // The suite asserts it reached an upload that came too late. Such uploads came 2.6 times per
  // 60 runs on average (30 seeds), and none at all for 2 of the 30, a failed CI run in about 15.
  // At 240 runs they came 12–22 times (3 seeds), and the suite takes about 4 s.
  runs: 240,
  create: async () => ({ objects: new MemoryObjectStore(), metadata: new MemoryMetadataStore() }),
});
