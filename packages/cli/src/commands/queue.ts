import type { QueueRecord, ShareGroupConfigs } from "@sluice/client";
import { integerOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { compileFormat, recordJson } from "../format.js";
import { table, write } from "../io.js";
import { parseStartSpec } from "../offsets.js";

/**
 * `sluice queue consume <group> <topic>...`: a member of a share group. Each record it prints was
 * handed to it alone; it accepts each once printed, so the other members never get it. Until -n
 * records or Ctrl-C; then it leaves, and what it held unprinted goes to the others at once.
 */
export async function queueConsume(ctx: CommandContext): Promise<number> {
  const [groupId, ...topics] = ctx.args;
  if (groupId === undefined || topics.length === 0)
    throw new UsageError("usage: sluice queue consume <group> <topic>... [-n count] [-f format]");
  const formatString = stringOption(ctx.values, "format-string");
  if (formatString !== undefined && ctx.format === "json" && ctx.values.format !== undefined)
    throw new UsageError("use either -f <format> or --format json, not both");
  const utf8 = new TextEncoder();
  const render =
    formatString === undefined && ctx.format === "json"
      ? (record: QueueRecord) => utf8.encode(`${recordJson(record)}\n`)
      : compileFormat(formatString ?? "%v\\n");
  const count = integerOption(ctx.values, "num", "-n/--num", { min: 0 });
  if (count === 0) return 0;
  const limit = count ?? Number.POSITIVE_INFINITY;
  const quiet = ctx.values.quiet === true;
  const say = (text: string) => {
    if (!quiet) ctx.io.stderr.write(`sluice: queue ${groupId}: ${text}\n`);
  };

  const configs: ShareGroupConfigs = {};
  const offset = stringOption(ctx.values, "offset");
  if (offset !== undefined) {
    const start = parseStartSpec(offset);
    if (start.kind !== "start" && start.kind !== "end")
      throw new UsageError("with queue consume, -o is start or end: where a new share group starts reading");
    configs.autoOffsetReset = start.kind === "start" ? "earliest" : "latest";
  }
  const deliveryLimit = integerOption(ctx.values, "delivery-limit", "--delivery-limit", { min: 1, max: 100 });
  if (deliveryLimit !== undefined) configs.deliveryCountLimit = deliveryLimit;
  const lockMs = integerOption(ctx.values, "lock-ms", "--lock-ms", { min: 1_000, max: 3_600_000 });
  if (lockMs !== undefined) configs.lockDurationMs = lockMs;
  const deadLetterTopic = stringOption(ctx.values, "dead-letter-topic");
  if (deadLetterTopic !== undefined) configs.deadLetterTopic = deadLetterTopic;
  const maxRecords = integerOption(ctx.values, "max-records", "--max-records", { min: 1, max: 10_000 });

  const consumer = ctx.client.queueConsumer({
    groupId,
    topics,
    acknowledgement: "explicit",
    clientId: "sluice-cli",
    ...(Object.keys(configs).length > 0 ? { configs } : {}),
    ...(maxRecords === undefined ? {} : { maxRecords }),
    // Ctrl-C ends the loop between records: the one being printed is still accepted.
    signal: ctx.signal,
  });
  say(`member ${consumer.memberId} consuming ${topics.join(", ")}`);
  let printed = 0;
  try {
    for await (const record of consumer) {
      await write(ctx.io.stdout, render(record));
      printed++;
      // Accepted in the background, with the next acquisition; closing sends what is left.
      record.accept().catch((error: unknown) => {
        // Its lock passed while it was printed: another member may print it too (at least once).
        say(
          `could not accept offset ${record.offset} of ${record.topicName}/${record.partitionId}: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
      if (printed >= limit) break;
    }
  } finally {
    await consumer.close();
  }
  return 0;
}

/** `sluice queue list`: every share group with its state and member count. */
export async function queueList(ctx: CommandContext): Promise<number> {
  if (ctx.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[0])}`);
  const groups = (await ctx.client.listShareGroups()).sort((a, b) => a.groupId.localeCompare(b.groupId));
  if (ctx.format === "json") {
    const json = groups.map((group) => ({
      group: group.groupId,
      state: group.state,
      members: group.memberCount,
    }));
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  await write(
    ctx.io.stdout,
    table(
      ["GROUP", "STATE", "MEMBERS", "TOPICS"],
      groups.map((group) => [
        group.groupId,
        group.state,
        group.memberCount,
        group.topicNames.join(",") || "-",
      ]),
    ),
  );
  return 0;
}

/**
 * `sluice queue describe <group>`: the share group's state, configs and members, then one line per
 * share-partition: its window (start and end offsets), records in flight and lag.
 */
export async function queueDescribe(ctx: CommandContext): Promise<number> {
  if (ctx.args.length !== 1) {
    const what =
      ctx.args.length > 1 ? `unexpected argument ${JSON.stringify(ctx.args[1])}` : "missing group id";
    throw new UsageError(`${what} (usage: sluice queue describe <group>)`);
  }
  const groupId = ctx.args[0] as string;
  const [group, members, partitions] = await Promise.all([
    ctx.client.describeShareGroup(groupId),
    ctx.client.listShareGroupMembers(groupId),
    ctx.client.getSharePartitions(groupId),
  ]);
  partitions.sort((a, b) =>
    a.topicName === b.topicName ? a.partitionId - b.partitionId : a.topicName.localeCompare(b.topicName),
  );
  const totalLag = partitions.reduce((sum, partition) => sum + partition.lag, 0);
  if (ctx.format === "json") {
    const json = {
      group: group.groupId,
      state: group.state,
      configs: group.configs,
      total_lag: totalLag,
      members: members.map((member) => ({
        member_id: member.memberId,
        client_id: member.clientId,
        topics: member.topicNames,
        acquired_records: member.acquiredRecords,
      })),
      partitions: partitions.map((partition) => ({
        topic: partition.topicName,
        partition: partition.partitionId,
        start_offset: partition.startOffset,
        end_offset: partition.endOffset,
        high_watermark: partition.highWatermark,
        acquired: partition.acquiredRecords,
        available: partition.availableRecords,
        acknowledged: partition.acknowledgedRecords,
        archived: partition.archivedRecords,
        dead_letters_due: partition.deadLettersDue,
        lag: partition.lag,
      })),
    };
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  const summary = table(
    ["GROUP", group.groupId],
    [
      ["STATE", group.state],
      ["MEMBERS", members.length],
      ["DELIVERY-LIMIT", group.configs["delivery.count.limit"] ?? "-"],
      ["LOCK-MS", group.configs["record.lock.duration.ms"] ?? "-"],
      ["DEAD-LETTERS", group.configs["dead.letter.topic.name"] || "-"],
      ["TOTAL-LAG", totalLag],
    ],
  );
  const windows =
    partitions.length === 0
      ? `share group ${group.groupId} has no partitions yet\n`
      : table(
          [
            "TOPIC",
            "PARTITION",
            "START-OFFSET",
            "END-OFFSET",
            "LOG-END-OFFSET",
            "IN-FLIGHT",
            "AVAILABLE",
            "LAG",
          ],
          partitions.map((partition) => [
            partition.topicName,
            partition.partitionId,
            partition.startOffset,
            partition.endOffset,
            partition.highWatermark,
            partition.acquiredRecords,
            partition.availableRecords,
            partition.lag,
          ]),
        );
  const memberTable =
    members.length === 0
      ? "no members\n"
      : table(
          ["MEMBER-ID", "CLIENT-ID", "IN-FLIGHT", "TOPICS"],
          members.map((member) => [
            member.memberId,
            member.clientId ?? "-",
            member.acquiredRecords,
            member.topicNames.join(","),
          ]),
        );
  await write(ctx.io.stdout, `${summary}\n${windows}\n${memberTable}`);
  return 0;
}
