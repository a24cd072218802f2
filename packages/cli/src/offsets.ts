import type { PartitionInfo, SluiceClient } from "@sluice/client";
import { UsageError } from "./args.js";

/** Where consume starts, per rpk and kcat habits. */
export type StartSpec =
  | { kind: "start" }
  | { kind: "end" }
  | { kind: "absolute"; offset: number }
  | { kind: "fromEnd"; count: number }
  | { kind: "fromStart"; count: number }
  | { kind: "timestamp"; timestamp: number };

/**
 * `start`/`beginning`/`earliest`/`oldest`, `end`/`latest`/`newest`, `N` (an offset), `-N` (N
 * before the end), `+N` (N after the start), `@ms` or `@<ISO-8601>` (the first record at or after
 * that time).
 */
export function parseStartSpec(text: string): StartSpec {
  const value = text.trim();
  if (["start", "beginning", "earliest", "oldest"].includes(value)) return { kind: "start" };
  if (["end", "latest", "newest"].includes(value)) return { kind: "end" };
  if (/^\d+$/.test(value)) return { kind: "absolute", offset: safe(value, text) };
  if (/^-\d+$/.test(value)) return { kind: "fromEnd", count: safe(value.slice(1), text) };
  if (/^\+\d+$/.test(value)) return { kind: "fromStart", count: safe(value.slice(1), text) };
  if (value.startsWith("@")) {
    const rest = value.slice(1);
    const timestamp = /^\d+$/.test(rest) ? Number(rest) : Date.parse(rest);
    if (rest !== "" && Number.isFinite(timestamp)) return { kind: "timestamp", timestamp };
  }
  throw new UsageError(
    `invalid offset ${JSON.stringify(text)} (expected start, end, N, -N, +N, @timestamp_ms or @ISO-8601)`,
  );
}

function safe(digits: string, text: string): number {
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) throw new UsageError(`offset ${JSON.stringify(text)} is too large`);
  return value;
}

/** The first offset to read in each partition. */
export async function resolveStartOffsets(
  client: SluiceClient,
  topic: string,
  partitions: PartitionInfo[],
  spec: StartSpec,
): Promise<Map<number, number>> {
  const starts = new Map<number, number>();
  let byTimestamp: Map<number, number | null> | undefined;
  if (spec.kind === "timestamp") {
    const found = await client.offsetsForTimestamp(topic, spec.timestamp);
    byTimestamp = new Map(found.map((entry) => [entry.partitionId, entry.offset]));
  }
  for (const partition of partitions) {
    const { earliestOffset: earliest, latestOffset: latest } = partition;
    let offset: number;
    switch (spec.kind) {
      case "start":
        offset = earliest;
        break;
      case "end":
        offset = latest;
        break;
      case "absolute":
        offset = Math.max(earliest, spec.offset);
        break;
      case "fromEnd":
        offset = Math.max(earliest, latest - spec.count);
        break;
      case "fromStart":
        offset = Math.min(latest, earliest + spec.count);
        break;
      case "timestamp":
        offset = byTimestamp?.get(partition.partitionId) ?? latest;
        break;
    }
    starts.set(partition.partitionId, offset);
  }
  return starts;
}
