import type {
  Item,
  ItemKey,
  MetadataStore,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "@sluice/storage";

/** One write the store applied, with the items it touched as they were just before. */
export interface AppliedWrite {
  /** 0, 1, 2, … in the order the store applied the writes. */
  sequence: number;
  operations: readonly TransactOperation[];
  /** The touched items before the write (undefined: missing), by `itemId`. */
  before: ReadonlyMap<string, Item | undefined>;
  /** The same items after it. */
  after: ReadonlyMap<string, Item | undefined>;
}

export function itemId(key: ItemKey): string {
  return `${key.pk}\u0000${key.sk}`;
}

/**
 * The ground truth of a scenario: writes go to the store one at a time, so the order they resolve
 * in is the order they were applied — on any backend, DynamoDB included — and each applied write
 * is reported with the before and after of every item it touched. Checkers judge each write
 * against the state it met (was the lease free when it was taken? did the committer own it?)
 * instead of guessing an order from overlapping calls. Reads are not serialised, so callers still
 * decide on stale reads and race each other's conditions.
 *
 * Only writes made through this wrapper are mirrored: put every writer of the checked items above it.
 */
export class RecordingMetadataStore implements MetadataStore {
  readonly mirror = new Map<string, Item>();
  private sequence = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly inner: MetadataStore,
    private readonly onApplied: (write: AppliedWrite) => void = () => {},
  ) {}

  get(key: ItemKey) {
    return this.inner.get(key);
  }
  query(query: Query) {
    return this.inner.query(query);
  }
  put(item: Item, options?: WriteOptions) {
    return this.serial([{ kind: "put", item, ...options }], () => this.inner.put(item, options));
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    return this.serial([{ kind: "update", key, changes, ...options }], () =>
      this.inner.update(key, changes, options),
    );
  }
  delete(key: ItemKey, options?: WriteOptions) {
    return this.serial([{ kind: "delete", key, ...options }], () => this.inner.delete(key, options));
  }
  transactWrite(operations: readonly TransactOperation[]) {
    return this.serial(operations, () => this.inner.transactWrite(operations));
  }

  private serial<T>(operations: readonly TransactOperation[], write: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      const result = await write();
      this.applied(operations);
      return result;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private applied(operations: readonly TransactOperation[]): void {
    const before = new Map<string, Item | undefined>();
    const after = new Map<string, Item | undefined>();
    for (const operation of operations) {
      const key = operation.kind === "put" ? operation.item : operation.key;
      const id = itemId(key);
      const current = this.mirror.get(id);
      before.set(id, current);
      let next: Item | undefined = current;
      if (operation.kind === "put") next = { ...operation.item };
      else if (operation.kind === "delete") next = undefined;
      else if (operation.kind === "update") next = applyUpdate(current, key, operation.changes);
      if (next) this.mirror.set(id, next);
      else this.mirror.delete(id);
      after.set(id, next);
    }
    this.onApplied({ sequence: this.sequence++, operations, before, after });
  }
}

function applyUpdate(current: Item | undefined, key: ItemKey, changes: UpdateChanges): Item {
  const next: Item = current ? { ...current } : { pk: key.pk, sk: key.sk };
  for (const [name, value] of Object.entries(changes.set ?? {})) next[name] = value;
  for (const [name, amount] of Object.entries(changes.add ?? {}))
    next[name] = Number(next[name] ?? 0) + amount;
  for (const name of changes.remove ?? []) delete next[name];
  return next;
}
