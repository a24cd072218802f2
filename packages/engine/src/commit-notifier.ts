/**
 * Tells waiting readers in this process that a partition's high watermark moved, or that its
 * topic was deleted. It is only a shortcut: readers also re-read the head on an interval, so a
 * commit made by another process (another Lambda, another server) is never missed.
 */
export class CommitNotifier {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly everything = new Set<
    (topicId: string, partition: number, highWatermark: number) => void
  >();

  notify(topicId: string, partition: number, highWatermark: number): void {
    for (const listener of [...this.everything]) listener(topicId, partition, highWatermark);
    const set = this.waiters.get(key(topicId, partition));
    if (!set) return;
    for (const waiter of [...set]) waiter.onCommit(highWatermark);
  }

  /** Wakes every waiter on any partition of the topic: there is nothing left to wait for. */
  notifyDeleted(topicId: string): void {
    const prefix = `${topicId}:`;
    for (const [k, set] of [...this.waiters]) {
      if (!k.startsWith(prefix)) continue;
      for (const waiter of [...set]) waiter.onDeleted?.();
    }
  }

  /** Calls `listener` on every commit to any partition until the returned function is called. */
  subscribeAll(listener: (topicId: string, partition: number, highWatermark: number) => void): () => void {
    this.everything.add(listener);
    return () => {
      this.everything.delete(listener);
    };
  }

  /**
   * Calls `listener` on each commit to the partition, and `onDeleted` when its topic is deleted,
   * until the returned function is called.
   */
  subscribe(
    topicId: string,
    partition: number,
    listener: (highWatermark: number) => void,
    onDeleted?: () => void,
  ): () => void {
    const k = key(topicId, partition);
    const set = this.waiters.get(k) ?? new Set();
    this.waiters.set(k, set);
    const waiter: Waiter = { onCommit: listener, ...(onDeleted ? { onDeleted } : {}) };
    set.add(waiter);
    return () => {
      set.delete(waiter);
      if (set.size === 0) this.waiters.delete(k);
    };
  }
}

interface Waiter {
  onCommit(highWatermark: number): void;
  onDeleted?(): void;
}

function key(topicId: string, partition: number): string {
  return `${topicId}:${partition}`;
}
