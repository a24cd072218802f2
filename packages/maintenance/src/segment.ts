import { verifyRecordBatch } from "@sluice/core";
import type { SegmentPiece } from "@sluice/engine";

/** A segment's bytes and what its index entry says about them. */
export interface SegmentContent {
  body: Uint8Array;
  pieces: SegmentPiece[];
  recordCount: number;
  offsetCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

/**
 * Concatenates whole RecordBatch v2 batches (each chunk holds one or more, back to back) into one
 * segment (each batch CRC-checked: corruption is never copied on), and lists a piece about every `pieceBytes` at a batch boundary. Offsets follow from
 * each batch's lastOffsetDelta, as readers count them.
 */
export function segmentFromBatches(chunks: readonly Uint8Array[], pieceBytes: number): SegmentContent {
  let size = 0;
  for (const chunk of chunks) size += chunk.byteLength;
  const body = new Uint8Array(size);
  const pieces: SegmentPiece[] = [];
  let position = 0;
  let offsetCount = 0;
  let recordCount = 0;
  let firstTimestamp = Number.POSITIVE_INFINITY;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  let piece: SegmentPiece | undefined;
  for (const chunk of chunks) {
    body.set(chunk, position);
    let within = 0;
    while (within < chunk.byteLength) {
      const header = verifyRecordBatch(chunk, within);
      const batchStart = position + within;
      if (!piece || batchStart - piece.position >= pieceBytes) {
        piece = {
          offsetDelta: offsetCount,
          position: batchStart,
          recordCount: 0,
          maxTimestamp: Number.NEGATIVE_INFINITY,
        };
        pieces.push(piece);
      }
      piece.recordCount += header.recordCount;
      piece.maxTimestamp = Math.max(piece.maxTimestamp, header.maxTimestamp);
      offsetCount += header.lastOffsetDelta + 1;
      recordCount += header.recordCount;
      firstTimestamp = Math.min(firstTimestamp, header.firstTimestamp);
      maxTimestamp = Math.max(maxTimestamp, header.maxTimestamp);
      within += header.byteLength;
    }
    position += chunk.byteLength;
  }
  return { body, pieces, recordCount, offsetCount, firstTimestamp, maxTimestamp };
}
