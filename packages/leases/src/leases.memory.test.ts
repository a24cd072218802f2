import { MemoryMetadataStore } from "@sluice/storage/memory";
import { runLeaseScenarios } from "./leases.scenarios.js";

runLeaseScenarios({
  name: "memory",
  runs: 150,
  create: async () => ({ metadata: new MemoryMetadataStore() }),
});
