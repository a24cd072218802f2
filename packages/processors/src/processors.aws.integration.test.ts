import { emulatorBackend } from "@sluice/testing/backends";
import { runProcessorScenarios } from "./processors.scenarios.js";
import { runSharedProcessorScenarios } from "./shared-processors.scenarios.js";

// One bucket and table for the whole file; each scenario run uses topics and a processor of its own in them.
const stores = emulatorBackend("processors");

runProcessorScenarios({
  name: "dynamodb + s3",
  runs: 6,
  timeoutMs: 300_000,
  runTimeoutMs: 90_000,
  create: async () => stores(),
});

runSharedProcessorScenarios({
  name: "dynamodb + s3",
  runs: 5,
  timeoutMs: 300_000,
  runTimeoutMs: 120_000,
  create: async () => stores(),
});
