import { readSync } from "node:fs";
import { crc32c } from "@sluice/core";

/**
 * The frames of a packed store's segment file (ARCHITECTURE.md, "One sync for a new object"). A
 * segment is a sequence of frames, each beginning with a 4-byte magic and a 4-byte length:
 *
 * - a data frame: the header, then the object's bytes (an index row's position is theirs);
 * - a commit frame, written after a fast put's row transaction committed: the header, the
 *   CRC-32C of the payload, then the payload — the data's position and size, the data's CRC-32C,
 *   the time, the etag and the key — from which recovery writes the row again if the index lost it.
 *
 * Big-endian throughout; positions and sizes as doubles (exact below 2^53).
 */
export const FRAME_HEADER_BYTES = 8;
const DATA_MAGIC = 0x534c4431; // "SLD1"
const COMMIT_MAGIC = 0x534c4331; // "SLC1"
const COMMIT_FIXED_BYTES = 8 + 8 + 8 + 4 + 2 + 2;
/** A commit frame larger than this is taken for a torn one (keys are at most 1,024 bytes). */
const COMMIT_PAYLOAD_MAX = 64 * 1024;
/** The largest object a data frame holds (its length is 32 bits). */
export const DATA_FRAME_BYTES_MAX = 0xffff_ffff;

export function dataFrameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(DATA_MAGIC, 0);
  header.writeUInt32BE(length, 4);
  return header;
}

export interface CommitRecord {
  /** Where the data lies in the segment, and its length. */
  position: number;
  size: number;
  /** CRC-32C of the data. */
  dataCrc: number;
  modified: number;
  etag: string;
  key: string;
}

export function commitFrame(record: CommitRecord): Buffer {
  const etag = Buffer.from(record.etag, "utf8");
  const key = Buffer.from(record.key, "utf8");
  const payloadBytes = COMMIT_FIXED_BYTES + etag.byteLength + key.byteLength;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4 + payloadBytes);
  frame.writeUInt32BE(COMMIT_MAGIC, 0);
  frame.writeUInt32BE(payloadBytes, 4);
  let at = FRAME_HEADER_BYTES + 4;
  at = frame.writeDoubleBE(record.position, at);
  at = frame.writeDoubleBE(record.size, at);
  at = frame.writeDoubleBE(record.modified, at);
  at = frame.writeUInt32BE(record.dataCrc, at);
  at = frame.writeUInt16BE(etag.byteLength, at);
  at += etag.copy(frame, at);
  at = frame.writeUInt16BE(key.byteLength, at);
  key.copy(frame, at);
  frame.writeUInt32BE(crc32c(frame.subarray(FRAME_HEADER_BYTES + 4)), FRAME_HEADER_BYTES);
  return frame;
}

/** What a scan of a segment found: its commit records, and where the last of them ends. */
export interface SegmentScan {
  commits: CommitRecord[];
  /** The end of the last commit frame read (`from` when there was none). */
  lastCommitEnd: number;
}

/**
 * Reads the frames of an open segment file from `from` (a frame boundary) to the end of the file
 * or the first torn frame: a header that is not a frame's, a frame running past the end, or a
 * commit frame whose CRC fails. Everything after a torn frame was written after the last sync
 * that covered it, so nothing acknowledged lies there.
 */
export function scanSegment(descriptor: number, from: number, fileSize: number): SegmentScan {
  const commits: CommitRecord[] = [];
  let at = from;
  let lastCommitEnd = from;
  for (;;) {
    const frame = readFrame(descriptor, at, fileSize);
    if (!frame) break;
    at = frame.end;
    if (frame.commit) {
      commits.push(frame.commit);
      lastCommitEnd = at;
    }
  }
  return { commits, lastCommitEnd };
}

/** The frame at `at` and where it ends (with its record when it is a commit frame), unless torn. */
export function readFrame(
  descriptor: number,
  at: number,
  fileSize: number,
): { end: number; commit?: CommitRecord } | undefined {
  if (at + FRAME_HEADER_BYTES > fileSize) return undefined;
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  if (!readFully(descriptor, header, at)) return undefined;
  const magic = header.readUInt32BE(0);
  const length = header.readUInt32BE(4);
  if (magic === DATA_MAGIC) {
    const end = at + FRAME_HEADER_BYTES + length;
    return end > fileSize ? undefined : { end };
  }
  if (magic !== COMMIT_MAGIC || length < COMMIT_FIXED_BYTES || length > COMMIT_PAYLOAD_MAX) return undefined;
  const end = at + FRAME_HEADER_BYTES + 4 + length;
  if (end > fileSize) return undefined;
  const body = Buffer.allocUnsafe(4 + length);
  if (!readFully(descriptor, body, at + FRAME_HEADER_BYTES)) return undefined;
  const commit = parseCommit(body);
  return commit ? { end, commit } : undefined;
}

function parseCommit(body: Buffer): CommitRecord | undefined {
  const payload = body.subarray(4);
  if (crc32c(payload) !== body.readUInt32BE(0)) return undefined;
  const position = payload.readDoubleBE(0);
  const size = payload.readDoubleBE(8);
  const modified = payload.readDoubleBE(16);
  const dataCrc = payload.readUInt32BE(24);
  const etagBytes = payload.readUInt16BE(28);
  let at = 30;
  if (at + etagBytes + 2 > payload.byteLength) return undefined;
  const etag = payload.toString("utf8", at, at + etagBytes);
  at += etagBytes;
  const keyBytes = payload.readUInt16BE(at);
  at += 2;
  if (at + keyBytes !== payload.byteLength) return undefined;
  const key = payload.toString("utf8", at, at + keyBytes);
  return { position, size, dataCrc, modified, etag, key };
}

/** Fills `into` from the file at `position`; false when the file ends first. */
export function readFully(descriptor: number, into: Uint8Array, position: number): boolean {
  let filled = 0;
  while (filled < into.byteLength) {
    const read = readSync(descriptor, into, filled, into.byteLength - filled, position + filled);
    if (read === 0) return false;
    filled += read;
  }
  return true;
}
