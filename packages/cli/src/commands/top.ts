import type { ConsumerGroupInfo, ConsumerGroupLagSummary, ProcessorDetails, TopicInfo } from "@sluice/client";
import { integerOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../context.js";
import { write } from "../io.js";

/** What one refresh of `sluice top` shows. */
export interface TopSnapshot {
  url: string;
  /** Milliseconds since the epoch, when it was read. */
  at: number;
  topics: TopicInfo[];
  groups: (ConsumerGroupInfo & { members: number; lag: ConsumerGroupLagSummary | null })[];
  /** Processors with their partitions (absent from a server without processor routes). */
  processors?: ProcessorDetails[];
  /** Why the last refresh failed, when it did (the figures are then the previous ones). */
  problem?: string;
}

export const TOP_WIDTH = 100;

const TOPIC_COLUMNS = [
  { title: "TOPIC", width: 20 },
  { title: "PARTS", width: 5 },
  { title: "IN REC/S", width: 9 },
  { title: "IN BYTES/S", width: 10 },
  { title: "OUT REC/S", width: 9 },
  { title: "OUT BYTES/S", width: 11 },
  { title: "P99 PRODUCE", width: 11 },
  { title: "P99 FETCH", width: 9 },
  { title: "ERRORS/S", width: 8 },
] as const;

const GROUP_COLUMNS = [
  { title: "GROUP", width: 24 },
  { title: "STATE", width: 11 },
  { title: "MEMBERS", width: 7 },
  { title: "LAG", width: 12 },
  { title: "MOST BEHIND", width: 40 },
] as const;

const PROCESSOR_COLUMNS = [
  { title: "PROCESSOR", width: 24 },
  { title: "STATE", width: 7 },
  { title: "LAG", width: 12 },
  { title: "PROCESSED", width: 12 },
  { title: "DEAD", width: 8 },
  { title: "LAST ERROR", width: 32 },
] as const;

/** A name cut to `width` with an ellipsis, so columns stay aligned. */
function fit(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `${text.slice(0, width - 1)}…`;
}

/** A rate in at most 7 characters: one decimal below 100, then 12,345, 123k, 12.3M; "-" for nothing. */
export function formatRate(value: number): string {
  if (value === 0) return "-";
  if (value < 100) return value.toFixed(1);
  if (value < 100_000) return Math.round(value).toLocaleString("en-US");
  if (value < 1_000_000) return `${Math.round(value / 1000)}k`;
  return `${(value / 1_000_000).toFixed(1)}M`;
}

/** Bytes per second in B, KiB, MiB or GiB, at most 10 characters. */
export function formatBytesRate(value: number): string {
  if (value === 0) return "-";
  const units = ["B", "KiB", "MiB", "GiB"];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled < 10 ? scaled.toFixed(1) : Math.round(scaled)} ${units[unit]}`;
}

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 10_000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(1)} s`;
}

function row(columns: readonly { width: number }[], cells: string[], alignLeft: number[] = [0]): string {
  return cells
    .map((cell, index) => {
      const width = columns[index]!.width;
      return alignLeft.includes(index) ? fit(cell, width) : cell.slice(0, width).padStart(width);
    })
    .join(" ")
    .trimEnd();
}

/**
 * The screen as lines of at most TOP_WIDTH (100) characters: a title, one line per topic (busiest
 * first), one per consumer group (most behind first), one per processor (most behind first: lag,
 * records processed and dead-lettered, the latest error). `maxLines` bounds it to a terminal's
 * height.
 */
export function renderTop(
  snapshot: TopSnapshot,
  options: { intervalSeconds: number; maxLines?: number },
): string[] {
  const time = new Date(snapshot.at).toISOString().slice(11, 19);
  const window = snapshot.topics.find((topic) => topic.activity)?.activity?.windowSeconds;
  const lines = [
    fit(`sluice top  ${snapshot.url}  ${time} UTC  every ${options.intervalSeconds} s`, TOP_WIDTH).trimEnd(),
    window === undefined
      ? "rates: the server reports none (an older server?)"
      : `rates over the server's last ${Math.round(window)} s; Ctrl-C to quit`,
    "",
    row(
      TOPIC_COLUMNS,
      TOPIC_COLUMNS.map((column) => column.title),
    ),
  ];
  const busy = (topic: TopicInfo) =>
    (topic.activity?.recordsInPerSecond ?? 0) + (topic.activity?.recordsOutPerSecond ?? 0);
  const topics = [...snapshot.topics].sort(
    (a, b) => busy(b) - busy(a) || a.topicName.localeCompare(b.topicName),
  );
  const groups = [...snapshot.groups].sort(
    (a, b) => (b.lag?.totalLag ?? 0) - (a.lag?.totalLag ?? 0) || a.groupId.localeCompare(b.groupId),
  );
  // Room for topics: what the groups' section and the status line leave.
  const budget = options.maxLines ?? Number.POSITIVE_INFINITY;
  const groupLines = groups.length === 0 ? 0 : 2 + groups.length;
  const processorCount = snapshot.processors?.length ?? 0;
  const processorLines = processorCount === 0 ? 0 : 2 + processorCount;
  const statusLines = snapshot.problem ? 2 : 0;
  const topicRoom = Math.max(
    1,
    budget - lines.length - Math.min(groupLines, 6) - Math.min(processorLines, 6) - statusLines,
  );
  const shownTopics = topics.length > topicRoom ? topics.slice(0, topicRoom - 1) : topics;
  for (const topic of shownTopics) {
    const activity = topic.activity;
    lines.push(
      row(TOPIC_COLUMNS, [
        topic.topicName,
        String(topic.partitionsCount),
        formatRate(activity?.recordsInPerSecond ?? 0),
        formatBytesRate(activity?.bytesInPerSecond ?? 0),
        formatRate(activity?.recordsOutPerSecond ?? 0),
        formatBytesRate(activity?.bytesOutPerSecond ?? 0),
        formatMs(activity?.produceLatencyP99Ms),
        formatMs(activity?.fetchLatencyP99Ms),
        formatRate(activity?.errorsPerSecond ?? 0),
      ]),
    );
  }
  if (shownTopics.length < topics.length)
    lines.push(`… and ${topics.length - shownTopics.length} more topics`);
  if (topics.length === 0) lines.push("(no topics)");
  if (groups.length > 0) {
    lines.push(
      "",
      row(
        GROUP_COLUMNS,
        GROUP_COLUMNS.map((column) => column.title),
        [0, 1, 4],
      ),
    );
    const groupRoom = Math.max(1, budget - lines.length - Math.min(processorLines, 6) - statusLines);
    const shownGroups = groups.length > groupRoom ? groups.slice(0, groupRoom - 1) : groups;
    for (const group of shownGroups) {
      const lag = group.lag;
      const behind =
        lag && lag.maxLag > 0 && lag.maxLagTopicName !== null
          ? `${lag.maxLagTopicName}/${lag.maxLagPartitionId} (${lag.maxLag.toLocaleString("en-US")})`
          : "-";
      lines.push(
        row(
          GROUP_COLUMNS,
          [
            group.groupId,
            group.state,
            String(group.members),
            lag ? lag.totalLag.toLocaleString("en-US") : "-",
            behind,
          ],
          [0, 1, 4],
        ),
      );
    }
    if (shownGroups.length < groups.length)
      lines.push(`… and ${groups.length - shownGroups.length} more groups`);
  }
  const processors = [...(snapshot.processors ?? [])].sort(
    (a, b) => b.lag - a.lag || a.name.localeCompare(b.name),
  );
  if (processors.length > 0) {
    lines.push(
      "",
      row(
        PROCESSOR_COLUMNS,
        PROCESSOR_COLUMNS.map((column) => column.title),
        [0, 1, 5],
      ),
    );
    const processorRoom = Math.max(1, budget - lines.length - statusLines);
    const shown = processors.length > processorRoom ? processors.slice(0, processorRoom - 1) : processors;
    for (const processor of shown) {
      const sum = (pick: (partition: ProcessorDetails["partitions"][number]) => number) =>
        processor.partitions.reduce((total, partition) => total + pick(partition), 0);
      const lastError = processor.partitions
        .flatMap((partition) => (partition.lastError ? [partition.lastError] : []))
        .sort((a, b) => b.at - a.at)[0];
      lines.push(
        row(
          PROCESSOR_COLUMNS,
          [
            processor.name,
            processor.state,
            processor.lag.toLocaleString("en-US"),
            sum((partition) => partition.processed).toLocaleString("en-US"),
            sum((partition) => partition.deadLettered).toLocaleString("en-US"),
            lastError ? lastError.message.replace(/\s+/g, " ") : "-",
          ],
          [0, 1, 5],
        ),
      );
    }
    if (shown.length < processors.length)
      lines.push(`… and ${processors.length - shown.length} more processors`);
  }
  if (snapshot.problem) lines.push("", fit(`refresh failed: ${snapshot.problem}`, TOP_WIDTH).trimEnd());
  return lines.slice(0, budget);
}

/** Reads what one refresh shows: topics with their activity, groups with their lag, processors. */
export async function readTopSnapshot(ctx: CommandContext, now: () => number): Promise<TopSnapshot> {
  const [topics, groups, processors] = await Promise.all([
    ctx.client.listTopics(),
    ctx.client.listGroups(),
    ctx.client.listProcessors().then(
      (list) => Promise.all(list.map((processor) => ctx.client.describeProcessor(processor.name))),
      // A server without processor routes shows no processors rather than failing the view.
      () => [] as ProcessorDetails[],
    ),
  ]);
  const withLag = await Promise.all(
    groups.map(async (group) => {
      const [members, lag] = await Promise.all([
        ctx.client.listGroupMembers(group.groupId).then(
          (list) => list.length,
          () => 0,
        ),
        ctx.client.getGroupLagSummary(group.groupId).catch(() => null),
      ]);
      return { ...group, members, lag };
    }),
  );
  return { url: ctx.client.url, at: now(), topics, groups: withLag, processors };
}

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const HOME = "\x1b[H";
const CLEAR_LINE_END = "\x1b[K";
const CLEAR_BELOW = "\x1b[J";

/**
 * `sluice top`: a live view of the server, refreshed in place every `--interval` seconds on a
 * terminal (each frame overwrites the last), or printed frame after frame into a pipe, or as
 * JSON lines with --format json. Ends at Ctrl-C, or after `-n` refreshes.
 */
export async function top(ctx: CommandContext): Promise<number> {
  if (ctx.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[0])}`);
  const intervalText = stringOption(ctx.values, "interval");
  const intervalSeconds = intervalText === undefined ? 2 : Number(intervalText);
  if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0.1 || intervalSeconds > 3600) {
    throw new UsageError(
      `--interval must be a number of seconds from 0.1 to 3600, got ${String(intervalText)}`,
    );
  }
  const iterations = integerOption(ctx.values, "iterations", "-n/--iterations", { min: 1 });
  const now = ctx.io.now ?? Date.now;
  const terminal = ctx.io.stdout.isTTY === true && ctx.format === "text";
  let previous: TopSnapshot | undefined;
  if (terminal) await write(ctx.io.stdout, `${HIDE_CURSOR}\x1b[2J`);
  // Ctrl-C ends it at once, even while a refresh waits on a slow server.
  const interrupted = new Promise<undefined>((resolve) => {
    if (ctx.signal.aborted) resolve(undefined);
    else ctx.signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  try {
    for (let refresh = 1; ; refresh++) {
      let snapshot: TopSnapshot;
      try {
        const read = await Promise.race([readTopSnapshot(ctx, now), interrupted]);
        if (read === undefined) return 0;
        snapshot = read;
      } catch (error) {
        const problem = error instanceof Error ? error.message : String(error);
        snapshot = previous
          ? { ...previous, at: now(), problem }
          : { url: ctx.client.url, at: now(), topics: [], groups: [], problem };
      }
      previous = snapshot;
      if (ctx.format === "json") {
        await write(ctx.io.stdout, `${JSON.stringify(snapshotJson(snapshot))}\n`);
      } else {
        const rows = terminal ? (ctx.io.stdout as { rows?: number }).rows : undefined;
        const lines = renderTop(snapshot, { intervalSeconds, ...(rows ? { maxLines: rows - 1 } : {}) });
        await write(
          ctx.io.stdout,
          terminal
            ? `${HOME}${lines.map((line) => `${line}${CLEAR_LINE_END}`).join("\n")}\n${CLEAR_BELOW}`
            : `${lines.join("\n")}\n\n`,
        );
      }
      if (iterations !== undefined && refresh >= iterations) return 0;
      if (!(await sleep(intervalSeconds * 1000, ctx.signal))) return 0;
    }
  } finally {
    if (terminal) await write(ctx.io.stdout, SHOW_CURSOR);
  }
}

/** Waits `ms`; false when `signal` aborted first (Ctrl-C). */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function snapshotJson(snapshot: TopSnapshot) {
  return {
    url: snapshot.url,
    at: new Date(snapshot.at).toISOString(),
    topics: snapshot.topics.map((topic) => ({
      topic: topic.topicName,
      partitions: topic.partitionsCount,
      ...(topic.activity ? { activity: topic.activity } : {}),
    })),
    groups: snapshot.groups.map((group) => ({
      group: group.groupId,
      state: group.state,
      members: group.members,
      total_lag: group.lag?.totalLag ?? null,
      max_lag: group.lag?.maxLag ?? null,
    })),
    processors: (snapshot.processors ?? []).map((processor) => ({
      processor: processor.name,
      state: processor.state,
      lag: processor.lag,
      processed: processor.partitions.reduce((total, partition) => total + partition.processed, 0),
      dead_lettered: processor.partitions.reduce((total, partition) => total + partition.deadLettered, 0),
    })),
    ...(snapshot.problem ? { problem: snapshot.problem } : {}),
  };
}
