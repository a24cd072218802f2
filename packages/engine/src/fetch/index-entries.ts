import { DataCorruptionError } from "@sluice/core";
import type { Item, MetadataStore } from "@sluice/storage";
import { INDEX_PREFIX, indexSortKey, partitionPk } from "../keys.js";
import type { LruCache } from "../lru-cache.js";

/** Where one committed batch lives: immutable once written, so it is cached freely. */
export interface IndexEntry {
  baseOffset: number;
  recordCount: number;
  objectKey: string;
  position: number;
  length: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

/**
 * Reads a partition's index. Offsets are dense, so the entry after one at `b` holding `n` records
 * starts at exactly `b + n`: a reader walking forward finds the next entry in the cache by key.
 */
export class IndexReader {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly cache: LruCache<string, IndexEntry>,
  ) {}

  /** The entry holding `offset`, or undefined when no committed batch holds it. */
  async entryHolding(topicId: string, partition: number, offset: number): Promise<IndexEntry | undefined> {
    const cached = this.cache.get(cacheKey(topicId, partition, offset));
    if (cached) return cached;
    const page = await this.metadata.query({
      pk: partitionPk(topicId, partition),
      sk: { kind: "between", low: indexSortKey(0), high: indexSortKey(offset) },
      order: "desc",
      limit: 1,
    });
    const item = page.items[0];
    if (!item) return undefined;
    const entry = this.remember(topicId, partition, item);
    return offset < entry.baseOffset + entry.recordCount ? entry : undefined;
  }

  /**
   * Entries from `offset` (which must start an entry) up to, not including, `end`, at most
   * `limit` of them, in offset order.
   */
  async entriesFrom(
    topicId: string,
    partition: number,
    offset: number,
    end: number,
    limit: number,
  ): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    let next = offset;
    while (next < end && entries.length < limit) {
      const cached = this.cache.get(cacheKey(topicId, partition, next));
      if (cached) {
        entries.push(cached);
        next = cached.baseOffset + cached.recordCount;
        continue;
      }
      const page = await this.metadata.query({
        pk: partitionPk(topicId, partition),
        sk: { kind: "between", low: indexSortKey(next), high: indexSortKey(end - 1) },
        order: "asc",
        limit: Math.max(1, Math.min(100, limit - entries.length)),
      });
      if (page.items.length === 0) break;
      for (const item of page.items) {
        const entry = this.remember(topicId, partition, item);
        if (entry.baseOffset !== next) {
          throw new DataCorruptionError(
            `index gap in partition ${partition}: expected an entry at offset ${next}, found ${entry.baseOffset}`,
            { details: { topicId, partition, expected: next, found: entry.baseOffset } },
          );
        }
        if (entries.length < limit) entries.push(entry);
        next = entry.baseOffset + entry.recordCount;
      }
    }
    return entries;
  }

  /** Every entry from `offset` on, page by page, for scans such as a timestamp lookup. */
  async *scan(topicId: string, partition: number, offset: number): AsyncGenerator<IndexEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({
        pk: partitionPk(topicId, partition),
        sk: { kind: "between", low: indexSortKey(offset), high: `${INDEX_PREFIX}~` },
        order: "asc",
        limit: 100,
        cursor,
      });
      for (const item of page.items) yield this.remember(topicId, partition, item);
      cursor = page.cursor;
    } while (cursor);
  }

  forgetTopic(topicId: string): void {
    this.cache.deleteWhere((key) => key.startsWith(`${topicId}:`));
  }

  private remember(topicId: string, partition: number, item: Item): IndexEntry {
    const entry = entryFromItem(item);
    this.cache.set(cacheKey(topicId, partition, entry.baseOffset), entry);
    return entry;
  }
}

function cacheKey(topicId: string, partition: number, baseOffset: number): string {
  return `${topicId}:${partition}:${baseOffset}`;
}

function entryFromItem(item: Item): IndexEntry {
  return {
    baseOffset: Number(item.sk.slice(INDEX_PREFIX.length)),
    recordCount: Number(item.recordCount),
    objectKey: String(item.objectKey),
    position: Number(item.position),
    length: Number(item.length),
    firstTimestamp: Number(item.firstTimestamp),
    maxTimestamp: Number(item.maxTimestamp),
  };
}
