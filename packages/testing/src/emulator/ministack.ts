import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";

/** The MiniStack release the suites are known to pass against. Bump it deliberately. */
export const MINISTACK_VERSION = "1.5.33";
export const EMULATOR_HOST = "127.0.0.1";

export interface RunningEmulator {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Installs MiniStack into `<root>/.emulator/venv` (reused when the pinned version is already
 * there), starts it bound to 127.0.0.1 only, and resolves once its health endpoint answers.
 */
export async function startMinistack(root: string, port: number): Promise<RunningEmulator> {
  const dir = join(root, ".emulator");
  mkdirSync(dir, { recursive: true });
  const python = findPython();
  const venv = join(dir, "venv");
  const venvPython = join(venv, "bin", "python");
  const ministack = join(venv, "bin", "ministack");
  if (!existsSync(venvPython)) {
    log(`creating a virtualenv in ${venv}`);
    run(python, ["-m", "venv", venv]);
  }
  if (!hasPinnedMinistack(venvPython)) {
    log(`installing ministack==${MINISTACK_VERSION} (PyPI)`);
    run(venvPython, [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `ministack==${MINISTACK_VERSION}`,
    ]);
  }
  const endpoint = `http://${EMULATOR_HOST}:${port}`;
  if (await isHealthy(endpoint)) {
    throw new Error(
      `something already answers on ${endpoint}; stop it, or set AWS_ENDPOINT_URL=${endpoint} to run the suites against it`,
    );
  }
  const logFile = join(dir, "ministack.log");
  const out = openSync(logFile, "w");
  const child = spawn(ministack, [], {
    env: { ...process.env, BIND_HOST: EMULATOR_HOST, GATEWAY_PORT: String(port), LOG_LEVEL: "WARNING" },
    stdio: ["ignore", out, out],
    detached: false,
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitUntilHealthy(endpoint, child, exited, logFile);
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function findPython(): string {
  for (const candidate of ["python3", "python"]) {
    const probe = spawnSync(candidate, ["-c", "import venv, sys; print(sys.version_info >= (3, 10))"], {
      encoding: "utf8",
    });
    if (probe.status === 0 && probe.stdout.trim() === "True") return candidate;
  }
  throw new Error(
    "the integration suites need an AWS emulator: install Python 3.10+ with venv (Debian: apt-get install python3 python3-venv) so the harness can run MiniStack, or set AWS_ENDPOINT_URL to a running LocalStack/MiniStack or to real AWS",
  );
}

function hasPinnedMinistack(venvPython: string): boolean {
  const probe = spawnSync(venvPython, ["-m", "pip", "show", "ministack"], { encoding: "utf8" });
  return probe.status === 0 && probe.stdout.includes(`Version: ${MINISTACK_VERSION}`);
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: "inherit" });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(" ")} failed with exit code ${result.status}`);
}

export async function isHealthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

async function waitUntilHealthy(
  endpoint: string,
  child: ChildProcess,
  exited: Promise<number | null>,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  let stopped = false;
  void exited.then(() => {
    stopped = true;
  });
  while (Date.now() < deadline) {
    if (stopped)
      throw new Error(`ministack exited with code ${child.exitCode} before it was healthy; see ${logFile}`);
    if (await isHealthy(endpoint)) return;
    // Polling a readiness probe, not synchronising a test: the interval only bounds the wait.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`ministack did not become healthy within 60 s; see ${logFile}`);
}

function log(message: string): void {
  process.stderr.write(`[emulator] ${message}\n`);
}
