import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { MaintenanceRunner } from "./runner.js";
import { startMaintenanceSchedule } from "./schedule.js";

describe("the maintenance schedule", () => {
  it("ends each run with afterRun, which stop waits for and whose failure goes to onError", async () => {
    const clock = new SimulatedClock();
    const runner = new MaintenanceRunner({
      objects: new MemoryObjectStore(),
      metadata: new MemoryMetadataStore(),
      clock,
    });
    const events: string[] = [];
    let finishAfterRun: () => void = () => undefined;
    let failNext = false;
    const schedule = startMaintenanceSchedule({
      runner,
      clock,
      intervalMs: 60_000,
      onReport: () => events.push("report"),
      onError: (error) => events.push(`error: ${(error as Error).message}`),
      afterRun: async () => {
        events.push("after run");
        if (failNext) throw new Error("reclaim failed");
        await new Promise<void>((resolve) => {
          finishAfterRun = resolve;
        });
        events.push("after run done");
      },
    });
    const first = schedule.runNow();
    // A second call while the first (its afterRun included) is going waits for the same run.
    expect(schedule.runNow()).toBe(first);
    await clock.advance(0);
    while (!events.includes("after run")) await clock.advance(0);
    expect(events).toEqual(["report", "after run"]);
    finishAfterRun();
    await first;
    expect(events).toEqual(["report", "after run", "after run done"]);

    failNext = true;
    await schedule.runNow();
    expect(events.slice(3)).toEqual(["report", "after run", "error: reclaim failed"]);

    failNext = false;
    const third = schedule.runNow();
    while (events.length < 8) await clock.advance(0);
    let stopped = false;
    const stopping = schedule.stop().then(() => {
      stopped = true;
    });
    await clock.advance(0);
    expect(stopped).toBe(false);
    finishAfterRun();
    await Promise.all([third, stopping]);
    expect(events.at(-1)).toBe("after run done");
  });
});
