import { embeddedBackend } from "@sluice/testing/backends";
import { runEngineScenarios } from "./engine.scenarios.js";

runEngineScenarios({ name: "sqlite + filesystem", runs: 15, create: () => embeddedBackend("engine") });
