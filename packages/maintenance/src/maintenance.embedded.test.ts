import { embeddedBackend } from "@sluice/testing/backends";
import { runMaintenanceScenarios } from "./maintenance.scenarios.js";

runMaintenanceScenarios({
  name: "sqlite + packed",
  runs: 12,
  create: () => embeddedBackend("maintenance"),
});
