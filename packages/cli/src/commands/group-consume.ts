import { type ConsumedRecord, SluiceHttpError, type TopicPartition } from "@sluice/client";
import { integerOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { concat } from "../format.js";
import { write } from "../io.js";
import { parseStartSpec } from "../offsets.js";

/**
 * `sluice consume -g <group> <topic>...`: a member of the group. It prints the records of the
 * partitions the group gives it and commits each batch once it is written, until -n records or
 * Ctrl-C; either way it leaves the group, so its partitions move to the other members at once.
 */
export async function groupConsume(
  ctx: CommandContext,
  groupId: string,
  render: (record: ConsumedRecord) => Uint8Array,
): Promise<number> {
  if (ctx.args.length === 0) throw new UsageError("usage: sluice consume -g <group> <topic>... [-n count]");
  if (ctx.values.partition !== undefined) {
    throw new UsageError("-p cannot be used with -g: the group assigns the partitions");
  }
  const start = parseStartSpec(stringOption(ctx.values, "offset") ?? "start");
  if (start.kind !== "start" && start.kind !== "end") {
    throw new UsageError(
      "with -g, -o is start or end: where a partition without a committed offset starts (to move the group's offsets, use sluice group reset)",
    );
  }
  const count = integerOption(ctx.values, "num", "-n/--num", { min: 0 });
  if (count === 0) return 0;
  const limit = count ?? Number.POSITIVE_INFINITY;
  const quiet = ctx.values.quiet === true;
  const say = (text: string) => {
    if (!quiet) ctx.io.stderr.write(`sluice: group ${groupId}: ${text}\n`);
  };

  const consumer = ctx.client.groupConsumer({
    groupId,
    topics: ctx.args,
    // Commits follow the output, batch by batch, so -n commits exactly what it printed.
    autoCommit: false,
    autoOffsetReset: start.kind === "start" ? "earliest" : "latest",
    clientId: "sluice-cli",
    onAssigned: (partitions) => say(`assigned ${describePartitions(partitions)}`),
    onRevoked: (partitions) => say(`revoked ${describePartitions(partitions)}`),
    onLost: (partitions) => say(`lost ${describePartitions(partitions)}`),
    // Ctrl-C ends the loop between batches, so the batch being printed is still committed.
    signal: ctx.signal,
  });

  let printed = 0;
  try {
    for await (const batch of consumer) {
      const take = batch.records.slice(0, limit - printed);
      if (take.length === 0) continue;
      await write(ctx.io.stdout, concat(take.map(render)));
      printed += take.length;
      const last = take[take.length - 1] as ConsumedRecord;
      try {
        await consumer.commit([
          { topicName: batch.topicName, partitionId: batch.partitionId, offset: last.offset + 1 },
        ]);
      } catch (error) {
        // The partition moved to another member meanwhile: it starts from the last commit there.
        if (!(error instanceof SluiceHttpError && error.status === 409)) throw error;
        say(`could not commit partition ${batch.partitionId} of ${batch.topicName}: ${error.message}`);
      }
      if (printed >= limit) break;
    }
  } finally {
    await consumer.close();
  }
  return 0;
}

function describePartitions(partitions: TopicPartition[]): string {
  const byTopic = new Map<string, number[]>();
  for (const tp of partitions) {
    byTopic.set(tp.topicName, [...(byTopic.get(tp.topicName) ?? []), tp.partitionId]);
  }
  return [...byTopic]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([topic, ids]) =>
        `${topic} partition${ids.length === 1 ? "" : "s"} ${ids.sort((a, b) => a - b).join(", ")}`,
    )
    .join("; ");
}
