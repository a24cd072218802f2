import { embeddedBackend } from "@sluice/testing/backends";
import { runProcessorScenarios } from "./processors.scenarios.js";
import { runSharedProcessorScenarios } from "./shared-processors.scenarios.js";

runProcessorScenarios({
  name: "sqlite + filesystem",
  runs: 12,
  timeoutMs: 240_000,
  create: () => embeddedBackend("processors"),
});

runSharedProcessorScenarios({
  name: "sqlite + filesystem",
  runs: 10,
  timeoutMs: 240_000,
  create: () => embeddedBackend("shared-processors"),
});
