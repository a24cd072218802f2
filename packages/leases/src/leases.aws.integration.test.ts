import { emulatorBackend } from "@sluice/testing/backends";
import { runLeaseScenarios } from "./leases.scenarios.js";

// One table for the whole file; each scenario run uses keys of its own in it.
const stores = emulatorBackend("leases");

runLeaseScenarios({
  name: "dynamodb",
  runs: 15,
  timeoutMs: 120_000,
  runTimeoutMs: 40_000,
  create: async () => stores(),
});
