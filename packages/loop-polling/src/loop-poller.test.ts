import { handTurnedLoop } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { LoopPoller } from "./loop-poller.js";

/**
 * A poller on a hand-moved clock whose scheduled turns run only when `turn()` is called, as the
 * event loop would run them after each poll for I/O.
 */
function harness(maxUs: number, growStartUs?: number, budget?: { budget: number; budgetPeriodUs: number }) {
  const loop = handTurnedLoop();
  const poller = new LoopPoller({
    maxUs,
    ...(growStartUs === undefined ? {} : { growStartUs }),
    ...budget,
    now: loop.now,
    schedule: loop.schedule,
  });
  return {
    poller,
    advanceUs: loop.advanceUs,
    turn: loop.turn,
    get scheduled() {
      return loop.scheduled;
    },
    get turns() {
      return loop.turns;
    },
    /** A wait of `gapUs` until what was awaited comes (turns every 10 µs). */
    waitFor(gapUs: number) {
      poller.waitStarted();
      for (let waited = 0; waited < gapUs; waited += 10) {
        this.advanceUs(Math.min(10, gapUs - waited));
        if (this.scheduled > 0) this.turn();
      }
      poller.waitEnded();
    },
  };
}

describe("LoopPoller", () => {
  it("does not poll in its first wait: the window starts at zero", () => {
    const h = harness(200);
    h.poller.waitEnded();
    h.poller.waitStarted();
    expect(h.scheduled).toBe(0);
    expect(h.poller.polling).toBe(false);
    expect(h.poller.windowUs).toBe(0);
  });

  it("grows the window from 50 µs by doubling while waits end within the maximum", () => {
    const h = harness(200);
    h.poller.waitEnded();
    const windows: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.waitFor(150);
      windows.push(h.poller.windowUs);
    }
    // 150 µs gaps: missed at 0, 50 and 100 µs, caught from 200 µs on (the maximum).
    expect(windows).toEqual([50, 100, 200, 200, 200]);
  });

  it("keeps turning the event loop for the window once a wait starts, then stops", () => {
    const h = harness(200);
    h.poller.waitEnded();
    h.waitFor(100); // window 50
    h.waitFor(100); // window 100
    expect(h.poller.windowUs).toBe(100);
    h.poller.waitStarted();
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

  it("stops polling at its next turn when the wait ends", () => {
    const h = harness(200);
    h.poller.waitEnded();
    h.waitFor(150);
    h.waitFor(150);
    h.poller.waitStarted();
    h.advanceUs(20);
    h.turn();
    h.poller.waitEnded();
    expect(h.turn()).toBe(true);
    expect(h.scheduled).toBe(0);
    expect(h.poller.polling).toBe(false);
  });

  it("halves the window when waits last longer than the maximum, and turns it off below 50 µs", () => {
    const h = harness(200);
    h.poller.waitEnded();
    for (let i = 0; i < 3; i++) h.waitFor(150);
    expect(h.poller.windowUs).toBe(200);
    const windows: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.waitFor(5_000);
      windows.push(h.poller.windowUs);
    }
    expect(windows).toEqual([100, 50, 0, 0]);
    const before = h.turns;
    h.waitFor(5_000);
    expect(h.turns).toBe(before); // off again: no turns at all
  });

  it("does nothing with a maximum of 0", () => {
    const h = harness(0);
    h.poller.waitEnded();
    for (let i = 0; i < 5; i++) h.waitFor(10);
    expect(h.poller.windowUs).toBe(0);
    expect(h.turns).toBe(0);
  });

  it("polls no more once stopped", () => {
    const h = harness(200);
    h.poller.waitEnded();
    for (let i = 0; i < 3; i++) h.waitFor(150);
    h.poller.waitStarted();
    h.poller.stop();
    h.advanceUs(10);
    h.turn();
    expect(h.poller.polling).toBe(false);
    h.poller.waitEnded();
    h.poller.waitStarted();
    expect(h.scheduled).toBe(0);
  });

  it("refuses a negative or non-finite maximum", () => {
    expect(() => new LoopPoller({ maxUs: -1 })).toThrow(/0 or more microseconds, got -1/);
    expect(() => new LoopPoller({ maxUs: Number.NaN })).toThrow(/got NaN/);
  });

  it("never polls longer than the maximum per wait, whatever the waits (seeded)", () => {
    for (let seed = 1; seed <= 50; seed++) {
      let state = seed;
      const random = () => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state / 2 ** 31;
      };
      const h = harness(200);
      h.poller.waitEnded();
      for (let i = 0; i < 200; i++) {
        // Waits mostly short, sometimes far past the maximum.
        const gapUs = random() < 0.7 ? Math.floor(random() * 250) : 1_000 + Math.floor(random() * 9_000);
        h.poller.waitStarted();
        let polledUs = 0;
        for (let waited = 0; waited < gapUs; waited += 10) {
          h.advanceUs(10);
          if (h.scheduled > 0 && h.turn() && h.poller.polling) polledUs += 10;
        }
        expect(polledUs).toBeLessThanOrEqual(200);
        h.poller.waitEnded();
        while (h.scheduled > 0) h.turn(); // the turn pending when the wait ended ends polling
        expect(h.poller.polling).toBe(false);
        expect(h.poller.windowUs).toBeGreaterThanOrEqual(0);
        expect(h.poller.windowUs).toBeLessThanOrEqual(200);
      }
    }
  });

  it("polls no more than its budget's share of a period, then resumes in the next period", () => {
    // 1 ms maximum, half of each 10 ms period: waits of 900 µs, 100 µs apart, would keep it
    // polling 90% of the time.
    const h = harness(1000, undefined, { budget: 0.5, budgetPeriodUs: 10_000 });
    h.poller.waitEnded();
    const polledPerPeriod: number[] = [];
    let turnsInPeriod = 0;
    const turnsPerPeriod: number[] = [];
    for (let cycle = 1; cycle <= 40; cycle++) {
      h.poller.waitStarted();
      for (let waited = 0; waited < 900; waited += 10) {
        h.advanceUs(10);
        if (h.scheduled > 0 && h.turn()) turnsInPeriod++;
      }
      h.poller.waitEnded();
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

  it("counts the time polled until the wait ended, not the whole window", () => {
    const h = harness(1000, undefined, { budget: 0.5, budgetPeriodUs: 100_000 });
    h.poller.waitEnded();
    for (let i = 0; i < 6; i++) h.waitFor(950); // the window grows to 1000 µs
    expect(h.poller.windowUs).toBe(1000);
    const before = h.poller.polledUs;
    h.waitFor(300);
    expect(h.poller.polledUs - before).toBeCloseTo(300, 6);
  });

  it("names the setting in its errors", () => {
    expect(() => new LoopPoller({ maxUs: -5, name: "answer poll" })).toThrow(
      /^answer poll maximum must be 0 or more/,
    );
    expect(() => new LoopPoller({ maxUs: 10, budget: 2, name: "answer poll" })).toThrow(
      /^answer poll budget/,
    );
  });

  it("refuses a budget that is not a share of time", () => {
    for (const budget of [0, -0.1, 1.5, Number.NaN]) {
      expect(() => new LoopPoller({ maxUs: 200, budget })).toThrow(/loop poll budget must be in \(0, 1\]/);
    }
  });
});
