import { describe, expect, it } from "vitest";
import { EventLoopTurns, type Turns } from "./turns.js";

/**
 * Work that needs `hops` turns of the event loop, as an HTTP request does (a socket read, then
 * the handler, then the write): each hop is an immediate queued from the one before, so each
 * runs on a later turn. Resolves with how many runner steps had run by then.
 */
function request(hops: number, steps: () => number): Promise<number> {
  return new Promise((resolve) => {
    const hop = (left: number) => {
      if (left === 0) resolve(steps());
      else setImmediate(() => hop(left - 1));
    };
    hop(hops);
  });
}

/** Runners whose every step completes in microtasks (cached reads, synchronous writes). */
async function runners(count: number, stepsEach: number, turns: Turns | undefined, onStep: () => void) {
  await Promise.all(
    Array.from({ length: count }, async () => {
      for (let step = 0; step < stepsEach; step++) {
        await turns?.take();
        await Promise.resolve();
        onStep();
      }
    }),
  );
}

describe("event-loop turns", () => {
  it("let other work through while runners that never wait on I/O work through a backlog", async () => {
    let steps = 0;
    const turns = new EventLoopTurns();
    const working = runners(16, 1_000, turns, () => steps++);
    const stepsBeforeAnswer = await request(3, () => steps);
    await working;
    expect(steps).toBe(16_000);
    // One runner step per turn: the request's three hops waited for a few steps, not the backlog.
    expect(stepsBeforeAnswer).toBeLessThanOrEqual(4);
  });

  it("without them, the same runners finish their whole backlog before the request is answered", async () => {
    let steps = 0;
    const working = runners(16, 1_000, undefined, () => steps++);
    const stepsBeforeAnswer = await request(3, () => steps);
    await working;
    expect(stepsBeforeAnswer).toBe(16_000);
  });

  it("hand turns out in the order they were asked for", async () => {
    const turns = new EventLoopTurns();
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((n) => turns.take().then(() => order.push(n))));
    expect(order).toEqual([0, 1, 2, 3]);
  });
});
