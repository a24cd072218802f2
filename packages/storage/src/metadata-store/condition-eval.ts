import type { AttributeValue, CompareOperator, Condition, Item } from "./port.js";

/**
 * The one evaluator of the Condition AST for the in-process adapters (memory, SQLite), and the
 * item size rule every adapter enforces. The DynamoDB adapter compiles the same AST to a
 * ConditionExpression instead; the contract suite keeps the two in agreement.
 */

/** Evaluates `condition` against `item` (undefined: the item does not exist, so it has no attributes). */
export function evaluateCondition(condition: Condition, item: Item | undefined): boolean {
  switch (condition.kind) {
    case "exists":
      return attributeOf(item, condition.attribute) !== undefined;
    case "not_exists":
      return attributeOf(item, condition.attribute) === undefined;
    case "compare":
      return compareHolds(attributeOf(item, condition.attribute), condition.operator, condition.value);
    case "and":
      return condition.conditions.every((inner) => evaluateCondition(inner, item));
    case "or":
      return condition.conditions.some((inner) => evaluateCondition(inner, item));
  }
}

function attributeOf(item: Item | undefined, attribute: string): AttributeValue | undefined {
  if (item === undefined || !Object.hasOwn(item, attribute)) return undefined;
  return item[attribute];
}

function compareHolds(
  actual: AttributeValue | undefined,
  operator: CompareOperator,
  expected: AttributeValue,
): boolean {
  // Like DynamoDB: a missing attribute is unequal to everything, so `<>` holds and the rest fail.
  if (actual === undefined) return operator === "<>";
  switch (operator) {
    case "=":
      return attributeValuesEqual(actual, expected);
    case "<>":
      return !attributeValuesEqual(actual, expected);
    default: {
      const order = orderOf(actual, expected);
      if (order === undefined) return false;
      if (operator === "<") return order < 0;
      if (operator === "<=") return order <= 0;
      if (operator === ">") return order > 0;
      return order >= 0;
    }
  }
}

/** Ordering exists only between two numbers or two strings; anything else is incomparable. */
function orderOf(a: AttributeValue, b: AttributeValue): number | undefined {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") return compareUtf8(a, b);
  return undefined;
}

/** Deep equality with DynamoDB's rules: same type, binary by bytes, maps regardless of key order. */
export function attributeValuesEqual(a: AttributeValue, b: AttributeValue): boolean {
  if (a === null || b === null) return a === b;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && listsEqual(a, b);
  }
  if (typeof a === "object" || typeof b === "object") {
    return typeof a === "object" && typeof b === "object" && mapsEqual(a, b);
  }
  return a === b;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function listsEqual(a: AttributeValue[], b: AttributeValue[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((value, i) => attributeValuesEqual(value, b[i] as AttributeValue));
}

function mapsEqual(a: { [name: string]: AttributeValue }, b: { [name: string]: AttributeValue }): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => Object.hasOwn(b, name) && attributeValuesEqual(a[name]!, b[name]!));
}

/**
 * Compares two strings in UTF-8 byte order, which is Unicode code point order. JavaScript's own
 * `<` compares UTF-16 code units and puts U+10000..U+10FFFF (surrogate pairs, 0xD800..0xDFFF)
 * before U+E000..U+FFFF; shifting the unit ranges restores code point order without encoding.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/**
 * Approximates DynamoDB's item size: the UTF-8 length of every attribute name plus its value's
 * size. Strings count their UTF-8 bytes, binary its length, numbers about one byte per two
 * significant digits plus one (at most 21), booleans and null one byte, lists and maps 3 bytes
 * plus one per element (and the element's name for maps).
 */
export function itemBytes(item: Item): number {
  let total = 0;
  for (const name in item) total += utf8Bytes(name) + attributeValueBytes(item[name]!);
  return total;
}

export function attributeValueBytes(value: AttributeValue): number {
  if (typeof value === "string") return utf8Bytes(value);
  if (typeof value === "number") return numberBytes(value);
  if (typeof value === "boolean" || value === null) return 1;
  if (value instanceof Uint8Array) return value.length;
  if (Array.isArray(value)) {
    let total = 3;
    for (const element of value) total += 1 + attributeValueBytes(element);
    return total;
  }
  let total = 3;
  for (const name in value) {
    total += 1 + utf8Bytes(name) + attributeValueBytes(value[name]!);
  }
  return total;
}

function numberBytes(value: number): number {
  if (value === 0) return 1;
  if (Number.isSafeInteger(value)) {
    // Integers (offsets, epochs, times) are most numbers stored: count digits, not formatting.
    let magnitude = Math.abs(value);
    while (magnitude % 10 === 0) magnitude /= 10;
    const significant = String(magnitude).length;
    return Math.min(21, 1 + Math.ceil(significant / 2) + (value < 0 ? 1 : 0));
  }
  // toExponential() without digits prints the shortest mantissa that round-trips.
  const mantissa = Math.abs(value).toExponential().split("e")[0] ?? "";
  const significant = mantissa.replace(".", "").replace(/0+$/, "").length;
  return Math.min(21, 1 + Math.ceil(significant / 2) + (value < 0 ? 1 : 0));
}

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}
