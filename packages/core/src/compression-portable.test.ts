/**
 * The portable codecs (compression.ts's fallback where the native modules do not load): round
 * trips, interoperation in both directions with the native modules, record batches across
 * backends, and the LZ4 format's rules checked against the reference `lz4` CLI when installed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compress as nativeZstdCompress, decompress as nativeZstdDecompress } from "@mongodb-js/zstd";
import fc from "fast-check";
import { compressFrame, decompressFrame } from "lz4-napi";
import { compress as nativeSnappyCompress, uncompress as nativeSnappyUncompress } from "snappy";
import { afterAll, describe, expect, it } from "vitest";
import { zstdFrameWithoutContentSize } from "./compression.fixtures.js";
import {
  type CodecBackend,
  type Compression,
  compress,
  compressionBackends,
  decompress,
  encodeXerialSnappy,
  isXerialSnappy,
  withCodecBackend,
} from "./compression.js";
import { xxh32 } from "./compression-vendor.js";
import { DataCorruptionError } from "./errors.js";
import { lz4BlockBound, lz4CompressBlock, lz4CompressFrame, lz4DecompressFrame } from "./lz4-frame.js";
import { decodeRecordBatches, encodeRecordBatch, type Record } from "./record-batch.js";
import { snappyDecompressBlock } from "./snappy-block.js";

const CODECS = ["snappy", "lz4", "zstd"] as const;
const portable = <T>(fn: () => T): T => withCodecBackend("portable", fn);
const native = <T>(fn: () => T): T => withCodecBackend("native", fn);

/** Compressible but not trivial: repeated words with a counter. */
function sample(size: number): Uint8Array {
  const text = Array.from({ length: Math.ceil(size / 12) }, (_, i) => `record-${i % 977};`).join("");
  return new TextEncoder().encode(text).subarray(0, size);
}

/** Bytes with long and short repeats as well as noise, so that matches of every length occur. */
const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc
    .array(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        fc.constantFrom(...["record-", "value:", "0000000000", "abcabcabcabc"].map((s) => Buffer.from(s))),
      ),
      { maxLength: 400 },
    )
    .map((parts) => {
      const repeated = parts.flatMap((part, i) => (i % 3 === 0 ? [part, part] : [part]));
      return new Uint8Array(Buffer.concat(repeated));
    }),
);

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

describe("backend selection", () => {
  it("uses the native modules where they load (this machine) and reports them", async () => {
    expect(await compressionBackends()).toEqual({
      none: "native",
      gzip: "native",
      snappy: "native",
      lz4: "native",
      zstd: "native",
    });
  });

  it("forces a backend only inside withCodecBackend, even across concurrent calls", async () => {
    const [inside, outside] = await Promise.all([
      portable(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return compressionBackends();
      }),
      compressionBackends(),
    ]);
    expect(inside).toEqual({
      none: "native",
      gzip: "native",
      snappy: "portable",
      lz4: "portable",
      zstd: "portable",
    });
    expect(outside.snappy).toBe("native");
    expect((await compressionBackends()).zstd).toBe("native");
  });
});

describe.each(["portable", "native"] as const)("the %s backend", (backend: CodecBackend) => {
  const using = <T>(fn: () => T): T => withCodecBackend(backend, fn);

  it.each(CODECS)("%s round-trips arbitrary and repetitive bytes", async (codec) => {
    await fc.assert(
      fc.asyncProperty(payloads, async (data) => {
        const packed = await using(() => compress(codec, data));
        expect(same(await using(() => decompress(codec, packed)), data)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it.each(CODECS)("%s round-trips empty and large payloads", async (codec) => {
    for (const data of [new Uint8Array(0), sample(300_000), sample(65_536), sample(65_537)]) {
      const out = await using(async () => decompress(codec, await compress(codec, data)));
      expect(same(out, data)).toBe(true);
    }
  });

  it.each(CODECS)("%s turns damaged payloads into DataCorruptionError", async (codec) => {
    const packed = await using(() => compress(codec, sample(2000)));
    const damaged = new Uint8Array(packed);
    damaged.fill(0xa5, damaged.length >> 2, (damaged.length >> 2) + 16);
    await expect(using(() => decompress(codec, damaged))).rejects.toBeInstanceOf(DataCorruptionError);
    await expect(using(() => decompress(codec, Uint8Array.of(1, 2, 3, 4, 5)))).rejects.toBeInstanceOf(
      DataCorruptionError,
    );
    // Cut short anywhere past the header.
    await expect(
      using(() => decompress(codec, packed.subarray(0, packed.length - 5))),
    ).rejects.toBeInstanceOf(DataCorruptionError);
  });
});

describe("portable and native codecs read each other's output", () => {
  it.each(CODECS)(
    "%s: native compress → portable decompress and portable compress → native decompress",
    async (codec) => {
      await fc.assert(
        fc.asyncProperty(payloads, async (data) => {
          const fromNative = await native(() => compress(codec, data));
          expect(same(await portable(() => decompress(codec, fromNative)), data)).toBe(true);
          const fromPortable = await portable(() => compress(codec, data));
          expect(same(await native(() => decompress(codec, fromPortable)), data)).toBe(true);
        }),
        { numRuns: 60 },
      );
      for (const data of [sample(300_000), new Uint8Array(0)]) {
        expect(
          same(
            await portable(async () => decompress(codec, await native(() => compress(codec, data)))),
            data,
          ),
        ).toBe(true);
        expect(
          same(
            await native(async () => decompress(codec, await portable(() => compress(codec, data)))),
            data,
          ),
        ).toBe(true);
      }
    },
  );

  it("snappy raw blocks: snappyjs ↔ the snappy package, both ways", async () => {
    await fc.assert(
      fc.asyncProperty(payloads, async (data) => {
        // The native package's raw block, read by the portable decoder (unframed reads).
        const raw = new Uint8Array(await nativeSnappyCompress(data));
        expect(isXerialSnappy(raw)).toBe(false);
        expect(same(snappyDecompressBlock(raw), data)).toBe(true);
        expect(same(await portable(() => decompress("snappy", raw)), data)).toBe(true);
        // Portable xerial chunks are raw blocks the native package reads one by one.
        const framed = await portable(() => encodeXerialSnappy(data));
        const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
        const chunks: Buffer[] = [];
        for (let pos = 16; pos < framed.length; pos += 4 + view.getInt32(pos)) {
          const block = framed.subarray(pos + 4, pos + 4 + view.getInt32(pos));
          chunks.push((await nativeSnappyUncompress(block, { asBuffer: true })) as Buffer);
        }
        expect(same(Buffer.concat(chunks), data)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("snappy: the portable decoder refuses blocks that declare more or less than they hold", async () => {
    const raw = new Uint8Array(await nativeSnappyCompress(sample(5000).subarray(0, 500)));
    const longer = Uint8Array.of(0xf5, 0x03, ...raw.subarray(2)); // 501 declared, 500 present
    expect(raw[0]).toBe(0xf4);
    expect(() => snappyDecompressBlock(longer)).toThrow(/declares 501/);
    const shorter = Uint8Array.of(0xf3, 0x03, ...raw.subarray(2));
    expect(() => snappyDecompressBlock(shorter)).toThrow(/past the declared length/);
    await expect(
      portable(() => decompress("snappy", Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f, 0))),
    ).rejects.toBeInstanceOf(DataCorruptionError);
  });

  it("lz4: frames with content and block checksums, from lz4-napi, are verified and read", async () => {
    const data = sample(200_000);
    for (const options of [
      { contentChecksum: true },
      { blockChecksums: true },
      { contentChecksum: true, blockChecksums: true },
    ]) {
      const frame = new Uint8Array(await compressFrame(Buffer.from(data), options));
      expect(same(lz4DecompressFrame(frame), data)).toBe(true);
      // A flipped bit in the last compressed byte before the end mark fails a checksum.
      const damaged = new Uint8Array(frame);
      damaged[damaged.length - 9] = damaged[damaged.length - 9]! ^ 1;
      expect(() => lz4DecompressFrame(damaged)).toThrow(/checksum mismatch|offset|past/);
    }
  });

  it("lz4: writes Kafka's frame profile, which lz4-napi reads", async () => {
    const frame = lz4CompressFrame(sample(150_000));
    expect([...frame.subarray(0, 4)]).toEqual([0x04, 0x22, 0x4d, 0x18]);
    expect(frame[4]).toBe(0x60); // version 01, independent blocks, no checksums, no content size
    expect(frame[5]).toBe(0x40); // 64 KiB blocks
    expect(frame[6]).toBe((xxh32(0, frame, 4, 2) >>> 8) & 0xff);
    expect(frame[6]).toBe(0x82); // as lz4-napi and the reference library write the same descriptor
    expect(same(await decompressFrame(Buffer.from(frame)), sample(150_000))).toBe(true);
  });

  it("zstd: fzstd reads the native module's frames and the native module reads zstd-wasm's", async () => {
    const data = sample(100_000);
    expect(
      same(
        await portable(async () =>
          decompress("zstd", new Uint8Array(await nativeZstdCompress(Buffer.from(data)))),
        ),
        data,
      ),
    ).toBe(true);
    const wasm = await portable(() => compress("zstd", data));
    expect(same(await nativeZstdDecompress(Buffer.from(wasm)), data)).toBe(true);
  });

  it("zstd: portable decompression reads frames without a content size", async () => {
    const { data, frame } = zstdFrameWithoutContentSize();
    expect(same(await portable(() => decompress("zstd", frame)), data)).toBe(true);
  });
});

describe("record batches across backends", () => {
  const records: Record[] = Array.from({ length: 300 }, (_, i) => ({
    key: i % 4 === 0 ? null : new TextEncoder().encode(`key-${i % 17}`),
    value: new TextEncoder().encode(`value ${i} ${"payload ".repeat(i % 40)}`),
    headers: i % 5 === 0 ? [{ key: "h", value: new TextEncoder().encode(String(i)) }] : [],
    timestamp: 1_700_000_000_000 + i,
  }));

  it.each([...CODECS, "gzip"] as Compression[])(
    "%s: a batch encoded with portable codecs decodes with native ones, and the reverse",
    async (compression) => {
      const options = { compression, baseOffset: 0, producerId: -1, producerEpoch: -1, baseSequence: -1 };
      for (const [write, read] of [
        [portable, native],
        [native, portable],
      ] as const) {
        const batch = await write(() => encodeRecordBatch(records, options));
        const [decoded] = await read(() => decodeRecordBatches(batch));
        expect(decoded?.compression).toBe(compression);
        expect(decoded?.records.map((r) => Buffer.from(r.value!).toString())).toEqual(
          records.map((r) => Buffer.from(r.value!).toString()),
        );
        expect(decoded?.records.map((r) => (r.key ? Buffer.from(r.key).toString() : null))).toEqual(
          records.map((r) => (r.key ? Buffer.from(r.key).toString() : null)),
        );
      }
    },
  );
});

describe("the LZ4 block format's end-of-block rules", () => {
  /** The output position where each match starts, and the decoded length, read off a block. */
  function matchStarts(block: Uint8Array): { starts: number[]; length: number } {
    const starts: number[] = [];
    let s = 0;
    let o = 0;
    for (;;) {
      const token = block[s++]!;
      let literals = token >>> 4;
      if (literals === 15) for (let b = 255; b === 255; literals += b) b = block[s++]!;
      s += literals;
      o += literals;
      if (s >= block.length) return { starts, length: o };
      s += 2;
      let length = token & 15;
      if (length === 15) for (let b = 255; b === 255; length += b) b = block[s++]!;
      starts.push(o);
      o += length + 4;
    }
  }

  it("starts every match at least 12 bytes before the end and ends it at least 5 bytes before", () => {
    fc.assert(
      fc.property(payloads, fc.integer({ min: 0, max: 2 }), (data, pad) => {
        // Pad to a full 64 KiB block sometimes: the rule matters most when the block is full.
        const block =
          pad === 0
            ? data
            : new Uint8Array(
                Buffer.concat(
                  Array(1 + Math.ceil(65_536 / (data.length + 1))).fill(
                    Buffer.concat([data, Buffer.of(pad)]),
                  ),
                ),
              ).subarray(0, 65_536);
        const out = new Uint8Array(lz4BlockBound(block.length));
        const size = lz4CompressBlock(block, out);
        const { starts, length } = matchStarts(out.subarray(0, size));
        expect(length).toBe(block.length);
        for (const start of starts) expect(start).toBeLessThanOrEqual(block.length - 12);
      }),
      { numRuns: 100 },
    );
  });
});

const lz4Cli = (() => {
  try {
    execFileSync("lz4", ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!lz4Cli)("the reference lz4 CLI (skipped when not installed)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-lz4-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("decodes our frames, full 64 KiB blocks included", () => {
    const inputs = [
      sample(300_000),
      sample(65_536),
      new Uint8Array(0),
      new Uint8Array(70_000).map((_, i) => (i * 7919) % 251),
    ];
    for (const [i, data] of inputs.entries()) {
      writeFileSync(join(dir, `ours-${i}.lz4`), lz4CompressFrame(data));
      execFileSync("lz4", ["-d", "-f", "-q", join(dir, `ours-${i}.lz4`), join(dir, `ours-${i}.out`)]);
      expect(same(readFileSync(join(dir, `ours-${i}.out`)), data)).toBe(true);
    }
  });

  it("writes frames we read: content checksum (its default), linked blocks, block checksums, content size", async () => {
    const data = sample(600_000);
    writeFileSync(join(dir, "in.bin"), data);
    for (const flags of [
      [],
      ["-BD"],
      ["-BX"],
      ["--content-size"],
      ["-B4", "-BD", "-BX", "--content-size"],
      ["--no-frame-crc"],
    ]) {
      execFileSync("lz4", ["-f", "-q", ...flags, join(dir, "in.bin"), join(dir, "cli.lz4")]);
      const frame = new Uint8Array(readFileSync(join(dir, "cli.lz4")));
      expect(same(await portable(() => decompress("lz4", frame)), data), flags.join(" ")).toBe(true);
    }
  });
});
