import { type Compression, compress, compressionBackends, crc32cIsNative, decompress } from "@sluice/core";

/**
 * A Lambda entry for bundling.test.ts: bundled like the HTTP apps, it reports which codec backends
 * load and round-trips a payload through every codec, so the test can run a real bundle from a
 * directory without node_modules and see what the function would do.
 */
export async function handler(event: { zstdFrame?: string }): Promise<{
  backends: Record<Compression, string>;
  crc32cIsNative: boolean;
  roundTrips: Record<string, string>;
  zstdDecompressed?: string;
}> {
  const data = new TextEncoder().encode("a probe payload, compressible: ".repeat(4000));
  const roundTrips: Record<string, string> = {};
  for (const codec of ["gzip", "snappy", "lz4", "zstd"] as const) {
    try {
      const packed = await compress(codec, data);
      const back = await decompress(codec, packed);
      roundTrips[codec] = Buffer.from(back).equals(Buffer.from(data)) ? `ok ${packed.length}` : "mismatch";
    } catch (error) {
      roundTrips[codec] = `${(error as Error).name}: ${(error as Error).message}`;
    }
  }
  const zstdDecompressed =
    event.zstdFrame === undefined
      ? undefined
      : Buffer.from(await decompress("zstd", Buffer.from(event.zstdFrame, "base64"))).toString();
  return { backends: await compressionBackends(), crc32cIsNative, roundTrips, zstdDecompressed };
}
