import type { ConsumerGroupLag, OffsetResetTarget } from "@sluice/client";
import { integerOption, listOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { table, write } from "../io.js";

/** `sluice group list`: every group with its state and member count. */
export async function groupList(ctx: CommandContext): Promise<number> {
  if (ctx.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[0])}`);
  const groups = (await ctx.client.listGroups()).sort((a, b) => a.groupId.localeCompare(b.groupId));
  const members = await Promise.all(
    groups.map((group) => ctx.client.listGroupMembers(group.groupId).then((list) => list.length)),
  );
  if (ctx.format === "json") {
    const json = groups.map((group, index) => ({
      group: group.groupId,
      state: group.state,
      members: members[index],
    }));
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  await write(
    ctx.io.stdout,
    table(
      ["GROUP", "STATE", "MEMBERS"],
      groups.map((group, index) => [group.groupId, group.state, members[index] ?? 0]),
    ),
  );
  return 0;
}

/**
 * `sluice group describe <group>`: the group's state, then one line per partition as
 * `kafka-consumer-groups --describe` prints it.
 */
export async function groupDescribe(ctx: CommandContext): Promise<number> {
  const groupId = oneGroup(ctx, "sluice group describe <group>");
  const [group, members, lags] = await Promise.all([
    ctx.client.describeGroup(groupId),
    ctx.client.listGroupMembers(groupId),
    ctx.client.getGroupLags(groupId),
  ]);
  lags.sort(byPartition);
  const totalLag = lags.reduce((sum, lag) => sum + lag.lag, 0);
  if (ctx.format === "json") {
    const json = {
      group: group.groupId,
      state: group.state,
      assignor: group.partitionAssignor,
      group_epoch: group.groupEpoch,
      members: members.map((member) => ({
        consumer_id: member.consumerId,
        instance_id: member.instanceId,
        client_id: member.clientId,
      })),
      total_lag: totalLag,
      partitions: lags.map((lag) => ({
        topic: lag.topicName,
        partition: lag.partitionId,
        current_offset: lag.currentOffset,
        log_end_offset: lag.logEndOffset,
        lag: lag.lag,
        consumer_id: lag.consumerId,
      })),
    };
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  const summary = table(
    ["GROUP", group.groupId],
    [
      ["STATE", group.state],
      ["ASSIGNOR", group.partitionAssignor],
      ["EPOCH", group.groupEpoch ?? "-"],
      ["MEMBERS", members.length],
      ["TOTAL-LAG", totalLag],
    ],
  );
  const partitions =
    lags.length === 0
      ? `consumer group ${group.groupId} has no partitions (no subscriptions and no committed offsets)\n`
      : lagTable(group.groupId, lags);
  await write(ctx.io.stdout, `${summary}\n${partitions}`);
  return 0;
}

function lagTable(groupId: string, lags: ConsumerGroupLag[]): string {
  return table(
    ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"],
    lags.map((lag) => [
      groupId,
      lag.topicName,
      lag.partitionId,
      lag.currentOffset ?? "-",
      lag.logEndOffset,
      lag.lag,
      lag.consumerId ?? "-",
    ]),
  );
}

/** `sluice group delete <group>...`: only empty groups can go (the server refuses the others). */
export async function groupDelete(ctx: CommandContext): Promise<number> {
  if (ctx.args.length === 0) throw new UsageError("sluice group delete needs at least one group id");
  for (const groupId of ctx.args) {
    await ctx.client.deleteGroup(groupId);
    if (ctx.format === "text") await write(ctx.io.stdout, `deleted consumer group ${groupId}\n`);
  }
  if (ctx.format === "json")
    await write(ctx.io.stdout, `${JSON.stringify(ctx.args.map((group) => ({ group })))}\n`);
  return 0;
}

/**
 * `sluice group reset <group> (--to-earliest|--to-latest|--to-offset N|--to-datetime T|--shift-by N)`:
 * prints the plan; changes the offsets only with --execute (as kafka-consumer-groups does).
 */
export async function groupReset(ctx: CommandContext): Promise<number> {
  const groupId = oneGroup(
    ctx,
    "sluice group reset <group> (--to-earliest|--to-latest|--to-offset N|--to-datetime T|--shift-by N) [--execute]",
  );
  const target = resetTarget(ctx);
  if (ctx.values["dry-run"] === true && ctx.values.execute === true) {
    throw new UsageError("use either --dry-run or --execute, not both");
  }
  const dryRun = ctx.values.execute !== true;
  const topics = listOption(ctx.values, "topic");
  const result = await ctx.client.resetGroupOffsets(groupId, target, {
    dryRun,
    ...(topics.length > 0 ? { topics } : {}),
  });
  const plan = [...result.data].sort(byPartition);
  if (ctx.format === "json") {
    const json = {
      group: groupId,
      dry_run: result.dryRun,
      partitions: plan.map((entry) => ({
        topic: entry.topicName,
        partition: entry.partitionId,
        previous_offset: entry.previousOffset,
        new_offset: entry.newOffset,
      })),
    };
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  await write(
    ctx.io.stdout,
    table(
      ["TOPIC", "PARTITION", "PREVIOUS", "NEW"],
      plan.map((entry) => [entry.topicName, entry.partitionId, entry.previousOffset ?? "-", entry.newOffset]),
    ),
  );
  ctx.io.stderr.write(
    result.dryRun
      ? "sluice: dry run, nothing changed; add --execute to apply this plan\n"
      : `sluice: reset ${plan.length} partition${plan.length === 1 ? "" : "s"} of consumer group ${groupId}\n`,
  );
  return 0;
}

const RESET_OPTIONS = ["to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"] as const;

function resetTarget(ctx: CommandContext): OffsetResetTarget {
  const given = RESET_OPTIONS.filter((name) => ctx.values[name] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "sluice group reset needs one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N"
        : `use one of ${given.map((name) => `--${name}`).join(", ")}, not several`,
    );
  }
  switch (given[0]) {
    case "to-earliest":
      return { to: "earliest" };
    case "to-latest":
      return { to: "latest" };
    case "to-offset":
      return {
        to: "offset",
        offset: integerOption(ctx.values, "to-offset", "--to-offset", { min: 0 }) as number,
      };
    case "shift-by":
      return { to: "shift-by", shiftBy: integerOption(ctx.values, "shift-by", "--shift-by") as number };
    default:
      return { to: "datetime", datetime: parseDatetime(stringOption(ctx.values, "to-datetime") as string) };
  }
}

/** An ISO-8601 time (a date alone is midnight UTC) or epoch milliseconds. */
function parseDatetime(text: string): Date {
  const millis = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  const date = new Date(millis);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `invalid --to-datetime ${JSON.stringify(text)} (expected ISO-8601, e.g. 2025-11-26T03:00:00Z, or epoch ms)`,
    );
  }
  return date;
}

function oneGroup(ctx: CommandContext, usage: string): string {
  if (ctx.args.length !== 1) {
    const what =
      ctx.args.length > 1 ? `unexpected argument ${JSON.stringify(ctx.args[1])}` : "missing group id";
    throw new UsageError(`${what} (usage: ${usage})`);
  }
  return ctx.args[0] as string;
}

function byPartition(
  a: { topicName: string; partitionId: number },
  b: { topicName: string; partitionId: number },
): number {
  return a.topicName === b.topicName ? a.partitionId - b.partitionId : a.topicName.localeCompare(b.topicName);
}
