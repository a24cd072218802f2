import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, type ServerProcess, startServerProcess } from "../smoke/processes.js";
import { ensureSchemathesis, runSchemathesis } from "./schemathesis.js";

/**
 * The local server against schemathesis, driven by its own /openapi.json with every check
 * (schemathesis.toml turns on all of them, as `--checks all` would): no 5xx,
 * no answer outside the document, schema-valid requests accepted and invalid ones refused, 405
 * with Allow for other methods. Bounded in time (FUZZ_SECONDS, default 90) with a fixed seed, so
 * a run is repeatable; set FUZZ_SEED to explore others. schemathesis.toml loosens single checks
 * for single operations and hooks.py teaches the generator two rules OpenAPI cannot state; each
 * says why (docs/http-api.md, "The fuzz run").
 */
const seconds = Number(process.env.FUZZ_SECONDS ?? 90);
const seed = process.env.FUZZ_SEED ?? "1";
let dataDir: string;
let server: ServerProcess;
let schemathesis: string;

beforeAll(async () => {
  schemathesis = ensureSchemathesis(REPO_ROOT);
  dataDir = await mkdtemp(join(tmpdir(), "sluice-fuzz-"));
  // The fuzzer creates processors with webhook URLs and Lambda names of its own invention: they
  // are managed here but never run, so the run calls nothing outside this machine.
  server = await startServerProcess(dataDir, { env: { SLUICE_PROCESSORS_RUN: "0" } });
});

afterAll(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill("SIGTERM");
    await server.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("the OpenAPI document under schemathesis", () => {
  it(
    "reports no failure of any check",
    async () => {
      const run = await runSchemathesis(
        schemathesis,
        [
          "--config-file",
          join(REPO_ROOT, "test/fuzz/schemathesis.toml"),
          "run",
          `${server.url}/openapi.json`,
          "--max-time",
          String(seconds),
          "--seed",
          seed,
          // One worker: the order of requests, and so the run, follows from the seed alone (and
          // schemathesis' coverage phase has hit a Python threading error with two).
          "--workers",
          "1",
          "--request-timeout",
          "40",
        ],
        dataDir,
      );
      process.stdout.write(`schemathesis: ${run.generated ?? "?"} test cases generated\n`);
      expect(run.output, "schemathesis printed no summary").toMatch(/generated/);
      expect(run.exitCode, readable(run.output)).toBe(0);
      expect(server.stderr.text, "the server logged errors").not.toMatch(/internal error/);
    },
    (seconds + 120) * 1000,
  );
});

/** The run's report with each line cut to 2,000 characters, so that one huge request cannot hide the rest. */
function readable(output: string): string {
  const lines = output.split("\n").map((line) => (line.length > 2_000 ? `${line.slice(0, 2_000)}…` : line));
  return lines.join("\n").slice(-30_000);
}
