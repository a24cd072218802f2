import type { Clock } from "@sluice/core";
import type {
  Item,
  ItemKey,
  MetadataStore,
  Query,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "@sluice/storage";
import type { Chooser } from "./store-wrappers.js";

export interface DelayPlan {
  /** Probability that a write is held up before it reaches the store. */
  probability: number;
  /** Longest hold-up, in clock milliseconds (each is 1 to this, drawn from the chooser). */
  maxMs: number;
}

/**
 * Holds writes up on the way to the store until the clock has moved by a drawn delay: a request
 * stuck in the network, or a process frozen between the read it decided on and its write. On a
 * SimulatedClock a held write goes on only when the test advances time past it, so other callers
 * can take leases, rebalance and commit in between — what makes a stale write stale. `onHeld` is
 * called when a write starts waiting, so a driver can tell a caller that is held from one that is
 * still working.
 */
export class DelayingMetadataStore implements MetadataStore {
  held = 0;

  constructor(
    private readonly inner: MetadataStore,
    private readonly clock: Clock,
    private readonly plan: DelayPlan,
    private readonly choose: Chooser,
    private readonly onHeld: () => void = () => {},
  ) {}

  get(key: ItemKey) {
    return this.inner.get(key);
  }
  query(query: Query) {
    return this.inner.query(query);
  }
  put(item: Item, options?: WriteOptions) {
    return this.later(() => this.inner.put(item, options));
  }
  update(key: ItemKey, changes: UpdateChanges, options?: WriteOptions) {
    return this.later(() => this.inner.update(key, changes, options));
  }
  delete(key: ItemKey, options?: WriteOptions) {
    return this.later(() => this.inner.delete(key, options));
  }
  transactWrite(operations: readonly TransactOperation[]) {
    return this.later(() => this.inner.transactWrite(operations));
  }

  private async later<T>(write: () => Promise<T>): Promise<T> {
    if (this.choose() < this.plan.probability) {
      const delayMs = 1 + Math.floor(this.choose() * this.plan.maxMs);
      this.held++;
      const released = new Promise<void>((resolve) => this.clock.setTimer(delayMs, resolve));
      this.onHeld();
      await released;
    }
    return write();
  }
}
