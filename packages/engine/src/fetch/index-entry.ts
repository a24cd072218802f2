/**
 * The shape of an index entry, shared by the appender (which writes entries), readers and the
 * maintenance jobs (which replace them). ARCHITECTURE.md, "Keys" and "Maintenance".
 */
import { DataCorruptionError } from "@sluice/core";
import type { Item } from "@sluice/storage";
import { INDEX_PREFIX, indexKey } from "../keys.js";

/** Where a run of committed offsets lives: immutable once written, so it is cached freely. */
export interface IndexEntry {
  baseOffset: number;
  /** Records the entry holds. */
  recordCount: number;
  /**
   * Offsets the entry covers, from `baseOffset`: `recordCount`, unless key compaction removed
   * records (then some offsets hold none, as in a compacted Kafka partition).
   */
  offsetCount: number;
  objectKey: string;
  position: number;
  length: number;
  /** The smallest timestamp in the entry (for a piece of a segment: its segment's). */
  firstTimestamp: number;
  maxTimestamp: number;
  /**
   * Committed beside its upload (ARCHITECTURE.md, "Parallel commit"): its object may not exist
   * yet, or ever. Only such an entry is read past as a gap; any other entry names an object that
   * existed before it was committed.
   */
  parallelCommit?: boolean;
  /**
   * The batch's bytes, carried by the entry (ARCHITECTURE.md, "Small appends carried in the
   * index"): `objectKey` then names no object, and readers never ask the object store for it.
   */
  inline?: Uint8Array;
}

/**
 * A piece of a segment: from `offsetDelta` (relative to the entry's base) and `position`
 * (relative to the entry's position) to the next piece or the entry's end. Pieces start at batch
 * boundaries, so each can be read and verified on its own.
 */
export interface SegmentPiece {
  offsetDelta: number;
  position: number;
  recordCount: number;
  maxTimestamp: number;
}

/** An index item as stored: an entry, and for segments their pieces and delete horizon. */
export interface StoredIndexEntry extends IndexEntry {
  pieces?: SegmentPiece[];
  /** Key compaction: tombstones in this entry may be removed from this time on. */
  deleteHorizonMs?: number;
}

export function entryEnd(entry: Pick<IndexEntry, "baseOffset" | "offsetCount">): number {
  return entry.baseOffset + entry.offsetCount;
}

export function indexEntryFromItem(item: Item): StoredIndexEntry {
  const recordCount = Number(item.recordCount);
  const entry: StoredIndexEntry = {
    baseOffset: Number(item.sk.slice(INDEX_PREFIX.length)),
    recordCount,
    offsetCount: item.offsetCount === undefined ? recordCount : Number(item.offsetCount),
    objectKey: String(item.objectKey),
    position: Number(item.position),
    length: Number(item.length),
    firstTimestamp: Number(item.firstTimestamp),
    maxTimestamp: Number(item.maxTimestamp),
  };
  if (Array.isArray(item.pieces)) entry.pieces = decodePieces(item.pieces, entry);
  if (item.deleteHorizonMs !== undefined) entry.deleteHorizonMs = Number(item.deleteHorizonMs);
  if (item.parallelCommit === true) entry.parallelCommit = true;
  if (item.inline !== undefined) entry.inline = inlineBytes(item.inline, entry);
  return entry;
}

/** The item of an entry written by maintenance (appends write theirs in append/commit.ts). */
export function indexEntryItem(topicId: string, partition: number, entry: StoredIndexEntry): Item {
  const item: Item = {
    ...indexKey(topicId, partition, entry.baseOffset),
    objectKey: entry.objectKey,
    position: entry.position,
    length: entry.length,
    recordCount: entry.recordCount,
    firstTimestamp: entry.firstTimestamp,
    maxTimestamp: entry.maxTimestamp,
  };
  if (entry.offsetCount !== entry.recordCount) item.offsetCount = entry.offsetCount;
  if (entry.pieces && entry.pieces.length > 1) item.pieces = encodePieces(entry.pieces);
  if (entry.deleteHorizonMs !== undefined) item.deleteHorizonMs = entry.deleteHorizonMs;
  if (entry.parallelCommit) item.parallelCommit = true;
  if (entry.inline) item.inline = entry.inline;
  return item;
}

/** An entry's carried bytes, which must be exactly its batch: anything else is a corruption. */
function inlineBytes(value: unknown, entry: StoredIndexEntry): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== entry.length || entry.pieces !== undefined) {
    throw new DataCorruptionError(
      `the index entry at offset ${entry.baseOffset} carries ${value instanceof Uint8Array ? `${value.byteLength} bytes` : "a value that is not bytes"} for a batch of ${entry.length}`,
      { details: { objectKey: entry.objectKey, baseOffset: entry.baseOffset } },
    );
  }
  return value;
}

/**
 * The entries a reader works with: an entry as it is, or a segment's pieces as entries of their
 * own, each a whole number of batches.
 */
export function readableEntries(entry: StoredIndexEntry): IndexEntry[] {
  const pieces = entry.pieces;
  if (!pieces || pieces.length < 2) return [plainEntry(entry)];
  return pieces.map((piece, index) => {
    const next = pieces[index + 1];
    const endDelta = next ? next.offsetDelta : entry.offsetCount;
    const endPosition = next ? next.position : entry.length;
    return {
      baseOffset: entry.baseOffset + piece.offsetDelta,
      recordCount: piece.recordCount,
      offsetCount: endDelta - piece.offsetDelta,
      objectKey: entry.objectKey,
      position: entry.position + piece.position,
      length: endPosition - piece.position,
      firstTimestamp: entry.firstTimestamp,
      maxTimestamp: piece.maxTimestamp,
    };
  });
}

function plainEntry(entry: StoredIndexEntry): IndexEntry {
  const { baseOffset, recordCount, offsetCount, objectKey, position, length, firstTimestamp, maxTimestamp } =
    entry;
  const plain: IndexEntry = {
    baseOffset,
    recordCount,
    offsetCount,
    objectKey,
    position,
    length,
    firstTimestamp,
    maxTimestamp,
  };
  if (entry.parallelCommit) plain.parallelCommit = true;
  if (entry.inline) plain.inline = entry.inline;
  return plain;
}

function encodePieces(pieces: SegmentPiece[]): number[] {
  const flat: number[] = [];
  for (const piece of pieces)
    flat.push(piece.offsetDelta, piece.position, piece.recordCount, piece.maxTimestamp);
  return flat;
}

function decodePieces(flat: unknown[], entry: IndexEntry): SegmentPiece[] {
  if (flat.length % 4 !== 0) throw badPieces(entry);
  const pieces: SegmentPiece[] = [];
  let records = 0;
  for (let index = 0; index < flat.length; index += 4) {
    const piece = {
      offsetDelta: Number(flat[index]),
      position: Number(flat[index + 1]),
      recordCount: Number(flat[index + 2]),
      maxTimestamp: Number(flat[index + 3]),
    };
    const previous = pieces[pieces.length - 1];
    const ordered = previous
      ? piece.offsetDelta > previous.offsetDelta && piece.position > previous.position
      : piece.offsetDelta === 0 && piece.position === 0;
    if (!ordered || piece.offsetDelta >= entry.offsetCount || piece.position >= entry.length)
      throw badPieces(entry);
    records += piece.recordCount;
    pieces.push(piece);
  }
  if (records !== entry.recordCount) throw badPieces(entry);
  return pieces;
}

function badPieces(entry: IndexEntry): DataCorruptionError {
  return new DataCorruptionError(
    `index entry at offset ${entry.baseOffset} (object ${entry.objectKey}) has malformed pieces`,
    { details: { baseOffset: entry.baseOffset, objectKey: entry.objectKey } },
  );
}
