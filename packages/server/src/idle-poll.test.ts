import { handTurnedLoop } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { IdlePoller } from "./idle-poll.js";

/**
 * The server's wait is the idle gap between its last answer and its next request: these tests
 * check that mapping. The window, its adaptation and its budget are tested with the poller itself
 * (packages/loop-polling/src/loop-poller.test.ts).
 */
function harness(maxUs: number) {
  const loop = handTurnedLoop();
  const poller = new IdlePoller({ maxUs, now: loop.now, schedule: loop.schedule });
  return {
    poller,
    get scheduled() {
      return loop.scheduled;
    },
    turn: loop.turn,
    /** One request answered, then `gapUs` of idle before the next arrives (turns every 10 µs). */
    idleThenRequest(gapUs: number) {
      poller.requestEnded();
      for (let waited = 0; waited < gapUs; waited += 10) {
        loop.advanceUs(Math.min(10, gapUs - waited));
        if (loop.scheduled > 0) loop.turn();
      }
      poller.requestStarted();
    },
  };
}

describe("IdlePoller", () => {
  it("does not poll after its first answer: the window starts at zero", () => {
    const h = harness(200);
    h.poller.requestStarted();
    h.poller.requestEnded();
    expect(h.scheduled).toBe(0);
    expect(h.poller.windowUs).toBe(0);
  });

  it("grows its window from idle gaps between an answer and the next request", () => {
    const h = harness(200);
    h.poller.requestStarted();
    const windows: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.idleThenRequest(150);
      windows.push(h.poller.windowUs);
    }
    expect(windows).toEqual([50, 100, 200, 200]);
  });

  it("does not poll while another request is in flight, and polls once the last one ends", () => {
    const h = harness(200);
    h.poller.requestStarted();
    for (let i = 0; i < 3; i++) h.idleThenRequest(150);
    h.poller.requestStarted(); // two in flight
    expect(h.poller.requestsInFlight).toBe(2);
    h.poller.requestEnded();
    expect(h.scheduled).toBe(0);
    h.poller.requestEnded();
    expect(h.scheduled).toBe(1);
    expect(h.poller.polling).toBe(true);
    h.poller.requestStarted(); // a request ends the idle gap: polling stops at the next turn
    h.turn();
    expect(h.poller.polling).toBe(false);
    expect(h.scheduled).toBe(0);
  });

  it("polls no more once stopped", () => {
    const h = harness(200);
    h.poller.requestStarted();
    for (let i = 0; i < 3; i++) h.idleThenRequest(150);
    h.poller.stop();
    h.poller.requestEnded();
    expect(h.scheduled).toBe(0);
  });

  it("names its setting in its errors", () => {
    expect(() => new IdlePoller({ maxUs: -1 })).toThrow(
      /^idle poll maximum must be 0 or more microseconds, got -1/,
    );
    expect(() => new IdlePoller({ maxUs: 200, budget: 0 })).toThrow(/^idle poll budget must be in \(0, 1\]/);
  });
});
