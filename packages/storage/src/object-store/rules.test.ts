import { InvalidArgumentError } from "@sluice/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareKeys, decodeCursor, encodeCursor, pageOfSortedKeys, selectRange } from "./rules.js";

const anyText = fc.string({ unit: "binary", maxLength: 12 });

describe("compareKeys", () => {
  it("orders like the keys' UTF-8 bytes, which S3 lists by", () => {
    fc.assert(
      fc.property(anyText, anyText, (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
        expect(Math.sign(compareKeys(a, b))).toBe(bytes);
      }),
    );
  });

  it("differs from UTF-16 order above U+FFFF", () => {
    expect(compareKeys("\uFF21", "😀")).toBeLessThan(0);
    expect("\uFF21" < "😀").toBe(false);
  });
});

describe("pageOfSortedKeys", () => {
  it("walks any sorted key list in pages without skips or repeats", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(anyText, { maxLength: 30 }),
        fc.integer({ min: 1, max: 7 }),
        (raw, limit) => {
          const keys = [...raw].sort(compareKeys);
          const seen: string[] = [];
          let cursor: string | undefined;
          do {
            const page = pageOfSortedKeys(keys, limit, cursor);
            expect(page.keys.length).toBeLessThanOrEqual(limit);
            seen.push(...page.keys);
            cursor = page.cursor;
          } while (cursor !== undefined);
          expect(seen).toEqual(keys);
        },
      ),
    );
  });

  it("rejects a cursor it did not issue", () => {
    expect(() => decodeCursor("not base64url!")).toThrow(InvalidArgumentError);
    expect(() => decodeCursor("")).toThrow(InvalidArgumentError);
    expect(decodeCursor(encodeCursor("a/😀"))).toBe("a/😀");
  });
});

describe("selectRange", () => {
  it("cuts a range at the end and rejects one starting at or past it", () => {
    expect(selectRange(10, { offset: 8, length: 5 })).toEqual({ start: 8, end: 10 });
    expect(() => selectRange(10, { offset: 10, length: 1 })).toThrow(InvalidArgumentError);
    expect(() => selectRange(0, { offset: 0, length: 1 })).toThrow(InvalidArgumentError);
  });
});
