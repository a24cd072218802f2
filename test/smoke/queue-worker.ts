/**
 * A queue worker for the multi-process queue test (queues-multiprocess.smoke.test.ts): a share
 * group member in a process of its own, so the test can SIGKILL it mid-record. It reaches the
 * servers through a balancer like the test's, handles each record for a few milliseconds, then
 * rejects it (`poison-…`), releases it the first time (`flaky-…`) or accepts it, and writes one
 * JSON line per event on stdout: each delivery, each acknowledgement asked for, and its outcome.
 * SIGTERM makes it leave the group and exit.
 */
import { QueueAcknowledgementError, type QueueRecord, SluiceClient } from "@sluice/client";

const urls = (process.env.SLUICE_URLS ?? "").split(",").filter(Boolean);
const member = process.env.WORKER_MEMBER ?? `worker-${process.pid}`;
const handleMs = Number(process.env.WORKER_HANDLE_MS ?? 40);

const emit = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ member, ...event })}\n`);

const balanced = async (input: string, init: RequestInit) => {
  const path = input.slice(urls[0]!.length);
  const first = Math.floor(Math.random() * urls.length);
  let lastError: unknown;
  for (let attempt = 0; attempt < urls.length; attempt++) {
    try {
      return await fetch(urls[(first + attempt) % urls.length]! + path, init);
    } catch (error) {
      lastError = error;
      if (init.signal?.aborted) throw error;
    }
  }
  throw lastError;
};

const client = new SluiceClient({ url: urls[0]!, fetch: balanced });
const consumer = client.queueConsumer({
  groupId: process.env.WORKER_GROUP ?? "workers",
  topics: [process.env.WORKER_TOPIC ?? "jobs"],
  memberId: member,
  acknowledgement: "explicit",
  maxRecords: 5,
  pollWaitMs: 500,
  valueType: "STRING",
  configs: {
    autoOffsetReset: "earliest",
    lockDurationMs: Number(process.env.WORKER_LOCK_MS ?? 2_000),
    deliveryCountLimit: Number(process.env.WORKER_DELIVERY_LIMIT ?? 3),
    deadLetterTopic: process.env.WORKER_DEAD_LETTER_TOPIC ?? "jobs-dlq",
  },
  sessionTimeoutMs: 5_000,
});

process.once("SIGTERM", () => {
  void consumer.close().finally(() => process.exit(0));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function handle(record: QueueRecord): Promise<void> {
  emit({
    event: "delivered",
    partition: record.partitionId,
    offset: record.offset,
    deliveryCount: record.deliveryCount,
    atMs: Date.now(),
    lockExpiresAtMs: record.lockExpiresAt,
  });
  await sleep(handleMs);
  const value = String(record.value?.data ?? "");
  const type = value.startsWith("poison")
    ? "REJECT"
    : value.startsWith("flaky") && record.deliveryCount === 1
      ? "RELEASE"
      : "ACCEPT";
  const where = { partition: record.partitionId, offset: record.offset, type };
  emit({ event: "ack", ...where, outcome: "asked", atMs: Date.now() });
  try {
    await (type === "REJECT" ? record.reject() : type === "RELEASE" ? record.release() : record.accept());
    emit({ event: "ack", ...where, outcome: "confirmed", atMs: Date.now() });
  } catch (error) {
    const refused = error instanceof QueueAcknowledgementError;
    emit({
      event: "ack",
      ...where,
      outcome: refused ? "refused" : "unknown",
      atMs: Date.now(),
      // Why, for a failure message: a refusal names the member's session or the lock.
      reason: error instanceof Error ? error.message.slice(0, 200) : String(error),
    });
  }
}

for await (const record of consumer) {
  // Handled one after another; acknowledgements go out together in the background.
  await handle(record);
}
