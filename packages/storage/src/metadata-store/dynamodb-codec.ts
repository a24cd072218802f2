import type { AttributeValue as DynamoValue } from "@aws-sdk/client-dynamodb";
import { InternalError } from "@sluice/core";
import type { AttributeValue, Item, ItemKey } from "./port.js";

/**
 * Marshalling between the port's values and DynamoDB's typed AttributeValue (S, N, B, BOOL,
 * NULL, L, M). Written here because @aws-sdk/util-dynamodb is not a dependency; it only has to
 * cover the port's types. Sets (SS, NS, BS) never come from this code, so reading one is an error.
 */

export type DynamoItem = Record<string, DynamoValue>;

export function marshallValue(value: AttributeValue): DynamoValue {
  if (value === null) return { NULL: true };
  if (typeof value === "string") return { S: value };
  if (typeof value === "number") return { N: formatNumber(value) };
  if (typeof value === "boolean") return { BOOL: value };
  if (value instanceof Uint8Array) return { B: value };
  if (Array.isArray(value)) return { L: value.map(marshallValue) };
  return { M: marshallMap(value) };
}

export function marshallItem(item: Item): DynamoItem {
  return marshallMap(item);
}

export function marshallKey(key: ItemKey): DynamoItem {
  return { pk: { S: key.pk }, sk: { S: key.sk } };
}

function marshallMap(map: { [name: string]: AttributeValue }): DynamoItem {
  const result: DynamoItem = {};
  for (const [name, value] of Object.entries(map)) result[name] = marshallValue(value);
  return result;
}

export function unmarshallValue(value: DynamoValue): AttributeValue {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  // A fresh plain Uint8Array: the SDK may hand out Buffers or views into a larger response buffer.
  if (value.B !== undefined) return new Uint8Array(value.B);
  if (value.L !== undefined) return value.L.map(unmarshallValue);
  if (value.M !== undefined) return unmarshallMap(value.M);
  throw new InternalError(
    `DynamoDB returned an attribute type the port has no value for: ${typeName(value)}`,
  );
}

export function unmarshallItem(item: DynamoItem): Item {
  const pk = item.pk?.S;
  const sk = item.sk?.S;
  if (pk === undefined || sk === undefined) {
    throw new InternalError("DynamoDB returned an item without string pk and sk");
  }
  return { ...unmarshallMap(item), pk, sk };
}

function unmarshallMap(map: DynamoItem): { [name: string]: AttributeValue } {
  const result: { [name: string]: AttributeValue } = {};
  for (const [name, value] of Object.entries(map)) result[name] = unmarshallValue(value);
  return result;
}

function typeName(value: DynamoValue): string {
  return Object.entries(value).find(([, member]) => member !== undefined)?.[0] ?? "none";
}

/**
 * Formats a number in plain decimal notation. JavaScript prints large and tiny numbers with an
 * exponent (1e+21, 1.5e-7); plain digits are the form every DynamoDB implementation parses.
 */
export function formatNumber(value: number): string {
  const text = String(value);
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, whole = "", fraction = "", exponentText = "0"] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exponentText);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
