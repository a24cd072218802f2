import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { systemClock } from "./clock.js";

describe("systemClock", () => {
  it("reads the wall clock", () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it("resolves a sleep at once when its signal has already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    // An hour: without the early return the test would time out.
    await expect(systemClock.sleep(3_600_000, controller.signal)).resolves.toBeUndefined();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("resolves a sleep early, without an error, when its signal aborts", async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(3_600_000, controller.signal);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    controller.abort();
    await expect(sleeping).resolves.toBeUndefined();
  });

  it("leaves no listener on the signal once a sleep has run its course", async () => {
    const controller = new AbortController();
    await systemClock.sleep(1, controller.signal);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});
