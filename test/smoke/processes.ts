import { type ChildProcess, spawn } from "node:child_process";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The repository root (this file is test/smoke/processes.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = "packages/cli/bin/sluice.js";
const SERVER_MAIN = "packages/server/src/main.ts";

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Text of a stream as it arrives, with waits on patterns that resolve on the data event itself. */
export class Collected {
  text = "";
  private waiters: Array<() => void> = [];

  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      this.text += chunk;
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  /** The first match of `pattern`, once it appears; rejects if `ended` settles first. */
  match(pattern: RegExp, ended: Promise<unknown>): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.text.match(pattern);
        if (found) resolve(found);
        else this.waiters.push(check);
      };
      check();
      void ended.then(() => {
        const found = this.text.match(pattern);
        if (found) resolve(found);
        else reject(new Error(`process ended before its output matched ${pattern}; output:\n${this.text}`));
      });
    });
  }
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  clusterId: string;
  dataDir: string;
  stdout: Collected;
  stderr: Collected;
  exited: Promise<Exit>;
}

/**
 * Starts the local server as its own process on a free port (PORT=0), logging requests, and waits
 * for it to print its URL. It runs `node --import tsx` directly rather than through `npm start`, so that signals
 * reach the server itself (npm's `sh -c` does not pass SIGTERM on).
 */
export async function startServerProcess(
  dataDir: string,
  options: { port?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER_MAIN], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PORT: String(options.port ?? 0),
      HOST: "127.0.0.1",
      SLUICE_DATA_DIR: dataDir,
      SLUICE_LOG_REQUESTS: "1",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout = new Collected(child.stdout);
  const stderr = new Collected(child.stderr);
  const exited = exitOf(child);
  const banner = await within(
    stdout.match(/url:\s+(http:\/\/\S+)\n\s+data dir:\s+(.+)\n\s+cluster id:\s+(\S+)\n/, exited),
    60_000,
    "the server to print its URL",
  ).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nstderr:\n${stderr.text}`);
  });
  return {
    child,
    url: banner[1] as string,
    dataDir: banner[2] as string,
    clusterId: banner[3] as string,
    stdout,
    stderr,
    exited,
  };
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  stdout: Collected;
  stderr: Collected;
  exited: Promise<Exit>;
  /** Resolves with everything once the process has exited. */
  result: Promise<CliResult>;
}

/** Spawns `node packages/cli/bin/sluice.js …`; `stdin` is a string or an (endless) line source. */
export function spawnCli(args: string[], url: string, stdin: string | Iterable<string> = ""): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_URL: url },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stdout = new Collected(child.stdout);
  const stderr = new Collected(child.stderr);
  const exited = exitOf(child);
  // The CLI may exit before reading all of stdin (an error, or an endless source).
  child.stdin?.on("error", () => undefined);
  const source = Readable.from(typeof stdin === "string" ? [stdin] : stdin);
  source.pipe(child.stdin as NodeJS.WritableStream);
  void exited.finally(() => source.destroy());
  const result = exited.then((exit) => ({ ...exit, stdout: stdout.text, stderr: stderr.text }));
  return { child, stdout, stderr, exited, result };
}

/** Runs the CLI to completion (bounded). */
export function runCli(
  args: string[],
  url: string,
  stdin: string | Iterable<string> = "",
): Promise<CliResult> {
  const cli = spawnCli(args, url, stdin);
  return within(cli.result, 60_000, `sluice ${args.join(" ")}`).catch((error: unknown) => {
    cli.child.kill("SIGKILL");
    throw error;
  });
}
