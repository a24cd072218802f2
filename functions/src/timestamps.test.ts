import { describe, expect, it } from "vitest";
import { isoTimestamp, parseTimestamp } from "./timestamps.js";

describe("parseTimestamp", () => {
  it("accepts epoch milliseconds as a number or a string of digits", () => {
    expect(parseTimestamp(0, "t")).toBe(0);
    expect(parseTimestamp(1_700_000_000_123, "t")).toBe(1_700_000_000_123);
    expect(parseTimestamp("1700000000123", "t")).toBe(1_700_000_000_123);
  });

  it("accepts ISO-8601 date-times with a zone, with or without seconds and fractions", () => {
    expect(parseTimestamp("2024-05-01T12:00:00Z", "t")).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseTimestamp("2024-05-01T12:00Z", "t")).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseTimestamp("2024-05-01T12:00:00.5Z", "t")).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 500));
    expect(parseTimestamp("2024-05-01T12:00:00.123456789Z", "t")).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
    expect(parseTimestamp("2024-05-01T14:30:00+02:30", "t")).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseTimestamp("2024-05-01T09:00:00-03:00", "t")).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseTimestamp("2024-02-29T00:00:00Z", "t")).toBe(Date.UTC(2024, 1, 29));
  });

  it.each([
    [-1],
    [1.5],
    [Number.MAX_SAFE_INTEGER],
    ["2024-02-30T00:00:00Z"],
    ["2023-02-29T00:00:00Z"],
    ["2024-05-01T24:00:00Z"],
    ["2024-05-01T12:00:00"],
    ["2024-05-01"],
    ["1969-12-31T23:59:59Z"],
    ["yesterday"],
    [""],
    [null],
    [true],
  ])("rejects %j, naming the field", (value) => {
    expect(() => parseTimestamp(value, "record 2: timestamp")).toThrow(
      /^record 2: timestamp must be epoch milliseconds/,
    );
  });

  it("formats milliseconds as ISO-8601 UTC", () => {
    expect(isoTimestamp(1_700_000_000_123)).toBe("2023-11-14T22:13:20.123Z");
  });
});
