import type { Reporter, TestCase, TestModule } from "vitest/node";

/**
 * Prints, after a run, how many cases of each contract suite passed per adapter, so one glance
 * shows every adapter ran the whole contract. Contract suites name their outer block
 * `contract <Port> [<adapter>]`; other tests are not counted here.
 */
export default class ContractSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = new Map<string, { passed: number; failed: number; skipped: number }>();
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const suite = contractSuiteOf(test);
        if (!suite) continue;
        const entry = counts.get(suite) ?? { passed: 0, failed: 0, skipped: 0 };
        const state = test.result().state;
        if (state === "passed") entry.passed++;
        else if (state === "failed") entry.failed++;
        else entry.skipped++;
        counts.set(suite, entry);
      }
    }
    if (counts.size === 0) return;
    const lines = [...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([suite, c]) => `  ${suite.padEnd(44)} ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`,
      );
    process.stdout.write(`\nContract suites per adapter:\n${lines.join("\n")}\n`);
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
