/**
 * The offsets a runner has in hand and not yet done. Offsets are added in increasing order (the
 * stored pending ones first, then as they are fetched), so they are kept in an ascending list; a
 * deletion at the head of the list (the usual case: batches finish in order) only moves the head,
 * and one elsewhere (a key whose records wait while later keys finish) is remembered in a set
 * until the head passes it. Every operation on the hot path is then an array access rather than
 * a hash-set update, and each offset is passed over once.
 */
export class OffsetSet {
  /** Ascending; entries before `head` are gone. */
  private list: number[] = [];
  private head = 0;
  /** Offsets of `list` from `head` on that were deleted. */
  private readonly deleted = new Set<number>();
  private high = -1;

  get size(): number {
    return this.list.length - this.head - this.deleted.size;
  }

  has(offset: number): boolean {
    if (this.deleted.has(offset)) return false;
    return this.indexOf(offset) >= 0;
  }

  /** Adds `offset`; offsets must come in increasing order (an existing one may be added again). */
  add(offset: number): void {
    if (offset === this.high && this.list.length > this.head) {
      // Added again: present unless deleted, in which case it comes back.
      this.deleted.delete(offset);
      if (this.list[this.list.length - 1] === offset) return;
    }
    if (offset < this.high) {
      if (this.has(offset)) return;
      throw new Error(`offsets must be added in increasing order: ${offset} after ${this.high}`);
    }
    if (this.deleted.size > 0 && this.deleted.delete(offset)) return; // re-added after a deletion, still listed
    this.list.push(offset);
    this.high = offset;
  }

  delete(offset: number): boolean {
    if (this.head < this.list.length && this.list[this.head] === offset) {
      this.head++;
      this.skipDeleted();
      this.compact();
      return true;
    }
    if (this.deleted.has(offset) || this.indexOf(offset) < 0) return false;
    this.deleted.add(offset);
    return true;
  }

  clear(): void {
    this.list = [];
    this.head = 0;
    this.deleted.clear();
    this.high = -1;
  }

  /** The lowest offset in the set, or undefined when it is empty. */
  min(): number | undefined {
    return this.head < this.list.length ? this.list[this.head] : undefined;
  }

  /** The offsets below `limit`, ascending (the walk stops at the first one at or above it). */
  below(limit: number): number[] {
    const found: number[] = [];
    for (let index = this.head; index < this.list.length; index++) {
      const offset = this.list[index]!;
      if (offset >= limit) break;
      if (!this.deleted.has(offset)) found.push(offset);
    }
    return found;
  }

  /**
   * The offsets below `limit` that are not in `excluded`, ascending. `excluded` must be ascending
   * too: one walk of both lists, no lookups.
   */
  belowExcept(limit: number, excluded: readonly number[]): number[] {
    const found: number[] = [];
    let next = 0;
    for (let index = this.head; index < this.list.length; index++) {
      const offset = this.list[index]!;
      if (offset >= limit) break;
      while (next < excluded.length && excluded[next]! < offset) next++;
      if (next < excluded.length && excluded[next] === offset) continue;
      if (!this.deleted.has(offset)) found.push(offset);
    }
    return found;
  }

  /** The head is never a deleted offset: deleted ones it reaches are dropped. */
  private skipDeleted(): void {
    if (this.deleted.size === 0) return;
    while (this.head < this.list.length && this.deleted.delete(this.list[this.head]!)) this.head++;
  }

  /** Drops the gone part of the list once it is most of it. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.list.length) {
      this.list = this.list.slice(this.head);
      this.head = 0;
    }
  }

  /** The index of `offset` in the live part of the list, or -1 (binary search). */
  private indexOf(offset: number): number {
    let low = this.head;
    let high = this.list.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.list[middle]!;
      if (value === offset) return middle;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }
}
