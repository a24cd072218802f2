import { gzipSync } from "node:zlib";
import { compressFrame as nativeLz4Frame } from "lz4-napi";
import { compress as nativeSnappy } from "snappy";
import { describe, expect, it } from "vitest";
import { zstdRleBomb } from "./compression.fixtures.js";
import { type Compression, compress, decompress, withCodecBackend } from "./compression.js";
import { lz4SizeBound, snappySizeBound, zstdSizeBound } from "./decompressed-size.js";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";
import { Lz4OutputLimitError, lz4DecompressFrame } from "./lz4-frame.js";

const MIB = 1024 * 1024;

/** Compressible but not trivial: repeated words with a counter. */
function sample(size: number): Uint8Array {
  const text = Array.from({ length: Math.ceil(size / 12) }, (_, i) => `record-${i % 977};`).join("");
  return new TextEncoder().encode(text).subarray(0, size);
}

async function refusal(promise: Promise<unknown>): Promise<InvalidArgumentError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect((error as InvalidArgumentError).code).toBe("DECOMPRESSED_TOO_LARGE");
  return error as InvalidArgumentError;
}

describe("decompressed size bounds", () => {
  const data = sample(MIB + 12_345);

  it.each(["snappy", "zstd"] as const)(
    "%s: honest data is bounded from above, within one block of its size",
    async (codec) => {
      for (const backend of ["native", "portable"] as const) {
        const compressed = await withCodecBackend(backend, () => compress(codec, data));
        const bound = codec === "snappy" ? snappySizeBound(compressed, true) : zstdSizeBound(compressed);
        expect(bound).toBeGreaterThanOrEqual(data.length);
        expect(bound - data.length).toBeLessThanOrEqual(128 * 1024);
      }
    },
  );

  it.each(["gzip", "snappy", "lz4", "zstd"] as const)(
    "%s: a limit at or above what honest data may decode to passes it; one below its size refuses it",
    async (codec: Compression) => {
      const compressed = await compress(codec, data);
      const allowed = data.length + 128 * 1024;
      expect(Buffer.from(await decompress(codec, compressed, allowed)).equals(Buffer.from(data))).toBe(true);
      await refusal(decompress(codec, compressed, data.length - 1));
    },
  );

  it("zstd: a frame of RLE blocks claiming 128 MiB in 4 KB is refused from its framing, before decoding", async () => {
    const bomb = zstdRleBomb(1024);
    expect(bomb.length).toBeLessThan(5000);
    expect(zstdSizeBound(bomb)).toBe(1024 * 128 * 1024);
    const error = await refusal(decompress("zstd", bomb, 8 * MIB));
    // A bound in the details means the framing refused it: nothing was decoded.
    expect(error.details).toMatchObject({ bound: 128 * MIB, maxBytes: 8 * MIB });
    expect(error.message).toMatch(
      /zstd payload of \d+ bytes may decompress to 134217728 bytes, over the 8388608-byte limit/,
    );
  });

  it("lz4: the framing bounds honest data from above", async () => {
    for (const backend of ["native", "portable"] as const) {
      const compressed = await withCodecBackend(backend, () => compress("lz4", data));
      expect(lz4SizeBound(compressed)).toBeGreaterThanOrEqual(data.length);
    }
  });

  it("lz4: 64 MiB of zeros in a few hundred KB is stopped at the limit, not decoded whole", async () => {
    const bomb = new Uint8Array(await nativeLz4Frame(Buffer.alloc(64 * MIB)));
    expect(bomb.length).toBeLessThan(MIB);
    expect(lz4SizeBound(bomb)).toBeGreaterThanOrEqual(64 * MIB);
    const error = await refusal(decompress("lz4", bomb, 8 * MIB));
    expect(error.message).toMatch(/decompresses to more than the 8388608-byte limit/);
    expect(() => lz4DecompressFrame(bomb, 8 * MIB)).toThrow(Lz4OutputLimitError);
  });

  it("snappy: a block declaring 32 MiB is refused from its declared length", async () => {
    const block = new Uint8Array(await nativeSnappy(Buffer.alloc(32 * MIB)));
    const error = await refusal(decompress("snappy", block, 8 * MIB));
    expect(error.details).toMatchObject({ bound: 32 * MIB });
  });

  it("gzip: 64 MiB of zeros is refused while decoding, at the limit", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * MIB));
    expect(bomb.length).toBeLessThan(MIB);
    const error = await refusal(decompress("gzip", bomb, 8 * MIB));
    expect(error.message).toMatch(/decompresses to more than the 8388608-byte limit/);
  });

  it("framing that cannot be walked is corruption, as a failed decode is", async () => {
    const bomb = zstdRleBomb(4);
    await expect(decompress("zstd", bomb.subarray(0, bomb.length - 3), MIB)).rejects.toThrow(
      DataCorruptionError,
    );
    await expect(decompress("lz4", Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), MIB)).rejects.toThrow(
      DataCorruptionError,
    );
  });

  it("without a limit nothing changes: the RLE frame decodes", async () => {
    const out = await decompress("zstd", zstdRleBomb(3));
    expect(out.length).toBe(3 * 128 * 1024);
    expect(out.every((byte) => byte === 0x61)).toBe(true);
  });
});
