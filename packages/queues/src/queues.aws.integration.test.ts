import { emulatorBackend } from "@sluice/testing/backends";
import { runQueueScenarios } from "./queues.scenarios.js";

// One bucket and table for the whole file; each scenario run uses its own topics and group in them.
const stores = emulatorBackend("queues");

runQueueScenarios({
  name: "dynamodb + s3",
  runs: 8,
  timeoutMs: 150_000,
  runTimeoutMs: 60_000,
  create: async () => stores(),
});
