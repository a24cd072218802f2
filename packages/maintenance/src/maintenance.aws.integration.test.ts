import { emulatorBackend } from "@sluice/testing/backends";
import { runMaintenanceScenarios } from "./maintenance.scenarios.js";

// One bucket and table for the whole file; each scenario run uses its own topic in them.
const stores = emulatorBackend("maintenance");

runMaintenanceScenarios({
  name: "dynamodb + s3",
  runs: 4,
  timeoutMs: 600_000,
  runTimeoutMs: 240_000,
  create: async () => stores(),
});
