import { InvalidArgumentError } from "@sluice/core";
import { EPOCH_MILLIS_PATTERN, ISO_DATE_TIME_PATTERN, TIMESTAMP_MAX } from "./patterns.js";

const EPOCH_MILLIS = new RegExp(EPOCH_MILLIS_PATTERN);
/** The document's pattern decides what is a date-time; this one only picks out its fields. */
const ISO_DATE_TIME = new RegExp(ISO_DATE_TIME_PATTERN);
const ISO_FIELDS =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * A timestamp as the API accepts it: epoch milliseconds (a non-negative integer, or its digits as
 * text) or an ISO-8601 date-time with a zone (`2024-05-01T12:00:00.250Z`, `…+02:00`), exactly as
 * `EPOCH_MILLIS_PATTERN` and `ISO_DATE_TIME_PATTERN` (the OpenAPI document's) describe them:
 * impossible dates (February 30th) and times before 1970 are refused, not rolled over. `field`
 * names the value in the error.
 */
export function parseTimestamp(value: unknown, field: string): number {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0 && value <= TIMESTAMP_MAX) return value;
    throw invalid(field, value);
  }
  if (typeof value !== "string") throw invalid(field, value);
  if (EPOCH_MILLIS.test(value)) return Number(value);
  const match = ISO_DATE_TIME.test(value) ? ISO_FIELDS.exec(value) : null;
  if (!match) throw invalid(field, value);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? "0")) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = Number((match[7] ?? "").padEnd(3, "0").slice(0, 3));
  const local = Date.UTC(year, month - 1, day, hour, minute, second, fraction);
  const check = new Date(local);
  // The pattern admits only real dates; this guards the two against drifting apart.
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    throw invalid(field, value);
  }
  const offsetMinutes =
    match[8] === undefined ? 0 : (match[8] === "-" ? -1 : 1) * (Number(match[9]) * 60 + Number(match[10]));
  const millis = local - offsetMinutes * 60_000;
  if (millis < 0) throw invalid(field, value);
  return millis;
}

export function isoTimestamp(millis: number): string {
  // The records of one request mostly share their append time: format it once.
  if (millis !== lastMillis) {
    lastMillis = millis;
    lastIso = new Date(millis).toISOString();
  }
  return lastIso;
}

let lastMillis = Number.NaN;
let lastIso = "";

function invalid(field: string, value: unknown): InvalidArgumentError {
  return new InvalidArgumentError(
    `${field} must be epoch milliseconds (a non-negative integer) or an ISO-8601 date-time with a zone such as 2024-05-01T12:00:00Z; got ${JSON.stringify(value)}`,
    { details: { field } },
  );
}
