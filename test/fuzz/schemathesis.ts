import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The schemathesis release the fuzz run is known to pass against. Bump it deliberately. */
export const SCHEMATHESIS_VERSION = "4.32.5";

/**
 * Installs schemathesis from PyPI into `<root>/.emulator/schemathesis` (ignored by git, beside the
 * emulator's venv, and reused while it holds the pinned version); returns its command.
 */
export function ensureSchemathesis(root: string): string {
  const venv = join(root, ".emulator", "schemathesis");
  const python = join(venv, "bin", "python");
  const command = join(venv, "bin", "schemathesis");
  if (!existsSync(python)) {
    mkdirSync(join(root, ".emulator"), { recursive: true });
    run("python3", ["-m", "venv", venv]);
  }
  const shown = spawnSync(python, ["-m", "pip", "show", "schemathesis"], { encoding: "utf8" });
  if (!shown.stdout.includes(`Version: ${SCHEMATHESIS_VERSION}`)) {
    run(python, [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `schemathesis==${SCHEMATHESIS_VERSION}`,
    ]);
  }
  return command;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (exit ${result.status}); installing schemathesis needs Python 3 with venv and PyPI:\n${result.stderr}`,
    );
  }
}

export interface FuzzRun {
  exitCode: number | null;
  output: string;
  /** "N generated" from schemathesis' summary. */
  generated: number | undefined;
}

/** Runs `schemathesis run` to completion and collects its output. */
export function runSchemathesis(command: string, args: string[], cwd: string): Promise<FuzzRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: {
        ...process.env,
        NO_COLOR: "1",
        SCHEMATHESIS_TELEMETRY: "false",
        SCHEMATHESIS_HOOKS: fileURLToPath(new URL("./hooks.py", import.meta.url)),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.once("error", reject);
    child.once("exit", (exitCode) => {
      const generated = output.match(/(\d+) generated/);
      resolve({ exitCode, output, generated: generated ? Number(generated[1]) : undefined });
    });
  });
}
