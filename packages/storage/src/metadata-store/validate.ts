import { InvalidArgumentError } from "@sluice/core";
import { compareUtf8, itemBytes, utf8Bytes } from "./condition-eval.js";
import {
  type AttributeValue,
  type Condition,
  ITEM_BYTES_MAX,
  type Item,
  type ItemKey,
  type Query,
  type SortKeyRange,
  TRANSACTION_OPERATIONS_MAX,
  type TransactOperation,
  type UpdateChanges,
} from "./port.js";

/**
 * Input checks shared by every adapter, so a request DynamoDB would refuse is refused the same way
 * (InvalidArgumentError, before anything is written) by the in-process adapters too. The item
 * checks also return a normalized deep copy, so callers never share mutable state with a store.
 */

/** DynamoDB's key limits: non-empty, partition key at most 2048 bytes, sort key at most 1024. */
const PK_BYTES_MAX = 2048;
const SK_BYTES_MAX = 1024;
/** DynamoDB numbers: magnitude below 1e126 and, unless zero, at least 1e-130. */
const NUMBER_MAGNITUDE_MAX = 1e126;
const NUMBER_MAGNITUDE_MIN = 1e-130;
/** A lone surrogate has no UTF-8 encoding, so it cannot be stored or compared by bytes. */
const LONE_SURROGATE = /\p{Cs}/u;

export function invalid(message: string, details: Record<string, unknown> = {}): InvalidArgumentError {
  return new InvalidArgumentError(message, { details });
}

export function checkKey(key: ItemKey): ItemKey {
  if (key === null || typeof key !== "object") throw invalid("a key must be an object with pk and sk");
  checkKeyPart("pk", key.pk, PK_BYTES_MAX);
  checkKeyPart("sk", key.sk, SK_BYTES_MAX);
  return { pk: key.pk, sk: key.sk };
}

function checkKeyPart(name: "pk" | "sk", value: unknown, bytesMax: number): void {
  if (typeof value !== "string") throw invalid(`${name} must be a string`);
  if (value.length === 0) throw invalid(`${name} must not be empty`);
  checkString(value, name);
  if (utf8Bytes(value) > bytesMax) {
    throw invalid(`${name} is longer than ${bytesMax} bytes`, { bytes: utf8Bytes(value) });
  }
}

/** Validates a whole item (keys, names, values, size) and returns a normalized deep copy. */
export function checkItem(item: Item): Item {
  if (item === null || typeof item !== "object") throw invalid("an item must be an object");
  const key = checkKey(item);
  // Not `{ ...key }`: an object spread and then given more properties is kept by V8 through a
  // young collection (docs/benchmarks.md, "Object spreads on the produce path").
  const copy: Item = { pk: key.pk, sk: key.sk };
  for (const name in item) {
    // Own attributes only, as Object.entries gives, without its array per attribute (hot path).
    if (!Object.hasOwn(item, name)) continue;
    const value = item[name];
    if (name === "pk" || name === "sk") continue;
    checkAttributeName(name);
    copy[name] = checkValue(value, name);
  }
  checkItemSize(copy);
  return copy;
}

export function checkItemSize(item: Item): void {
  const bytes = itemBytes(item);
  if (bytes > ITEM_BYTES_MAX) {
    throw invalid(`item is ${bytes} bytes, more than the ${ITEM_BYTES_MAX} byte limit`, {
      pk: item.pk,
      sk: item.sk,
      bytes,
    });
  }
}

function checkAttributeName(name: string): void {
  if (name.length === 0) throw invalid("attribute names must not be empty");
  checkString(name, "attribute name");
}

/** Validates an attribute value and returns a copy (plain Uint8Array for binary, -0 as 0). */
export function checkValue(value: unknown, path: string): AttributeValue {
  if (value === null || typeof value === "boolean") return value;
  if (typeof value === "string") return checkString(value, path);
  if (typeof value === "number") return checkNumber(value, path);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map((element, i) => checkValue(element, `${path}[${i}]`));
  if (isPlainObject(value)) {
    const copy: { [name: string]: AttributeValue } = {};
    for (const name in value) {
      if (!Object.hasOwn(value, name)) continue;
      const element = value[name];
      checkString(name, `${path} map key`);
      copy[name] = checkValue(element, `${path}.${name}`);
    }
    return copy;
  }
  throw invalid(`attribute ${path} has an unsupported value type`, { path, type: typeof value });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function checkString(value: string, path: string): string {
  if (LONE_SURROGATE.test(value)) throw invalid(`${path} is not well-formed Unicode (lone surrogate)`);
  return value;
}

export function checkNumber(value: number, path: string): number {
  const magnitude = Math.abs(value);
  if (!Number.isFinite(value) || magnitude >= NUMBER_MAGNITUDE_MAX) {
    throw invalid(`attribute ${path} is a number DynamoDB cannot store: ${value}`, { path });
  }
  if (magnitude !== 0 && magnitude < NUMBER_MAGNITUDE_MIN) {
    throw invalid(`attribute ${path} is a number too small for DynamoDB: ${value}`, { path });
  }
  // Normalizes -0, which DynamoDB stores as 0, so every adapter returns the same value.
  return value === 0 ? 0 : value;
}

/**
 * Validates update changes: at least one change, never on pk/sk, each attribute named at most
 * once across set/add/remove (DynamoDB rejects overlapping paths). Returns a normalized copy.
 */
export function checkChanges(changes: UpdateChanges): CheckedChanges {
  if (changes === null || typeof changes !== "object") throw invalid("update changes must be an object");
  const seen = new Set<string>();
  const claim = (name: string): void => {
    checkAttributeName(name);
    if (name === "pk" || name === "sk") throw invalid(`update cannot change the key attribute ${name}`);
    if (seen.has(name)) throw invalid(`update names attribute ${name} more than once`, { attribute: name });
    seen.add(name);
  };
  const set: Record<string, AttributeValue> = {};
  const setGiven = changes.set ?? {};
  for (const name in setGiven) {
    if (!Object.hasOwn(setGiven, name)) continue;
    claim(name);
    set[name] = checkValue(setGiven[name]!, name);
  }
  const add: Record<string, number> = {};
  const addGiven = changes.add ?? {};
  for (const name in addGiven) {
    if (!Object.hasOwn(addGiven, name)) continue;
    const value = addGiven[name];
    claim(name);
    if (typeof value !== "number") throw invalid(`add.${name} must be a number`);
    add[name] = checkNumber(value, name);
  }
  const remove: string[] = [];
  for (const name of changes.remove ?? []) {
    claim(name);
    remove.push(name);
  }
  if (seen.size === 0) throw invalid("update needs at least one change in set, add or remove");
  return { set, add, remove };
}

/** Conditions must be well-formed; an empty `and`/`or` has no DynamoDB expression, so it is refused. */
export function checkCondition(condition: Condition): void {
  if (condition === null || typeof condition !== "object") throw invalid("a condition must be an object");
  switch (condition.kind) {
    case "exists":
    case "not_exists":
      checkAttributeName(condition.attribute);
      return;
    case "compare":
      checkAttributeName(condition.attribute);
      if (!["=", "<>", "<", "<=", ">", ">="].includes(condition.operator)) {
        throw invalid(`unknown comparison operator ${String(condition.operator)}`);
      }
      checkValue(condition.value, `condition value of ${condition.attribute}`);
      return;
    case "and":
    case "or":
      if (!Array.isArray(condition.conditions) || condition.conditions.length === 0) {
        throw invalid(`an "${condition.kind}" condition needs at least one inner condition`);
      }
      for (const inner of condition.conditions) checkCondition(inner);
      return;
    default:
      throw invalid(`unknown condition kind ${String((condition as { kind: unknown }).kind)}`);
  }
}

export function checkQuery(query: Query): void {
  if (query === null || typeof query !== "object") throw invalid("a query must be an object");
  checkKeyPart("pk", query.pk, PK_BYTES_MAX);
  if (query.sk !== undefined) checkSortKeyRange(query.sk);
  if (query.order !== undefined && query.order !== "asc" && query.order !== "desc") {
    throw invalid(`query order must be "asc" or "desc"`);
  }
  if (query.limit !== undefined && !(Number.isSafeInteger(query.limit) && query.limit >= 1)) {
    throw invalid("query limit must be an integer >= 1", { limit: query.limit });
  }
  if (query.cursor !== undefined && typeof query.cursor !== "string") {
    throw invalid("query cursor must be a string");
  }
}

function checkSortKeyRange(range: SortKeyRange): void {
  switch (range.kind) {
    case "eq":
    case "lt":
    case "lte":
    case "gt":
    case "gte":
      checkKeyPart("sk", range.value, SK_BYTES_MAX);
      return;
    case "between":
      checkKeyPart("sk", range.low, SK_BYTES_MAX);
      checkKeyPart("sk", range.high, SK_BYTES_MAX);
      // DynamoDB refuses BETWEEN with low > high rather than returning nothing.
      if (compareUtf8(range.low, range.high) > 0) throw invalid("sort key range: low is greater than high");
      return;
    case "begins_with":
      checkKeyPart("sk", range.prefix, SK_BYTES_MAX);
      return;
    default:
      throw invalid(`unknown sort key range kind ${String((range as { kind: unknown }).kind)}`);
  }
}

/** Operation count and distinct items, the two transaction rules DynamoDB checks up front. */
export function checkTransaction(operations: readonly TransactOperation[]): void {
  if (!Array.isArray(operations)) throw invalid("transactWrite takes an array of operations");
  if (operations.length > TRANSACTION_OPERATIONS_MAX) {
    throw invalid(
      `a transaction has at most ${TRANSACTION_OPERATIONS_MAX} operations, got ${operations.length}`,
      { operations: operations.length },
    );
  }
  const seen = new Set<string>();
  operations.forEach((operation, index) => {
    const key = operation.kind === "put" ? operation.item : operation.key;
    checkKey(key);
    const id = JSON.stringify([key.pk, key.sk]);
    if (seen.has(id)) {
      throw invalid("a transaction cannot include more than one operation on the same item", {
        index,
        pk: key.pk,
        sk: key.sk,
      });
    }
    seen.add(id);
  });
}

export type CheckedChanges = Required<UpdateChanges>;

/** A transaction operation after validation: copies of its payload, changes fully spelled out. */
export type CheckedOperation =
  | Exclude<TransactOperation, { kind: "update" }>
  | { kind: "update"; key: ItemKey; changes: CheckedChanges; condition?: Condition };

/** Validates one transaction operation's payload and returns it with normalized copies. */
export function checkOperation(operation: TransactOperation): CheckedOperation {
  if (operation.condition !== undefined) checkCondition(operation.condition);
  switch (operation.kind) {
    case "put":
      return { ...operation, item: checkItem(operation.item) };
    case "update":
      return { ...operation, key: checkKey(operation.key), changes: checkChanges(operation.changes) };
    case "delete":
      return { ...operation, key: checkKey(operation.key) };
    case "condition_check":
      if (operation.condition === undefined) throw invalid("condition_check needs a condition");
      return { ...operation, key: checkKey(operation.key) };
    default:
      throw invalid(`unknown transaction operation kind ${String((operation as { kind: unknown }).kind)}`);
  }
}
