import { describe, expect, it } from "vitest";
import { RecentActivity } from "./recent-activity.js";

/** A clock the test moves by hand. */
function manualClock(startMs: number) {
  let now = startMs;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const START = 1_000_000_000_000; // a whole second

describe("RecentActivity", () => {
  it("rates are counts in the window over the time it covers, per partition and in total", () => {
    const clock = manualClock(START);
    const activity = new RecentActivity({ clock, windowSeconds: 10 });
    clock.advance(20_000);
    activity.produced("orders", 0, 100, 5_000);
    activity.produced("orders", 1, 50, 2_500);
    activity.fetched("orders", 0, 30, 1_500);
    clock.advance(4_500);
    activity.produced("orders", 0, 100, 5_000);
    // Now START + 24.5 s: the window holds seconds 15..24, i.e. it covers 9.5 s.
    const orders = activity.topic("orders");
    expect(orders.windowSeconds).toBe(9.5);
    expect(orders.recordsInPerSecond).toBeCloseTo(250 / 9.5, 9);
    expect(orders.bytesInPerSecond).toBeCloseTo(12_500 / 9.5, 9);
    expect(orders.recordsOutPerSecond).toBeCloseTo(30 / 9.5, 9);
    expect(orders.bytesOutPerSecond).toBeCloseTo(1_500 / 9.5, 9);
    expect(orders.partitions.get(0)!.recordsInPerSecond).toBeCloseTo(200 / 9.5, 9);
    expect(orders.partitions.get(1)!.recordsInPerSecond).toBeCloseTo(50 / 9.5, 9);
    expect([...orders.partitions.keys()]).toEqual([0, 1]);
  });

  it("a young tracker divides by its age, not by the whole window", () => {
    const clock = manualClock(START);
    const activity = new RecentActivity({ clock, windowSeconds: 10 });
    clock.advance(2_000);
    activity.produced("t", 0, 10, 100);
    expect(activity.topic("t").windowSeconds).toBe(2);
    expect(activity.topic("t").recordsInPerSecond).toBe(5);
  });

  it("what left the window no longer counts, and a quiet topic reads zero", () => {
    const clock = manualClock(START);
    const activity = new RecentActivity({ clock, windowSeconds: 10 });
    clock.advance(30_000);
    activity.produced("t", 0, 10, 100);
    activity.error("t");
    clock.advance(9_999);
    expect(activity.topic("t").recordsInPerSecond).toBeGreaterThan(0);
    expect(activity.topic("t").errors).toBe(1);
    clock.advance(1);
    const t = activity.topic("t");
    expect(t.recordsInPerSecond).toBe(0);
    expect(t.errors).toBe(0);
    expect(t.partitions.size).toBe(0);
    // The slot is reused by a later second, not added to.
    activity.produced("t", 0, 3, 30);
    expect(activity.topic("t").recordsInPerSecond * activity.topic("t").windowSeconds).toBeCloseTo(3, 9);
    expect(activity.topic("never").recordsInPerSecond).toBe(0);
    expect(activity.topic("never").produceLatencyP99Seconds).toBeNull();
  });

  it("p99 is the upper bound of the bucket (19 % wide) holding the 99th percentile", () => {
    const clock = manualClock(START);
    const activity = new RecentActivity({ clock });
    clock.advance(5_000);
    for (let i = 0; i < 99; i++) activity.produceLatency("t", 0.002);
    activity.produceLatency("t", 0.5);
    let p99 = activity.topic("t").produceLatencyP99Seconds!;
    expect(p99).toBeGreaterThanOrEqual(0.002);
    expect(p99).toBeLessThan(0.002 * 1.19);
    activity.produceLatency("t", 0.5);
    // 101 observations: the 100th in rank order is now a slow one.
    p99 = activity.topic("t").produceLatencyP99Seconds!;
    expect(p99).toBeGreaterThanOrEqual(0.5);
    expect(p99).toBeLessThan(0.5 * 1.19);
    expect(activity.topic("t").fetchLatencyP99Seconds).toBeNull();
  });

  it("forget drops a topic's figures", () => {
    const clock = manualClock(START);
    const activity = new RecentActivity({ clock });
    clock.advance(1_000);
    activity.produced("t", 0, 1, 1);
    activity.forget("t");
    expect(activity.topic("t").recordsInPerSecond).toBe(0);
  });
});
