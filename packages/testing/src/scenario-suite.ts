import fc from "fast-check";
import { describe, it } from "vitest";
import { replayParameters } from "./replay.js";

/** What every binding of a model-based scenario suite gives: a fresh backend per run. */
export interface ScenarioBinding<Backend> {
  /** The binding, as in `scenarios Leases [sqlite]`. */
  name: string;
  create: () => Promise<Backend & { cleanup?: () => Promise<void> }>;
  /** fast-check runs: many in memory, few against a network emulator. */
  runs: number;
  timeoutMs?: number;
  /** Limit for one generated scenario. */
  runTimeoutMs?: number;
}

/**
 * One model-based scenario suite, bound to one backend: `describe("scenarios <protocol>
 * [<binding>]")` with one property, checked over generated scenarios, each on a fresh backend that
 * is cleaned up whatever the run's outcome. Stops at the first failure, which replays with
 * SLUICE_SCENARIO_SEED and SLUICE_SCENARIO_PATH (replay.ts).
 */
export function scenarioSuite<Backend, Scenario>(
  binding: ScenarioBinding<Backend>,
  suite: {
    protocol: string;
    /** What every run checks, the test's title. */
    property: string;
    scenarios: fc.Arbitrary<Scenario>;
    run: (backend: Backend, scenario: Scenario) => Promise<void>;
    /** Defaults for the binding's limits. */
    runTimeoutMs: number;
    timeoutMs: number;
    /**
     * Called once every run passed, with the number of runs: asserts that the runs reached the
     * hazards the suite is there for (a suite that never reaches them checks nothing).
     */
    reached?: (runs: number) => void;
  },
): void {
  describe(`scenarios ${suite.protocol} [${binding.name}]`, () => {
    it(
      suite.property,
      async () => {
        await fc.assert(
          fc.asyncProperty(suite.scenarios, async (scenario) => {
            const backend = await binding.create();
            try {
              await suite.run(backend, scenario);
            } finally {
              await backend.cleanup?.();
            }
          }),
          {
            numRuns: binding.runs,
            endOnFailure: true,
            timeout: binding.runTimeoutMs ?? suite.runTimeoutMs,
            ...replayParameters(),
          },
        );
        suite.reached?.(binding.runs);
      },
      binding.timeoutMs ?? suite.timeoutMs,
    );
  });
}
