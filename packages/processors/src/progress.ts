import { randomBytes } from "node:crypto";
import { InternalError } from "@sluice/core";
import { heldCondition, LEASE_EXPIRES_AT, type Lease } from "@sluice/leases";
import { type AttributeValue, cond, type Item, type ItemKey, type TransactOperation } from "@sluice/storage";

/** A blocked ordering key's first not-done record: how often it failed and when to try again. */
export interface RetryState {
  attempts: number;
  firstFailedAtMs: number;
  nextAttemptAtMs: number;
  error: string;
}

export interface LastError {
  message: string;
  offset: number;
  atMs: number;
}

/**
 * A source partition's progress as stored (ARCHITECTURE.md, "Processors", the progress item).
 * Done = [0, checkpoint) ∪ ([checkpoint, frontier) \ pending).
 */
export interface Progress {
  /** The processor incarnation it belongs to; undefined when not started. */
  uid: string | undefined;
  topicId: string | undefined;
  checkpoint: number;
  frontier: number;
  /** Sorted; every offset in [checkpoint, frontier). */
  pending: number[];
  retries: Map<number, RetryState>;
  version: number;
  commitId: string | undefined;
  processed: number;
  deadLettered: number;
  filtered: number;
  lastError: LastError | undefined;
}

export function emptyProgress(): Progress {
  return {
    uid: undefined,
    topicId: undefined,
    checkpoint: 0,
    frontier: 0,
    pending: [],
    retries: new Map(),
    version: 0,
    commitId: undefined,
    processed: 0,
    deadLettered: 0,
    filtered: 0,
    lastError: undefined,
  };
}

export function progressFromItem(item: Item | undefined): Progress {
  if (!item || item.version === undefined) return emptyProgress();
  const retries = new Map<number, RetryState>();
  const stored = item.retries;
  if (stored && typeof stored === "object" && !Array.isArray(stored) && !(stored instanceof Uint8Array)) {
    for (const [offset, value] of Object.entries(stored)) {
      const entry = value as Record<string, AttributeValue>;
      retries.set(Number(offset), {
        attempts: Number(entry.attempts),
        firstFailedAtMs: Number(entry.firstFailedAt),
        nextAttemptAtMs: Number(entry.nextAttemptAt),
        error: String(entry.error ?? ""),
      });
    }
  }
  const lastError = item.lastError as Record<string, AttributeValue> | undefined;
  return {
    uid: typeof item.uid === "string" ? item.uid : undefined,
    topicId: typeof item.topicId === "string" ? item.topicId : undefined,
    checkpoint: Number(item.checkpoint ?? 0),
    frontier: Number(item.frontier ?? item.checkpoint ?? 0),
    pending:
      item.pending instanceof Uint8Array ? decodeOffsets(item.pending, Number(item.checkpoint ?? 0)) : [],
    retries,
    version: Number(item.version),
    commitId: typeof item.commitId === "string" ? item.commitId : undefined,
    processed: Number(item.processed ?? 0),
    deadLettered: Number(item.deadLettered ?? 0),
    filtered: Number(item.filtered ?? 0),
    lastError:
      lastError && typeof lastError === "object"
        ? { message: String(lastError.message), offset: Number(lastError.offset), atMs: Number(lastError.at) }
        : undefined,
  };
}

/** What a commit changes: the next progress and the counters it adds. */
export interface ProgressChange {
  uid: string;
  topicId: string;
  checkpoint: number;
  frontier: number;
  pending: readonly number[];
  retries: ReadonlyMap<number, RetryState>;
  processed: number;
  deadLettered: number;
  filtered: number;
  lastError: LastError | undefined;
}

export function newCommitId(): string {
  return randomBytes(9).toString("base64url");
}

/**
 * The progress item's update in a commit: conditioned on the lease as held and on the version
 * read, it moves the version on by one, stamps `commitId` and renews the lease's expiry.
 */
export function progressUpdate(
  key: ItemKey,
  lease: Lease,
  expectedVersion: number,
  change: ProgressChange,
  commitId: string,
  leaseExpiresAtMs: number,
  /** The first commit of an incarnation: counters start at the change's and the last error goes. */
  initial = false,
): TransactOperation {
  if (
    change.pending.some(
      (offset, index) =>
        offset < change.checkpoint ||
        offset >= change.frontier ||
        (index > 0 && offset <= change.pending[index - 1]!),
    )
  ) {
    throw new InternalError(
      `pending offsets must be sorted within [checkpoint ${change.checkpoint}, frontier ${change.frontier})`,
    );
  }
  const set: Record<string, AttributeValue> = {
    uid: change.uid,
    topicId: change.topicId,
    checkpoint: change.checkpoint,
    frontier: change.frontier,
    pending: encodeOffsets(change.pending, change.checkpoint),
    retries: Object.fromEntries(
      [...change.retries].map(([offset, state]) => [
        String(offset),
        {
          attempts: state.attempts,
          firstFailedAt: state.firstFailedAtMs,
          nextAttemptAt: state.nextAttemptAtMs,
          error: state.error,
        },
      ]),
    ),
    version: expectedVersion + 1,
    commitId,
    // Who made the commit: the lease owner it was conditioned on (for audits and the scenario checks).
    committedBy: lease.owner,
    [LEASE_EXPIRES_AT]: leaseExpiresAtMs,
  };
  if (change.lastError) {
    set.lastError = {
      message: change.lastError.message,
      offset: change.lastError.offset,
      at: change.lastError.atMs,
    };
  }
  const add: Record<string, number> = {};
  const counters = {
    processed: change.processed,
    deadLettered: change.deadLettered,
    filtered: change.filtered,
  };
  for (const [name, value] of Object.entries(counters)) {
    if (initial) set[name] = value;
    else if (value > 0) add[name] = value;
  }
  const remove = initial && !change.lastError ? ["lastError"] : [];
  return {
    kind: "update",
    key,
    changes: {
      set,
      ...(Object.keys(add).length > 0 ? { add } : {}),
      ...(remove.length > 0 ? { remove } : {}),
    },
    condition: cond.and(
      heldCondition(lease),
      expectedVersion === 0
        ? cond.or(cond.notExists("version"), cond.eq("version", 0))
        : cond.eq("version", expectedVersion),
    ),
  };
}

/**
 * Offsets as runs: for each run of consecutive offsets, the gap since the previous run's end (or
 * `base`) and its length, as unsigned varints. Pending offsets come in runs (a blocked key's
 * records, a batch in flight), so this is a few bytes for the common cases and at most about
 * 2 bytes an offset for the worst.
 */
export function encodeOffsets(offsets: readonly number[], base: number): Uint8Array {
  const bytes: number[] = [];
  let previousEnd = base;
  let index = 0;
  while (index < offsets.length) {
    const start = offsets[index]!;
    let end = start + 1;
    index++;
    while (index < offsets.length && offsets[index] === end) {
      end++;
      index++;
    }
    writeVarint(bytes, start - previousEnd);
    writeVarint(bytes, end - start);
    previousEnd = end;
  }
  return Uint8Array.from(bytes);
}

export function decodeOffsets(bytes: Uint8Array, base: number): number[] {
  const offsets: number[] = [];
  let position = 0;
  let previousEnd = base;
  const read = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[position++];
      if (byte === undefined) throw new InternalError("truncated pending offsets in a progress item");
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  };
  while (position < bytes.length) {
    const start = previousEnd + read();
    const length = read();
    for (let offset = start; offset < start + length; offset++) offsets.push(offset);
    previousEnd = start + length;
  }
  return offsets;
}

function writeVarint(bytes: number[], value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
}
