import { isSluiceError } from "@sluice/core";
import { type ProduceRecord, type RecordOutcome, recordPayloadBytes } from "@sluice/engine";

/**
 * Appends of a few records to one topic go to the engine together: those that arrive in the same
 * turn of the event loop (requests whose bytes came in together), and those that arrive while
 * such an append to the topic is in flight, which wait for it. One object and one commit for all
 * of them, as a Kafka producer (or the Confluent REST Proxy's, shared by its HTTP requests)
 * batches the records of many sends; each caller gets its own records' outcomes, in order. Once a
 * topic is asked for twice in one turn, its appends wait for the rest of the turn's I/O callbacks
 * (`setImmediate`, never a timer) so that requests arriving together join; a topic whose requests
 * come one at a time is appended at once, waiting for nothing.
 *
 * Why: many producers each sending one record paid for a whole append each (an encoded batch, an
 * index entry, a transaction with a conditional head move), and on the local server an append of
 * inline records never yields to the event loop, so requests could not even overlap
 * (docs/benchmarks.md, "Many small producers").
 *
 * What joining must not change, and how it does not:
 * - A record refused by the engine's checks must fail only its own request. Callers check their
 *   records first, so a joined append is refused only when something changed in between (a
 *   topic's cleanup.policy, say); the engine checks before it writes anything, so then each
 *   request is appended again on its own, and answered from that.
 * - Everything else (a store unavailable, the topic gone) fails a joined append as it would have
 *   failed each of its requests, and every one of them is told.
 * - Records keep their request's order; keyless records of a joined append go to one partition,
 *   as one request's do (the engine's sticky partitioning), and the partition moves on per append.
 * Requests with an idempotency key or producer fields are never joined: their outcomes are
 * remembered per request. Nor are requests of more than APPEND_JOIN_RECORDS_MAX records, which
 * are batches already.
 */
export class AppendCoalescer {
  /** Per topic with an append in flight or about to start: the requests waiting for it. */
  private readonly waiting = new Map<string, Waiting[]>();
  /** Per topic that was asked for side by side: how many appends of one request since (see `joining`). */
  private readonly joining = new Map<string, number>();
  /** The topics asked for in this turn of the event loop; undefined until one is. */
  private askedThisTurn: Set<string> | undefined;

  constructor(
    private readonly append: (topic: string, records: ProduceRecord[]) => Promise<RecordOutcome[]>,
  ) {}

  /** Whether a request of `records` may be joined to others (see the class). */
  static joins(records: readonly ProduceRecord[]): boolean {
    return records.length <= APPEND_JOIN_RECORDS_MAX;
  }

  /** Appends `records` to `topic`, with the requests beside it; its records' outcomes, in order. */
  appendRecords(topic: string, records: ProduceRecord[]): Promise<RecordOutcome[]> {
    if (this.askedTwiceThisTurn(topic)) this.joining.set(topic, 0);
    let queue = this.waiting.get(topic);
    if (queue === undefined && !this.joining.has(topic)) {
      // No sign of requests side by side: append at once, as if there were no coalescer. Requests
      // that arrive while it is in flight wait for it.
      this.waiting.set(topic, []);
      const alone = this.appendSafely(topic, records);
      void alone.then(() => this.next(topic));
      return alone;
    }
    if (queue === undefined) {
      queue = [];
      this.waiting.set(topic, queue);
      // After the event loop's I/O callbacks of this turn: requests that arrived together join.
      setImmediate(() => this.next(topic));
    }
    const waiting = queue;
    return new Promise((resolve) => waiting.push({ records, resolve }));
  }

  /**
   * Whether `topic` was asked for before in this turn of the event loop: requests side by side.
   * Until that happens a topic's requests are appended at once (one producer at a time waits for
   * nothing); from then on they wait for the turn's end to join, until JOINING_ENDS_AFTER appends
   * in a row were of one request each.
   */
  private askedTwiceThisTurn(topic: string): boolean {
    if (this.askedThisTurn === undefined) {
      this.askedThisTurn = new Set();
      setImmediate(() => {
        this.askedThisTurn = undefined;
      });
    }
    if (this.askedThisTurn.has(topic)) return true;
    this.askedThisTurn.add(topic);
    return false;
  }

  /** Starts the next append of `topic`, with every request waiting (up to a bound), or marks it idle. */
  private next(topic: string): void {
    const queue = this.waiting.get(topic)!;
    if (queue.length === 0) {
      this.waiting.delete(topic);
      return;
    }
    const group: Waiting[] = [];
    let records = 0;
    let bytes = 0;
    while (queue.length > 0) {
      const request = queue[0]!;
      const requestBytes = recordBytes(request.records);
      if (
        group.length > 0 &&
        (records + request.records.length > APPEND_JOINED_RECORDS_MAX ||
          bytes + requestBytes > APPEND_JOINED_BYTES_MAX)
      ) {
        break;
      }
      queue.shift();
      group.push(request);
      records += request.records.length;
      bytes += requestBytes;
    }
    const alone = this.joining.get(topic);
    if (alone !== undefined) {
      if (group.length > 1) this.joining.set(topic, 0);
      else if (alone + 1 >= JOINING_ENDS_AFTER) this.joining.delete(topic);
      else this.joining.set(topic, alone + 1);
    }
    void this.appendJoined(topic, group).then(() => this.next(topic));
  }

  private async appendJoined(topic: string, group: Waiting[]): Promise<void> {
    if (group.length === 1) {
      group[0]!.resolve(await this.appendSafely(topic, group[0]!.records));
      return;
    }
    const outcomes = await this.appendSafely(
      topic,
      group.flatMap((request) => request.records),
    );
    if (outcomes.some(refusedByChecks)) {
      // Refused before anything was written: each request again on its own, so a refusal names
      // its own records only.
      for (const request of group) request.resolve(await this.appendSafely(topic, request.records));
      return;
    }
    let at = 0;
    for (const request of group) {
      request.resolve(outcomes.slice(at, at + request.records.length));
      at += request.records.length;
    }
  }

  /** The engine's outcomes; a throw (the engine reports per record, so a bug) fails every record. */
  private async appendSafely(topic: string, records: ProduceRecord[]): Promise<RecordOutcome[]> {
    try {
      return await this.append(topic, records);
    } catch (error) {
      return records.map(() => ({ ok: false, error }));
    }
  }
}

interface Waiting {
  records: ProduceRecord[];
  resolve: (outcomes: RecordOutcome[]) => void;
}

/** Appends of one request in a row after which a topic's requests are appended at once again. */
const JOINING_ENDS_AFTER = 8;
/** A request of at most this many records may be joined to others. */
export const APPEND_JOIN_RECORDS_MAX = 100;
/**
 * A joined append carries at most this many records and record bytes (a request beyond either
 * goes alone): well within one engine append, and an object no larger than a few requests'.
 */
const APPEND_JOINED_RECORDS_MAX = 1_000;
const APPEND_JOINED_BYTES_MAX = 1024 * 1024;

/** The record bytes of `records`, as the engine counts them against max.message.bytes. */
function recordBytes(records: readonly ProduceRecord[]): number {
  let bytes = 0;
  for (const record of records) bytes += recordPayloadBytes(record);
  return bytes;
}

/** An outcome the engine's checks refused: nothing of that append was written. */
function refusedByChecks(outcome: RecordOutcome): boolean {
  return !outcome.ok && isSluiceError(outcome.error) && outcome.error.kind === "invalid_argument";
}
