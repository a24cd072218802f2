import { DataCorruptionError } from "@sluice/core";
import type { Item, MetadataStore } from "@sluice/storage";
import { INDEX_PREFIX, indexSortKey, partitionPk } from "../keys.js";
import type { LruCache } from "../lru-cache.js";
import {
  entryEnd,
  type IndexEntry,
  indexEntryFromItem,
  readableEntries,
  type StoredIndexEntry,
} from "./index-entry.js";

export type { IndexEntry } from "./index-entry.js";

/**
 * Reads a partition's index as readers see it: entries (a segment's pieces standing for it) that
 * tile the offsets from the log start, the entry after one ending at `e` starting at exactly `e`,
 * so a reader walking forward finds the next entry in the cache by key. Entries left inside a
 * newer one for a moment by maintenance (shadowed; ARCHITECTURE.md, "Maintenance") are skipped.
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
    return this.freshEntryHolding(topicId, partition, offset);
  }

  /**
   * Entries from `offset` (which must start an entry) up to, not including, `end`, at most
   * `limit` of them, in offset order. Fewer when the index changed under the walk (an entry this
   * reader knew was replaced): the next read goes on from where this one ends.
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
    const take = (entry: IndexEntry) => {
      if (entryEnd(entry) <= next) {
        // An entry must cover at least one offset past the walk's position; one that does not
        // would hold the walk in place for ever.
        throw new DataCorruptionError(
          `index entry at offset ${entry.baseOffset} of partition ${partition} covers ${entry.offsetCount} offsets: it does not reach past ${next}`,
          { details: { topicId, partition, baseOffset: entry.baseOffset, offsetCount: entry.offsetCount } },
        );
      }
      entries.push(entry);
      next = entryEnd(entry);
    };
    while (next < end && entries.length < limit) {
      const cached = this.cache.get(cacheKey(topicId, partition, next));
      if (cached) {
        take(cached);
        continue;
      }
      const page = await this.metadata.query({
        pk: partitionPk(topicId, partition),
        sk: { kind: "between", low: indexSortKey(next), high: indexSortKey(end - 1) },
        order: "asc",
        limit: Math.max(1, Math.min(100, limit - entries.length)),
      });
      if (page.items.length === 0) break;
      let continuous = true;
      for (const item of page.items) {
        const stored = this.remember(topicId, partition, item);
        if (stored.baseOffset < next) continue; // shadowed: inside an entry already taken
        if (stored.baseOffset > next) {
          continuous = false;
          break;
        }
        for (const entry of readableEntries(stored)) {
          if (entries.length >= limit) break;
          take(entry);
        }
        if (entries.length >= limit) break;
      }
      if (continuous) continue;
      // The entry at `next` this reader expected is gone: replaced by one that starts earlier.
      // Carry on only when the entry holding `next` now starts exactly there (a segment's piece).
      const holding = await this.freshEntryHolding(topicId, partition, next);
      if (holding?.baseOffset !== next) break;
      take(holding);
    }
    return entries;
  }

  /**
   * The readable entries from the one holding `offset`, in offset order, page by page, until
   * `end` or the index changes under the walk.
   */
  async *walk(topicId: string, partition: number, offset: number, end: number): AsyncGenerator<IndexEntry> {
    const first = await this.entryHolding(topicId, partition, offset);
    if (!first) return;
    yield first;
    let next = entryEnd(first);
    while (next < end) {
      const entries = await this.entriesFrom(topicId, partition, next, end, 100);
      if (entries.length === 0) return;
      for (const entry of entries) yield entry;
      next = entryEnd(entries[entries.length - 1]!);
    }
  }

  /** Forgets every cached entry of one partition, after finding one that no longer holds. */
  forgetPartition(topicId: string, partition: number): void {
    const prefix = `${topicId}:${partition}:`;
    this.cache.deleteWhere((key) => key.startsWith(prefix));
  }

  forgetTopic(topicId: string): void {
    this.cache.deleteWhere((key) => key.startsWith(`${topicId}:`));
  }

  private async freshEntryHolding(
    topicId: string,
    partition: number,
    offset: number,
  ): Promise<IndexEntry | undefined> {
    const page = await this.metadata.query({
      pk: partitionPk(topicId, partition),
      sk: { kind: "between", low: indexSortKey(0), high: indexSortKey(offset) },
      order: "desc",
      limit: 1,
    });
    const item = page.items[0];
    if (!item) return undefined;
    const stored = this.remember(topicId, partition, item);
    if (offset >= entryEnd(stored)) return undefined;
    return readableEntries(stored).find((entry) => offset < entryEnd(entry));
  }

  private remember(topicId: string, partition: number, item: Item): StoredIndexEntry {
    const stored = indexEntryFromItem(item);
    for (const entry of readableEntries(stored)) {
      this.cache.set(cacheKey(topicId, partition, entry.baseOffset), entry);
    }
    return stored;
  }
}

/** Every stored index item of a partition from `offset` on, shadowed ones included, in sort-key order. */
export async function* storedIndexEntries(
  metadata: MetadataStore,
  topicId: string,
  partition: number,
  offset = 0,
): AsyncGenerator<StoredIndexEntry> {
  let cursor: string | undefined;
  do {
    const page = await metadata.query({
      pk: partitionPk(topicId, partition),
      sk: { kind: "between", low: indexSortKey(offset), high: `${INDEX_PREFIX}~` },
      order: "asc",
      limit: 100,
      cursor,
    });
    for (const item of page.items) yield indexEntryFromItem(item);
    cursor = page.cursor;
  } while (cursor);
}

function cacheKey(topicId: string, partition: number, baseOffset: number): string {
  return `${topicId}:${partition}:${baseOffset}`;
}
