/** The local server (`npm start`'s entry) as a child process on loopback, for the benchmarks. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

const ROOT = join(import.meta.dirname, "..");

export async function startServer(
  dataDir: string,
  durability: "fsync" | "buffered",
  env: Record<string, string> = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "packages/server/src/main.ts")],
    {
      cwd: ROOT,
      env: { ...process.env, PORT: "0", SLUICE_DATA_DIR: dataDir, SLUICE_DURABILITY: durability, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
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
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
