/** The local server (`npm start`'s entry) as a child process on loopback, for the benchmarks. */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const ROOT = join(import.meta.dirname, "..");

export async function startServer(
  dataDir: string,
  durability: "fsync" | "buffered",
  /** More environment for the server, e.g. SLUICE_METRICS=off. */
  env: Record<string, string> = {},
  /** More node arguments, given just before the entry point (after the start script's). */
  nodeArgs: string[] = [],
): Promise<{ url: string; pid: number | undefined; stop: () => Promise<void> }> {
  const startArgs = startScriptNodeArgs();
  const args = [...profileArgs(), ...startArgs.slice(0, -1), ...nodeArgs, startArgs.at(-1)!];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", SLUICE_DATA_DIR: dataDir, SLUICE_DURABILITY: durability, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the local server did not print its URL within 60 s")),
      60_000,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const match = line.match(/https?:\/\/127\.0\.0\.1:\d+/);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    });
    child.once("exit", (code) => reject(new Error(`the local server exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * The arguments `npm start` gives node (package.json's `start` script), so the benchmarks run the
 * server as users start it, V8 settings included.
 */
export function startScriptNodeArgs(): string[] {
  const script: unknown = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts?.start;
  const words = typeof script === "string" ? script.trim().split(/\s+/) : [];
  if (words[0] !== "exec" || words[1] !== "node" || !words.at(-1)?.endsWith(".ts")) {
    throw new Error(`package.json's start script is not "exec node … <entry>.ts": ${JSON.stringify(script)}`);
  }
  return words.slice(2).map((word) => (word.endsWith(".ts") ? join(ROOT, word) : word));
}

/** The V8 settings `npm start` gives the local server (its start script's flags, no loader). */
export function serverV8Args(): string[] {
  const args = startScriptNodeArgs();
  return args.filter((word, i) => word.startsWith("--") && word !== "--import" && args[i - 1] !== "--import");
}

/**
 * Runs this benchmark again in a child Node process under the local server's V8 settings, unless
 * this process already has them: for benchmarks of what runs inside the server. Resolves when the
 * child ends, with its exit code.
 */
export async function underServerV8Settings(benchmark: string, argv: string[]): Promise<boolean> {
  const settings = serverV8Args();
  if (settings.every((flag) => process.execArgv.includes(flag))) return false;
  const child = spawn(
    process.execPath,
    [...settings, "--import", "tsx", join(ROOT, "bench", "run.ts"), benchmark, ...argv],
    { cwd: ROOT, stdio: "inherit" },
  );
  const code = await new Promise<number>((resolve) => child.once("exit", (exit) => resolve(exit ?? 1)));
  if (code !== 0) process.exitCode = code;
  return true;
}

/**
 * SLUICE_BENCH_SERVER_PROFILE=DIR writes a V8 CPU profile of the server into DIR when it exits
 * (open it in Chrome's DevTools), to see where a benchmark's server time goes.
 */
function profileArgs(): string[] {
  const dir = process.env.SLUICE_BENCH_SERVER_PROFILE;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc on Linux; undefined
 * elsewhere. Read before and after a phase, it gives what the phase cost the server.
 */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return ticks / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux build that matters here. */
const CLOCK_TICKS_PER_SECOND = 100;
