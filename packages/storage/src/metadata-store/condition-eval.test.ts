import { describe, expect, it } from "vitest";
import { attributeValueBytes } from "./condition-eval.js";

// DynamoDB sizes a number as 1 byte plus 1 per two significant digits (leading and trailing
// zeros trimmed), plus 1 when negative; the 400 KB item limit is enforced with these sizes.
describe("attributeValueBytes of numbers", () => {
  it.each([
    [0, 1],
    [7, 2],
    [12, 2],
    [123, 3],
    [1_000_000, 2],
    [1_200, 2],
    [-12_345, 5],
    [1_764_806_400_000, 5],
    [1_764_806_400_001, 8],
    [Number.MAX_SAFE_INTEGER, 9],
    [1.5, 2],
    [0.000_125, 3],
    [-2.5e-7, 3],
    [1e21, 2],
  ])("%d takes %d bytes", (value, bytes) => {
    expect(attributeValueBytes(value)).toBe(bytes);
  });
});
