import type { ConsumedRecord, PartitionInfo, SluiceClient } from "@sluice/client";
import { integerOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { compileFormat, concat, recordJson } from "../format.js";
import { write } from "../io.js";
import { parseStartSpec, resolveStartOffsets } from "../offsets.js";
import { groupConsume } from "./group-consume.js";

const READ_RECORDS_MAX = 1_000;
/** Records buffered from the tails before they wait for the output (follow mode). */
const FOLLOW_QUEUE_MAX = 5_000;

/**
 * `sluice consume <topic>`: reads one partition (-p) or all of them, merged. Without --follow it
 * reads up to the end as it was when it started and exits, merging partitions by timestamp; with
 * --follow it keeps tailing (server-sent events, or long-polls with --poll) and prints records as
 * they arrive, until -n records or Ctrl-C.
 */
export async function consume(ctx: CommandContext): Promise<number> {
  const formatString = stringOption(ctx.values, "format-string");
  if (formatString !== undefined && ctx.format === "json" && ctx.values.format !== undefined) {
    throw new UsageError("use either -f <format> or --format json, not both");
  }
  const utf8 = new TextEncoder();
  const render =
    formatString === undefined && ctx.format === "json"
      ? (record: ConsumedRecord) => utf8.encode(`${recordJson(record)}\n`)
      : compileFormat(formatString ?? "%v\\n");
  const group = stringOption(ctx.values, "group");
  if (group !== undefined) return groupConsume(ctx, group, render);
  if (ctx.args.length !== 1)
    throw new UsageError("usage: sluice consume <topic> [-o offset] [-n count] [-p N] [-f format]");
  const topic = ctx.args[0] as string;
  const start = parseStartSpec(stringOption(ctx.values, "offset") ?? "start");
  const count = integerOption(ctx.values, "num", "-n/--num", { min: 0 });
  const only = integerOption(ctx.values, "partition", "-p/--partition", { min: 0 });
  const follow = ctx.values.follow === true;
  const poll = ctx.values.poll === true;
  if (count === 0) return 0;

  let partitions = await ctx.client.listPartitions(topic);
  partitions.sort((a, b) => a.partitionId - b.partitionId);
  if (only !== undefined) {
    const chosen = partitions.find((partition) => partition.partitionId === only);
    if (!chosen) {
      throw new UsageError(`topic ${topic} has no partition ${only} (it has ${partitions.length})`);
    }
    partitions = [chosen];
  }
  const starts = await resolveStartOffsets(ctx.client, topic, partitions, start);
  // An offset past a partition's end (`-o 999` when it ends at 5): Kafka calls it out of range.
  // Without --follow that is an error; with --follow we wait for the partition to reach it.
  const pastEnd = partitions.filter(
    (partition) => start.kind === "absolute" && start.offset > partition.latestOffset,
  );
  const pastEndText =
    start.kind === "absolute" && pastEnd.length > 0
      ? `offset ${start.offset} is past the end of ${topic} ${pastEnd.length === 1 ? "partition" : "partitions"} ${pastEnd
          .map((partition) => `${partition.partitionId} (next offset ${partition.latestOffset})`)
          .join(", ")}`
      : undefined;

  let printed = 0;
  const limit = count ?? Number.POSITIVE_INFINITY;
  const emit = async (records: ConsumedRecord[]) => {
    const take = records.slice(0, limit - printed);
    if (take.length === 0) return;
    printed += take.length;
    await write(ctx.io.stdout, concat(take.map(render)));
  };

  if (follow) {
    const quiet = ctx.values.quiet === true;
    let told = false;
    // Once every partition is read up to where it ended when we started, say that we now wait
    // (on stderr, so a pipeline's output stays records only).
    const caughtUp = (next: Map<number, number>) => {
      if (quiet || told || printed >= limit) return;
      if (!partitions.every((partition) => (next.get(partition.partitionId) ?? 0) >= partition.latestOffset))
        return;
      told = true;
      const which =
        partitions.length === 1
          ? `partition ${partitions[0]?.partitionId}`
          : `all ${partitions.length} partitions`;
      const where = pastEndText ?? `at the end of ${topic} (${which})`;
      ctx.io.stderr.write(`sluice: ${where}; waiting for new records (Ctrl-C to stop)\n`);
    };
    await followPartitions(ctx, topic, partitions, starts, poll, emit, () => printed >= limit, caughtUp);
    return 0;
  }
  await readToEnd(ctx.client, topic, partitions, starts, limit, emit, ctx.signal);
  if (pastEndText) throw new ConsumeError(pastEndText);
  return 0;
}

/** A consume that could not read what was asked (an offset out of range): exit code 1. */
export class ConsumeError extends Error {
  override readonly name = "ConsumeError";
}

/** Reads every partition from its start to its end as of now, merged in timestamp order. */
async function readToEnd(
  client: SluiceClient,
  topic: string,
  partitions: PartitionInfo[],
  starts: Map<number, number>,
  limit: number,
  emit: (records: ConsumedRecord[]) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const cursors = partitions.map((partition) => ({
    partition: partition.partitionId,
    next: starts.get(partition.partitionId) ?? partition.earliestOffset,
    end: partition.latestOffset,
    buffer: [] as ConsumedRecord[],
    position: 0,
    done: false,
  }));
  let emitted = 0;
  const out: ConsumedRecord[] = [];
  while (emitted < limit && !signal.aborted) {
    await Promise.all(
      cursors
        .filter((cursor) => !cursor.done && cursor.position >= cursor.buffer.length)
        .map(async (cursor) => {
          if (cursor.next >= cursor.end) {
            cursor.done = true;
            return;
          }
          const result = await client.readPartition(topic, cursor.partition, {
            offset: cursor.next,
            maxRecords: Math.min(READ_RECORDS_MAX, limit - emitted, cursor.end - cursor.next),
            signal,
          });
          cursor.buffer = result.records.filter((record) => record.offset < cursor.end);
          cursor.position = 0;
          if (result.nextOffset <= cursor.next && cursor.buffer.length === 0) cursor.done = true;
          cursor.next = Math.max(result.nextOffset, cursor.next);
        }),
    );
    // Emit in timestamp order until one partition's buffer runs dry (it must be refilled first).
    for (;;) {
      let best: (typeof cursors)[number] | undefined;
      for (const cursor of cursors) {
        const head = cursor.buffer[cursor.position];
        if (head === undefined) {
          if (!cursor.done) {
            best = undefined;
            break;
          }
          continue;
        }
        const bestHead = best?.buffer[best.position];
        if (!bestHead || head.timestamp < bestHead.timestamp) best = cursor;
      }
      if (!best || emitted + out.length >= limit) break;
      out.push(best.buffer[best.position++] as ConsumedRecord);
      if (out.length >= READ_RECORDS_MAX) break;
    }
    if (out.length > 0) {
      emitted += out.length;
      await emit(out.splice(0));
    } else if (cursors.every((cursor) => cursor.done && cursor.position >= cursor.buffer.length)) {
      return;
    }
  }
}

/** Tails every partition at once and prints records as they arrive, until `enough()` or Ctrl-C. */
async function followPartitions(
  ctx: CommandContext,
  topic: string,
  partitions: PartitionInfo[],
  starts: Map<number, number>,
  poll: boolean,
  emit: (records: ConsumedRecord[]) => Promise<void>,
  enough: () => boolean,
  caughtUp: (next: Map<number, number>) => void,
): Promise<void> {
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, ctx.signal]);
  const queue: ConsumedRecord[] = [];
  let wake: (() => void) | undefined;
  const waitingForRoom: Array<() => void> = [];
  const makeRoom = () => {
    for (const resolve of waitingForRoom.splice(0)) resolve();
  };
  let failure: { error: unknown } | undefined;
  let running = partitions.length;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  signal.addEventListener("abort", notify, { once: true });

  // The next offset to print of each partition; a start past the end is waited for from the end.
  const next = new Map<number, number>();
  for (const partition of partitions) {
    next.set(partition.partitionId, starts.get(partition.partitionId) ?? partition.latestOffset);
  }
  const tails = partitions.map(async (partition) => {
    const from = next.get(partition.partitionId) as number;
    try {
      const records = ctx.client.tailPartition(topic, partition.partitionId, {
        offset: Math.min(from, partition.latestOffset),
        signal,
        transport: poll ? "poll" : "sse",
      });
      for await (const record of records) {
        if (record.offset < from) continue;
        queue.push(record);
        notify();
        while (queue.length >= FOLLOW_QUEUE_MAX && !signal.aborted) {
          await new Promise<void>((resolve) => waitingForRoom.push(resolve));
        }
      }
    } catch (error) {
      failure ??= { error };
      stop.abort();
    } finally {
      running--;
      notify();
    }
  });

  try {
    caughtUp(next);
    while (!signal.aborted) {
      if (queue.length === 0) {
        if (running === 0) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const batch = queue.splice(0);
      await emit(batch);
      for (const record of batch) next.set(record.partitionId, record.offset + 1);
      makeRoom();
      if (enough()) break;
      caughtUp(next);
    }
  } finally {
    stop.abort();
    makeRoom();
    await Promise.all(tails);
  }
  if (failure) throw failure.error;
}
