import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleIsFresh, DEFAULT_OUTFILE } from "../../packages/cli/bundle.mjs";
import { Collected, REPO_ROOT, within } from "./processes.js";

/**
 * How the `sluice` command starts as a real process: from its bundle (built by `npm ci`, rebuilt
 * when a source changed), also when started through a link on PATH from outside the repository.
 */

let home: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sluice-cli-start-"));
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

async function runCommand(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  const stdout = new Collected(child.stdout);
  const stderr = new Collected(child.stderr);
  const code = await within(
    new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", resolve);
    }),
    60_000,
    `${command} ${args.join(" ")}`,
  );
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe("the sluice command", () => {
  it("runs from its bundle, which is fresh", async () => {
    const result = await runCommand(process.execPath, ["packages/cli/bin/sluice.js", "--version"], {
      cwd: REPO_ROOT,
      env: { ...process.env, SLUICE_CLI_DEBUG: "1" },
    });
    expect(result).toEqual({
      code: 0,
      stdout: "sluice 0.1.0\n",
      stderr: "sluice: running the bundle dist/sluice.mjs\n",
    });
    expect(bundleIsFresh(DEFAULT_OUTFILE)).toBe(true);
  });

  it("runs through a link on PATH, from outside the repository", async () => {
    const bin = join(home, "bin");
    await mkdir(bin);
    await symlink(join(REPO_ROOT, "packages/cli/bin/sluice.js"), join(bin, "sluice"));
    const result = await runCommand("sluice", ["cluster", "--help"], {
      cwd: home,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, SLUICE_CLI_DEBUG: "1" },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^the cluster the API serves\n\nUsage: sluice cluster <subcommand>/);
    expect(result.stderr).toBe("sluice: running the bundle dist/sluice.mjs\n");
  });
});
