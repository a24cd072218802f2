import { InvalidArgumentError } from "@sluice/core";

/** The largest time a JavaScript Date holds (year 275760). */
const TIMESTAMP_MAX = 8_640_000_000_000_000;
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * A timestamp as the API accepts it: epoch milliseconds (a non-negative integer) or an ISO-8601
 * date-time with a zone (`2024-05-01T12:00:00.250Z`, `…+02:00`). Impossible dates (February 30th)
 * are refused rather than rolled over. `field` names the value in the error.
 */
export function parseTimestamp(value: unknown, field: string): number {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0 && value <= TIMESTAMP_MAX) return value;
    throw invalid(field, value);
  }
  if (typeof value !== "string") throw invalid(field, value);
  if (/^\d+$/.test(value)) {
    const millis = Number(value);
    if (Number.isSafeInteger(millis) && millis <= TIMESTAMP_MAX) return millis;
    throw invalid(field, value);
  }
  const match = ISO_8601.exec(value);
  if (!match) throw invalid(field, value);
  const [year, month, day, hour, minute, second = "0"] = match.slice(1, 7).map((part) => part ?? "0");
  const fraction = (match[7] ?? "").padEnd(3, "0").slice(0, 3);
  const fields = [year, month, day, hour, minute, second].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const local = Date.UTC(
    fields[0],
    fields[1] - 1,
    fields[2],
    fields[3],
    fields[4],
    fields[5],
    Number(fraction),
  );
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== fields[0] ||
    check.getUTCMonth() !== fields[1] - 1 ||
    check.getUTCDate() !== fields[2] ||
    check.getUTCHours() !== fields[3] ||
    check.getUTCMinutes() !== fields[4] ||
    check.getUTCSeconds() !== fields[5]
  ) {
    throw invalid(field, value);
  }
  const offsetMinutes =
    match[8] === "Z" ? 0 : (match[9] === "-" ? -1 : 1) * (Number(match[10]) * 60 + Number(match[11]));
  const millis = local - offsetMinutes * 60_000;
  if (!Number.isSafeInteger(millis) || millis < 0 || millis > TIMESTAMP_MAX) throw invalid(field, value);
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
