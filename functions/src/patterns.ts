/**
 * Regular expressions for the OpenAPI document, written in the subset that ECMAScript and Python
 * (the fuzzer's generator) read alike: `[0-9]` rather than `\d` (which matches other scripts'
 * digits in Python), no lookbehind, no flags.
 */

/**
 * Decimal integers from `min` (0 or 1) to `max`, written canonically: no sign, no leading zeros,
 * so `0`, `7`, `10485760`. One alternative per digit where a number can first fall below `max`.
 */
export function unsignedUpTo(max: number | bigint, min: 0 | 1 = 0): string {
  const digits = String(max);
  if (!/^[0-9]+$/.test(digits) || BigInt(max) < BigInt(min)) {
    throw new Error(`unsignedUpTo: no integer from ${min} to ${String(max)}`);
  }
  const alternatives: string[] = min === 0 ? ["0"] : [];
  if (digits.length > 1)
    alternatives.push(digits.length === 2 ? "[1-9]" : `[1-9][0-9]{0,${digits.length - 2}}`);
  for (let index = 0; index < digits.length; index++) {
    const digit = Number(digits[index]);
    const lowest = index === 0 ? 1 : 0;
    if (digit <= lowest) continue;
    const rest = digits.length - index - 1;
    const below = digit - 1 === lowest ? String(lowest) : `[${lowest}-${digit - 1}]`;
    alternatives.push(
      `${digits.slice(0, index)}${below}${rest === 0 ? "" : rest === 1 ? "[0-9]" : `[0-9]{${rest}}`}`,
    );
  }
  alternatives.push(digits);
  return `(?:${[...new Set(alternatives)].join("|")})`;
}

/** Whole-string match of an alternative. */
export function anchored(pattern: string): string {
  return `^${pattern}$`;
}

// A real calendar date from 1970 to 9999: days per month, February 29th only in leap years
// (every 4th year, except centuries not divisible by 400).
const YEAR = "(?:19[7-9][0-9]|[2-9][0-9]{3})";
const LEAP_YEAR =
  "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)";
const MONTH_DAY = [
  "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
  "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
  "02-(?:0[1-9]|1[0-9]|2[0-8])",
].join("|");
const DATE = `(?:${YEAR}-(?:${MONTH_DAY})|${LEAP_YEAR}-02-29)`;
const TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?";
const ZONE = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
// On 1970-01-01 a zone east of UTC could put the time before the epoch: that day takes only Z,
// ±00:00 and zones west of UTC.
const FIRST_DAY_ZONE = "(?:Z|[+-]00:00|-(?:[01][0-9]|2[0-3]):[0-5][0-9])";

/** The largest time a JavaScript Date holds (year 275760), in epoch milliseconds. */
export const TIMESTAMP_MAX = 8_640_000_000_000_000;

/** Epoch milliseconds as the API reads them in text: digits (leading zeros allowed) up to TIMESTAMP_MAX. */
export const EPOCH_MILLIS_PATTERN = anchored(`0*${unsignedUpTo(TIMESTAMP_MAX)}`);

/**
 * An ISO-8601 date-time with a zone, as the API reads it: a real calendar date from 1970-01-01 to
 * 9999-12-31, hours 00 to 23, optional seconds and up to nine fraction digits, `Z` or `±hh:mm`, and
 * never before the epoch.
 */
export const ISO_DATE_TIME_PATTERN = anchored(
  `(?:(?!1970-01-01T)${DATE}T${TIME}${ZONE}|1970-01-01T${TIME}${FIRST_DAY_ZONE})`,
);

/** A timestamp in text (a query parameter): epoch milliseconds or an ISO-8601 date-time. */
export const TIMESTAMP_TEXT_FORMS = [
  { type: "string" as const, pattern: EPOCH_MILLIS_PATTERN, example: "1714564800000" },
  { type: "string" as const, pattern: ISO_DATE_TIME_PATTERN, example: "2024-05-01T14:00:00.250+02:00" },
];

/** A timestamp as JSON Schema: epoch milliseconds (a number or its digits) or an ISO-8601 date-time. */
export const TIMESTAMP_SCHEMA = {
  oneOf: [
    { type: "integer" as const, minimum: 0, maximum: TIMESTAMP_MAX, example: 1714564800000 },
    ...TIMESTAMP_TEXT_FORMS,
  ],
};

export const TIMESTAMP_DESCRIPTION =
  "Epoch milliseconds (an integer, or its digits as a string, 0 to 8640000000000000) or an ISO-8601 date-time with a zone from 1970-01-01T00:00Z to year 9999: a real calendar date, seconds and up to nine fraction digits optional, Z or ±hh:mm";

/**
 * Canonical base64 (RFC 4648 §4), as decodeBase64 accepts it: groups of four, `=` padding, and the
 * unused bits of the last character zero (so `QQ==`, not `QR==`).
 */
export const BASE64_PATTERN =
  "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/** Text that UTF-8 can carry: no lone UTF-16 surrogate (JSON Schema patterns match code points). */
export const WELL_FORMED_TEXT_PATTERN = "^[^\\ud800-\\udfff]*$";
