import { SimulatedClock } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { hedgedUpload } from "./hedged-upload.js";

/** Uploads the test finishes by hand. */
function uploads() {
  const started: { attempt: number; succeed: (key: string) => void; fail: (error: Error) => void }[] = [];
  const upload = (attempt: number) =>
    new Promise<string>((succeed, fail) => {
      started.push({ attempt, succeed, fail });
    });
  return { started, upload };
}

describe("hedged uploads", () => {
  it("starts no second upload when the first answers in time", async () => {
    const clock = new SimulatedClock({ sleeps: "wait" });
    const { started, upload } = uploads();
    const result = hedgedUpload(clock, 50, upload);
    await clock.advance(40);
    started[0]!.succeed("first");
    expect(await result).toBe("first");
    await clock.advance(100);
    expect(started).toHaveLength(1);
  });

  it("starts a second upload under its own key once the first is late, and takes the first to succeed", async () => {
    const clock = new SimulatedClock({ sleeps: "wait" });
    const { started, upload } = uploads();
    const result = hedgedUpload(clock, 50, upload);
    await clock.advance(49);
    expect(started).toHaveLength(1);
    await clock.advance(1);
    expect(started.map((attempt) => attempt.attempt)).toEqual([0, 1]);
    started[1]!.succeed("second");
    started[0]!.succeed("first, late");
    expect(await result).toBe("second");
  });

  it("fails at once when the only upload fails, and only once every upload has failed", async () => {
    const clock = new SimulatedClock({ sleeps: "wait" });
    const early = uploads();
    const first = hedgedUpload(clock, 50, early.upload);
    early.started[0]!.fail(new Error("denied"));
    await expect(first).rejects.toThrow("denied");
    await clock.advance(100);
    expect(early.started).toHaveLength(1);

    const late = uploads();
    const second = hedgedUpload(clock, 50, late.upload);
    await clock.advance(50);
    late.started[0]!.fail(new Error("first failed"));
    let settled = false;
    second
      .catch(() => undefined)
      .finally(() => {
        settled = true;
      });
    await clock.advance(1);
    expect(settled).toBe(false);
    late.started[1]!.succeed("second");
    expect(await second).toBe("second");
  });

  it("is a plain upload without a hedge delay", async () => {
    const clock = new SimulatedClock({ sleeps: "wait" });
    const { started, upload } = uploads();
    const result = hedgedUpload(clock, undefined, upload);
    await clock.advance(10_000);
    started[0]!.succeed("only");
    expect(await result).toBe("only");
    expect(started).toHaveLength(1);
  });
});
