import { isSluiceError } from "@sluice/core";
import { type Counter, type Histogram, type Metrics, secondsSince, series } from "@sluice/telemetry";
import type {
  Item,
  ItemKey,
  MetadataStore,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "./metadata-store/port.js";
import type { GetOptions, ListOptions, ObjectStore, PutOptions } from "./object-store/port.js";

/** Which adapter a metered store wraps: the `backend` label of the storage series. */
export type StorageBackend = "s3" | "dynamodb" | "filesystem" | "sqlite" | "memory";

/** Times one call and counts it under its result: ok, or the typed error's kind. */
class CallMeter {
  private readonly requests: Counter<"backend" | "operation" | "result">;
  private readonly latency: Histogram<"backend" | "operation">;

  constructor(
    metrics: Metrics,
    private readonly backend: StorageBackend,
  ) {
    this.requests = metrics.counter(series.storageRequests);
    this.latency = metrics.histogram(series.storageLatency);
  }

  async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let result = "ok";
    try {
      return await run();
    } catch (error) {
      result = isSluiceError(error) ? error.kind : "internal";
      throw error;
    } finally {
      this.latency.record(secondsSince(started), { backend: this.backend, operation });
      this.requests.add(1, { backend: this.backend, operation, result });
    }
  }
}

/**
 * An ObjectStore that measures every call of the one it wraps (requests by result, latency) and
 * changes nothing else: same answers, same errors. Entry points wrap their adapters in it when
 * they have a metrics sink; adapters themselves measure nothing.
 */
export class MeteredObjectStore implements ObjectStore {
  private readonly meter: CallMeter;

  constructor(
    private readonly inner: ObjectStore,
    metrics: Metrics,
    backend: StorageBackend,
  ) {
    this.meter = new CallMeter(metrics, backend);
  }

  get(key: string, options?: GetOptions) {
    return this.meter.call("get", () => this.inner.get(key, options));
  }
  head(key: string) {
    return this.meter.call("head", () => this.inner.head(key));
  }
  put(key: string, body: Uint8Array, options?: PutOptions) {
    return this.meter.call("put", () => this.inner.put(key, body, options));
  }
  list(prefix: string, options?: ListOptions) {
    return this.meter.call("list", () => this.inner.list(prefix, options));
  }
  delete(key: string) {
    return this.meter.call("delete", () => this.inner.delete(key));
  }
  deleteMany(keys: readonly string[]) {
    return this.meter.call("deleteMany", () => this.inner.deleteMany(keys));
  }
}

/** A MetadataStore that measures every call of the one it wraps; see MeteredObjectStore. */
export class MeteredMetadataStore implements MetadataStore {
  private readonly meter: CallMeter;

  constructor(
    private readonly inner: MetadataStore,
    metrics: Metrics,
    backend: StorageBackend,
  ) {
    this.meter = new CallMeter(metrics, backend);
  }

  get(key: ItemKey) {
    return this.meter.call("get", () => this.inner.get(key));
  }
  put(item: Item, options?: WriteOptions) {
    return this.meter.call("put", () => this.inner.put(item, options));
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    return this.meter.call("update", () => this.inner.update(key, changes, options));
  }
  delete(key: ItemKey, options?: WriteOptions) {
    return this.meter.call("delete", () => this.inner.delete(key, options));
  }
  query(query: Query) {
    return this.meter.call("query", () => this.inner.query(query));
  }
  transactWrite(operations: readonly TransactOperation[]) {
    return this.meter.call("transactWrite", () => this.inner.transactWrite(operations));
  }
}
