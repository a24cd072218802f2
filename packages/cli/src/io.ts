import type { FetchFunction } from "@sluice/client";

export interface Output {
  write(chunk: string | Uint8Array): boolean;
  once(event: "drain" | "error" | "close", listener: (...args: unknown[]) => void): unknown;
  removeListener(event: "drain" | "error" | "close", listener: (...args: unknown[]) => void): unknown;
  isTTY?: boolean;
}

/** Where a command reads and writes; main.ts passes the process's, tests their own. */
export interface CliIO {
  stdin: AsyncIterable<Uint8Array | string>;
  stdout: Output;
  stderr: Output;
  env: Record<string, string | undefined>;
  /** Replaces the global fetch (tests call the app in-process). */
  fetch?: FetchFunction;
  /** Aborted on Ctrl-C: produce stops reading, consume --follow stops tailing; both finish cleanly. */
  signal?: AbortSignal;
  /** For rates and progress; default Date.now. */
  now?: () => number;
}

/** Writes and waits for 'drain' when the stream's buffer is full (so a slow pipe slows us down). */
export async function write(out: Output, chunk: string | Uint8Array): Promise<void> {
  if (out.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      out.removeListener("error", onError);
      out.removeListener("close", onDrain);
      resolve();
    };
    const onError = (error: unknown) => {
      out.removeListener("drain", onDrain);
      out.removeListener("close", onDrain);
      reject(error);
    };
    out.once("drain", onDrain);
    out.once("close", onDrain);
    out.once("error", onError);
  });
}

/** Left-aligned columns, two spaces apart, header row first (rpk's style). */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)));
  return `${cells
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}
