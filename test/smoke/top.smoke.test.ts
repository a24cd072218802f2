import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SluiceClient } from "@sluice/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, type ServerProcess, startServerProcess } from "./processes.js";

/**
 * `sluice top` on a real terminal: tmux gives it a 100 × 30 pseudo-terminal, and the test reads
 * the screen back with capture-pane, as a person would see it.
 */
const hasTmux = spawnSync("tmux", ["-V"], { stdio: "ignore" }).status === 0;
const session = `sluice-top-${randomBytes(4).toString("hex")}`;
let server: ServerProcess;
let dataDir: string;

const tmux = (...args: string[]) => execFileSync("tmux", args, { encoding: "utf8" });
const screen = () => tmux("capture-pane", "-p", "-t", session);

/**
 * The screen once `ready` holds for it. tmux tells nobody when a pane changes, so this looks
 * again every 100 ms, up to `ms`, and fails with the last screen seen.
 */
async function screenWhen(ready: (text: string) => boolean, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  let text = "";
  while (Date.now() < deadline) {
    text = screen();
    if (ready(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the screen never got there; last screen:\n${text}`);
}

/**
 * Once the pane's process has exited (tmux's pane_dead, looked at every 100 ms): its exit status,
 * or "unknown" when tmux has not collected it yet. tmux marks the pane dead when the terminal
 * closes but learns the status only when it reaps the process, which on this machine can take
 * longer than the test (and "Pane is dead" is not always drawn at once either).
 */
async function paneWhenDead(ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  let state = "";
  while (Date.now() < deadline) {
    state = tmux("display-message", "-p", "-t", session, "#{pane_dead} #{pane_dead_status}").trim();
    if (state === "1") {
      // Dead; give tmux a moment to reap it and say how it ended.
      const reaped = Date.now() + 2_000;
      while (Date.now() < reaped && state === "1") {
        await new Promise((resolve) => setTimeout(resolve, 100));
        state = tmux("display-message", "-p", "-t", session, "#{pane_dead} #{pane_dead_status}").trim();
      }
      return state === "1" ? "unknown" : state.slice(2);
    }
    if (state.startsWith("1 ")) return state.slice(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the pane's process did not exit; pane_dead and status: ${state}\n${screen()}`);
}

beforeAll(async () => {
  if (!hasTmux) return;
  dataDir = await mkdtemp(join(tmpdir(), "sluice-top-"));
  server = await startServerProcess(dataDir);
});

afterAll(async () => {
  if (hasTmux) spawnSync("tmux", ["kill-session", "-t", session], { stdio: "ignore" });
  server?.child.kill("SIGTERM");
  await server?.exited;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("sluice top in a terminal", () => {
  it.skipIf(!hasTmux)(
    `redraws in place within 100 columns, with each topic's rates and each group's lag${hasTmux ? "" : " (skipped: tmux is not installed; apt-get install tmux)"}`,
    async () => {
      const client = new SluiceClient({ url: server.url });
      await client.createTopic("payments", { partitions: 3 });
      await client.createTopic("audit");
      await client.produceMany(
        "payments",
        Array.from({ length: 300 }, (_, i) => ({ partitionId: i % 3, value: `payment ${i}` })),
      );
      await client.groupHeartbeat("ledger", {
        memberId: "m-1",
        memberEpoch: 0,
        subscribedTopicNames: ["payments"],
      });
      await client.commitGroupOffsets("ledger", "m-1", [
        { topicName: "payments", partitionId: 0, offset: 40 },
      ]);

      tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        REPO_ROOT,
        `${process.execPath} packages/cli/bin/sluice.js top -b ${server.url} -i 0.5`,
      );
      tmux("set-option", "-t", session, "remain-on-exit", "on");
      const first = await screenWhen((text) => /^payments\s/m.test(text) && /^ledger\s/m.test(text));
      const lines = first.split("\n");
      expect(lines[0]).toMatch(
        /^sluice top {2}http:\/\/127\.0\.0\.1:\d+ {2}\d\d:\d\d:\d\d UTC {2}every 0\.5 s$/,
      );
      expect(lines[1]).toMatch(/^rates over the server's last \d+ s; Ctrl-C to quit$/);
      expect(lines[3]).toBe(
        "TOPIC                PARTS  IN REC/S IN BYTES/S OUT REC/S OUT BYTES/S P99 PRODUCE P99 FETCH ERRORS/S",
      );
      // 300 records arrived within the window: a rate above zero, with a p99.
      expect(lines.find((line) => line.startsWith("payments"))).toMatch(
        /^payments {17}3 +[\d.,]+ +[\d.]+ (B|KiB) +- +- +\d+(\.\d)? ms +- +-$/,
      );
      expect(lines.find((line) => line.startsWith("audit"))).toMatch(/^audit {20}1 +- +- +- +- +- +- +-$/);
      // Lag: partition 0 from offset 40 (60 left), 1 and 2 from the start (100 each).
      expect(lines.find((line) => line.startsWith("ledger"))).toMatch(
        /^ledger +STABLE +1 +260 +payments\/[12] \(100\)$/,
      );
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);

      // Redrawn in place: the clock in the title moves on, and the screen holds one frame.
      const later = await screenWhen((text) => text.split("\n")[0] !== lines[0]);
      expect(later.match(/^sluice top/gm)).toHaveLength(1);
      await client.deleteTopic("audit");
      await screenWhen((text) => !/^audit\s/m.test(text));

      tmux("send-keys", "-t", session, "C-c");
      // Asked of tmux, not read off the screen: it does not always draw "Pane is dead" at once.
      expect(await paneWhenDead()).toMatch(/^(0|unknown)$/);
    },
  );
});
