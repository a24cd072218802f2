import { describe, expect, it } from "vitest";
import { IdlePoller } from "./idle-poll.js";

/**
 * A poller on a hand-moved clock whose scheduled turns run only when `turn()` is called, as the
 * event loop would run them after each poll for I/O.
 */
function harness(maxUs: number, growStartUs?: number, budget?: { budget: number; budgetPeriodUs: number }) {
  let nowMs = 0;
  const queue: (() => void)[] = [];
  const poller = new IdlePoller({
    maxUs,
    ...(growStartUs === undefined ? {} : { growStartUs }),
    ...budget,
    now: () => nowMs,
    schedule: (callback) => queue.push(callback),
  });
  let turns = 0;
  return {
    poller,
    advanceUs(us: number) {
      nowMs += us / 1000;
    },
    /** Runs the turn scheduled, if any; false when nothing was scheduled. */
    turn(): boolean {
      const next = queue.shift();
      if (!next) return false;
      turns++;
      next();
      return true;
    },
    get scheduled() {
      return queue.length;
    },
    get turns() {
      return turns;
    },
    /** One request answered, then `gapUs` of idle before the next arrives (turns every 10 µs). */
    idleThenRequest(gapUs: number) {
      poller.requestEnded();
      for (let waited = 0; waited < gapUs; waited += 10) {
        this.advanceUs(Math.min(10, gapUs - waited));
        if (this.scheduled > 0) this.turn();
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
    expect(h.poller.polling).toBe(false);
    expect(h.poller.windowUs).toBe(0);
  });

  it("grows the window from 50 µs by doubling while requests follow answers within the maximum", () => {
    const h = harness(200);
    h.poller.requestStarted();
    const windows: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.idleThenRequest(150);
      windows.push(h.poller.windowUs);
    }
    // 150 µs gaps: missed at 0, 50 and 100 µs, caught from 200 µs on (the maximum).
    expect(windows).toEqual([50, 100, 200, 200, 200]);
  });

  it("keeps turning the event loop for the window after the last answer, then stops", () => {
    const h = harness(200);
    h.poller.requestStarted();
    h.idleThenRequest(100); // window 50
    h.idleThenRequest(100); // window 100
    expect(h.poller.windowUs).toBe(100);
    h.poller.requestEnded();
    expect(h.poller.polling).toBe(true);
    let turnsWhilePolling = 0;
    while (h.scheduled > 0) {
      h.advanceUs(10);
      h.turn();
      turnsWhilePolling++;
    }
    expect(h.poller.polling).toBe(false);
    expect(turnsWhilePolling).toBe(10); // 100 µs in 10 µs steps
  });

  it("stops polling at its next turn when a request arrives", () => {
    const h = harness(200);
    h.poller.requestStarted();
    h.idleThenRequest(150);
    h.idleThenRequest(150);
    h.poller.requestEnded();
    h.advanceUs(20);
    h.turn();
    h.poller.requestStarted();
    expect(h.turn()).toBe(true);
    expect(h.scheduled).toBe(0);
    expect(h.poller.polling).toBe(false);
  });

  it("halves the window when requests come later than the maximum, and turns it off below 50 µs", () => {
    const h = harness(200);
    h.poller.requestStarted();
    for (let i = 0; i < 3; i++) h.idleThenRequest(150);
    expect(h.poller.windowUs).toBe(200);
    const windows: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.idleThenRequest(5_000);
      windows.push(h.poller.windowUs);
    }
    expect(windows).toEqual([100, 50, 0, 0]);
    const before = h.turns;
    h.idleThenRequest(5_000);
    expect(h.turns).toBe(before); // off again: no turns at all
  });

  it("does not poll while another request is in flight", () => {
    const h = harness(200);
    h.poller.requestStarted();
    for (let i = 0; i < 3; i++) h.idleThenRequest(150);
    h.poller.requestStarted(); // two in flight
    h.poller.requestEnded();
    expect(h.scheduled).toBe(0);
    h.poller.requestEnded();
    expect(h.scheduled).toBe(1);
  });

  it("does nothing with a maximum of 0", () => {
    const h = harness(0);
    h.poller.requestStarted();
    for (let i = 0; i < 5; i++) h.idleThenRequest(10);
    expect(h.poller.windowUs).toBe(0);
    expect(h.turns).toBe(0);
  });

  it("polls no more once stopped", () => {
    const h = harness(200);
    h.poller.requestStarted();
    for (let i = 0; i < 3; i++) h.idleThenRequest(150);
    h.poller.requestEnded();
    h.poller.stop();
    h.advanceUs(10);
    h.turn();
    expect(h.poller.polling).toBe(false);
    h.poller.requestStarted();
    h.poller.requestEnded();
    expect(h.scheduled).toBe(0);
  });

  it("refuses a negative or non-finite maximum", () => {
    expect(() => new IdlePoller({ maxUs: -1 })).toThrow(/0 or more microseconds, got -1/);
    expect(() => new IdlePoller({ maxUs: Number.NaN })).toThrow(/got NaN/);
  });

  it("never polls longer than the maximum per idle gap, whatever the gaps (seeded)", () => {
    for (let seed = 1; seed <= 50; seed++) {
      let state = seed;
      const random = () => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state / 2 ** 31;
      };
      const h = harness(200);
      h.poller.requestStarted();
      for (let i = 0; i < 200; i++) {
        // Gaps mostly short, sometimes far past the maximum.
        const gapUs = random() < 0.7 ? Math.floor(random() * 250) : 1_000 + Math.floor(random() * 9_000);
        h.poller.requestEnded();
        let polledUs = 0;
        for (let waited = 0; waited < gapUs; waited += 10) {
          h.advanceUs(10);
          if (h.scheduled > 0 && h.turn() && h.poller.polling) polledUs += 10;
        }
        expect(polledUs).toBeLessThanOrEqual(200);
        h.poller.requestStarted();
        while (h.scheduled > 0) h.turn(); // the turn pending when the request came ends polling
        expect(h.poller.polling).toBe(false);
        expect(h.poller.windowUs).toBeGreaterThanOrEqual(0);
        expect(h.poller.windowUs).toBeLessThanOrEqual(200);
      }
    }
  });

  it("polls no more than its budget's share of a period, then resumes in the next period", () => {
    // 1 ms maximum, half of each 10 ms period: a client that sends its next request 900 µs after
    // each answer, each answered in 100 µs, would keep it polling 90% of the time.
    const h = harness(1000, undefined, { budget: 0.5, budgetPeriodUs: 10_000 });
    h.poller.requestStarted();
    const polledPerPeriod: number[] = [];
    let turnsInPeriod = 0;
    const turnsPerPeriod: number[] = [];
    for (let cycle = 1; cycle <= 40; cycle++) {
      h.poller.requestEnded();
      for (let waited = 0; waited < 900; waited += 10) {
        h.advanceUs(10);
        if (h.scheduled > 0 && h.turn()) turnsInPeriod++;
      }
      h.poller.requestStarted();
      h.advanceUs(100);
      if (cycle % 10 === 0) {
        polledPerPeriod.push(h.poller.polledUs);
        turnsPerPeriod.push(turnsInPeriod);
        turnsInPeriod = 0;
      }
    }
    expect(h.poller.windowUs).toBe(1000);
    // After the window has grown, every period polls up to its half (5 ms) and no further.
    for (const polled of polledPerPeriod.slice(1)) {
      expect(polled).toBeGreaterThanOrEqual(4500);
      expect(polled).toBeLessThanOrEqual(5000 + 1e-6);
    }
    // Polling stopped within each period, and started again in the next.
    for (const turns of turnsPerPeriod.slice(1)) {
      expect(turns).toBeGreaterThan(0);
      expect(turns).toBeLessThanOrEqual(5000 / 10 + 10);
    }
  });

  it("counts the time polled until a request came, not the whole window", () => {
    const h = harness(1000, undefined, { budget: 0.5, budgetPeriodUs: 100_000 });
    h.poller.requestStarted();
    for (let i = 0; i < 6; i++) h.idleThenRequest(950); // the window grows to 1000 µs
    expect(h.poller.windowUs).toBe(1000);
    const before = h.poller.polledUs;
    h.idleThenRequest(300);
    expect(h.poller.polledUs - before).toBeCloseTo(300, 6);
  });

  it("refuses a budget that is not a share of time", () => {
    for (const budget of [0, -0.1, 1.5, Number.NaN]) {
      expect(() => new IdlePoller({ maxUs: 200, budget })).toThrow(/idle poll budget must be in \(0, 1\]/);
    }
  });
});
