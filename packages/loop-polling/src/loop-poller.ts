/**
 * Loop polling: while a process waits for something that usually comes soon (the next request,
 * at the local server; an answer, at the SDK), its event loop keeps turning (polling its sockets
 * without blocking) for a short window instead of going to sleep at once.
 *
 * Why: on a virtual machine without guest halt polling (this project's benchmark machine has
 * `guest_halt_poll_ns = 0`), an idle CPU halts and exits to the hypervisor, and waking it again
 * costs the waker tens of microseconds, and the woken side as much again. A client producing one
 * record at a time pays that on each request, at both ends (docs/benchmarks.md, "Idle polling"
 * and "The SDK polls for its answers"). Linux's own guest halt polling, on by default where the
 * kernel enables it, does the same below the process: poll a little before halting.
 *
 * The window adapts as cpuidle-haltpoll's does, so CPU is spent only where it pays: it starts at
 * zero; a wait that ends within the maximum, but after the window, doubles it (from
 * `growStartUs`); a wait longer than the maximum halves it, to zero below `growStartUs`. A process
 * whose waits are long (a server idle for long stretches, a client of a distant server) does not
 * poll at all; one whose waits are short polls for about their length. And whatever the waits,
 * polling takes at most a share of the time (`budget`), counted over periods of `budgetPeriodUs`.
 */
export interface LoopPollOptions {
  /** The longest window, in microseconds; 0 turns polling off. */
  maxUs: number;
  /** The window's first size when it grows from zero. Default 50 µs, or `maxUs` if smaller. */
  growStartUs?: number;
  /** Milliseconds, monotonic. Default `performance.now`. */
  now?: () => number;
  /** Runs a callback after the event loop's next poll for I/O. Default `setImmediate`. */
  schedule?: (callback: () => void) => void;
  /**
   * The share of wall time polling may take, counted over periods of `budgetPeriodUs`: once a
   * period's polling reaches it, the rest of the period polls no more (the window itself is kept).
   * Default 0.5.
   */
  budget?: number;
  /** Default 100,000 µs (100 ms). */
  budgetPeriodUs?: number;
  /** Names the setting in the errors a bad option gets (default "loop poll"). */
  name?: string;
}

/**
 * Throws a RangeError naming the setting (`name`) when the maximum or the budget is out of range;
 * for callers that take these settings before they build a poller, or where none is built.
 */
export function checkLoopPollOptions(options: Pick<LoopPollOptions, "maxUs" | "budget" | "name">): void {
  const name = options.name ?? "loop poll";
  if (!Number.isFinite(options.maxUs) || options.maxUs < 0) {
    throw new RangeError(`${name} maximum must be 0 or more microseconds, got ${options.maxUs}`);
  }
  const budget = options.budget ?? 0.5;
  if (!(budget > 0 && budget <= 1)) throw new RangeError(`${name} budget must be in (0, 1], got ${budget}`);
}

export class LoopPoller {
  readonly #maxMs: number;
  readonly #growStartMs: number;
  readonly #now: () => number;
  readonly #schedule: (callback: () => void) => void;
  #windowMs = 0;
  /** When the wait in progress began; undefined when none is. */
  #waitingSince: number | undefined;
  #pollUntil = 0;
  #polling = false;
  #stopped = false;
  readonly #budgetMs: number;
  readonly #periodMs: number;
  #periodStart = 0;
  /** Polling spent in the current period, counted when each window ends. */
  #polledMs = 0;
  /** When the window being polled began; undefined when none is. */
  #pollStartedAt: number | undefined;

  constructor(options: LoopPollOptions) {
    checkLoopPollOptions(options);
    this.#maxMs = options.maxUs / 1000;
    this.#growStartMs = Math.min(options.growStartUs ?? 50, options.maxUs) / 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? ((callback) => setImmediate(callback));
    const budget = options.budget ?? 0.5;
    this.#periodMs = (options.budgetPeriodUs ?? 100_000) / 1000;
    this.#budgetMs = budget * this.#periodMs;
    this.#periodStart = this.#now();
  }

  /** Polling spent so far in the current budget period, in microseconds. */
  get polledUs(): number {
    return this.#polledMs * 1000;
  }

  /** The current window, in microseconds. */
  get windowUs(): number {
    return this.#windowMs * 1000;
  }

  /** Whether the event loop is being kept turning now. */
  get polling(): boolean {
    return this.#polling;
  }

  /** Whether a wait is in progress (begun and not yet ended). */
  get waiting(): boolean {
    return this.#waitingSince !== undefined;
  }

  /** Something is expected soon: keep the loop turning for the window, within the budget. */
  waitStarted(): void {
    if (this.#maxMs === 0 || this.#stopped) return;
    const now = this.#now();
    this.#windowEnded(now);
    this.#waitingSince = now;
    if (this.#windowMs === 0) return;
    if (now - this.#periodStart >= this.#periodMs) {
      this.#periodStart = now;
      this.#polledMs = 0;
    }
    const allowedMs = Math.min(this.#windowMs, this.#budgetMs - this.#polledMs);
    if (allowedMs <= 0) return; // this period's budget is spent
    this.#pollUntil = now + allowedMs;
    this.#pollStartedAt = now;
    if (!this.#polling) {
      this.#polling = true;
      this.#schedule(this.#turn);
    }
  }

  /**
   * What was waited for came (or is no longer awaited): stop polling, and fit the window to how
   * long the wait was. Without a wait in progress, nothing happens.
   */
  waitEnded(): void {
    const since = this.#waitingSince;
    if (since === undefined && this.#pollStartedAt === undefined) return;
    const now = this.#now();
    this.#windowEnded(now);
    this.#pollUntil = 0; // the process has work again: the loop need not be kept turning
    if (since === undefined) return;
    this.#waitingSince = undefined;
    this.#adapt(now - since);
  }

  /** Polls no more (the process is closing); a window being polled ends at its next turn. */
  stop(): void {
    this.#stopped = true;
    this.#pollUntil = 0;
  }

  /** Counts the window being polled, if any, into the period's budget. */
  #windowEnded(now: number): void {
    if (this.#pollStartedAt === undefined) return;
    this.#polledMs += Math.max(0, Math.min(now, this.#pollUntil) - this.#pollStartedAt);
    this.#pollStartedAt = undefined;
  }

  #adapt(waitMs: number): void {
    if (waitMs <= this.#windowMs) return; // caught while polling: the window is right
    if (waitMs <= this.#maxMs) {
      // Polling a little longer would have caught it.
      this.#windowMs = Math.min(this.#maxMs, Math.max(this.#growStartMs, this.#windowMs * 2));
    } else {
      // No window allowed would have caught it: poll less.
      const halved = this.#windowMs / 2;
      this.#windowMs = halved < this.#growStartMs ? 0 : halved;
    }
  }

  readonly #turn = (): void => {
    const now = this.#now();
    if (now < this.#pollUntil) this.#schedule(this.#turn);
    else {
      this.#polling = false;
      this.#windowEnded(now);
    }
  };
}
