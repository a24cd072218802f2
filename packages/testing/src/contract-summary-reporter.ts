import type { Reporter, TestCase, TestModule } from "vitest/node";

/**
 * Prints, after a run, how many cases of each contract suite passed per adapter, so one glance
 * shows every adapter ran the whole contract, then one closing line with the run's totals
 * (`tests: N passed, N failed, N skipped`; a file that failed to load counts as failed). Contract suites name their outer block
 * `contract <Port> [<adapter>]`; other tests are not counted here.
 */
export default class ContractSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = new Map<string, { passed: number; failed: number; skipped: number }>();
    const total = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        const outcome = state === "passed" ? "passed" : state === "failed" ? "failed" : "skipped";
        total[outcome]++;
        const suite = contractSuiteOf(test);
        if (!suite) continue;
        const entry = counts.get(suite) ?? { passed: 0, failed: 0, skipped: 0 };
        entry[outcome]++;
        counts.set(suite, entry);
      }
    }
    // One plain closing line, whatever the reporter above printed, for tools that read it.
    // A file that failed without a failed test (it did not load) counts once.
    const failedModules = testModules.filter(
      (module) =>
        module.state() === "failed" &&
        ![...module.children.allTests()].some((test) => test.result().state === "failed"),
    ).length;
    const closing = `tests: ${total.passed} passed, ${total.failed + failedModules} failed, ${total.skipped} skipped\n`;
    if (counts.size === 0) {
      process.stdout.write(`\n${closing}`);
      return;
    }
    const lines = [...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([suite, c]) => `  ${suite.padEnd(44)} ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`,
      );
    process.stdout.write(`\nContract suites per adapter:\n${lines.join("\n")}\n${closing}`);
  }
}

function contractSuiteOf(test: TestCase): string | undefined {
  let parent = test.parent;
  let outermost: string | undefined;
  while (parent && parent.type === "suite") {
    outermost = parent.name;
    parent = parent.parent;
  }
  return outermost?.startsWith("contract ") ? outermost : undefined;
}
