import type { Clock, Timer } from "@sluice/core";

export interface SimulatedClockOptions {
  /** Start time, ms since the epoch. Default 2023-11-14T22:13:20Z. */
  startMs?: number;
  /** Seed of the random source: the same seed replays the same choices. Default 1. */
  seed?: number;
  /**
   * How `sleep` behaves. "jump" (default): the sleeper moves time forward by its delay and goes
   * on, so backoffs inside the code under test never wait for the test to advance time. "wait":
   * a sleep is a timer like any other and resolves only when `advance` reaches it.
   */
  sleeps?: "jump" | "wait";
}

interface PendingTimer {
  dueMs: number;
  order: number;
  callback: () => void;
}

/**
 * A clock that tests drive. Time moves only through `advance` (and jumping sleeps); due timers run
 * in deadline order, each followed by a turn of the event loop so the promise chains it starts can
 * schedule more work. `random` is a seeded generator (mulberry32), so a failing run replays from
 * its seed.
 */
export class SimulatedClock implements Clock {
  private current: number;
  private state: number;
  private readonly sleeps: "jump" | "wait";
  private readonly timers: PendingTimer[] = [];
  private order = 0;

  constructor(options: SimulatedClockOptions = {}) {
    this.current = options.startMs ?? 1_700_000_000_000;
    this.state = (options.seed ?? 1) >>> 0;
    this.sleeps = options.sleeps ?? "jump";
  }

  now(): number {
    return this.current;
  }

  random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  setTimer(ms: number, callback: () => void): Timer {
    const timer: PendingTimer = { dueMs: this.current + Math.max(0, ms), order: this.order++, callback };
    this.timers.push(timer);
    return {
      cancel: () => {
        const index = this.timers.indexOf(timer);
        if (index >= 0) this.timers.splice(index, 1);
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.sleeps === "jump") {
      // Whole milliseconds, as Date.now() gives: callers stamp records with now(). Jittered
      // backoffs ask for fractions.
      this.current += Math.max(0, Math.ceil(ms));
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = this.setTimer(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      const onAbort = () => {
        timer.cancel();
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    // Work already started (a reader about to set its timer) gets its turn before time moves.
    await settle();
    const target = this.current + Math.max(0, ms);
    for (;;) {
      const next = this.nextDue();
      if (!next || next.dueMs > target) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.current = Math.max(this.current, next.dueMs);
      next.callback();
      await settle();
    }
    this.current = Math.max(this.current, target);
    await settle();
  }

  /** Timers not yet run. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  private nextDue(): PendingTimer | undefined {
    let next: PendingTimer | undefined;
    for (const timer of this.timers) {
      if (!next || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.order < next.order)) {
        next = timer;
      }
    }
    return next;
  }
}

/** One turn of the event loop: promise chains started by a timer get to run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
