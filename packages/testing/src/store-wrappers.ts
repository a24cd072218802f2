import { UnavailableError } from "@sluice/core";
import type {
  GetOptions,
  Item,
  ItemKey,
  ListOptions,
  MetadataStore,
  ObjectStore,
  PutOptions,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "@sluice/storage";

/** Counts calls per method, so tests can prove a rejected request wrote nothing. */
export class CountingMetadataStore implements MetadataStore {
  readonly calls = { get: 0, put: 0, update: 0, delete: 0, query: 0, transactWrite: 0 };

  constructor(private readonly inner: MetadataStore) {}

  get writes(): number {
    return this.calls.put + this.calls.update + this.calls.delete + this.calls.transactWrite;
  }
  get reads(): number {
    return this.calls.get + this.calls.query;
  }
  reset(): void {
    for (const name of Object.keys(this.calls) as (keyof typeof this.calls)[]) this.calls[name] = 0;
  }
  get(key: ItemKey) {
    this.calls.get++;
    return this.inner.get(key);
  }
  put(item: Item, options?: WriteOptions) {
    this.calls.put++;
    return this.inner.put(item, options);
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    this.calls.update++;
    return this.inner.update(key, changes, options);
  }
  delete(key: ItemKey, options?: WriteOptions) {
    this.calls.delete++;
    return this.inner.delete(key, options);
  }
  query(query: Query) {
    this.calls.query++;
    return this.inner.query(query);
  }
  transactWrite(operations: readonly TransactOperation[]) {
    this.calls.transactWrite++;
    return this.inner.transactWrite(operations);
  }
}

export class CountingObjectStore implements ObjectStore {
  readonly calls = { get: 0, head: 0, put: 0, list: 0, delete: 0, deleteMany: 0 };

  constructor(private readonly inner: ObjectStore) {}

  get writes(): number {
    return this.calls.put + this.calls.delete + this.calls.deleteMany;
  }
  reset(): void {
    for (const name of Object.keys(this.calls) as (keyof typeof this.calls)[]) this.calls[name] = 0;
  }
  get(key: string, options?: GetOptions) {
    this.calls.get++;
    return this.inner.get(key, options);
  }
  head(key: string) {
    this.calls.head++;
    return this.inner.head(key);
  }
  put(key: string, body: Uint8Array, options?: PutOptions) {
    this.calls.put++;
    return this.inner.put(key, body, options);
  }
  list(prefix: string, options?: ListOptions) {
    this.calls.list++;
    return this.inner.list(prefix, options);
  }
  delete(key: string) {
    this.calls.delete++;
    return this.inner.delete(key);
  }
  deleteMany(keys: readonly string[]) {
    this.calls.deleteMany++;
    return this.inner.deleteMany(keys);
  }
}

/** A deterministic source of choices, so a failing fault schedule can be replayed from its seed. */
export type Chooser = () => number;

export function seededChooser(seed: number): Chooser {
  let state = seed >>> 0 || 1;
  return () => {
    // xorshift32: tiny and deterministic, enough to pick faults.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

export interface FaultPlan {
  /** Probability that a write fails before reaching the store. */
  failBefore: number;
  /** Probability that a write is applied but its answer is lost (the caller sees a timeout). */
  loseAnswer: number;
  /**
   * Probability that a write is applied and then the writing process dies before it can answer
   * (a Lambda timing out). Surfaces as SimulatedCrashError, which the engine does not retry: the
   * client must retry elsewhere.
   */
  crashAfter?: number;
}

/** The writing process died after its write was applied; only a client retry can recover. */
export class SimulatedCrashError extends Error {
  override readonly name = "SimulatedCrashError";
}

/**
 * Injects the failures a real network gives: writes that never arrive and writes whose answer is
 * lost after they were applied. Both surface as UnavailableError, as a timeout would.
 */
export class FaultyMetadataStore implements MetadataStore {
  injected = { failedBefore: 0, lostAnswers: 0, crashes: 0 };

  constructor(
    private readonly inner: MetadataStore,
    private readonly plan: FaultPlan,
    private readonly choose: Chooser,
  ) {}

  get(key: ItemKey) {
    return this.inner.get(key);
  }
  query(query: Query) {
    return this.inner.query(query);
  }
  put(item: Item, options?: WriteOptions) {
    return this.faulty(() => this.inner.put(item, options));
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    return this.faulty(() => this.inner.update(key, changes, options));
  }
  delete(key: ItemKey, options?: WriteOptions) {
    return this.faulty(() => this.inner.delete(key, options));
  }
  transactWrite(operations: readonly TransactOperation[]) {
    return this.faulty(() => this.inner.transactWrite(operations));
  }

  private async faulty<T>(write: () => Promise<T>): Promise<T> {
    if (this.choose() < this.plan.failBefore) {
      this.injected.failedBefore++;
      throw new UnavailableError("injected fault: request failed before reaching the store");
    }
    const result = await write();
    if (this.choose() < (this.plan.crashAfter ?? 0)) {
      this.injected.crashes++;
      throw new SimulatedCrashError("injected fault: the writer died after its write was applied");
    }
    if (this.choose() < this.plan.loseAnswer) {
      this.injected.lostAnswers++;
      throw new UnavailableError("injected fault: request applied, answer lost");
    }
    return result;
  }
}

/**
 * An object store that passes every call to `inner` except `put`, which `put` answers (calling
 * `inner.put` itself when the write should happen): uploads that fail, wait or count, for tests.
 */
export function withPut(inner: ObjectStore, put: ObjectStore["put"]): ObjectStore {
  return {
    get: (key, options) => inner.get(key, options),
    head: (key) => inner.head(key),
    list: (prefix, options) => inner.list(prefix, options),
    delete: (key) => inner.delete(key),
    deleteMany: (keys) => inner.deleteMany(keys),
    put,
  };
}

export class FaultyObjectStore implements ObjectStore {
  injected = { failedBefore: 0, lostAnswers: 0 };

  constructor(
    private readonly inner: ObjectStore,
    private readonly plan: FaultPlan,
    private readonly choose: Chooser,
  ) {}

  get(key: string, options?: GetOptions) {
    return this.inner.get(key, options);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string, options?: ListOptions) {
    return this.inner.list(prefix, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  deleteMany(keys: readonly string[]) {
    return this.inner.deleteMany(keys);
  }
  async put(key: string, body: Uint8Array, options?: PutOptions) {
    if (this.choose() < this.plan.failBefore) {
      this.injected.failedBefore++;
      throw new UnavailableError("injected fault: upload failed");
    }
    const info = await this.inner.put(key, body, options);
    if (this.choose() < this.plan.loseAnswer) {
      this.injected.lostAnswers++;
      throw new UnavailableError("injected fault: upload applied, answer lost");
    }
    return info;
  }
}
