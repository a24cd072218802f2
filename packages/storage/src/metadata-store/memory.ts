import { applyChanges, cloneItem } from "./apply-changes.js";
import { compareUtf8, evaluateCondition, itemBytes } from "./condition-eval.js";
import { ConditionFailedError, TransactionCanceledError, type TransactionFailure } from "./errors.js";
import { decodeCursor, encodeCursor, QUERY_PAGE_BYTES_MAX } from "./paging.js";
import type {
  Condition,
  Item,
  ItemKey,
  MetadataStore,
  Query,
  QueryPage,
  SortKeyRange,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "./port.js";
import {
  checkChanges,
  checkCondition,
  checkItem,
  checkKey,
  checkOperation,
  checkQuery,
  checkTransaction,
} from "./validate.js";

/**
 * The in-process MetadataStore for unit tests and single-process use. Every method runs to
 * completion synchronously inside its promise, so each call is atomic without locks. Items are
 * deep-copied in and out, so callers can never mutate stored state.
 */
export class MemoryMetadataStore implements MetadataStore {
  readonly #partitions = new Map<string, Map<string, Item>>();

  async get(key: ItemKey): Promise<Item | undefined> {
    const stored = this.#read(checkKey(key));
    return stored ? cloneItem(stored) : undefined;
  }

  async put(item: Item, options: WriteOptions = {}): Promise<void> {
    const next = checkItem(item);
    this.#require(next, options.condition);
    this.#write(next);
  }

  async update(key: ItemKey, changes: UpdateChanges, options: WriteOptions = {}): Promise<Item> {
    const checkedKey = checkKey(key);
    const checkedChanges = checkChanges(changes);
    const current = this.#require(checkedKey, options.condition);
    const next = applyChanges(current, checkedKey, checkedChanges);
    this.#write(next);
    return cloneItem(next);
  }

  async delete(key: ItemKey, options: WriteOptions = {}): Promise<void> {
    const checkedKey = checkKey(key);
    this.#require(checkedKey, options.condition);
    this.#partitions.get(checkedKey.pk)?.delete(checkedKey.sk);
  }

  async query(query: Query): Promise<QueryPage> {
    checkQuery(query);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, query.pk).sk;
    const descending = query.order === "desc";
    const matching = [...(this.#partitions.get(query.pk)?.values() ?? [])]
      .filter((item) => inRange(item.sk, query.sk) && isPast(item.sk, after, descending))
      .sort((a, b) => (descending ? compareUtf8(b.sk, a.sk) : compareUtf8(a.sk, b.sk)));
    return pageOf(matching, query.limit);
  }

  async transactWrite(operations: readonly TransactOperation[]): Promise<void> {
    checkTransaction(operations);
    const checked = operations.map(checkOperation);
    // Compute every result before changing anything, so a failure anywhere leaves no trace.
    const failures: TransactionFailure[] = [];
    const writes: Array<{ key: ItemKey; next: Item | undefined }> = [];
    checked.forEach((operation, index) => {
      const key = operation.kind === "put" ? operation.item : operation.key;
      const current = this.#read(key);
      if (operation.condition && !evaluateCondition(operation.condition, current)) {
        failures.push({ index, current: current ? cloneItem(current) : undefined });
        return;
      }
      if (operation.kind === "put") writes.push({ key, next: operation.item });
      if (operation.kind === "delete") writes.push({ key, next: undefined });
      if (operation.kind === "update") {
        writes.push({ key, next: applyChanges(current, key, operation.changes) });
      }
    });
    if (failures.length > 0) {
      throw new TransactionCanceledError(
        `transaction canceled: ${failures.length} condition(s) failed`,
        failures,
      );
    }
    for (const { key, next } of writes) {
      if (next) this.#write(next);
      else this.#partitions.get(key.pk)?.delete(key.sk);
    }
  }

  #read(key: ItemKey): Item | undefined {
    return this.#partitions.get(key.pk)?.get(key.sk);
  }

  #write(item: Item): void {
    let partition = this.#partitions.get(item.pk);
    if (!partition) {
      partition = new Map();
      this.#partitions.set(item.pk, partition);
    }
    partition.set(item.sk, item);
  }

  /** Returns the stored item when `condition` holds on it; otherwise throws ConditionFailedError. */
  #require(key: ItemKey, condition: Condition | undefined): Item | undefined {
    const current = this.#read(key);
    if (condition === undefined) return current;
    checkCondition(condition);
    if (!evaluateCondition(condition, current)) {
      throw new ConditionFailedError("the condition did not hold", current ? cloneItem(current) : undefined, {
        details: { pk: key.pk, sk: key.sk },
      });
    }
    return current;
  }
}

function inRange(sk: string, range: SortKeyRange | undefined): boolean {
  if (range === undefined) return true;
  switch (range.kind) {
    case "eq":
      return sk === range.value;
    case "lt":
      return compareUtf8(sk, range.value) < 0;
    case "lte":
      return compareUtf8(sk, range.value) <= 0;
    case "gt":
      return compareUtf8(sk, range.value) > 0;
    case "gte":
      return compareUtf8(sk, range.value) >= 0;
    case "between":
      return compareUtf8(sk, range.low) >= 0 && compareUtf8(sk, range.high) <= 0;
    case "begins_with":
      return sk.startsWith(range.prefix);
  }
}

function isPast(sk: string, after: string | undefined, descending: boolean): boolean {
  if (after === undefined) return true;
  const order = compareUtf8(sk, after);
  return descending ? order < 0 : order > 0;
}

/** Cuts one page from items already in query order: `limit` items or 1 MB, whichever comes first. */
function pageOf(items: Item[], limit: number | undefined): QueryPage {
  const page: Item[] = [];
  let bytes = 0;
  for (const item of items) {
    if (limit !== undefined && page.length >= limit) break;
    const size = itemBytes(item);
    if (page.length > 0 && bytes + size > QUERY_PAGE_BYTES_MAX) break;
    page.push(cloneItem(item));
    bytes += size;
  }
  const last = page.at(-1);
  return page.length < items.length && last ? { items: page, cursor: encodeCursor(last) } : { items: page };
}
