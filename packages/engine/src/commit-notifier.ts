/**
 * Tells waiting readers in this process that a partition's high watermark moved. It is only a
 * shortcut: readers also re-read the head on an interval, so a commit made by another process
 * (another Lambda, another server) is never missed.
 */
export class CommitNotifier {
  private readonly waiters = new Map<string, Set<(highWatermark: number) => void>>();

  notify(topicId: string, partition: number, highWatermark: number): void {
    const set = this.waiters.get(key(topicId, partition));
    if (!set) return;
    for (const wake of [...set]) wake(highWatermark);
  }

  /** Calls `listener` on each commit to the partition until the returned function is called. */
  subscribe(topicId: string, partition: number, listener: (highWatermark: number) => void): () => void {
    const k = key(topicId, partition);
    const set = this.waiters.get(k) ?? new Set();
    this.waiters.set(k, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.waiters.delete(k);
    };
  }
}

function key(topicId: string, partition: number): string {
  return `${topicId}:${partition}`;
}
