/**
 * MetadataStore: the port for small, strongly consistent, conditionally updated items — topic
 * heads, index entries, leases, offsets. It is shaped like one DynamoDB table: every item has a
 * partition key `pk` and a sort key `sk` (both strings) plus attributes.
 *
 * Guarantees every adapter gives (checked by metadata-store.contract.ts):
 * - Every read (`get`, `query`) is strongly consistent: it sees every write that resolved before
 *   it started.
 * - `put`, `update` and `delete` are atomic per item. With a `condition`, the condition is
 *   evaluated against the item's current value (a missing item has no attributes) and the write
 *   happens only if it holds; otherwise ConditionFailedError (a ConflictError) carrying the item's
 *   current value, and nothing changes.
 * - `update` upserts: on a missing item it creates one with the key and the updated attributes.
 *   `add` adds a number atomically (a missing attribute counts as 0); concurrent adds never lose
 *   an update.
 * - `query` returns the items of one `pk` whose `sk` matches the range, ordered by `sk` (the
 *   UTF-8 byte order, ascending or descending), at most `limit` per page, with a `cursor` when
 *   more may remain. Paging neither skips nor repeats items when nothing changes in between.
 *   Sort keys are strings: numbers in them are zero-padded by the caller.
 * - `transactWrite` applies up to 100 operations on distinct items all-or-nothing. If any
 *   condition fails, nothing changes and TransactionCanceledError lists, per failed operation,
 *   its index and that item's current value.
 * - An item (keys, names and values) is at most 400 KB; larger is InvalidArgumentError.
 * - Requests DynamoDB would refuse are InvalidArgumentError in every adapter, before anything is
 *   written: empty `pk`/`sk`, `pk` over 2048 or `sk` over 1024 UTF-8 bytes, numbers that are not
 *   finite or outside DynamoDB's range, strings that are not well-formed Unicode, an update with
 *   no change or one that touches `pk`/`sk` or names an attribute twice, `add` to a non-number,
 *   an empty `and`/`or`, a query `limit` below 1, `between` with low above high, a cursor that is
 *   malformed or from another `pk`. An empty `transactWrite` is a no-op.
 * - Backend errors are mapped to the typed set in @sluice/core; transient ones are UnavailableError.
 */
export interface MetadataStore {
  get(key: ItemKey): Promise<Item | undefined>;
  put(item: Item, options?: WriteOptions): Promise<void>;
  /** Returns the item as it is after the update. */
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions): Promise<Item>;
  delete(key: ItemKey, options?: WriteOptions): Promise<void>;
  query(query: Query): Promise<QueryPage>;
  transactWrite(operations: readonly TransactOperation[]): Promise<void>;
}

/**
 * Attribute values. Numbers are JavaScript numbers (integers up to 2^53 stay exact; offsets and
 * epochs never go past that). Binary is Uint8Array. Lists and maps nest.
 */
export type AttributeValue =
  | string
  | number
  | boolean
  | null
  | Uint8Array
  | AttributeValue[]
  | { [name: string]: AttributeValue };

export interface ItemKey {
  pk: string;
  sk: string;
}

export interface Item extends ItemKey {
  [attribute: string]: AttributeValue;
}

/** Typed conditions on top-level attributes of the item being written. */
export type Condition =
  | { kind: "exists"; attribute: string }
  | { kind: "not_exists"; attribute: string }
  | { kind: "compare"; attribute: string; operator: CompareOperator; value: AttributeValue }
  | { kind: "and"; conditions: Condition[] }
  | { kind: "or"; conditions: Condition[] };

/**
 * `=` and `<>` compare any values (a missing attribute is unequal to everything). `<`, `<=`, `>`,
 * `>=` hold only when both sides are numbers, or both strings (UTF-8 byte order); otherwise false.
 */
export type CompareOperator = "=" | "<>" | "<" | "<=" | ">" | ">=";

export interface UpdateChanges {
  /** Attributes to set (not `pk`/`sk`). */
  set?: Record<string, AttributeValue>;
  /** Numbers to add atomically. */
  add?: Record<string, number>;
  /** Attributes to remove. */
  remove?: string[];
}

export interface WriteOptions {
  condition?: Condition;
}

export type SortKeyRange =
  | { kind: "eq"; value: string }
  | { kind: "lt" | "lte" | "gt" | "gte"; value: string }
  | { kind: "between"; low: string; high: string }
  | { kind: "begins_with"; prefix: string };

export interface Query {
  pk: string;
  sk?: SortKeyRange;
  /** Default "asc". */
  order?: "asc" | "desc";
  /** Maximum items per page, >= 1. Default: as many as fit in 1 MB. */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

export interface QueryPage {
  items: Item[];
  /** Present when more items may remain. */
  cursor?: string;
}

export type TransactOperation =
  | { kind: "put"; item: Item; condition?: Condition }
  | { kind: "update"; key: ItemKey; changes: UpdateChanges; condition?: Condition }
  | { kind: "delete"; key: ItemKey; condition?: Condition }
  | { kind: "condition_check"; key: ItemKey; condition: Condition };

export const TRANSACTION_OPERATIONS_MAX = 100;
export const ITEM_BYTES_MAX = 400 * 1024;
