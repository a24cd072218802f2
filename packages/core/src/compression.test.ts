import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { compress as rawSnappyCompress } from "snappy";
import { describe, expect, it } from "vitest";
import { zstdFrameWithoutContentSize } from "./compression.fixtures.js";

import {
  COMPRESSION_CODES,
  type Compression,
  compress,
  compressionCode,
  compressionFromCode,
  decodeSnappy,
  decompress,
  encodeXerialSnappy,
  isXerialSnappy,
  XERIAL_SNAPPY_MAGIC,
} from "./compression.js";
import { DataCorruptionError, InvalidArgumentError } from "./errors.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Compressible but not trivial: repeated words with a counter. */
function sample(size: number): Uint8Array {
  const text = Array.from({ length: Math.ceil(size / 12) }, (_, i) => `record-${i % 977};`).join("");
  return new TextEncoder().encode(text).subarray(0, size);
}

describe("codec ids", () => {
  it("use Kafka's attribute codes", () => {
    expect(COMPRESSION_CODES).toEqual({ none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 });
    for (const codec of CODECS) {
      expect(compressionFromCode(compressionCode(codec))).toBe(codec);
    }
  });

  it("treat an unknown stored id as corruption and an unknown name as bad input", () => {
    for (const code of [5, 6, 7]) expect(() => compressionFromCode(code)).toThrow(DataCorruptionError);
    expect(() => compressionCode("brotli" as Compression)).toThrow(InvalidArgumentError);
    expect(() => compressionCode("toString" as Compression)).toThrow(InvalidArgumentError);
  });
});

describe("compress / decompress", () => {
  it.each(CODECS)("%s round-trips arbitrary bytes", async (codec) => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), async (data) => {
        expect(await decompress(codec, await compress(codec, data))).toEqual(new Uint8Array(data));
      }),
      { numRuns: 40 },
    );
  });

  it.each(CODECS)("%s round-trips empty and large payloads", async (codec) => {
    for (const data of [new Uint8Array(0), sample(300_000)]) {
      const out = await decompress(codec, await compress(codec, data));
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    }
  });

  it.each(["gzip", "snappy", "lz4", "zstd"] as const)(
    "%s turns damaged payloads into DataCorruptionError",
    async (codec) => {
      const packed = await compress(codec, sample(2000));
      const damaged = new Uint8Array(packed);
      // Overwrite the middle: codec headers stay plausible, the stream itself does not.
      damaged.fill(0xa5, damaged.length >> 2, (damaged.length >> 2) + 16);
      await expect(decompress(codec, damaged)).rejects.toBeInstanceOf(DataCorruptionError);
      await expect(decompress(codec, Uint8Array.of(1, 2, 3, 4, 5))).rejects.toBeInstanceOf(
        DataCorruptionError,
      );
    },
  );

  it("writes the container formats Kafka expects", async () => {
    const data = sample(1000);
    expect([...(await compress("gzip", data)).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const lz4 = await compress("lz4", data);
    expect([...lz4.subarray(0, 4)]).toEqual([0x04, 0x22, 0x4d, 0x18]); // LZ4 frame magic
    expect(lz4[4]! & 0xc0).toBe(0x40); // frame version 01
    expect(lz4[4]! & 0x20).toBe(0x20); // independent blocks, as Kafka's Java LZ4 stream writes
    expect([...(await compress("zstd", data)).subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(isXerialSnappy(await compress("snappy", data))).toBe(true);
  });

  it("gzip reads what node:zlib (as any gzip writer) produces", async () => {
    const data = sample(4000);
    expect(await decompress("gzip", gzipSync(data))).toEqual(data);
  });

  it("zstd reads frames without a content size, as streaming writers (the Java client) emit", async () => {
    const { data, frame } = zstdFrameWithoutContentSize();
    expect(new Uint8Array(await decompress("zstd", frame))).toEqual(data);
  });
});

describe("snappy framing", () => {
  it("writes snappy-java's xerial header: magic, version 1, compatible version 1", async () => {
    const framed = await encodeXerialSnappy(sample(100));
    expect([...framed.subarray(0, 16)]).toEqual([
      0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1,
    ]);
    expect(Buffer.from(XERIAL_SNAPPY_MAGIC.subarray(1, 7)).toString("latin1")).toBe("SNAPPY");
  });

  it("splits input into 32 KiB blocks, each a length-prefixed raw snappy block", async () => {
    const data = sample(100_000);
    const framed = await encodeXerialSnappy(data);
    const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
    const blocks: Uint8Array[] = [];
    for (let pos = 16; pos < framed.length; ) {
      const length = view.getInt32(pos);
      blocks.push(framed.subarray(pos + 4, pos + 4 + length));
      pos += 4 + length;
    }
    expect(blocks).toHaveLength(Math.ceil(data.length / 32768));
    // Each block decodes on its own as raw snappy to its slice of the input.
    for (const [i, block] of blocks.entries()) {
      expect(
        Buffer.from(await decodeSnappy(block)).equals(Buffer.from(data.subarray(i * 32768, (i + 1) * 32768))),
      ).toBe(true);
    }
    expect(Buffer.from(await decodeSnappy(framed)).equals(Buffer.from(data))).toBe(true);
  });

  it("reads a xerial stream assembled independently from raw blocks", async () => {
    const parts = [sample(5000), new TextEncoder().encode("second chunk")];
    const chunks = await Promise.all(parts.map((p) => rawSnappyCompress(p)));
    const header = Uint8Array.of(0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1);
    const pieces: Uint8Array[] = [header];
    for (const chunk of chunks) {
      const length = new Uint8Array(4);
      new DataView(length.buffer).setInt32(0, chunk.length);
      pieces.push(length, chunk);
    }
    const out = await decompress("snappy", Buffer.concat(pieces));
    expect(Buffer.from(out).equals(Buffer.concat(parts))).toBe(true);
  });

  it("reads concatenated xerial streams, as snappy-java does", async () => {
    const a = sample(1000);
    const b = sample(777);
    const joined = Buffer.concat([await encodeXerialSnappy(a), await encodeXerialSnappy(b)]);
    expect(Buffer.from(await decodeSnappy(joined)).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("reads raw (unframed) snappy, which some Kafka clients write", async () => {
    const data = sample(3000);
    const raw = await rawSnappyCompress(data);
    expect(isXerialSnappy(raw)).toBe(false);
    expect(Buffer.from(await decompress("snappy", raw)).equals(Buffer.from(data))).toBe(true);
  });

  it("reads an empty xerial stream (header only)", async () => {
    const empty = await encodeXerialSnappy(new Uint8Array(0));
    expect(empty).toHaveLength(16);
    expect(await decodeSnappy(empty)).toHaveLength(0);
  });

  it("refuses broken framing", async () => {
    const framed = await encodeXerialSnappy(sample(1000));
    await expect(decodeSnappy(framed.subarray(0, framed.length - 3))).rejects.toBeInstanceOf(
      DataCorruptionError,
    );
    await expect(decodeSnappy(framed.subarray(0, 18))).rejects.toBeInstanceOf(DataCorruptionError);
    const badLength = new Uint8Array(framed);
    new DataView(badLength.buffer).setInt32(16, -5);
    await expect(decodeSnappy(badLength)).rejects.toBeInstanceOf(DataCorruptionError);
  });
});
