import type { RetryPolicy } from "./definition.js";

/** The wait before attempt `attempts + 1`: backoffMs doubled per attempt after the first, capped. */
export function retryDelayMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempts - 1));
}

/** The longest a record can wait in retries before it is dead-lettered: the sum of the waits. */
export function retryStallMs(policy: RetryPolicy): number {
  let total = 0;
  for (let attempts = 1; attempts < policy.maxAttempts; attempts++) total += retryDelayMs(policy, attempts);
  return total;
}

/** Whether a record that has now failed `attempts` times gets no more attempts. */
export function isSpent(
  policy: RetryPolicy,
  attempts: number,
  recordTimestampMs: number,
  nowMs: number,
): boolean {
  if (attempts >= policy.maxAttempts) return true;
  return policy.maxRecordAgeMs !== null && nowMs - recordTimestampMs > policy.maxRecordAgeMs;
}
