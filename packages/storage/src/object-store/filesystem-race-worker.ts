/**
 * A separate process for filesystem.test.ts: proves create-only puts are atomic across processes,
 * not only across stores in one process. Usage: node --import tsx filesystem-race-worker.ts
 * <root> <writer> <keys>. It prints "ready", waits for one line on stdin (the start barrier, so
 * all workers race at once), then create-only puts `race-0..race-<keys - 1>` and prints one JSON
 * line: for each key, "won" or the error's name.
 */
import { createInterface } from "node:readline";
import { FilesystemObjectStore } from "./filesystem.js";

async function main(): Promise<void> {
  const [root, writer, keys] = process.argv.slice(2);
  if (!root || !writer || !keys) throw new Error("usage: filesystem-race-worker <root> <writer> <keys>");
  const store = new FilesystemObjectStore({ root });
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  lines.close();
  const body = new TextEncoder().encode(`writer ${writer}`);
  const results = await Promise.allSettled(
    Array.from({ length: Number(keys) }, (_, i) =>
      store.put(`race-${i}`, body, { condition: { ifNoneMatch: "*" } }),
    ),
  );
  const outcome = results.map((result) =>
    result.status === "fulfilled" ? "won" : String((result.reason as Error).name),
  );
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

await main();
