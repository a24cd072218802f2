import { closeSync, openSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32c } from "@sluice/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CommitRecord, commitFrame, dataFrameHeader, readFrame, scanSegment } from "./segment-frames.js";

describe("segment frames", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-frames-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A segment of `objects`, each a data frame and a commit frame, and the records written. */
  const segment = (objects: string[]): { bytes: Buffer; records: CommitRecord[] } => {
    const parts: Buffer[] = [];
    const records: CommitRecord[] = [];
    let size = 0;
    for (const [i, text] of objects.entries()) {
      const data = Buffer.from(text);
      const header = dataFrameHeader(data.byteLength);
      const record = {
        position: size + header.byteLength,
        size: data.byteLength,
        dataCrc: crc32c(data),
        modified: 1_700_000_000_000 + i,
        etag: `"etag-${i}"`,
        key: `topics/ü-${i}`,
      };
      const commit = commitFrame(record);
      parts.push(header, data, commit);
      records.push(record);
      size += header.byteLength + data.byteLength + commit.byteLength;
    }
    return { bytes: Buffer.concat(parts), records };
  };
  const scan = (bytes: Buffer, from = 0) => {
    const path = join(dir, "segment");
    writeFileSync(path, bytes);
    const descriptor = openSync(path, "r");
    try {
      return scanSegment(descriptor, from, bytes.byteLength);
    } finally {
      closeSync(descriptor);
    }
  };

  it("reads back every commit record, in order, and where the last one ends", () => {
    const { bytes, records } = segment(["first object", "second", "the third object's bytes"]);
    const found = scan(bytes);
    expect(found.commits).toEqual(records);
    expect(found.lastCommitEnd).toBe(bytes.byteLength);
  });

  it("stops at a torn frame: a cut anywhere keeps only the commits wholly before it", () => {
    const { bytes, records } = segment(["first object", "second", "third"]);
    for (let cut = 0; cut < bytes.byteLength; cut++) {
      const found = scan(bytes.subarray(0, cut));
      expect(found.commits).toEqual(records.slice(0, found.commits.length));
      if (cut === bytes.byteLength - 1) expect(found.commits).toHaveLength(2);
      expect(found.lastCommitEnd).toBeLessThanOrEqual(cut);
    }
  });

  it("stops at a commit frame whose bytes changed (its CRC fails), and at zeros", () => {
    const { bytes, records } = segment(["first object", "second"]);
    // The second object's data frame begins (8 bytes of header before its data) where the first
    // commit frame ends.
    const firstCommitEnd = records[1]!.position - 8;
    const flipped = Buffer.from(bytes);
    flipped[flipped.byteLength - 3]! ^= 0x01; // inside the last commit frame's key
    expect(scan(flipped).commits).toEqual(records.slice(0, 1));
    expect(scan(flipped).lastCommitEnd).toBe(firstCommitEnd);
    const zeroed = Buffer.concat([bytes.subarray(0, firstCommitEnd), Buffer.alloc(64)]);
    expect(scan(zeroed).commits).toEqual(records.slice(0, 1));
  });

  it("reads one frame at a place: a data frame's end, or a commit frame's record", () => {
    const { bytes, records } = segment(["only object"]);
    const path = join(dir, "one");
    writeFileSync(path, bytes);
    const descriptor = openSync(path, "r");
    try {
      const data = readFrame(descriptor, 0, bytes.byteLength);
      expect(data).toEqual({ end: records[0]!.position + records[0]!.size });
      expect(readFrame(descriptor, data!.end, bytes.byteLength)).toEqual({
        end: bytes.byteLength,
        commit: records[0],
      });
      expect(readFrame(descriptor, 3, bytes.byteLength)).toBeUndefined();
    } finally {
      closeSync(descriptor);
    }
  });
});
