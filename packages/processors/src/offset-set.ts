/**
 * The offsets a runner has in hand and not yet done. Offsets are added in increasing order (the
 * stored pending ones first, then as they are fetched), so iteration is in offset order without
 * sorting, and the lowest one is found by walking up from the last lowest: each offset is passed
 * over once, so a commit costs what it removes, not what is in hand.
 */
export class OffsetSet {
  private readonly offsets = new Set<number>();
  private low = 0;
  private high = -1;

  get size(): number {
    return this.offsets.size;
  }

  has(offset: number): boolean {
    return this.offsets.has(offset);
  }

  /** Adds `offset`; offsets must come in increasing order (an existing one may be added again). */
  add(offset: number): void {
    if (this.offsets.has(offset)) return;
    if (offset < this.high)
      throw new Error(`offsets must be added in increasing order: ${offset} after ${this.high}`);
    if (this.offsets.size === 0) this.low = offset;
    this.offsets.add(offset);
    this.high = offset;
  }

  delete(offset: number): boolean {
    return this.offsets.delete(offset);
  }

  clear(): void {
    this.offsets.clear();
    this.low = 0;
    this.high = -1;
  }

  /** The lowest offset in the set, or undefined when it is empty. */
  min(): number | undefined {
    if (this.offsets.size === 0) return undefined;
    while (!this.offsets.has(this.low)) this.low++;
    return this.low;
  }

  /** The offsets below `limit`, ascending (the walk stops at the first one at or above it). */
  below(limit: number): number[] {
    const found: number[] = [];
    for (const offset of this.offsets) {
      if (offset >= limit) break;
      found.push(offset);
    }
    return found;
  }
}
