import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { processStart, writerRunning } from "./writer-process.js";

const onLinux = process.platform === "linux";
const children: ReturnType<typeof spawn>[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  }
});

/** A process that runs until killed, and its id. */
function runningChild(): number {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], { stdio: "ignore" });
  children.push(child);
  return child.pid!;
}

describe("writerRunning", () => {
  it("reads a gone process as not running, whatever its start time", () => {
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    expect(writerRunning(gone, null)).toBe(false);
    expect(writerRunning(gone, "12345")).toBe(false);
  });

  it("reads a running process as running without a start time (the id alone decides)", () => {
    expect(writerRunning(runningChild(), null)).toBe(true);
  });

  it.skipIf(!onLinux)("tells the writer from another process given its id (Linux: /proc)", () => {
    const pid = runningChild();
    const start = processStart(pid);
    expect(start).toMatch(/^\d+$/);
    expect(processStart(pid)).toBe(start); // stable for the process's life
    expect(writerRunning(pid, start)).toBe(true);
    // The same id with another start time: a process that took the writer's id after it died.
    expect(writerRunning(pid, String(BigInt(start!) + 1n))).toBe(false);
  });

  it.skipIf(!onLinux)("reads this process's own start time, and none for a gone process", () => {
    expect(processStart(process.pid)).toMatch(/^\d+$/);
    expect(processStart(spawnSync(process.execPath, ["-e", ""]).pid)).toBeUndefined();
  });
});
