import { type Clock, repeatEvery } from "@sluice/core";
import type { MaintenanceRunner, RunOptions, RunReport } from "./runner.js";

export interface MaintenanceScheduleOptions {
  runner: MaintenanceRunner;
  /** The clock the schedule runs on (the runner's own, normally). */
  clock: Clock;
  intervalMs: number;
  /** Each run's options; `budgetMs` defaults to the interval, so runs do not pile up. */
  run?: RunOptions;
  onReport?: (report: RunReport) => void;
  /** A run that failed as a whole (the topic list could not be read, say). */
  onError?: (error: unknown) => void;
  /**
   * Work of the place the schedule runs in, after each run and part of it (stop waits for it):
   * the local server reclaims its packed store's mostly dead segment files. Its failure goes to
   * onError.
   */
  afterRun?: () => Promise<void>;
}

export interface MaintenanceSchedule {
  /** Runs now, unless a run is already going (then waits for that one). */
  runNow(): Promise<void>;
  /** No more runs; resolves once the run in progress, if any, has ended. */
  stop(): Promise<void>;
}

/**
 * Runs maintenance every `intervalMs` on `clock` (the local server's schedule; in AWS an
 * EventBridge rule invokes the maintenance function instead). A tick that comes while a run is
 * still going is skipped.
 */
export function startMaintenanceSchedule(options: MaintenanceScheduleOptions): MaintenanceSchedule {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = (): Promise<void> => {
    if (running) return running;
    if (stopped) return Promise.resolve();
    running = options.runner
      .runOnce({ budgetMs: options.intervalMs, ...options.run })
      .then(
        (report) => options.onReport?.(report),
        (error: unknown) => options.onError?.(error),
      )
      .then(() => options.afterRun?.())
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = repeatEvery(options.clock, options.intervalMs, () => {
    void run();
  });
  return {
    runNow: run,
    stop: async () => {
      stopped = true;
      timer.cancel();
      await running;
    },
  };
}
