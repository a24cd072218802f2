/**
 * Idle polling: after the local server answers its last request in flight, its event loop keeps
 * turning (polling its sockets without blocking) for a short window instead of going to sleep at
 * once, so a client that sends its next request right after reading the answer finds the server
 * awake.
 *
 * Why: on a virtual machine without guest halt polling (this project's benchmark machine has
 * `guest_halt_poll_ns = 0`), an idle CPU halts and exits to the hypervisor, and waking it again
 * costs the waker tens of microseconds. A client producing one record at a time pays that on each
 * request; measured, the window took 45–95 µs off the local server's median single-produce
 * latency (docs/benchmarks.md, "Idle polling").
 *
 * The window adapts the way Linux's guest halt polling (cpuidle-haltpoll) does, so CPU is spent
 * only where it pays: it starts at zero; an idle gap ended by a request within the maximum, but
 * after the window, doubles it (from `growStartUs`); a gap longer than the maximum halves it, to
 * zero below `growStartUs`. A server that is idle for long stretches, or sees requests far apart,
 * does not poll at all; one that sees a request right after each answer polls for about that gap.
 * And whatever the traffic, polling takes at most a share of the time (`budget`, half of every
 * 100 ms by default): what a longer window may cost is bounded by that, not by the window.
 */
export interface IdlePollOptions {
  /** The longest window, in microseconds; 0 turns idle polling off. */
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
   * Default 0.5: idle polling never costs more than half a core, whatever the traffic.
   */
  budget?: number;
  /** Default 100,000 µs (100 ms). */
  budgetPeriodUs?: number;
}

export class IdlePoller {
  readonly #maxMs: number;
  readonly #growStartMs: number;
  readonly #now: () => number;
  readonly #schedule: (callback: () => void) => void;
  #windowMs = 0;
  #inFlight = 0;
  /** When the last request in flight ended; undefined while requests are in flight. */
  #idleSince: number | undefined;
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

  constructor(options: IdlePollOptions) {
    if (!Number.isFinite(options.maxUs) || options.maxUs < 0) {
      throw new RangeError(`idle poll maximum must be 0 or more microseconds, got ${options.maxUs}`);
    }
    this.#maxMs = options.maxUs / 1000;
    this.#growStartMs = Math.min(options.growStartUs ?? 50, options.maxUs) / 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? ((callback) => setImmediate(callback));
    const budget = options.budget ?? 0.5;
    if (!(budget > 0 && budget <= 1))
      throw new RangeError(`idle poll budget must be in (0, 1], got ${budget}`);
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

  /** Requests counted as in flight (long-polls and event streams are not counted). */
  get requestsInFlight(): number {
    return this.#inFlight;
  }

  /** Whether the event loop is being kept turning now. */
  get polling(): boolean {
    return this.#polling;
  }

  /** A request arrived (not a long-poll or an event stream: those wait by design). */
  requestStarted(): void {
    this.#inFlight++;
    const idleSince = this.#idleSince;
    if (idleSince === undefined && this.#pollStartedAt === undefined) {
      this.#pollUntil = 0;
      return;
    }
    const now = this.#now();
    this.#windowEnded(now);
    this.#pollUntil = 0; // the server has work again: the loop need not be kept turning
    if (idleSince === undefined) return;
    const gapMs = now - idleSince;
    this.#idleSince = undefined;
    this.#adapt(gapMs);
  }

  /** A request counted by `requestStarted` ended (answered, or its connection closed). */
  requestEnded(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (this.#inFlight > 0 || this.#maxMs === 0 || this.#stopped) return;
    const now = this.#now();
    this.#idleSince = now;
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

  /** Counts the window being polled, if any, into the period's budget. */
  #windowEnded(now: number): void {
    if (this.#pollStartedAt === undefined) return;
    this.#polledMs += Math.max(0, Math.min(now, this.#pollUntil) - this.#pollStartedAt);
    this.#pollStartedAt = undefined;
  }

  /** Polls no more (the server is closing); a window being polled ends at its next turn. */
  stop(): void {
    this.#stopped = true;
    this.#pollUntil = 0;
  }

  #adapt(gapMs: number): void {
    if (gapMs <= this.#windowMs) return; // caught while polling: the window is right
    if (gapMs <= this.#maxMs) {
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
