import { embeddedBackend } from "@sluice/testing/backends";
import { runQueueScenarios } from "./queues.scenarios.js";

runQueueScenarios({ name: "sqlite + filesystem", runs: 12, create: () => embeddedBackend("queues") });
