import { InvalidArgumentError } from "@sluice/core";
import type { AttributeValue, Item, ItemKey } from "./port.js";
import { type CheckedChanges, checkItemSize, checkNumber } from "./validate.js";

/**
 * Applies validated update changes to a copy of the current item (or a new item holding just the
 * key: `update` upserts) for the in-process adapters. Throws InvalidArgumentError, like DynamoDB,
 * when `add` meets a non-number or the result outgrows the item size limit.
 */
export function applyChanges(current: Item | undefined, key: ItemKey, changes: CheckedChanges): Item {
  const next: Item = current ? { ...current } : { pk: key.pk, sk: key.sk };
  // for…in over the checked (plain) objects: no [name, value] array per attribute.
  for (const name in changes.set) next[name] = cloneValue(changes.set[name]!);
  for (const name in changes.add) next[name] = addTo(next[name], changes.add[name]!, name);
  for (const name of changes.remove) delete next[name];
  checkItemSize(next);
  return next;
}

function addTo(existing: AttributeValue | undefined, amount: number, name: string): number {
  if (existing === undefined) return amount;
  if (typeof existing !== "number") {
    throw new InvalidArgumentError(`cannot add to attribute ${name}: it is not a number`, {
      details: { attribute: name },
    });
  }
  return checkNumber(existing + amount, name);
}

/** Deep copy of an item; values were validated on the way in, so only these shapes occur. */
export function cloneItem(item: Item): Item {
  const copy: Item = { pk: item.pk, sk: item.sk };
  for (const name in item) copy[name] = cloneValue(item[name]!);
  return copy;
}

export function cloneValue(value: AttributeValue): AttributeValue {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(cloneValue);
  const copy: { [name: string]: AttributeValue } = {};
  for (const name in value) copy[name] = cloneValue(value[name]!);
  return copy;
}
