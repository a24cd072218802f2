import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OffsetSet } from "./offset-set.js";

/** The same contract over a plain set: the model the list-based one must match. */
class ModelOffsetSet {
  readonly offsets = new Set<number>();
  private high = -1;

  add(offset: number): void {
    if (this.offsets.has(offset)) return;
    if (offset < this.high) throw new Error("out of order");
    this.offsets.add(offset);
    this.high = offset;
  }

  delete(offset: number): boolean {
    return this.offsets.delete(offset);
  }

  sorted(): number[] {
    return [...this.offsets].sort((a, b) => a - b);
  }
}

type Operation =
  | { kind: "add"; step: number }
  | { kind: "re-add"; pick: number }
  | { kind: "delete"; pick: number }
  | { kind: "delete-head" }
  | { kind: "clear" };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("add" as const), step: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("re-add" as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete-head" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
);

describe("OffsetSet", () => {
  it("answers as a plain set does, over any sequence of adds in order, deletions and clears", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 3_000 }), fc.nat(5), (operations, start) => {
        const set = new OffsetSet();
        const model = new ModelOffsetSet();
        let next = start;
        let everAdded: number[] = [];
        for (const op of operations) {
          if (op.kind === "add") {
            next += op.step;
            set.add(next);
            model.add(next);
            everAdded.push(next);
          } else if (op.kind === "re-add" && everAdded.length > 0) {
            // Any offset added before: present ones and the highest come back quietly, others throw.
            const offset = everAdded[op.pick % everAdded.length]!;
            let modelError = false;
            try {
              model.add(offset);
            } catch {
              modelError = true;
            }
            if (modelError) expect(() => set.add(offset)).toThrow(/increasing order/);
            else set.add(offset);
          } else if (op.kind === "delete") {
            const offset = everAdded.length > 0 ? everAdded[op.pick % everAdded.length]! : op.pick;
            expect(set.delete(offset)).toBe(model.delete(offset));
          } else if (op.kind === "delete-head") {
            const head = model.sorted()[0];
            if (head !== undefined) expect(set.delete(head)).toBe(model.delete(head));
          } else if (op.kind === "clear") {
            set.clear();
            model.offsets.clear();
            // A cleared set starts over: offsets may begin anywhere again.
            (model as unknown as { high: number }).high = -1;
            everAdded = [];
            next = start;
          }
          const expected = model.sorted();
          expect(set.size).toBe(expected.length);
          expect(set.min()).toBe(expected[0]);
        }
        const expected = model.sorted();
        expect(set.below(Number.POSITIVE_INFINITY)).toEqual(expected);
        const limit = expected[Math.floor(expected.length / 2)] ?? 0;
        expect(set.below(limit)).toEqual(expected.filter((offset) => offset < limit));
        // Excluded: every other offset ever added (present or not), plus some never added.
        const excluded = [
          ...new Set([...everAdded.filter((_, index) => index % 2 === 0), start - 1, next + 1]),
        ].sort((a, b) => a - b);
        expect(set.belowExcept(limit, excluded)).toEqual(
          expected.filter((offset) => offset < limit && !excluded.includes(offset)),
        );
        for (const offset of everAdded) expect(set.has(offset)).toBe(model.offsets.has(offset));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps working past the point where it compacts its list", () => {
    const set = new OffsetSet();
    for (let offset = 0; offset < 10_000; offset++) set.add(offset);
    set.delete(5_000); // out of order: remembered until the head passes it
    for (let offset = 0; offset < 4_000; offset++) expect(set.delete(offset)).toBe(true);
    expect(set.min()).toBe(4_000);
    expect(set.has(5_000)).toBe(false);
    expect(set.below(5_002)).toEqual([...Array.from({ length: 1_000 }, (_, n) => 4_000 + n), 5_001]);
    for (let offset = 4_000; offset < 5_000; offset++) set.delete(offset);
    expect(set.min()).toBe(5_001);
    expect(set.size).toBe(4_999);
  });
});
