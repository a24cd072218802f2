import { embeddedBackend } from "@sluice/testing/backends";
import { runLeaseScenarios } from "./leases.scenarios.js";

runLeaseScenarios({ name: "sqlite", runs: 25, create: () => embeddedBackend("leases") });
