/**
 * Time and chance, injected. Every timer, backoff, expiry and random choice on an engine path goes
 * through a Clock, so lease, session-timeout, retry and retention tests run on a simulated clock
 * (packages/testing) in milliseconds and replay exactly from a seed.
 *
 * Safety never depends on a clock: leases and group ownership are fenced by epochs in conditional
 * writes. Clocks decide only liveness (when a silent holder counts as gone).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `callback` once after `ms`, unless cancelled first. */
  setTimer(ms: number, callback: () => void): Timer;
  /** A number in [0, 1): backoff jitter, starting partitions, assignment tie-breaks. */
  random(): number;
}

export interface Timer {
  cancel(): void;
}

/** Wall-clock time, real timers and Math.random. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(handle);
        reject(signal?.reason);
      };
      const handle = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
  setTimer: (ms, callback) => {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
  random: () => Math.random(),
};

/** Calls `callback` every `ms` until cancelled, on any clock. */
export function repeatEvery(clock: Clock, ms: number, callback: () => void): Timer {
  let current: Timer | undefined;
  let cancelled = false;
  const schedule = () => {
    current = clock.setTimer(ms, () => {
      if (cancelled) return;
      schedule();
      callback();
    });
  };
  schedule();
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** Full-jitter exponential backoff (attempt 1, 2, …): a random wait below min(cap, base·2^attempt). */
export function backoffMs(clock: Clock, attempt: number, baseMs = 10, capMs = 1_000): number {
  return clock.random() * Math.min(capMs, baseMs * 2 ** attempt);
}
