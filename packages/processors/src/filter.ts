import type { Match, RecordFilter } from "./definition.js";

export interface FilterableRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: readonly { key: string; value: Uint8Array | null }[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes that are not UTF-8: present, but equal to nothing. */
const NOT_TEXT = Symbol("not text");

function textOf(bytes: Uint8Array | null): string | null | typeof NOT_TEXT {
  if (bytes === null) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return NOT_TEXT;
  }
}

/**
 * A record passes when every condition holds (Lambda's event filtering, on Sluice's record):
 * conditions on the key and on header values compare their UTF-8 text; conditions on the value
 * look up dot paths in the value parsed as JSON (a value that is not a JSON object matches only
 * `exists: false`). Records that do not pass are done without a handler call.
 */
export function compileFilter(filter: RecordFilter | null): (record: FilterableRecord) => boolean {
  if (filter === null) return () => true;
  const headerConditions = Object.entries(filter.headers);
  const valueConditions = Object.entries(filter.value).map(
    ([path, match]) => [path.split("."), match] as const,
  );
  return (record) => {
    if (filter.key && !matches(filter.key, record.key === null ? undefined : textOf(record.key)))
      return false;
    for (const [name, match] of headerConditions) {
      const header = record.headers.find((candidate) => candidate.key === name);
      if (!matches(match, header === undefined ? undefined : textOf(header.value))) return false;
    }
    if (valueConditions.length === 0) return true;
    let parsed: unknown;
    try {
      const text = textOf(record.value);
      parsed = typeof text === "string" ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    for (const [path, match] of valueConditions) {
      if (!matches(match, lookup(parsed, path))) return false;
    }
    return true;
  };
}

/** `undefined`: absent. */
function matches(match: Match, actual: unknown): boolean {
  switch (match.kind) {
    case "exists":
      return (actual !== undefined) === match.exists;
    case "equals":
      return actual !== undefined && actual === match.value;
    case "prefix":
      return typeof actual === "string" && actual.startsWith(match.prefix);
    case "anyOf":
      return actual !== undefined && match.values.some((value) => value === actual);
  }
}

function lookup(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const segment of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
