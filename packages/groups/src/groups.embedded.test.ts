import { embeddedBackend } from "@sluice/testing/backends";
import { runGroupScenarios } from "./groups.scenarios.js";

runGroupScenarios({ name: "sqlite + filesystem", runs: 12, create: () => embeddedBackend("groups") });
