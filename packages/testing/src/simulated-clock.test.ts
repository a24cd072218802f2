import { repeatEvery } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { SimulatedClock } from "./simulated-clock.js";

describe("SimulatedClock", () => {
  it("replays the same random choices from the same seed, and others from another", () => {
    const draw = (seed: number) => {
      const clock = new SimulatedClock({ seed });
      return Array.from({ length: 8 }, () => clock.random());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    for (const value of draw(7)) {
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
    }
  });

  it("runs due timers in deadline order, then creation order, and only when time reaches them", async () => {
    const clock = new SimulatedClock({ startMs: 1_000 });
    const fired: string[] = [];
    clock.setTimer(30, () => fired.push(`c@${clock.now()}`));
    clock.setTimer(10, () => fired.push(`a@${clock.now()}`));
    clock.setTimer(10, () => fired.push(`b@${clock.now()}`));
    const cancelled = clock.setTimer(20, () => fired.push("never"));
    cancelled.cancel();
    await clock.advance(9);
    expect(fired).toEqual([]);
    await clock.advance(21);
    expect(fired).toEqual(["a@1010", "b@1010", "c@1030"]);
    expect(clock.now()).toBe(1_030);
    expect(clock.pendingTimers).toBe(0);
  });

  it("runs timers that due timers schedule within the same advance", async () => {
    const clock = new SimulatedClock({ startMs: 0 });
    const ticks: number[] = [];
    const every = repeatEvery(clock, 100, () => ticks.push(clock.now()));
    await clock.advance(350);
    every.cancel();
    await clock.advance(1_000);
    expect(ticks).toEqual([100, 200, 300]);
  });

  it("jumps time for sleepers by default, and makes them wait for advance when asked", async () => {
    const jumping = new SimulatedClock({ startMs: 0 });
    await jumping.sleep(250);
    expect(jumping.now()).toBe(250);

    const waiting = new SimulatedClock({ startMs: 0, sleeps: "wait" });
    let woke = false;
    const sleeper = waiting.sleep(250).then(() => {
      woke = true;
    });
    await waiting.advance(249);
    expect(woke).toBe(false);
    await waiting.advance(1);
    await sleeper;
    expect(woke).toBe(true);
  });

  it("rejects a sleep whose signal aborts", async () => {
    const clock = new SimulatedClock({ sleeps: "wait" });
    const controller = new AbortController();
    const sleeper = clock.sleep(1_000, controller.signal);
    controller.abort(new Error("stop"));
    await expect(sleeper).rejects.toThrow("stop");
    expect(clock.pendingTimers).toBe(0);
  });
});
