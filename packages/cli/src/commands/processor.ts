import { readFile } from "node:fs/promises";
import type {
  ProcessorDefinition,
  ProcessorDetails,
  ProcessorInfo,
  ProcessorResetTarget,
} from "@sluice/client";
import { integerOption, keyValue, listOption, type OptionSpec, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { table, write } from "../io.js";

/** The options of `sluice processor create`, each mapped onto one field of the definition. */
export const PROCESSOR_CREATE_OPTIONS: OptionSpec[] = [
  { name: "file", type: "string" },
  { name: "topic", short: "t", type: "string", multiple: true },
  { name: "webhook", type: "string" },
  { name: "header", short: "H", type: "string", multiple: true },
  { name: "lambda", type: "string" },
  { name: "output", type: "string", multiple: true },
  { name: "dead-letter", type: "string" },
  { name: "batch-size", type: "string" },
  { name: "batch-bytes", type: "string" },
  { name: "window-ms", type: "string" },
  { name: "start", type: "string" },
  { name: "filter", type: "string" },
  { name: "max-attempts", type: "string" },
  { name: "backoff-ms", type: "string" },
  { name: "max-backoff-ms", type: "string" },
  { name: "max-age-ms", type: "string" },
  { name: "timeout-ms", type: "string" },
  { name: "bisect", type: "boolean" },
  { name: "ordering", type: "string" },
  { name: "parallelism", type: "string" },
  { name: "shared", type: "boolean" },
];

export const PROCESSOR_CREATE_HELP = [
  "--file FILE             the definition as JSON (the API's shape); the options below override it",
  "-t, --topic T           a source topic, repeatable",
  "--webhook URL           POST each batch to URL as JSON (a 2xx answer succeeds)",
  "-H, --header name=value a header sent with every webhook call, repeatable",
  "--lambda FUNCTION       invoke a Lambda function (name or ARN) with each batch",
  "--output T              an output topic the handler may append to, repeatable",
  "--dead-letter T         where records go once their retries are spent",
  "--batch-size N          most records per call (default 100)",
  "--batch-bytes N         most bytes per call (default 1048576)",
  "--window-ms N           how long a short batch waits for more records (default 0)",
  "--start WHERE           earliest, latest (default) or @TIME (epoch ms or ISO-8601)",
  '--filter JSON           only records matching it, e.g. \'{"value":{"kind":"order"}}\'',
  "--max-attempts N        calls per record before it is dead-lettered (default 3)",
  "--backoff-ms N          wait before the second attempt, doubled after each (default 1000)",
  "--max-backoff-ms N      longest wait between attempts (default 60000)",
  "--max-age-ms N          dead-letter a failing record older than this at once",
  "--timeout-ms N          a call running longer fails (default 30000)",
  "--bisect                halve a failing batch until the failing record is alone",
  "--ordering partition|key|shared  in partition order (default); each key in order, several at once;",
  "                        or shared: no order, records from the processor's own share group",
  "--shared                the same as --ordering shared: parallelism past the partition count",
  "--parallelism N         batches in flight at once: per partition with key, per runtime with shared (default 4)",
  "",
  "Module handlers are declared in the local server's config file (SLUICE_PROCESSORS), not here.",
];

/** `sluice processor create <name> …`: builds the definition from a file and options. */
export async function processorCreate(ctx: CommandContext): Promise<number> {
  const [name, ...extra] = ctx.args;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const file = stringOption(ctx.values, "file");
  const base: Partial<ProcessorDefinition> = file ? await readDefinition(file) : {};
  const definition: Record<string, unknown> = { ...base };
  if (name !== undefined) definition.name = name;
  if (definition.name === undefined)
    throw new UsageError("sluice processor create needs a name (or a --file naming one)");
  const topics = listOption(ctx.values, "topic");
  if (topics.length > 0) definition.topics = topics;
  if (definition.topics === undefined)
    throw new UsageError("sluice processor create needs --topic (a source topic)");
  const webhook = stringOption(ctx.values, "webhook");
  const lambda = stringOption(ctx.values, "lambda");
  if (webhook !== undefined && lambda !== undefined)
    throw new UsageError("use either --webhook or --lambda, not both");
  const headers = listOption(ctx.values, "header");
  if (headers.length > 0 && webhook === undefined) throw new UsageError("--header goes with --webhook");
  if (webhook !== undefined) {
    definition.handler = {
      type: "webhook",
      url: webhook,
      ...(headers.length > 0
        ? { headers: Object.fromEntries(headers.map((header) => keyValue(header, "--header"))) }
        : {}),
    };
  }
  if (lambda !== undefined) definition.handler = { type: "lambda", function_name: lambda };
  if (definition.handler === undefined)
    throw new UsageError("sluice processor create needs --webhook URL or --lambda FUNCTION");
  const outputs = listOption(ctx.values, "output");
  if (outputs.length > 0) definition.output_topics = outputs;
  const deadLetter = stringOption(ctx.values, "dead-letter");
  if (deadLetter !== undefined) definition.dead_letter_topic = deadLetter;
  const setInteger = (option: string, field: string) => {
    const value = integerOption(ctx.values, option, `--${option}`, { min: 0 });
    if (value !== undefined) definition[field] = value;
  };
  setInteger("batch-size", "batch_size");
  setInteger("batch-bytes", "batch_max_bytes");
  setInteger("window-ms", "batch_window_ms");
  setInteger("parallelism", "parallelism");
  const start = stringOption(ctx.values, "start");
  if (start !== undefined) {
    if (start === "earliest" || start === "latest") definition.starting_position = start.toUpperCase();
    else if (start.startsWith("@")) {
      definition.starting_position = "AT_TIMESTAMP";
      const time = start.slice(1);
      definition.starting_timestamp = /^\d+$/.test(time) ? Number(time) : time;
    } else throw new UsageError(`--start must be earliest, latest or @TIME, got ${JSON.stringify(start)}`);
  }
  const filter = stringOption(ctx.values, "filter");
  if (filter !== undefined) {
    try {
      definition.filter = JSON.parse(filter) as unknown;
    } catch {
      throw new UsageError(`--filter must be JSON, e.g. '{"value":{"kind":"order"}}'`);
    }
  }
  const retry: Record<string, unknown> = { ...((base.retry as Record<string, unknown> | undefined) ?? {}) };
  for (const [option, field] of [
    ["max-attempts", "max_attempts"],
    ["backoff-ms", "backoff_ms"],
    ["max-backoff-ms", "max_backoff_ms"],
    ["max-age-ms", "max_record_age_ms"],
    ["timeout-ms", "timeout_ms"],
  ] as const) {
    const value = integerOption(ctx.values, option, `--${option}`, { min: 0 });
    if (value !== undefined) retry[field] = value;
  }
  if (Object.keys(retry).length > 0) definition.retry = retry;
  if (ctx.values.bisect === true) definition.bisect_on_error = true;
  let ordering = stringOption(ctx.values, "ordering");
  if (ctx.values.shared === true) {
    if (ordering !== undefined && ordering !== "shared")
      throw new UsageError(`--shared and --ordering ${ordering} contradict each other`);
    ordering = "shared";
  }
  if (ordering !== undefined) {
    if (ordering !== "partition" && ordering !== "key" && ordering !== "shared")
      throw new UsageError(`--ordering must be partition, key or shared, got ${ordering}`);
    definition.ordering = ordering.toUpperCase();
  }
  const created = await ctx.client.createProcessor(definition as unknown as ProcessorDefinition);
  if (ctx.format === "json") await write(ctx.io.stdout, `${JSON.stringify(infoJson(created))}\n`);
  else
    await write(
      ctx.io.stdout,
      `created processor ${created.name} on ${created.definition.topics.join(", ")}\n`,
    );
  return 0;
}

async function readDefinition(file: string): Promise<Partial<ProcessorDefinition>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read --file ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as Partial<ProcessorDefinition>;
  } catch {
    throw new UsageError(`--file ${file} is not a JSON object (a processor definition)`);
  }
}

/** `sluice processor list`. */
export async function processorList(ctx: CommandContext): Promise<number> {
  if (ctx.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[0])}`);
  const processors = (await ctx.client.listProcessors()).sort((a, b) => a.name.localeCompare(b.name));
  if (ctx.format === "json") {
    await write(ctx.io.stdout, `${JSON.stringify(processors.map(infoJson))}\n`);
    return 0;
  }
  await write(
    ctx.io.stdout,
    table(
      ["PROCESSOR", "STATE", "TOPICS", "HANDLER", "OUTPUTS"],
      processors.map((processor) => [
        processor.name,
        processor.state,
        processor.definition.topics.join(","),
        handlerText(processor),
        (processor.definition.output_topics ?? []).join(",") || "-",
      ]),
    ),
  );
  return 0;
}

/** `sluice processor describe <name>`: the processor, then one line per partition. */
export async function processorDescribe(ctx: CommandContext): Promise<number> {
  const name = oneName(ctx, "sluice processor describe <name>");
  const details = await ctx.client.describeProcessor(name);
  if (ctx.format === "json") {
    await write(ctx.io.stdout, `${JSON.stringify(detailsJson(details))}\n`);
    return 0;
  }
  const definition = details.definition;
  const summary = table(
    ["PROCESSOR", details.name],
    [
      ["STATE", details.state],
      ["HANDLER", handlerText(details)],
      ["TOPICS", definition.topics.join(", ")],
      ["OUTPUTS", (definition.output_topics ?? []).join(", ") || "-"],
      ["DEAD-LETTER", definition.dead_letter_topic ?? "-"],
      [
        "ORDERING",
        definition.ordering === "KEY"
          ? `key (parallelism ${definition.parallelism})`
          : definition.ordering === "SHARED"
            ? `shared (parallelism ${definition.parallelism} per runtime)`
            : "partition",
      ],
      ...(details.shared
        ? [
            ["SHARE-GROUP", details.shared.shareGroupId],
            ["RUNTIMES", details.shared.members],
          ]
        : []),
      ["TOTAL-LAG", details.lag],
    ],
  );
  if (details.shared) {
    const shared = table(
      ["TOPIC", "PARTITION", "START-OFFSET", "END-OFFSET", "HIGH-WATERMARK", "IN-FLIGHT", "AVAILABLE", "LAG"],
      details.shared.partitions.map((partition) => [
        partition.topicName,
        partition.partitionId,
        partition.startOffset,
        partition.endOffset,
        partition.highWatermark,
        partition.inFlight,
        partition.available,
        partition.lag,
      ]),
    );
    await write(ctx.io.stdout, `${summary}\n${shared}`);
    return 0;
  }
  const partitions = table(
    [
      "TOPIC",
      "PARTITION",
      "CHECKPOINT",
      "HIGH-WATERMARK",
      "LAG",
      "BLOCKED",
      "PROCESSED",
      "DEAD",
      "OWNER",
      "LAST-ERROR",
    ],
    details.partitions.map((partition) => [
      partition.topicName,
      partition.partitionId,
      partition.checkpoint ?? "-",
      partition.highWatermark,
      partition.lag,
      partition.blockedKeys.length,
      partition.processed,
      partition.deadLettered,
      partition.owner ?? "-",
      partition.lastError ? `offset ${partition.lastError.offset}: ${partition.lastError.message}` : "-",
    ]),
  );
  await write(ctx.io.stdout, `${summary}\n${partitions}`);
  return 0;
}

export async function processorPause(ctx: CommandContext): Promise<number> {
  return stateChange(ctx, "pause");
}

export async function processorResume(ctx: CommandContext): Promise<number> {
  return stateChange(ctx, "resume");
}

async function stateChange(ctx: CommandContext, action: "pause" | "resume"): Promise<number> {
  const name = oneName(ctx, `sluice processor ${action} <name>`);
  const processor =
    action === "pause" ? await ctx.client.pauseProcessor(name) : await ctx.client.resumeProcessor(name);
  if (ctx.format === "json") await write(ctx.io.stdout, `${JSON.stringify(infoJson(processor))}\n`);
  else await write(ctx.io.stdout, `processor ${name} is ${processor.state.toLowerCase()}\n`);
  return 0;
}

/** `sluice processor reset <name> (--to-earliest|--to-latest|--to-datetime T|--to-offset T:P=N…)`. */
export async function processorReset(ctx: CommandContext): Promise<number> {
  const name = oneName(
    ctx,
    "sluice processor reset <name> (--to-earliest|--to-latest|--to-datetime T|--to-offset T:P=N)",
  );
  const offsets = listOption(ctx.values, "to-offset");
  const datetime = stringOption(ctx.values, "to-datetime");
  const chosen = [
    ctx.values["to-earliest"] === true,
    ctx.values["to-latest"] === true,
    datetime !== undefined,
    offsets.length > 0,
  ];
  if (chosen.filter(Boolean).length !== 1) {
    throw new UsageError(
      "name exactly one of --to-earliest, --to-latest, --to-datetime T, --to-offset TOPIC:PARTITION=OFFSET",
    );
  }
  let target: ProcessorResetTarget;
  if (ctx.values["to-earliest"] === true) target = { to: "earliest" };
  else if (ctx.values["to-latest"] === true) target = { to: "latest" };
  else if (datetime !== undefined)
    target = { to: "datetime", datetime: /^\d+$/.test(datetime) ? Number(datetime) : datetime };
  else {
    target = {
      to: "offsets",
      offsets: offsets.map((text) => {
        const match = /^(.+):(\d+)=(\d+)$/.exec(text);
        if (!match)
          throw new UsageError(`--to-offset must be TOPIC:PARTITION=OFFSET, got ${JSON.stringify(text)}`);
        return { topicName: match[1]!, partitionId: Number(match[2]), offset: Number(match[3]) };
      }),
    };
  }
  const details = await ctx.client.resetProcessor(name, target);
  if (ctx.format === "json") {
    await write(ctx.io.stdout, `${JSON.stringify(detailsJson(details))}\n`);
    return 0;
  }
  if (details.shared) {
    await write(
      ctx.io.stdout,
      table(
        ["TOPIC", "PARTITION", "START-OFFSET", "LAG"],
        details.shared.partitions.map((partition) => [
          partition.topicName,
          partition.partitionId,
          partition.startOffset,
          partition.lag,
        ]),
      ),
    );
    return 0;
  }
  await write(
    ctx.io.stdout,
    table(
      ["TOPIC", "PARTITION", "CHECKPOINT", "LAG"],
      details.partitions.map((partition) => [
        partition.topicName,
        partition.partitionId,
        partition.checkpoint ?? "-",
        partition.lag,
      ]),
    ),
  );
  return 0;
}

export async function processorDelete(ctx: CommandContext): Promise<number> {
  if (ctx.args.length === 0)
    throw new UsageError("sluice processor delete needs at least one processor name");
  for (const name of ctx.args) {
    await ctx.client.deleteProcessor(name);
    if (ctx.format === "text") await write(ctx.io.stdout, `deleted processor ${name}\n`);
  }
  if (ctx.format === "json")
    await write(ctx.io.stdout, `${JSON.stringify(ctx.args.map((processor) => ({ processor })))}\n`);
  return 0;
}

function oneName(ctx: CommandContext, usage: string): string {
  if (ctx.args.length !== 1) throw new UsageError(`usage: ${usage}`);
  return ctx.args[0]!;
}

function handlerText(processor: ProcessorInfo): string {
  const handler = processor.definition.handler;
  switch (handler.type) {
    case "webhook":
      return `webhook ${handler.url}`;
    case "lambda":
      return `lambda ${handler.function_name}`;
    case "module":
      return `module ${handler.module}`;
  }
}

function infoJson(processor: ProcessorInfo) {
  return {
    processor: processor.name,
    state: processor.state,
    definition: processor.definition,
    created_at: new Date(processor.createdAt).toISOString(),
  };
}

function detailsJson(details: ProcessorDetails) {
  return {
    ...infoJson(details),
    lag: details.lag,
    partitions: details.partitions.map((partition) => ({
      topic: partition.topicName,
      partition: partition.partitionId,
      checkpoint: partition.checkpoint,
      high_watermark: partition.highWatermark,
      lag: partition.lag,
      blocked_keys: partition.blockedKeys.length,
      processed: partition.processed,
      dead_lettered: partition.deadLettered,
      owner: partition.owner,
      last_error: partition.lastError?.message ?? null,
    })),
    ...(details.shared
      ? {
          shared: {
            share_group: details.shared.shareGroupId,
            runtimes: details.shared.members,
            partitions: details.shared.partitions.map((partition) => ({
              topic: partition.topicName,
              partition: partition.partitionId,
              start_offset: partition.startOffset,
              end_offset: partition.endOffset,
              high_watermark: partition.highWatermark,
              in_flight: partition.inFlight,
              available: partition.available,
              lag: partition.lag,
            })),
          },
        }
      : {}),
  };
}
