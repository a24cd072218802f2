import {
  DeliveryUnknownError,
  ProducerClosedError,
  type ProducerRecord,
  type RecordMetadata,
  SluiceConnectionError,
  SluiceHttpError,
} from "@sluice/client";
import { integerOption, keyValue, listOption, stringOption, UsageError, unescapeText } from "../args.js";
import type { CommandContext } from "../context.js";
import { write } from "../io.js";
import { plural } from "./topic.js";

/** Records per batch (per partition); the batch is sent when full or 5 ms after its first record. */
export const PRODUCE_BATCH_DEFAULT = 1_000;
const PROGRESS_INTERVAL_MS = 250;
export const PRODUCE_RETRIES_DEFAULT = 3;
/** A batch that is not full goes this long after its first record (typing by hand shows at once). */
const LINGER_MS = 5;
const COMPRESSIONS = ["none", "gzip"] as const;

/**
 * `sluice produce <topic>`: one record per stdin line, through the SDK's batching producer
 * (RecordBatch v2 batches over the binary route, idempotent: a resent batch is never written
 * twice and each partition keeps the input order).
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
  const lingerMs =
    integerOption(ctx.values, "linger-ms", "--linger-ms", { min: 0, max: 60_000 }) ?? LINGER_MS;
  const compression = stringOption(ctx.values, "compression") ?? "none";
  if (!(COMPRESSIONS as readonly string[]).includes(compression)) {
    throw new UsageError(`--compression must be one of ${COMPRESSIONS.join(", ")}, not ${compression}`);
  }
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

  const toRecord = (line: string): ProducerRecord => {
    const record: ProducerRecord = { topic, value: line };
    if (separator !== undefined) {
      const at = line.indexOf(separator);
      if (at !== -1) {
        record.key = line.slice(0, at);
        record.value = line.slice(at + separator.length);
      }
    }
    if (headers.length > 0) record.headers = headers;
    if (partition !== undefined) record.partition = partition;
    return record;
  };

  const producer = ctx.client.producer({
    lingerMs,
    batchRecordsMax: batchSize,
    retries,
    compression: compression as (typeof COMPRESSIONS)[number],
  });
  const now = ctx.io.now ?? Date.now;
  const started = now();
  const stats = { sent: 0, acknowledged: 0, failed: 0, skipped: 0, partitions: new Set<number>() };
  let firstFailure: string | undefined;
  /** A failure that stops the run: the server cannot be reached, or the producer stopped. */
  let fatal: unknown;
  let lineNumber = 0;

  // Reports go out in input order: each line's outcome waits for the lines before it.
  const pending: { line: number; outcome?: string }[] = [];
  let printing = Promise.resolve();
  const flushReports = () => {
    const ready: string[] = [];
    while (pending.length > 0 && pending[0]!.outcome !== undefined) {
      const outcome = pending.shift()!.outcome!;
      if (outcome !== "") ready.push(outcome);
    }
    if (ready.length > 0 && ctx.format === "json") {
      const text = `${ready.join("\n")}\n`;
      printing = printing.then(() => write(ctx.io.stdout, text));
    }
  };
  const delivered = (slot: { line: number; outcome?: string }, metadata: RecordMetadata) => {
    stats.acknowledged++;
    stats.partitions.add(metadata.partitionId);
    slot.outcome = JSON.stringify({
      line: slot.line,
      partition: metadata.partitionId,
      offset: metadata.offset,
      timestamp: metadata.timestamp,
    });
    flushReports();
  };
  let announceFatal: (value: "failed") => void = () => undefined;
  const failed = new Promise<"failed">((resolve) => {
    announceFatal = resolve;
  });
  const refused = (slot: { line: number; outcome?: string }, error: unknown) => {
    if (isFatal(error) || error instanceof ProducerClosedError) {
      // The run stops: such records get no report line (the summary says how many were acknowledged).
      if (!(error instanceof ProducerClosedError)) fatal ??= error;
      announceFatal("failed");
      slot.outcome = "";
      flushReports();
      return;
    }
    stats.failed++;
    const status = error instanceof SluiceHttpError ? error.status : 500;
    const message = error instanceof Error ? error.message : String(error);
    firstFailure ??= `line ${slot.line}: ${message}`;
    slot.outcome = JSON.stringify({ line: slot.line, error_code: status, message });
    flushReports();
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
  let interrupted = false;
  const aborted = new Promise<"aborted">((resolve) => {
    if (ctx.signal.aborted) resolve("aborted");
    ctx.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    reading: while (fatal === undefined) {
      const next = await Promise.race([chunks.next(), aborted, failed]);
      if (next === "failed") break;
      if (next === "aborted") {
        interrupted = true;
        break;
      }
      if (next.done) break;
      for (const line of next.value) {
        lineNumber++;
        if (line === "" && !keepEmptyLines) {
          stats.skipped++;
          continue;
        }
        const slot: { line: number; outcome?: string } = { line: lineNumber };
        pending.push(slot);
        stats.sent++;
        try {
          // Waits while the producer's buffer is full: stdin is read as fast as records are sent.
          await producer.produce(toRecord(line), (error, metadata) => {
            if (metadata) delivered(slot, metadata);
            else refused(slot, error);
          });
        } catch (error) {
          refused(slot, error);
        }
        if (fatal !== undefined) break reading;
      }
    }
    // After a failure that stops the run, what is unsent is dropped; what is in flight finishes.
    if (fatal === undefined) await producer.flush().catch(() => undefined);
    else await producer.abort(fatal);
    flushReports();
    await printing;
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
  if (fatal !== undefined) {
    throw new ProduceError(
      `${describeFatal(fatal)} (${stats.acknowledged} of ${stats.sent} records sent were acknowledged)`,
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

/**
 * Failures that stop the run rather than one record: the server out of reach after the retries
 * (the records' outcome unknown), a refusal of the whole producer (fenced, closed).
 */
function isFatal(error: unknown): boolean {
  if (error instanceof SluiceHttpError) return error.code === "INVALID_PRODUCER_EPOCH" || error.status >= 500;
  return true;
}

function describeFatal(error: unknown): string {
  const cause = error instanceof DeliveryUnknownError ? error.cause : error;
  if (cause instanceof SluiceConnectionError) return cause.message;
  return error instanceof Error ? error.message : String(error);
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
