import { backoffMs, type Clock, UnavailableError } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { type MetadataStore, TransactionCanceledError } from "@sluice/storage";
import type { ShareGroupConfigs } from "./configs.js";
import { writeDueDeadLetters } from "./dead-letters.js";
import type { ShareGroupMeter } from "./metrics.js";
import {
  type ArchivePolicy,
  giveBack,
  loadBatchesFor,
  loadWindow,
  locate,
  type SharePartition,
  type Slot,
  type Window,
} from "./window.js";
import { batchUpdate, type WriteStamp } from "./writes.js";

/** ACCEPT: processed. RELEASE: deliver again. REJECT: archive (and dead-letter). RENEW: extend the lock. */
export type AcknowledgeType = "ACCEPT" | "RELEASE" | "REJECT" | "RENEW";
export const ACKNOWLEDGE_TYPES: readonly AcknowledgeType[] = ["ACCEPT", "RELEASE", "REJECT", "RENEW"];

export interface Acknowledgement {
  topic: string;
  partition: number;
  offset: number;
  type: AcknowledgeType;
}

export type AcknowledgementOutcome =
  | { ok: true /** RENEW: the new lock deadline. */; lockDeadlineMs?: number }
  | { ok: false; code: "INVALID_RECORD_STATE" | "UNKNOWN_TOPIC_OR_PARTITION"; message: string };

export type AcknowledgementResult = Acknowledgement & { outcome: AcknowledgementOutcome };

export interface AcknowledgeDeps {
  engine: Engine;
  metadata: MetadataStore;
  clock: Clock;
  meter?: ShareGroupMeter;
}

export interface PartitionAcknowledgeRequest {
  partition: SharePartition;
  memberId: string;
  acknowledgements: Acknowledgement[];
  configs: ShareGroupConfigs;
  groupUid: string;
}

const ATTEMPTS_MAX = 30;

/**
 * Applies one member's acknowledgements of one share-partition (ARCHITECTURE.md, "Queues",
 * Acknowledge): each offset whose record the member holds under a lock that has not passed on
 * this instance's clock is applied; the others are refused, saying why. The changed batches are
 * written in one transaction under their versions; on a conflict, read and decide again.
 */
export async function acknowledgeInPartition(
  deps: AcknowledgeDeps,
  request: PartitionAcknowledgeRequest,
): Promise<{ results: AcknowledgementResult[]; headSettled: boolean; released: boolean }> {
  const { metadata, clock } = deps;
  const { memberId, configs } = request;
  const policy: ArchivePolicy = {
    deliveryCountLimit: configs.deliveryCountLimit,
    deadLetter: configs.deadLetterTopic !== null,
  };
  // After a lost answer the retry may find its own earlier write: recognised, not refused. Only
  // the acknowledgements that write carried: one refused then cannot have landed.
  const mayHaveLanded = new Set<number>();
  for (let attempt = 1; ; attempt++) {
    const nowMs = clock.now();
    const window = await loadBatchesFor(
      metadata,
      request.partition,
      request.acknowledgements.map((ack) => ack.offset),
    );
    // Records given back are there to take; settling the head batch lets the start (and, in a full
    // window, fresh records) move. Settling records further in changes nothing anyone waits for.
    let headSettled = false;
    let released = false;
    let deadLettersDue = false;
    const applied = new Map<AcknowledgeType, number>();
    const rejected = new Set<number>();
    const written: number[] = [];
    const results = request.acknowledgements.map((ack, position): AcknowledgementResult => {
      const outcome = decide(window, ack, memberId, nowMs, policy, configs, mayHaveLanded.has(position));
      if (outcome.ok && outcome.slot) {
        written.push(position);
        applied.set(ack.type, (applied.get(ack.type) ?? 0) + 1);
        if (ack.type === "REJECT") rejected.add(ack.offset);
        const { batch, index } = locate(window, ack.offset)!;
        batch.slots[index] = outcome.slot;
        batch.changed = true;
        if (outcome.slot.state === "A") released = true;
        else if (outcome.slot.state !== "Q" && batch.base === window.state?.startOffset) headSettled = true;
        if (outcome.slot.state === "L" || outcome.slot.state === "R") deadLettersDue = true;
      }
      return {
        ...ack,
        outcome: outcome.ok
          ? {
              ok: true,
              ...(outcome.lockDeadlineMs === undefined ? {} : { lockDeadlineMs: outcome.lockDeadlineMs }),
            }
          : { ok: false, code: "INVALID_RECORD_STATE", message: outcome.message },
      };
    });
    const stamp: WriteStamp = { writtenBy: memberId, writtenAtMs: nowMs };
    const changed = window.batches.filter((batch) => batch.changed);
    const operations = changed.map((batch) => batchUpdate(batch, stamp));
    if (operations.length === 0) return { results, headSettled: false, released: false };
    try {
      await metadata.transactWrite(operations);
      for (const [type, count] of applied) deps.meter?.acknowledged(request.partition, type, count);
      deps.meter?.written(request.partition, changed, policy.deadLetter, rejected);
    } catch (error) {
      if (error instanceof TransactionCanceledError && attempt < ATTEMPTS_MAX) {
        await clock.sleep(backoffMs(clock, Math.min(attempt, 6), 2, 100));
        continue;
      }
      if (error instanceof UnavailableError && attempt < ATTEMPTS_MAX) {
        for (const position of written) mayHaveLanded.add(position);
        continue;
      }
      throw error;
    }
    if (deadLettersDue && configs.deadLetterTopic !== null) {
      await deadLetterNow(deps, request.partition, configs.deadLetterTopic, request.groupUid, memberId);
    }
    return { results, headSettled, released };
  }
}

/**
 * Gives back every record `memberId` holds in the share-partition (a member leaving): available
 * again with their delivery counts kept, or archived when out of deliveries.
 */
export async function releaseAllHeld(
  deps: AcknowledgeDeps,
  partition: SharePartition,
  memberId: string,
  configs: ShareGroupConfigs,
  groupUid: string,
): Promise<number> {
  const policy: ArchivePolicy = {
    deliveryCountLimit: configs.deliveryCountLimit,
    deadLetter: configs.deadLetterTopic !== null,
  };
  for (let attempt = 1; ; attempt++) {
    const nowMs = deps.clock.now();
    const window = await loadWindow(deps.metadata, partition);
    let count = 0;
    let deadLettersDue = false;
    for (const batch of window.batches) {
      batch.slots.forEach((slot, index) => {
        if (slot.state !== "Q" || slot.member !== memberId) return;
        const given = giveBack(slot, policy);
        batch.slots[index] = given;
        batch.changed = true;
        count++;
        if (given.state === "L") deadLettersDue = true;
      });
    }
    const stamp: WriteStamp = { writtenBy: memberId, writtenAtMs: nowMs };
    const changed = window.batches.filter((batch) => batch.changed);
    const operations = changed.map((batch) => batchUpdate(batch, stamp));
    if (operations.length === 0) return 0;
    try {
      // Bounded by the window; a member rarely holds more than a few batches.
      for (let start = 0; start < operations.length; start += 100) {
        await deps.metadata.transactWrite(operations.slice(start, start + 100));
        deps.meter?.written(partition, changed.slice(start, start + 100), policy.deadLetter);
      }
    } catch (error) {
      if (
        (error instanceof TransactionCanceledError || error instanceof UnavailableError) &&
        attempt < ATTEMPTS_MAX
      ) {
        await deps.clock.sleep(backoffMs(deps.clock, Math.min(attempt, 6), 2, 100));
        continue;
      }
      throw error;
    }
    if (deadLettersDue && configs.deadLetterTopic !== null)
      await deadLetterNow(deps, partition, configs.deadLetterTopic, groupUid, memberId);
    return count;
  }
}

/** Writes the share-partition's due dead letters now rather than at the next acquisition; one try. */
export async function deadLetterNow(
  deps: AcknowledgeDeps,
  partition: SharePartition,
  topic: string,
  groupUid: string,
  memberId: string,
): Promise<void> {
  const window = await loadWindow(deps.metadata, partition);
  if ((await writeDueDeadLetters(deps.engine, window, topic, groupUid)) === 0) return;
  const stamp: WriteStamp = { writtenBy: memberId, writtenAtMs: deps.clock.now() };
  const changed = window.batches.filter((batch) => batch.changed);
  try {
    await deps.metadata.transactWrite(changed.map((batch) => batchUpdate(batch, stamp)));
    deps.meter?.written(partition, changed, true);
  } catch (error) {
    // Changed meanwhile, or unknown: still due, and the next acquisition finishes it (the
    // dead letters' idempotency keys make the second append a replay).
    if (!(error instanceof TransactionCanceledError || error instanceof UnavailableError)) throw error;
  }
}

type Decision = { ok: true; slot?: Slot; lockDeadlineMs?: number } | { ok: false; message: string };

function decide(
  window: Window,
  ack: Acknowledgement,
  memberId: string,
  nowMs: number,
  policy: ArchivePolicy,
  configs: ShareGroupConfigs,
  mayHaveLanded: boolean,
): Decision {
  const where = `record ${ack.offset} of ${ack.topic}/${ack.partition}`;
  const state = window.state;
  if (!state || ack.offset >= state.endOffset) {
    return { ok: false, message: `${where} was never handed out to this share group` };
  }
  const found = locate(window, ack.offset);
  if (!found) {
    // Before the start, or in a batch dropped (settled) since the state was read.
    return { ok: false, message: `${where} is already settled` };
  }
  const slot = found.batch.slots[found.index]!;
  const held = slot.state === "Q" && slot.member === memberId;
  if (held && slot.deadlineMs >= nowMs) {
    switch (ack.type) {
      case "ACCEPT":
        return {
          ok: true,
          slot: { state: "K", deliveries: slot.deliveries, member: memberId, deadlineMs: 0 },
        };
      case "RELEASE":
        return { ok: true, slot: giveBack(slot, policy) };
      case "REJECT":
        return {
          ok: true,
          slot: {
            state: policy.deadLetter ? "R" : "X",
            deliveries: slot.deliveries,
            member: memberId,
            deadlineMs: 0,
          },
        };
      case "RENEW": {
        const lockDeadlineMs = nowMs + configs.lockDurationMs;
        return {
          ok: true,
          slot: { ...slot, deadlineMs: lockDeadlineMs },
          lockDeadlineMs,
        };
      }
    }
  }
  // A retry of what this member already did (its earlier answer lost) succeeds again.
  if (ack.type === "ACCEPT" && slot.state === "K" && slot.member === memberId) return { ok: true };
  if (ack.type === "REJECT" && (slot.state === "X" || slot.state === "R") && slot.member === memberId)
    return { ok: true };
  if (mayHaveLanded && ack.type === "RELEASE" && !held) return { ok: true };
  return { ok: false, message: refusal(where, slot, memberId, nowMs) };
}

function refusal(where: string, slot: Slot, memberId: string, nowMs: number): string {
  switch (slot.state) {
    case "Q":
      if (slot.member === memberId) {
        return `${where}: the lock of member ${memberId} passed ${nowMs - slot.deadlineMs} ms ago; the record may go to another member`;
      }
      return slot.deadlineMs >= nowMs
        ? `${where} is acquired by another member`
        : `${where} is not acquired by member ${memberId} (another member's lock on it passed)`;
    case "A":
      return `${where} is not acquired by member ${memberId}: it is available again (its lock passed, or it was released)`;
    case "K":
      return `${where} is already acknowledged`;
    default:
      return `${where} is archived`;
  }
}
