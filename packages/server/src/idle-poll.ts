/**
 * Idle polling: after the local server answers its last request in flight, its event loop keeps
 * turning for a short window instead of going to sleep at once, so a client that sends its next
 * request right after reading the answer finds the server awake (measured: 45–95 µs off the local
 * server's median single-produce latency; docs/benchmarks.md, "Idle polling").
 *
 * The server's wait is the idle gap between its last answer and its next request; the window,
 * its adaptation and its budget (half of every 100 ms by default: idle polling never costs more
 * than half a core, whatever the traffic) are `@sluice/loop-polling`'s.
 */
import { LoopPoller, type LoopPollOptions } from "@sluice/loop-polling";

export type IdlePollOptions = Omit<LoopPollOptions, "name">;

export class IdlePoller {
  readonly #poller: LoopPoller;
  #inFlight = 0;

  constructor(options: IdlePollOptions) {
    this.#poller = new LoopPoller({ ...options, name: "idle poll" });
  }

  /** Polling spent so far in the current budget period, in microseconds. */
  get polledUs(): number {
    return this.#poller.polledUs;
  }

  /** The current window, in microseconds. */
  get windowUs(): number {
    return this.#poller.windowUs;
  }

  /** Whether the event loop is being kept turning now. */
  get polling(): boolean {
    return this.#poller.polling;
  }

  /** Requests counted as in flight (long-polls and event streams are not counted). */
  get requestsInFlight(): number {
    return this.#inFlight;
  }

  /** A request arrived (not a long-poll or an event stream: those wait by design). */
  requestStarted(): void {
    this.#inFlight++;
    this.#poller.waitEnded();
  }

  /** A request counted by `requestStarted` ended (answered, or its connection closed). */
  requestEnded(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (this.#inFlight === 0) this.#poller.waitStarted();
  }

  /** Polls no more (the server is closing); a window being polled ends at its next turn. */
  stop(): void {
    this.#poller.stop();
  }
}
