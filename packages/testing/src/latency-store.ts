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

/**
 * A latency distribution given by its median and 99th percentile: log-normal, the usual shape of
 * service latencies (a floor, most calls near the median, a long right tail). ln(latency) is
 * normal with mean ln(p50) and standard deviation ln(p99 / p50) / 2.326.
 */
export interface LatencyDistribution {
  p50Ms: number;
  p99Ms: number;
}

/** Draws from a distribution, with `random` giving uniform numbers in [0, 1). */
export function drawLatency(distribution: LatencyDistribution, random: () => number): number {
  const sigma = Math.log(distribution.p99Ms / distribution.p50Ms) / 2.326;
  // Box–Muller: one standard normal from two uniforms (the first kept away from 0).
  const u = 1 - random();
  const v = random();
  const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return distribution.p50Ms * Math.exp(sigma * normal);
}

/** How long each kind of call takes, for a store in one place (S3 Standard, S3 Express, DynamoDB). */
export interface ObjectStoreLatency {
  put: LatencyDistribution;
  get: LatencyDistribution;
  /** list, head, delete: control calls. */
  other: LatencyDistribution;
}

export interface MetadataStoreLatency {
  /** GetItem and Query, strongly consistent. */
  read: LatencyDistribution;
  /** PutItem, UpdateItem, DeleteItem. */
  write: LatencyDistribution;
  /** TransactWriteItems. */
  transaction: LatencyDistribution;
}

export interface LatencyOptions {
  /** Uniform numbers in [0, 1), seeded for a replayable run. */
  random: () => number;
  /** Waits; real time for a benchmark. */
  sleep: (ms: number) => Promise<void>;
}

/**
 * An ObjectStore that takes as long as a remote one: each call waits a latency drawn from its
 * distribution, then runs on the inner store. For modelling where Sluice runs (bench/aws-model.ts);
 * the behaviour is the inner store's.
 */
export class LatencyObjectStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly latency: ObjectStoreLatency,
    private readonly options: LatencyOptions,
  ) {}

  private async wait(distribution: LatencyDistribution): Promise<void> {
    await this.options.sleep(drawLatency(distribution, this.options.random));
  }

  async get(key: string, options?: GetOptions) {
    await this.wait(this.latency.get);
    return this.inner.get(key, options);
  }
  async head(key: string) {
    await this.wait(this.latency.other);
    return this.inner.head(key);
  }
  async put(key: string, body: Uint8Array, options?: PutOptions) {
    await this.wait(this.latency.put);
    return this.inner.put(key, body, options);
  }
  async list(prefix: string, options?: ListOptions) {
    await this.wait(this.latency.other);
    return this.inner.list(prefix, options);
  }
  async delete(key: string) {
    await this.wait(this.latency.other);
    return this.inner.delete(key);
  }
  async deleteMany(keys: readonly string[]) {
    await this.wait(this.latency.other);
    return this.inner.deleteMany(keys);
  }
}

/** The MetadataStore counterpart of LatencyObjectStore. */
export class LatencyMetadataStore implements MetadataStore {
  constructor(
    private readonly inner: MetadataStore,
    private readonly latency: MetadataStoreLatency,
    private readonly options: LatencyOptions,
  ) {}

  private async wait(distribution: LatencyDistribution): Promise<void> {
    await this.options.sleep(drawLatency(distribution, this.options.random));
  }

  async get(key: ItemKey) {
    await this.wait(this.latency.read);
    return this.inner.get(key);
  }
  async query(query: Query) {
    await this.wait(this.latency.read);
    return this.inner.query(query);
  }
  async put(item: Item, options?: WriteOptions) {
    await this.wait(this.latency.write);
    return this.inner.put(item, options);
  }
  async update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    await this.wait(this.latency.write);
    return this.inner.update(key, changes, options);
  }
  async delete(key: ItemKey, options?: WriteOptions) {
    await this.wait(this.latency.write);
    return this.inner.delete(key, options);
  }
  async transactWrite(operations: readonly TransactOperation[]) {
    await this.wait(this.latency.transaction);
    return this.inner.transactWrite(operations);
  }
}
