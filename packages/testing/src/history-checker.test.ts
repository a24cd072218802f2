import { describe, expect, it } from "vitest";
import { checkHistory, type History } from "./history-checker.js";

const produced = [0, 1, 2, 3].map((offset) => ({ partition: 0, offset, value: `v${offset}` }));
const deliver = (assignment: string, offset: number, atMs: number) => ({
  assignment,
  partition: 0,
  offset,
  value: `v${offset}`,
  atMs,
});

describe("history checker", () => {
  it("passes a clean handover: duplicates only of what was in flight before the last commit", () => {
    const history: History = {
      produced,
      deliveries: [
        deliver("a", 0, 1),
        deliver("a", 1, 2),
        deliver("a", 2, 3),
        deliver("b", 2, 10),
        deliver("b", 3, 11),
      ],
      commits: [{ partition: 0, offset: 2, ackedAtMs: 4 }],
    };
    expect(checkHistory(history)).toEqual({
      lost: [],
      redeliveredAfterCommit: [],
      nonMonotonic: [],
      startedPastCommit: [],
      duplicates: 1,
    });
  });

  it("names lost records, redeliveries after a commit, gaps and starts past the commit", () => {
    const history: History = {
      produced,
      deliveries: [
        deliver("a", 0, 1),
        deliver("a", 2, 2),
        { ...deliver("b", 0, 10), committedAtStart: 0 },
        { ...deliver("c", 2, 20), committedAtStart: 1 },
      ],
      commits: [{ partition: 0, offset: 1, ackedAtMs: 5 }],
    };
    const result = checkHistory(history);
    expect(result.lost.map((record) => record.offset)).toEqual([1, 3]);
    expect(result.redeliveredAfterCommit.map((delivery) => delivery.assignment)).toEqual(["b"]);
    expect(result.nonMonotonic).toEqual([{ assignment: "a", partition: 0, expected: 1, got: 2 }]);
    expect(result.startedPastCommit.map((delivery) => delivery.assignment)).toEqual(["c"]);
  });
});
