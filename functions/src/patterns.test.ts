import { validateTopicConfigs } from "@sluice/engine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CONFIG_NAMES,
  CONFIG_VALUE_RULES,
  configValueProblem,
  MESSAGE_BYTES_LIMIT,
} from "./config-values.js";
import { decodeBase64 } from "./data-encoding.js";
import { BASE64_PATTERN, EPOCH_MILLIS_PATTERN, ISO_DATE_TIME_PATTERN, unsignedUpTo } from "./patterns.js";
import { parseTimestamp } from "./timestamps.js";

/** Whether `parse` accepts `text` (does not throw). */
function accepts(parse: (text: string) => unknown, text: string): boolean {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
}

describe("unsignedUpTo", () => {
  it.each([0, 1, 9, 10, 99, 100, 1_048_576, 10_485_760, Number.MAX_SAFE_INTEGER])(
    "matches exactly the canonical integers from 0 to %d",
    (max) => {
      const pattern = new RegExp(`^${unsignedUpTo(max)}$`);
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: BigInt(max) * 10n + 10n }), (n) => {
          expect(pattern.test(n.toString())).toBe(n <= BigInt(max));
        }),
      );
      expect(pattern.test(String(max))).toBe(true);
      expect(pattern.test(`0${max}`)).toBe(false);
      expect(pattern.test(`-${max}`)).toBe(false);
    },
  );

  it("from 1 leaves out 0", () => {
    const pattern = new RegExp(`^${unsignedUpTo(10, 1)}$`);
    expect(["0", "1", "10", "11"].map((text) => pattern.test(text))).toEqual([false, true, true, false]);
  });
});

describe("the timestamp patterns say what parseTimestamp accepts", () => {
  const epoch = new RegExp(EPOCH_MILLIS_PATTERN);
  const iso = new RegExp(ISO_DATE_TIME_PATTERN);
  const documented = (text: string) => epoch.test(text) || iso.test(text);
  const parses = (text: string) => accepts((value) => parseTimestamp(value, "t"), text);

  it.each([
    "0",
    "000123",
    "8640000000000000",
    "2024-05-01T12:00Z",
    "2024-05-01T12:00:00.123456789Z",
    "2024-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00-05:00",
    "1970-01-02T00:30:00+01:00",
    "9999-12-31T23:59:59.999+23:59",
  ])("accepts %s", (text) => {
    expect(documented(text)).toBe(true);
    expect(parses(text)).toBe(true);
  });

  it.each([
    "8640000000000001",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T12:00:00+24:00",
    "2024-05-01T12:00:00",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:30:00+01:00",
    "2024-05-01t12:00:00z",
    "",
  ])("refuses %s", (text) => {
    expect(documented(text)).toBe(false);
    expect(parses(text)).toBe(false);
  });

  it("agrees with the parser on generated date-times and digits", () => {
    const twoDigits = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, "0"));
    const dateTime = fc
      .tuple(
        fc.integer({ min: 1960, max: 2500 }).map(String),
        twoDigits(13),
        twoDigits(32),
        twoDigits(24),
        twoDigits(60),
        fc.option(twoDigits(60)),
        fc.constantFrom("Z", "+00:00", "+01:30", "-23:59", "+24:00", "-00:60"),
      )
      .map(([y, mo, d, h, mi, s, zone]) => `${y}-${mo}-${d}T${h}:${mi}${s === null ? "" : `:${s}`}${zone}`);
    fc.assert(
      fc.property(fc.oneof(dateTime, fc.stringMatching(/^[0-9]{1,17}$/)), (text) => {
        expect(documented(text), text).toBe(parses(text));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("BASE64_PATTERN says what decodeBase64 accepts", () => {
  const pattern = new RegExp(BASE64_PATTERN);
  const decodes = (text: string) => accepts((value) => decodeBase64(value, "f"), text);

  it("on canonical encodings, their near misses and arbitrary text", () => {
    const canonical = fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString("base64"));
    const nearMiss = canonical.chain((text) =>
      fc
        .tuple(fc.nat({ max: Math.max(0, text.length) }), fc.constantFrom("A", "B", "=", "-", " ", "Q", ""))
        .map(([at, character]) => text.slice(0, at) + character + text.slice(at + 1)),
    );
    fc.assert(
      fc.property(fc.oneof(canonical, nearMiss, fc.string({ maxLength: 8 })), (text) => {
        expect(pattern.test(text), text).toBe(decodes(text));
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("config value rules", () => {
  it("accept only values the engine accepts, and say what they expect", () => {
    const samples = [
      "",
      "-1",
      "-2",
      "0",
      "007",
      "1",
      "86400000",
      String(MESSAGE_BYTES_LIMIT),
      String(MESSAGE_BYTES_LIMIT + 1),
      String(Number.MAX_SAFE_INTEGER),
      "9007199254740992",
      "delete",
      "compact",
      "delete,compact",
      "compact, delete",
      "delete,",
      "zstd",
      "brotli",
      "CreateTime",
      "LogAppendTime",
    ];
    for (const name of CONFIG_NAMES) {
      for (const value of samples) {
        const documented = CONFIG_VALUE_RULES[name].test(value);
        if (documented)
          expect(() => validateTopicConfigs({ [name]: value }), `${name}=${value}`).not.toThrow();
        expect(configValueProblem(name, value) === undefined).toBe(documented);
      }
    }
    expect(() => validateTopicConfigs({ "max.message.bytes": String(MESSAGE_BYTES_LIMIT + 1) })).toThrow();
    expect(configValueProblem("retention.ms", "007")).toMatch(
      /^invalid value for topic config retention\.ms: "007"; expected -1 .*without leading zeros$/,
    );
  });
});
