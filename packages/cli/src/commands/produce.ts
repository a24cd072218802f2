import { randomUUID } from "node:crypto";
import {
  type ProduceOutcome,
  type ProduceRecord,
  type SluiceClient,
  SluiceConnectionError,
  SluiceHttpError,
} from "@sluice/client";
import { integerOption, keyValue, listOption, stringOption, UsageError, unescapeText } from "../args.js";
import type { CommandContext } from "../context.js";
import { write } from "../io.js";
import { plural } from "./topic.js";

/** Records per request (Confluent's streaming mode); the server takes at most 10,000. */
export const PRODUCE_BATCH_DEFAULT = 1_000;
/** A batch that is not full is sent once stdin has been quiet this long (typing by hand). */
const LINGER_MS = 50;
const PROGRESS_INTERVAL_MS = 250;
export const PRODUCE_RETRIES_DEFAULT = 3;
const RETRY_DELAY_MS = 200;
const RETRY_DELAY_MAX_MS = 2_000;

/**
 * `sluice produce <topic>`: one record per stdin line, sent in batches with one request in flight
 * while the next batch is read (so records of a partition stay in input order).
 */
export async function produce(ctx: CommandContext): Promise<number> {
  if (ctx.args.length !== 1)
    throw new UsageError("usage: sluice produce <topic> [-k sep] [-H name=value] [-p N]");
  const topic = ctx.args[0] as string;
  const partition = integerOption(ctx.values, "partition", "-p/--partition", { min: 0 });
  const batchSize =
    integerOption(ctx.values, "batch-size", "--batch-size", { min: 1, max: 10_000 }) ?? PRODUCE_BATCH_DEFAULT;
  const retries =
    integerOption(ctx.values, "retries", "--retries", { min: 0, max: 100 }) ?? PRODUCE_RETRIES_DEFAULT;
  const separatorOption = stringOption(ctx.values, "key-delimiter");
  const separator = separatorOption === undefined ? undefined : unescapeText(separatorOption);
  if (separator === "") throw new UsageError("-k/--key-delimiter must not be empty");
  const headerPairs = listOption(ctx.values, "header").map((pair) => keyValue(pair, "-H/--header"));
  const headers = headerPairs.map(([name, value]) => ({ name, value }));
  const keepEmptyLines = ctx.values["keep-empty-lines"] === true;

  // Fail before reading stdin when the topic (or the partition) does not exist, rather than
  // reading everything and reporting each record refused, or "produced 0 records" for no input.
  const described = await ctx.client.describeTopic(topic);
  if (partition !== undefined && partition >= described.partitionsCount) {
    throw new UsageError(
      `topic ${topic} has no partition ${partition} (it has ${described.partitionsCount})`,
    );
  }

  const toRecord = (line: string): ProduceRecord => {
    const record: ProduceRecord = { value: line };
    if (separator !== undefined) {
      const at = line.indexOf(separator);
      if (at !== -1) {
        record.key = line.slice(0, at);
        record.value = line.slice(at + separator.length);
      }
    }
    if (headers.length > 0) record.headers = headers;
    if (partition !== undefined) record.partitionId = partition;
    return record;
  };

  const now = ctx.io.now ?? Date.now;
  const started = now();
  const stats = { sent: 0, acknowledged: 0, failed: 0, skipped: 0, partitions: new Set<number>() };
  let firstFailure: string | undefined;
  let requestError: unknown;
  let lineNumber = 0;

  // Each request carries an idempotency key, so a request whose answer was lost (a connection
  // closed under it, a 503) can be sent again without writing its records twice.
  const run = randomUUID();
  let requestNumber = 0;
  /** Sends `batch`; `lines` are the input line numbers of its records (empty lines are skipped). */
  const send = async (batch: ProduceRecord[], lines: number[]) => {
    stats.sent += batch.length;
    const idempotencyKey = `sluice-cli-${run}-${requestNumber++}`;
    const outcomes = await produceWithRetries(ctx.client, topic, batch, idempotencyKey, retries, ctx.signal);
    if (outcomes.length !== batch.length) {
      throw new Error(`the server answered ${outcomes.length} delivery reports for ${batch.length} records`);
    }
    const reports: string[] = [];
    outcomes.forEach((outcome: ProduceOutcome, index) => {
      const line = lines[index] as number;
      if (outcome.ok) {
        stats.acknowledged++;
        stats.partitions.add(outcome.report.partitionId);
        if (ctx.format === "json") {
          const { partitionId, offset, timestamp } = outcome.report;
          reports.push(JSON.stringify({ line, partition: partitionId, offset, timestamp }));
        }
      } else {
        stats.failed++;
        firstFailure ??= `line ${line}: ${outcome.message}`;
        if (ctx.format === "json") {
          reports.push(JSON.stringify({ line, error_code: outcome.errorCode, message: outcome.message }));
        }
      }
    });
    if (reports.length > 0) await write(ctx.io.stdout, `${reports.join("\n")}\n`);
  };

  let inFlight: Promise<void> | undefined;
  // Lets the read loop stop at once when a request fails, even while stdin is quiet.
  let announceFailure: (value: "failed") => void = () => undefined;
  const failed = new Promise<"failed">((resolve) => {
    announceFailure = resolve;
  });
  let batch: ProduceRecord[] = [];
  let batchLines: number[] = [];
  const dispatch = async () => {
    if (batch.length === 0) return;
    const full = batch;
    const lines = batchLines;
    batch = [];
    batchLines = [];
    await inFlight;
    if (requestError !== undefined) return;
    inFlight = send(full, lines).catch((error: unknown) => {
      requestError = error;
      announceFailure("failed");
    });
  };

  const progress = ctx.io.stderr.isTTY
    ? setInterval(() => {
        const seconds = (now() - started) / 1000;
        const rate = seconds > 0 ? Math.round(stats.acknowledged / seconds) : 0;
        ctx.io.stderr.write(
          `\r\x1b[Kproducing to ${topic}: ${stats.acknowledged.toLocaleString("en-US")} records acknowledged, ${rate.toLocaleString("en-US")} records/s`,
        );
      }, PROGRESS_INTERVAL_MS)
    : undefined;
  progress?.unref?.();

  const chunks = lineChunks(ctx.io.stdin)[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<string[]>> | undefined;
  let interrupted = false;
  const aborted = new Promise<"aborted">((resolve) => {
    if (ctx.signal.aborted) resolve("aborted");
    ctx.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    while (requestError === undefined) {
      pending ??= chunks.next();
      const waits: Array<Promise<IteratorResult<string[]> | "linger" | "aborted" | "failed">> = [
        pending,
        aborted,
        failed,
      ];
      let linger: NodeJS.Timeout | undefined;
      if (batch.length > 0) {
        waits.push(
          new Promise((resolve) => {
            linger = setTimeout(() => resolve("linger"), LINGER_MS);
          }),
        );
      }
      const next = await Promise.race(waits);
      clearTimeout(linger);
      if (next === "failed") break;
      if (next === "aborted") {
        interrupted = true;
        break;
      }
      if (next === "linger") {
        await dispatch();
        continue;
      }
      pending = undefined;
      if (next.done) break;
      for (const line of next.value) {
        lineNumber++;
        if (line === "" && !keepEmptyLines) {
          stats.skipped++;
          continue;
        }
        batch.push(toRecord(line));
        batchLines.push(lineNumber);
        if (batch.length >= batchSize) await dispatch();
      }
    }
    await dispatch();
    await inFlight;
  } finally {
    if (progress) {
      clearInterval(progress);
      ctx.io.stderr.write("\r\x1b[K");
    }
    // Stop reading stdin (when a read is pending, this takes effect once it completes).
    void chunks.return?.(undefined);
  }

  const seconds = (now() - started) / 1000;
  const rate = seconds > 0 ? Math.round(stats.acknowledged / seconds) : stats.acknowledged;
  const partitions = [...stats.partitions].sort((a, b) => a - b);
  const summary =
    `produced ${plural(stats.acknowledged, "record")} to ${topic}` +
    (partitions.length > 0
      ? ` (${partitions.length === 1 ? "partition" : "partitions"} ${partitions.join(", ")})`
      : "") +
    ` in ${seconds.toFixed(2)} s, ${rate.toLocaleString("en-US")} records/s` +
    (stats.failed > 0 ? `; ${stats.failed} failed` : "") +
    (stats.skipped > 0 ? `; ${plural(stats.skipped, "empty line")} skipped` : "") +
    (interrupted ? "; interrupted" : "");
  if (requestError !== undefined) {
    const message = requestError instanceof Error ? requestError.message : String(requestError);
    throw new ProduceError(
      `${message} (${stats.acknowledged} of ${stats.sent} records sent were acknowledged)`,
    );
  }
  await write(ctx.format === "json" ? ctx.io.stderr : ctx.io.stdout, `${summary}\n`);
  if (stats.failed > 0) {
    throw new ProduceError(
      `${stats.failed} of ${plural(stats.sent, "record")} failed; first: ${firstFailure}`,
    );
  }
  return interrupted ? 130 : 0;
}

async function produceWithRetries(
  client: SluiceClient,
  topic: string,
  batch: ProduceRecord[],
  idempotencyKey: string,
  retries: number,
  signal: AbortSignal,
): Promise<ProduceOutcome[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.produceMany(topic, batch, { idempotencyKey });
    } catch (error) {
      const transient =
        error instanceof SluiceConnectionError || (error instanceof SluiceHttpError && error.retryable);
      if (!transient || attempt >= retries || signal.aborted) throw error;
      const backoff = Math.min(RETRY_DELAY_MAX_MS, RETRY_DELAY_MS * 2 ** attempt);
      const wait =
        error instanceof SluiceHttpError && error.retryAfterMs !== undefined ? error.retryAfterMs : backoff;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** A produce that ended with records unacknowledged: exit code 1. */
export class ProduceError extends Error {
  override readonly name = "ProduceError";
}

/** The lines of `input`, in groups (one per chunk read), without their \n or \r\n. */
export async function* lineChunks(input: AsyncIterable<Uint8Array | string>): AsyncGenerator<string[]> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of input) {
    const text = rest + (typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
    const lines = text.split("\n");
    rest = lines.pop() ?? "";
    if (lines.length > 0) yield lines.map(withoutCarriageReturn);
  }
  rest += decoder.decode();
  if (rest !== "") yield [withoutCarriageReturn(rest)];
}

function withoutCarriageReturn(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
