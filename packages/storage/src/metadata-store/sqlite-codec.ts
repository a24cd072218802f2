import { DataCorruptionError } from "@sluice/core";
import type { AttributeValue, Item, ItemKey } from "./port.js";

/**
 * Lossless JSON for the SQLite adapter's item column (the attributes besides pk/sk). Strings,
 * numbers, booleans, null and lists are plain JSON; every object is tagged so nothing can collide
 * with user data: `{"m": {...}}` is a map, `{"b": "<base64>"}` binary. JSON numbers round-trip
 * every finite double exactly (JSON.stringify prints the shortest round-tripping form).
 */
type Encoded = string | number | boolean | null | Encoded[] | { m: Record<string, Encoded> } | { b: string };

export function encodeAttributes(item: Item): string {
  const attributes: Record<string, Encoded> = {};
  // for…in over plain objects: no [name, value] array per attribute on the commit path.
  for (const name in item) {
    if (name !== "pk" && name !== "sk") attributes[name] = encodeValue(item[name]!);
  }
  return JSON.stringify(attributes);
}

function encodeValue(value: AttributeValue): Encoded {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return { b: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(encodeValue);
  const map: Record<string, Encoded> = {};
  for (const name in value) map[name] = encodeValue(value[name]!);
  return { m: map };
}

export function decodeItem(key: ItemKey, text: string): Item {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw corrupt(key, error);
  }
  if (!isRecord(parsed)) throw corrupt(key, "attributes are not a JSON object");
  const item: Item = { pk: key.pk, sk: key.sk };
  for (const name in parsed) item[name] = decodeValue(parsed[name]!, key);
  return item;
}

function decodeValue(value: unknown, key: ItemKey): AttributeValue {
  if (
    value === null ||
    typeof value === "string" ||
    typeof value === "number" ||
    typeof value === "boolean"
  ) {
    return value;
  }
  if (Array.isArray(value)) return value.map((element) => decodeValue(element, key));
  if (isRecord(value) && typeof value.b === "string") return new Uint8Array(Buffer.from(value.b, "base64"));
  if (isRecord(value) && isRecord(value.m)) {
    const map: { [name: string]: AttributeValue } = {};
    for (const name in value.m) map[name] = decodeValue(value.m[name]!, key);
    return map;
  }
  throw corrupt(key, "unknown value encoding");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function corrupt(key: ItemKey, cause: unknown): DataCorruptionError {
  return new DataCorruptionError("stored item cannot be decoded", {
    cause,
    details: { pk: key.pk, sk: key.sk },
  });
}
