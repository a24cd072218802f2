import type { ItemKey } from "./port.js";
import { invalid } from "./validate.js";

/** DynamoDB stops a query page after 1 MB of items when no limit is given; the local adapters too. */
export const QUERY_PAGE_BYTES_MAX = 1024 * 1024;

/**
 * Query cursors are opaque to callers: base64url of the JSON key of the last item returned. Every
 * adapter uses this one format (DynamoDB's LastEvaluatedKey of the base table is exactly that key).
 */
export function encodeCursor(key: ItemKey): string {
  return Buffer.from(JSON.stringify({ pk: key.pk, sk: key.sk }), "utf8").toString("base64url");
}

/** Decodes a cursor and checks it belongs to the queried partition. */
export function decodeCursor(cursor: string, pk: string): ItemKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch (error) {
    throw invalid("query cursor is not valid", { cause: String(error) });
  }
  if (!isKey(parsed)) throw invalid("query cursor is not valid");
  if (parsed.pk !== pk) throw invalid("query cursor belongs to another partition key", { pk });
  return { pk: parsed.pk, sk: parsed.sk };
}

function isKey(value: unknown): value is ItemKey {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.pk === "string" &&
    typeof candidate.sk === "string" &&
    candidate.sk.length > 0 &&
    Object.keys(candidate).length === 2
  );
}

/**
 * The smallest string greater than every string that starts with `prefix`, in code point (UTF-8
 * byte) order: drop trailing U+10FFFF, then raise the last code point by one (stepping over the
 * surrogate range, which well-formed strings never contain). Undefined when there is none.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix, (character) => character.codePointAt(0) ?? 0);
  while (codePoints.length > 0) {
    const last = codePoints.pop() ?? 0;
    if (last < 0x10ffff) {
      return String.fromCodePoint(...codePoints, last + 1 === 0xd800 ? 0xe000 : last + 1);
    }
  }
  return undefined;
}
