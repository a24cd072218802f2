import type { TopicConfig, TopicConfigChange } from "@sluice/client";
import { integerOption, keyValue, listOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { table, write } from "../io.js";

export async function topicList(ctx: CommandContext): Promise<number> {
  expectArgs(ctx, 0, "sluice topic list");
  const topics = (await ctx.client.listTopics()).sort((a, b) => a.topicName.localeCompare(b.topicName));
  if (ctx.format === "json") {
    const json = topics.map((topic) => ({ name: topic.topicName, partitions: topic.partitionsCount }));
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
  } else {
    await write(
      ctx.io.stdout,
      table(
        ["NAME", "PARTITIONS"],
        topics.map((topic) => [topic.topicName, topic.partitionsCount]),
      ),
    );
  }
  return 0;
}

export async function topicCreate(ctx: CommandContext): Promise<number> {
  if (ctx.args.length === 0) throw new UsageError("sluice topic create needs at least one topic name");
  const partitions = integerOption(ctx.values, "partitions", "-p/--partitions", { min: 1 });
  const replicationFactor = integerOption(ctx.values, "replicas", "-r/--replicas", { min: 1 });
  const configs = Object.fromEntries(
    listOption(ctx.values, "config").map((pair) => keyValue(pair, "-c/--config")),
  );
  const created = [];
  for (const name of ctx.args) {
    const topic = await ctx.client.createTopic(name, {
      ...(partitions === undefined ? {} : { partitions }),
      ...(replicationFactor === undefined ? {} : { replicationFactor }),
      configs,
    });
    created.push(topic);
    if (ctx.format === "text") {
      await write(
        ctx.io.stdout,
        `created topic ${topic.topicName} (${plural(topic.partitionsCount, "partition")})\n`,
      );
    }
  }
  if (ctx.format === "json") {
    const json = created.map((topic) => ({ name: topic.topicName, partitions: topic.partitionsCount }));
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
  }
  return 0;
}

export async function topicDescribe(ctx: CommandContext): Promise<number> {
  const name = expectArgs(ctx, 1, "sluice topic describe <topic>");
  const [topic, configs, partitions] = await Promise.all([
    ctx.client.describeTopic(name),
    ctx.client.getTopicConfigs(name),
    ctx.client.listPartitions(name),
  ]);
  partitions.sort((a, b) => a.partitionId - b.partitionId);
  if (ctx.format === "json") {
    const json = {
      name: topic.topicName,
      partitions: topic.partitionsCount,
      replication_factor: topic.replicationFactor,
      is_internal: topic.isInternal,
      configs: configsJson(configs),
      partition_offsets: partitions.map((partition) => ({
        partition: partition.partitionId,
        earliest_offset: partition.earliestOffset,
        latest_offset: partition.latestOffset,
      })),
      ...(topic.storage
        ? {
            storage: {
              size_bytes: topic.storage.sizeBytes,
              object_count: topic.storage.objectCount,
              maintenance_last_run_at: isoOrNull(topic.storage.maintenanceLastRunAt),
              partitions: topic.storage.partitions.map((partition) => ({
                partition: partition.partitionId,
                log_start_offset: partition.logStartOffset,
                size_bytes: partition.sizeBytes,
                index_entries: partition.indexEntries,
                records: partition.records,
              })),
            },
          }
        : {}),
    };
    await write(ctx.io.stdout, `${JSON.stringify(json)}\n`);
    return 0;
  }
  const storage = topic.storage;
  const records = partitions.reduce(
    (sum, partition) => sum + partition.latestOffset - partition.earliestOffset,
    0,
  );
  await write(
    ctx.io.stdout,
    [
      "SUMMARY",
      table(
        ["NAME", topic.topicName],
        [
          ["PARTITIONS", topic.partitionsCount],
          ["REPLICAS", topic.replicationFactor],
          ["RECORDS", records],
          ...(storage
            ? [
                ["SIZE", bytesText(storage.sizeBytes)],
                ["OBJECTS", storage.objectCount ?? "-"],
                [
                  "MAINTENANCE",
                  storage.maintenanceLastRunAt === null
                    ? "never ran"
                    : `ran ${isoOrNull(storage.maintenanceLastRunAt)}`,
                ],
              ]
            : []),
        ],
      ),
      "CONFIGS",
      configsTable(configs),
      "PARTITIONS",
      table(
        ["PARTITION", "EARLIEST-OFFSET", "LATEST-OFFSET", ...(storage ? ["SIZE", "ENTRIES"] : [])],
        partitions.map((partition) => {
          const measured = storage?.partitions.find(
            (candidate) => candidate.partitionId === partition.partitionId,
          );
          return [
            partition.partitionId,
            partition.earliestOffset,
            partition.latestOffset,
            ...(storage ? [bytesText(measured?.sizeBytes ?? null), measured?.indexEntries ?? "-"] : []),
          ];
        }),
      ),
    ].join("\n"),
  );
  return 0;
}

export async function topicDelete(ctx: CommandContext): Promise<number> {
  if (ctx.args.length === 0) throw new UsageError("sluice topic delete needs at least one topic name");
  for (const name of ctx.args) {
    await ctx.client.deleteTopic(name);
    if (ctx.format === "text") await write(ctx.io.stdout, `deleted topic ${name}\n`);
  }
  if (ctx.format === "json")
    await write(ctx.io.stdout, `${JSON.stringify(ctx.args.map((name) => ({ name })))}\n`);
  return 0;
}

/** Shows the topic's configs; with --set/--delete, changes them first (in one request). */
export async function topicConfig(ctx: CommandContext): Promise<number> {
  const name = expectArgs(ctx, 1, "sluice topic config <topic> [--set key=value ...] [--delete key ...]");
  const changes: TopicConfigChange[] = [
    ...listOption(ctx.values, "set").map((pair) => {
      const [key, value] = keyValue(pair, "--set");
      return { name: key, value, operation: "SET" as const };
    }),
    ...listOption(ctx.values, "delete").map((key) => ({ name: key, operation: "DELETE" as const })),
  ];
  if (changes.length > 0) await ctx.client.alterTopicConfigs(name, changes);
  const configs = await ctx.client.getTopicConfigs(name);
  if (ctx.format === "json") {
    await write(ctx.io.stdout, `${JSON.stringify(configsJson(configs))}\n`);
  } else {
    if (changes.length > 0)
      await write(ctx.io.stdout, `updated ${plural(changes.length, "config")} of ${name}\n`);
    await write(ctx.io.stdout, configsTable(configs));
  }
  return 0;
}

/** Adds partitions (rpk's `topic add-partitions -n`): -n is how many to add. */
export async function topicAddPartitions(ctx: CommandContext): Promise<number> {
  const name = expectArgs(ctx, 1, "sluice topic add-partitions <topic> -n <count>");
  const count = integerOption(ctx.values, "num", "-n/--num", { min: 1 });
  if (count === undefined) throw new UsageError("sluice topic add-partitions needs -n <count to add>");
  const current = await ctx.client.describeTopic(name);
  const topic = await ctx.client.increasePartitions(name, current.partitionsCount + count);
  if (ctx.format === "json") {
    await write(
      ctx.io.stdout,
      `${JSON.stringify({ name: topic.topicName, partitions: topic.partitionsCount })}\n`,
    );
  } else {
    await write(
      ctx.io.stdout,
      `topic ${topic.topicName} now has ${plural(topic.partitionsCount, "partition")}\n`,
    );
  }
  return 0;
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Bytes for people: 512 B, 3.4 KiB, 8.0 MiB; "-" when not measured yet. */
function bytesText(bytes: number | null): string {
  if (bytes === null) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function configsJson(configs: TopicConfig[]): Record<string, string | null> {
  return Object.fromEntries(
    [...configs].sort((a, b) => a.name.localeCompare(b.name)).map((config) => [config.name, config.value]),
  );
}

function configsTable(configs: TopicConfig[]): string {
  return table(
    ["KEY", "VALUE", "SOURCE"],
    [...configs]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((config) => [config.name, config.value ?? "", config.source]),
  );
}

function expectArgs(ctx: CommandContext, count: 0, usage: string): undefined;
function expectArgs(ctx: CommandContext, count: 1, usage: string): string;
function expectArgs(ctx: CommandContext, count: number, usage: string): string | undefined {
  if (ctx.args.length !== count) {
    const what =
      ctx.args.length > count ? `unexpected argument ${JSON.stringify(ctx.args[count])}` : "missing topic";
    throw new UsageError(`${what} (usage: ${usage})`);
  }
  return ctx.args[0];
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
