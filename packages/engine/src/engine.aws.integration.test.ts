import { emulatorBackend } from "@sluice/testing/backends";
import { runEngineScenarios } from "./engine.scenarios.js";

// One bucket and table for the whole file; each scenario run uses its own topic in them.
const stores = emulatorBackend("engine");

runEngineScenarios({
  name: "dynamodb + s3",
  runs: 10,
  timeoutMs: 300_000,
  runTimeoutMs: 60_000,
  create: async () => stores(),
});
