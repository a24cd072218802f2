import { defineConfig } from "vitest/config";

/**
 * Two projects on the testing ladder:
 * - unit: pure code (the benchmarks' analysis included), the engine and the contract suites over
 *   in-process adapters (memory, filesystem, SQLite); no network.
 * - smoke: the local server as a child process, over real HTTP and with the CLI.
 * - fuzz: the local server under schemathesis, generated from /openapi.json (Python, from PyPI).
 * - integration: anything that talks to AWS APIs (S3, DynamoDB) through the emulator, which the
 *   global setup starts, and the HTTP apps over it. Files end in `.integration.test.ts`.
 * - e2e: the CDK stack deployed onto the emulator and driven over HTTP.
 */
export default defineConfig({
  test: {
    reporters: ["default", "./packages/testing/src/contract-summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "packages/*/src/**/*.test.ts",
            "functions/**/*.test.ts",
            "infra/**/*.test.ts",
            "bench/**/*.test.ts",
          ],
          exclude: ["**/*.integration.test.ts", "**/node_modules/**"],
          testTimeout: 30_000,
        },
      },
      {
        // The local server as a child process, driven over real HTTP and with the CLI; no emulator.
        test: {
          name: "smoke",
          include: ["test/smoke/**/*.smoke.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 90_000,
        },
      },
      {
        // The local server as a child process under schemathesis, from its own /openapi.json.
        test: {
          name: "fuzz",
          include: ["test/fuzz/**/*.fuzz.test.ts"],
          testTimeout: 300_000,
          // Installing schemathesis from PyPI the first time.
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/src/**/*.integration.test.ts", "test/**/*.integration.test.ts"],
          exclude: ["**/node_modules/**"],
          globalSetup: ["./packages/testing/src/emulator/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The CDK app deployed onto the emulator and driven over HTTP (docs/deploy.md).
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.e2e.test.ts"],
          exclude: ["**/node_modules/**"],
          globalSetup: ["./packages/testing/src/emulator/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
