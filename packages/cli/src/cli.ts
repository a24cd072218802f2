import { SluiceClient, SluiceConnectionError, SluiceHttpError } from "@sluice/client";
import { type OptionSpec, parseArgs, stringOption, UsageError } from "./args.js";
import { consume } from "./commands/consume.js";
import { groupDelete, groupDescribe, groupList, groupReset } from "./commands/group.js";
import {
  PROCESSOR_CREATE_HELP,
  PROCESSOR_CREATE_OPTIONS,
  processorCreate,
  processorDelete,
  processorDescribe,
  processorList,
  processorPause,
  processorReset,
  processorResume,
} from "./commands/processor.js";
import { ProduceError, produce } from "./commands/produce.js";
import { queueConsume, queueDescribe, queueList } from "./commands/queue.js";
import { top } from "./commands/top.js";
import {
  topicAddPartitions,
  topicConfig,
  topicCreate,
  topicDelete,
  topicDescribe,
  topicList,
} from "./commands/topic.js";
import type { CommandContext } from "./context.js";
import { type CliIO, write } from "./io.js";

export const DEFAULT_URL = "http://127.0.0.1:8080";
const VERSION = "0.1.0";

const GLOBAL_OPTIONS: OptionSpec[] = [
  // -b is kcat's broker flag, so `sluice consume t -b localhost:8080` reads as a kcat user expects.
  { name: "url", short: "b", type: "string" },
  { name: "format", type: "string" },
  { name: "help", short: "h", type: "boolean" },
  { name: "version", type: "boolean" },
];

interface Command {
  words: string[];
  summary: string;
  usage: string;
  options: OptionSpec[];
  /** Lines describing the options, for --help. */
  optionHelp: string[];
  run: (ctx: CommandContext) => Promise<number>;
}

const COMMANDS: Command[] = [
  {
    words: ["topic", "list"],
    summary: "list topics",
    usage: "sluice topic list",
    options: [],
    optionHelp: [],
    run: topicList,
  },
  {
    words: ["topic", "create"],
    summary: "create topics",
    usage: "sluice topic create <topic>... [-p partitions] [-c key=value]...",
    options: [
      { name: "partitions", short: "p", type: "string" },
      { name: "replicas", short: "r", type: "string" },
      { name: "config", short: "c", type: "string", multiple: true },
    ],
    optionHelp: [
      "-p, --partitions N     number of partitions (default 1)",
      "-c, --config key=value topic config, repeatable (e.g. -c retention.ms=86400000)",
      "-r, --replicas N       accepted for rpk compatibility and ignored",
    ],
    run: topicCreate,
  },
  {
    words: ["topic", "describe"],
    summary: "show a topic: summary, configs, partitions with offsets",
    usage: "sluice topic describe <topic>",
    options: [],
    optionHelp: [],
    run: topicDescribe,
  },
  {
    words: ["topic", "delete"],
    summary: "delete topics",
    usage: "sluice topic delete <topic>...",
    options: [],
    optionHelp: [],
    run: topicDelete,
  },
  {
    words: ["topic", "config"],
    summary: "show a topic's configs, or change them",
    usage: "sluice topic config <topic> [--set key=value]... [--delete key]...",
    options: [
      { name: "set", type: "string", multiple: true },
      { name: "delete", type: "string", multiple: true },
    ],
    optionHelp: [
      "--set key=value   set a config, repeatable",
      "--delete key      reset a config to its default, repeatable",
    ],
    run: topicConfig,
  },
  {
    words: ["topic", "add-partitions"],
    summary: "add partitions to a topic",
    usage: "sluice topic add-partitions <topic> -n <count to add>",
    options: [{ name: "num", short: "n", type: "string" }],
    optionHelp: ["-n, --num N   how many partitions to add"],
    run: topicAddPartitions,
  },
  {
    words: ["produce"],
    summary: "produce stdin lines as records",
    usage: "sluice produce <topic> [-k separator] [-H name=value]... [-p partition]",
    options: [
      { name: "key-delimiter", short: "k", type: "string" },
      { name: "header", short: "H", type: "string", multiple: true },
      { name: "partition", short: "p", type: "string" },
      { name: "batch-size", type: "string" },
      { name: "retries", type: "string" },
      { name: "compression", type: "string" },
      { name: "linger-ms", type: "string" },
      { name: "keep-empty-lines", type: "boolean" },
    ],
    optionHelp: [
      "-k, --key-delimiter SEP   split each line into key and value at the first SEP (\\t for a tab)",
      "-H, --header name=value   add a header to every record, repeatable",
      "-p, --partition N         send every record to partition N (default: by key, else sticky)",
      "--batch-size N            records per batch of a partition (default 1000, at most 10000)",
      "--retries N               resend a request after a connection failure or 429/503 (default 3);",
      "                          the producer is idempotent, so a resend never duplicates",
      "--compression C           none (default) or gzip",
      "--linger-ms N             send a batch that is not full N ms after its first record (default 5)",
      "--keep-empty-lines        send an empty line as a record with an empty value (default: skip it)",
      "",
      "One record per line (UTF-8); the topic must exist. With --format json, prints one delivery report per line",
      '({"line","partition","offset","timestamp"} or {"line","error_code","message"}) and the',
      "summary on stderr.",
    ],
    run: produce,
  },
  {
    words: ["consume"],
    summary: "print records of a topic, or consume as a member of a group (-g)",
    usage:
      "sluice consume <topic> [-o offset] [-n count] [-p partition] [-f format] [--follow]\n" +
      "       sluice consume -g <group> <topic>... [-o start|end] [-n count] [-f format]",
    options: [
      { name: "group", short: "g", type: "string" },
      { name: "offset", short: "o", type: "string" },
      { name: "num", short: "n", type: "string" },
      { name: "partition", short: "p", type: "string" },
      { name: "format-string", short: "f", type: "string" },
      { name: "follow", type: "boolean" },
      { name: "poll", type: "boolean" },
      { name: "quiet", short: "q", type: "boolean" },
    ],
    optionHelp: [
      "-o, --offset OFFSET     where to start: start (or beginning), end, N, -N (N before the end),",
      "                        +N (N after the start), @timestamp_ms or @ISO-8601 (default start)",
      "-n, --num N             exit after N records",
      "-p, --partition N       only partition N (default: all partitions, merged)",
      "-f, --format-string F   kcat-style output: %k key, %v (or %s) value, %o offset, %p partition,",
      "                        %T timestamp ms, %t topic, %h headers, %K/%S key/value length,",
      "                        \\n \\t escapes (default %v\\n; --format json prints JSON lines)",
      "--follow                keep waiting for new records (server-sent events) until Ctrl-C or -n",
      "--poll                  with --follow, long-poll instead of server-sent events",
      "-q, --quiet             with --follow, do not say on stderr when it waits at the end",
      "",
      "-g, --group GROUP       consume as a member of consumer group GROUP (see below)",
      "",
      "An offset past a partition's end is an error (exit 1) without --follow; with --follow,",
      "consume waits for the partition to reach it.",
      "",
      "With -g, the group shares the topics' partitions among its members: this one prints the",
      "records of the partitions it is given, from the group's committed offsets, and commits each",
      "batch once it is printed. It keeps waiting for records (as --follow does) until -n records",
      "or Ctrl-C, then leaves the group, so its partitions move to the other members at once.",
      "-o start (the default) or end says where a partition without a committed offset starts;",
      "-p is not allowed. Assignment changes are reported on stderr unless -q.",
    ],
    run: consume,
  },
  {
    words: ["group", "list"],
    summary: "list consumer groups with their state and member count",
    usage: "sluice group list",
    options: [],
    optionHelp: [],
    run: groupList,
  },
  {
    words: ["group", "describe"],
    summary: "show a group: state, members, and per partition its offset, log end, lag and consumer",
    usage: "sluice group describe <group>",
    options: [],
    optionHelp: [
      "Prints the group's state (EMPTY, RECONCILING, STABLE), assignor, epoch, member count and",
      "total lag, then one line per partition: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET",
      "LAG CONSUMER-ID (- where the group has no committed offset or no member owns the partition).",
    ],
    run: groupDescribe,
  },
  {
    words: ["group", "delete"],
    summary: "delete consumer groups and their committed offsets (only groups without members)",
    usage: "sluice group delete <group>...",
    options: [],
    optionHelp: [],
    run: groupDelete,
  },
  {
    words: ["group", "reset"],
    summary: "move a group's committed offsets (a dry run unless --execute)",
    usage:
      "sluice group reset <group> [--topic T]... (--to-earliest|--to-latest|--to-offset N|--to-datetime T|--shift-by N) [--dry-run|--execute]",
    options: [
      { name: "topic", type: "string", multiple: true },
      { name: "to-earliest", type: "boolean" },
      { name: "to-latest", type: "boolean" },
      { name: "to-offset", type: "string" },
      { name: "to-datetime", type: "string" },
      { name: "shift-by", type: "string" },
      { name: "dry-run", type: "boolean" },
      { name: "execute", type: "boolean" },
    ],
    optionHelp: [
      "--topic T         only topic T, repeatable (default: every topic the group has offsets for)",
      "--to-earliest     to each partition's log start",
      "--to-latest       to each partition's end (skip everything so far)",
      "--to-offset N     to offset N (clamped to each partition's log)",
      "--to-datetime T   to the first record at or after T (ISO-8601, e.g. 2025-11-26T03:00:00Z, or epoch ms)",
      "--shift-by N      N records on (negative: back) from the committed offset",
      "--dry-run         print the plan and change nothing (the default)",
      "--execute         apply the plan",
      "",
      "Prints the plan: TOPIC PARTITION PREVIOUS NEW. The group must have no members (stop its",
      "consumers first); the server refuses otherwise and nothing changes.",
    ],
    run: groupReset,
  },
  {
    words: ["queue", "consume"],
    summary: "consume as a member of a share group: each record goes to one member only",
    usage: "sluice queue consume <group> <topic>... [-n count] [-f format] [-o start|end]",
    options: [
      { name: "num", short: "n", type: "string" },
      { name: "format-string", short: "f", type: "string" },
      { name: "offset", short: "o", type: "string" },
      { name: "delivery-limit", type: "string" },
      { name: "lock-ms", type: "string" },
      { name: "dead-letter-topic", type: "string" },
      { name: "max-records", type: "string" },
      { name: "quiet", short: "q", type: "boolean" },
    ],
    optionHelp: [
      "-n, --num N               exit after N records",
      "-f, --format-string F     as for consume, plus %d: the record's delivery count",
      "-q, --quiet               do not say on stderr which member this is",
      "",
      "When this member creates the group (the first one to join):",
      "-o, --offset start|end    where the group starts reading (default end: new records only)",
      "--delivery-limit N        deliveries before a record is archived (default 5)",
      "--lock-ms MS              how long a record stays locked to a member (default 30000)",
      "--dead-letter-topic T     where archived records are copied (the topic must exist)",
      "",
      "--max-records N           records fetched at once and held while printing (default 10)",
      "",
      "Many members may consume the same topics: each record is handed to one member at a time",
      "under a lock and accepted once printed, so every record is printed by one member (a member",
      "that dies mid-record gives it up when its lock passes, and another prints it). Until -n or",
      "Ctrl-C; then the member leaves and what it held goes to the others at once.",
    ],
    run: queueConsume,
  },
  {
    words: ["queue", "describe"],
    summary: "show a share group: state, configs, members, and per partition its window and lag",
    usage: "sluice queue describe <group>",
    options: [],
    optionHelp: [
      "Prints the group's state (EMPTY or STABLE), members and configs, then one line per partition:",
      "TOPIC PARTITION START-OFFSET (everything before is settled) END-OFFSET (nothing from here on was",
      "handed out) LOG-END-OFFSET IN-FLIGHT (locked to a member) AVAILABLE (released, to hand out again)",
      "LAG (records not settled yet), then each member with the records it holds.",
    ],
    run: queueDescribe,
  },
  {
    words: ["queue", "list"],
    summary: "list share groups with their state and member count",
    usage: "sluice queue list",
    options: [],
    optionHelp: [],
    run: queueList,
  },
  {
    words: ["processor", "create"],
    summary: "attach a webhook or Lambda function to topics: run on every new batch",
    usage:
      "sluice processor create <name> --topic T... (--webhook URL | --lambda FUNCTION) [--output T]... [--dead-letter T] [options]",
    options: PROCESSOR_CREATE_OPTIONS,
    optionHelp: PROCESSOR_CREATE_HELP,
    run: processorCreate,
  },
  {
    words: ["processor", "list"],
    summary: "list processors with their state, topics and handler",
    usage: "sluice processor list",
    options: [],
    optionHelp: [],
    run: processorList,
  },
  {
    words: ["processor", "describe"],
    summary: "show a processor and per partition its checkpoint, lag, blocked keys and last error",
    usage: "sluice processor describe <name>",
    options: [],
    optionHelp: [],
    run: processorDescribe,
  },
  {
    words: ["processor", "pause"],
    summary: "pause a processor: batches in flight finish and commit, then its runners stop",
    usage: "sluice processor pause <name>",
    options: [],
    optionHelp: [],
    run: processorPause,
  },
  {
    words: ["processor", "resume"],
    summary: "resume a paused processor where it stopped",
    usage: "sluice processor resume <name>",
    options: [],
    optionHelp: [],
    run: processorResume,
  },
  {
    words: ["processor", "reset"],
    summary: "move a paused processor's checkpoints",
    usage:
      "sluice processor reset <name> (--to-earliest|--to-latest|--to-datetime T|--to-offset TOPIC:PARTITION=OFFSET...)",
    options: [
      { name: "to-earliest", type: "boolean" },
      { name: "to-latest", type: "boolean" },
      { name: "to-datetime", type: "string" },
      { name: "to-offset", type: "string", multiple: true },
    ],
    optionHelp: [
      "--to-earliest          every partition from its log start (records are handled again)",
      "--to-latest            every partition from its end (skip everything so far)",
      "--to-datetime T        from the first record at or after T (ISO-8601 or epoch ms)",
      "--to-offset T:P=N      partition P of topic T from offset N, repeatable",
      "",
      "The processor must be paused and its runners stopped; the server refuses otherwise.",
    ],
    run: processorReset,
  },
  {
    words: ["processor", "delete"],
    summary: "delete processors and their progress",
    usage: "sluice processor delete <name>...",
    options: [],
    optionHelp: [],
    run: processorDelete,
  },
  {
    words: ["top"],
    summary: "a live view: per topic records/s in and out, p99 latency, errors; per group lag",
    usage: "sluice top [-i seconds] [-n refreshes]",
    options: [
      { name: "interval", short: "i", type: "string" },
      { name: "iterations", short: "n", type: "string" },
    ],
    optionHelp: [
      "-i, --interval S     seconds between refreshes (default 2)",
      "-n, --iterations N   stop after N refreshes (default: until Ctrl-C)",
      "",
      "On a terminal the view is redrawn in place and fits 100 columns; into a pipe each refresh",
      "is printed after the last; --format json prints one JSON object per refresh. Rates are the",
      "server's, over its last 10 seconds (docs/operations.md).",
    ],
    run: top,
  },
  {
    words: ["cluster", "info"],
    summary: "show the cluster id of the server",
    usage: "sluice cluster info",
    options: [],
    optionHelp: [],
    run: async (ctx) => {
      if (ctx.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[0])}`);
      const { clusterId } = await ctx.client.getCluster();
      const text =
        ctx.format === "json"
          ? `${JSON.stringify({ url: ctx.client.url, cluster_id: clusterId })}\n`
          : `url         ${ctx.client.url}\ncluster id  ${clusterId}\n`;
      await write(ctx.io.stdout, text);
      return 0;
    },
  },
];

/** The command groups: a word that names several commands (`sluice topic …`). */
const GROUPS: Record<string, string> = {
  topic: "create, list, describe, configure, grow and delete topics",
  group: "list, describe, delete consumer groups and reset their offsets",
  queue: "consume as a member of a share group (a queue), list and describe share groups",
  processor: "create, list, describe, pause, resume, reset and delete processors",
  cluster: "the cluster the API serves",
};

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.words.join(" ").length));
  return [
    "sluice: topics, produce and consume against a Sluice HTTP API",
    "",
    "Usage: sluice <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((command) => `  ${command.words.join(" ").padEnd(width)}  ${command.summary}`),
    "",
    "Global options:",
    `  -b, --url URL    the API, e.g. localhost:8080 (default: $SLUICE_URL, else ${DEFAULT_URL})`,
    "  --format FORMAT  text (default) or json",
    "  -h, --help       help for a command, e.g. sluice consume --help",
    "  --version        print the version",
    "",
    "Exit codes: 0 success, 1 the API refused or failed, 2 wrong usage.",
    "",
  ].join("\n");
}

function commandHelp(command: Command): string {
  return [
    `${command.summary}`,
    "",
    `Usage: ${command.usage}`,
    ...(command.optionHelp.length > 0
      ? ["", "Options:", ...command.optionHelp.map((line) => `  ${line}`)]
      : []),
    "",
    "Global options: -b/--url URL, --format text|json, -h/--help",
    "",
  ].join("\n");
}

/** Finds the command named by the leading words of `argv` (global options may come first). */
function findCommand(argv: readonly string[]): {
  command: Command | undefined;
  words: string[];
  rest: string[];
} {
  const words: string[] = [];
  const rest: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--url" || arg === "-b" || arg === "--format") {
      rest.push(arg, ...argv.slice(i + 1, i + 2));
      i++;
      continue;
    }
    if (arg.startsWith("-")) {
      rest.push(arg);
      continue;
    }
    words.push(arg);
    const candidates = COMMANDS.filter((command) =>
      words.every((word, index) => command.words[index] === word),
    );
    const exact = candidates.find((command) => command.words.length === words.length);
    if (exact) return { command: exact, words, rest: [...rest, ...argv.slice(i + 1)] };
    if (candidates.length === 0) break;
  }
  return { command: undefined, words, rest: [...rest, ...argv.slice(i + 1)] };
}

/** Runs one command line; returns the exit code. Errors are reported as one `sluice: …` line. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  try {
    const { command, words, rest } = findCommand(argv);
    if (!command) {
      // No command matched: only --help and --version matter (other options belong to a command).
      const asked = {
        help: rest.includes("--help") || rest.includes("-h"),
        version: rest.includes("--version"),
      };
      if (asked.version) {
        await write(io.stdout, `sluice ${VERSION}\n`);
        return 0;
      }
      // `sluice help consume` is `sluice consume --help`.
      if (words[0] === "help") return await run([...rest, "--help"], io);
      if (asked.help) {
        const group = words.length === 1 ? (words[0] as string) : undefined;
        if (group !== undefined && group in GROUPS) {
          await write(io.stdout, groupHelp(group));
          return 0;
        }
        if (words.length === 0) {
          await write(io.stdout, mainHelp());
          return 0;
        }
      }
      if (words.length === 0) {
        await write(io.stdout, mainHelp());
        return 2;
      }
      const first = words[0] as string;
      if (first in GROUPS) {
        const subcommands = COMMANDS.filter((command) => command.words[0] === first)
          .map((command) => command.words[1])
          .join(", ");
        throw new UsageError(
          words.length === 1
            ? `sluice ${first} needs a subcommand: ${subcommands} (see sluice ${first} --help)`
            : `unknown command "${words.join(" ")}" (sluice ${first} has ${subcommands})`,
        );
      }
      throw new UsageError(`unknown command "${words.join(" ")}" (see sluice --help)`);
    }
    const { values, positionals } = parseArgs(rest, [...GLOBAL_OPTIONS, ...command.options]);
    if (values.help) {
      await write(io.stdout, commandHelp(command));
      return 0;
    }
    const format = stringOption(values, "format") ?? "text";
    if (format !== "text" && format !== "json")
      throw new UsageError(`--format must be text or json, got ${format}`);
    const urlOption = stringOption(values, "url");
    const url = normalizeUrl(
      urlOption ?? io.env.SLUICE_URL ?? DEFAULT_URL,
      urlOption === undefined && io.env.SLUICE_URL !== undefined ? "SLUICE_URL" : "--url",
    );
    const client = new SluiceClient({ url, ...(io.fetch ? { fetch: io.fetch } : {}) });
    return await command.run({
      client,
      io,
      format,
      values,
      args: positionals,
      signal: io.signal ?? new AbortController().signal,
    });
  } catch (error) {
    return report(error, io);
  }
}

function groupHelp(group: string): string {
  const commands = COMMANDS.filter((command) => command.words[0] === group);
  return [
    `${GROUPS[group]}`,
    "",
    `Usage: sluice ${group} <subcommand> [options]`,
    "",
    "Subcommands:",
    ...commands.map((command) => `  ${command.usage}\n      ${command.summary}`),
    "",
    `Help for one: sluice ${group} ${commands[0]?.words[1] ?? "<subcommand>"} --help`,
    "Global options: -b/--url URL, --format text|json, -h/--help",
    "",
  ].join("\n");
}

/**
 * The API's base URL. Like kcat's `-b host:port`, a bare `host:port` (or `host`, or `:port` for
 * this machine) means http; any scheme other than http and https is refused.
 */
export function normalizeUrl(text: string, shown = "--url"): string {
  const trimmed = text.trim();
  let candidate = trimmed;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    candidate = `http://${trimmed.startsWith(":") ? `127.0.0.1${trimmed}` : trimmed}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(candidate);
  } catch {
    throw new UsageError(`invalid ${shown} ${JSON.stringify(text)} (expected host:port or http://host:port)`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`invalid ${shown} ${JSON.stringify(text)}: the API speaks http or https`);
  }
  if (trimmed === "" || parsed.hostname === "") {
    throw new UsageError(`invalid ${shown} ${JSON.stringify(text)} (expected host:port or http://host:port)`);
  }
  return candidate.replace(/\/+$/, "");
}

function report(error: unknown, io: CliIO): number {
  if (isBrokenPipe(error)) return 0;
  const line = (message: string) => io.stderr.write(`sluice: ${message.replace(/\s*\n\s*/g, " ")}\n`);
  if (error instanceof UsageError) {
    line(error.message);
    return 2;
  }
  if (error instanceof SluiceHttpError) {
    line(`${error.message} (HTTP ${error.status})`);
    return 1;
  }
  if (error instanceof SluiceConnectionError || error instanceof ProduceError) {
    line(error.message);
    return 1;
  }
  line(error instanceof Error ? error.message : String(error));
  return 1;
}

export function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === "EPIPE";
}
