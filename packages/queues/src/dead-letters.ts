import { createHash } from "node:crypto";
import { NotFoundError, type RecordHeader, UnavailableError } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { type SlotState, storedStates, type Window } from "./window.js";

/** The headers a dead letter carries besides the record's own (ARCHITECTURE.md, "Queues"). */
export const DEAD_LETTER_HEADERS = {
  group: "sluice.dlq.group",
  topic: "sluice.dlq.topic",
  partition: "sluice.dlq.partition",
  offset: "sluice.dlq.offset",
  deliveryCount: "sluice.dlq.delivery.count",
  reason: "sluice.dlq.reason",
} as const;

export type DeadLetterReason = "delivery-count-limit" | "rejected";

/** At most this many dead letters are written per call, so one call never runs long. */
const DEAD_LETTERS_PER_CALL_MAX = 20;

/**
 * The idempotency key of one record's dead letter: the same for every writer that meets it due,
 * so a writer that died between the append and marking it archived never makes a second copy.
 */
export function deadLetterKey(groupUid: string, window: Window, offset: number, epoch: number): string {
  const digest = createHash("sha256")
    .update(`${groupUid}\u0000${window.topicId}\u0000${window.partition}\u0000${offset}\u0000${epoch}`)
    .digest("hex");
  return `sluice-dlq-${digest.slice(0, 48)}`;
}

/**
 * Appends the window's due dead letters (`L`, `R`) to `topic` and marks each archived (`X`) in
 * memory, its batch changed; the caller writes the batches under their versions. A dead-letter
 * topic that is gone, or a store that is briefly unavailable, leaves the rest due for a later
 * caller; nothing else is swallowed.
 */
export async function writeDueDeadLetters(
  engine: Engine,
  window: Window,
  topic: string,
  groupUid: string,
): Promise<number> {
  const epoch = window.state?.epoch ?? 1;
  let written = 0;
  for (const batch of window.batches) {
    let stored: SlotState[] | undefined;
    for (let index = 0; index < batch.slots.length; index++) {
      const slot = batch.slots[index]!;
      if (slot.state !== "L" && slot.state !== "R") continue;
      // Only a dead letter due in the store is final: one decided in memory (a lock seen passed)
      // may yet lose to the holder's acknowledgement, and an appended letter cannot be taken back.
      stored ??= storedStates(batch) ?? [];
      if (stored[index] !== slot.state) continue;
      if (written >= DEAD_LETTERS_PER_CALL_MAX) return written;
      const offset = batch.base + index;
      try {
        const fetched = await engine.fetch({
          topic: window.topic,
          partition: window.partition,
          offset,
          maxRecords: 1,
        });
        const record = fetched.records.find((candidate) => candidate.offset === offset);
        if (!record) return written;
        const text = (value: string) => new TextEncoder().encode(value);
        const headers: RecordHeader[] = [
          ...record.headers,
          { key: DEAD_LETTER_HEADERS.group, value: text(window.groupId) },
          { key: DEAD_LETTER_HEADERS.topic, value: text(window.topic) },
          { key: DEAD_LETTER_HEADERS.partition, value: text(String(window.partition)) },
          { key: DEAD_LETTER_HEADERS.offset, value: text(String(offset)) },
          { key: DEAD_LETTER_HEADERS.deliveryCount, value: text(String(slot.deliveries)) },
          {
            key: DEAD_LETTER_HEADERS.reason,
            value: text(slot.state === "L" ? "delivery-count-limit" : "rejected"),
          },
        ];
        await engine.append({
          topic,
          records: [{ key: record.key, value: record.value, headers, timestamp: record.timestamp }],
          idempotencyKey: deadLetterKey(groupUid, window, offset, epoch),
        });
      } catch (error) {
        // The topic is gone, or the store briefly unavailable (the append may have landed: its key
        // answers the next attempt with the first copy): later.
        if (error instanceof NotFoundError || error instanceof UnavailableError) return written;
        throw error;
      }
      batch.slots[index] = { state: "X", deliveries: slot.deliveries, member: slot.member, deadlineMs: 0 };
      batch.changed = true;
      written++;
    }
  }
  return written;
}
