/**
 * Time as the SDK's long-running parts (the group and queue consumers, the batching producer)
 * need it. Structurally a subset of `Clock` in @sluice/core, so a `SimulatedClock` from
 * @sluice/testing drives their timers in tests; `systemClock` is real time.
 */
export interface ConsumerClock {
  now(): number;
  /** Resolves after `ms`; may reject (or resolve early) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A number in [0, 1) for jitter; Math.random when absent. */
  random?(): number;
}

/** Real time. A sleep resolves early, without an error, when its signal aborts. */
export const systemClock: ConsumerClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
