import { createHash } from "node:crypto";
import { InvalidArgumentError } from "@sluice/core";
import { LOCK_DURATION_MS_MAX, type ShareGroupConfigs } from "@sluice/queues";
import type { ProcessorSpec } from "./definition.js";

/**
 * A shared processor's own share group (ARCHITECTURE.md, "Shared processors"): named from the
 * processor's incarnation, in a prefix the queue API refuses to users, so a processor deleted and
 * created again starts with a fresh group and no user's queue can take its records.
 */
export const SHARED_GROUP_PREFIX = "__processor.";

export function sharedGroupId(uid: string): string {
  return `${SHARED_GROUP_PREFIX}${uid}`;
}

/**
 * The queue API's guard: a shared processor's group is the processor's alone — a queue consumer
 * joining it would take its records, an operator's reset would skip them behind its back.
 */
export function refuseProcessorGroup(groupId: string, action: string): void {
  if (groupId.startsWith(SHARED_GROUP_PREFIX)) {
    throw new InvalidArgumentError(
      `cannot ${action} share group ${groupId}: ids starting with ${SHARED_GROUP_PREFIX} belong to shared processors (use the processor's routes)`,
      { details: { field: "group_id" } },
    );
  }
}

/** Time past the handler's timeout for appending its outputs and acknowledging, within the lock. */
export const ACKNOWLEDGE_MARGIN_MS = 30_000;

/**
 * The group's configs, fixed when the processor is created: one delivery beyond the attempts (a
 * record whose holder died on its last attempt is dead-lettered without another call), a lock
 * that outlasts a handler call, the starting position, and the processor's dead-letter topic as
 * the group's own for the rare record that runs out of deliveries without an answer.
 */
export function sharedGroupConfigs(spec: ProcessorSpec): ShareGroupConfigs {
  return {
    deliveryCountLimit: spec.retry.maxAttempts + 1,
    lockDurationMs: Math.min(LOCK_DURATION_MS_MAX, spec.retry.timeoutMs + ACKNOWLEDGE_MARGIN_MS),
    autoOffsetReset: spec.startingPosition.kind === "earliest" ? "earliest" : "latest",
    deadLetterTopic: spec.deadLetterTopic,
  };
}

function digest(parts: (string | number)[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 48);
}

/**
 * The idempotency key of one delivery's outputs to one topic: a retry of the append after a lost
 * answer writes nothing new; a later delivery of the same records (a higher delivery count, a
 * later lock) is a new append — outputs are at least once.
 */
export function sharedOutputKey(
  incarnation: { uid: string; resets: number },
  topicId: string,
  partition: number,
  deliveries: { offset: number; deliveryCount: number; lockDeadlineMs: number }[],
  outputTopic: string,
): string {
  // The lock deadline tells deliveries apart that a reset of the group numbered alike.
  const named = deliveries
    .map((delivery) => `${delivery.offset}.${delivery.deliveryCount}.${delivery.lockDeadlineMs}`)
    .join(",");
  return `sluice-proc-${digest([incarnation.uid, incarnation.resets, topicId, partition, named, outputTopic])}`;
}

/**
 * The idempotency key of a record's dead letter: one copy per record (until the processor is
 * reset) while the key is kept (24 h).
 */
export function sharedDeadLetterKey(
  incarnation: { uid: string; resets: number },
  topicId: string,
  partition: number,
  offset: number,
): string {
  return `sluice-proc-dlq-${digest([incarnation.uid, incarnation.resets, topicId, partition, offset])}`;
}
