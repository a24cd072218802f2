/**
 * The record-batch codecs, named as Kafka names them and numbered with Kafka's attribute codes
 * (the low three bits of a RecordBatch's attributes). Payload formats follow what the Java client
 * writes, so batches we produce can be served to Kafka consumers byte for byte:
 * - gzip: a gzip member (node:zlib).
 * - snappy: xerial snappy-java framing (see below); raw snappy is also accepted when reading.
 * - lz4: the standard LZ4 frame format with independent blocks and no checksums, the profile
 *   Kafka's own LZ4 stream uses; every conforming frame is accepted when reading.
 * - zstd: a zstd frame (level 3, Kafka's default).
 * Decompression failures are stored bytes failing verification, hence DataCorruptionError.
 *
 * Backends. snappy, lz4 and zstd each have a native implementation (the Node-API packages snappy,
 * lz4-napi and @mongodb-js/zstd) and a portable one, chosen per codec on first use: native when its
 * binary loads, portable otherwise (an arm64 Lambda bundled without native modules, a platform
 * npm has no binary for). The portable ones are plain JavaScript (snappyjs for snappy
 * compression, our own snappy block decoder and LZ4 frame codec in snappy-block.ts and
 * lz4-frame.ts, fzstd for zstd decompression) except zstd compression, which is the reference C
 * library compiled to WebAssembly (@bokuweb/zstd-wasm). Should that fail to load (its zstd.wasm
 * missing beside a bundle), zstd compression alone is unavailable: compress("zstd") throws
 * InternalError, and everything else, zstd decompression included, still works. Both backends
 * write the same formats and read each other's output (compression-portable.test.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { promisify } from "node:util";
import { gunzip, gzip, type ZlibOptions } from "node:zlib";
import {
  loadFzstd,
  loadNativeLz4,
  loadNativeSnappy,
  loadNativeZstd,
  loadSnappyJs,
  loadZstdWasm,
  type ZstdWasm,
} from "./compression-vendor.js";
import { lz4SizeBound, snappySizeBound, zstdSizeBound } from "./decompressed-size.js";
import { DataCorruptionError, InternalError, InvalidArgumentError, SluiceError } from "./errors.js";
import { Lz4OutputLimitError, lz4CompressFrame, lz4DecompressFrame } from "./lz4-frame.js";
import { snappyDecompressBlock } from "./snappy-block.js";

export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

/** Which implementation a codec runs on. */
export type CodecBackend = "native" | "portable";

/** Kafka's codec ids, as stored in bits 0–2 of a batch's attributes. */
export const COMPRESSION_CODES: { readonly [C in Compression]: number } = Object.freeze({
  none: 0,
  gzip: 1,
  snappy: 2,
  lz4: 3,
  zstd: 4,
});

const BY_CODE: readonly Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Kafka's default zstd level. */
const ZSTD_LEVEL = 3;

const gzipAsync = promisify(gzip);
const gunzipAsync: (data: Uint8Array, options?: ZlibOptions) => Promise<Buffer> = promisify(gunzip);

/** The attribute code for a codec; an unknown name is a caller error. */
export function compressionCode(compression: Compression): number {
  // hasOwn, not a plain lookup, so that names like "toString" are refused too.
  if (!Object.hasOwn(COMPRESSION_CODES, compression)) {
    throw new InvalidArgumentError(`unknown compression "${String(compression)}"`, {
      details: { compression },
    });
  }
  return COMPRESSION_CODES[compression];
}

/** The codec for an attribute code read from stored bytes; an unknown id means corruption. */
export function compressionFromCode(code: number): Compression {
  const compression = BY_CODE[code];
  if (compression === undefined) {
    throw new DataCorruptionError(`unknown compression codec id ${code}`, { details: { codec: code } });
  }
  return compression;
}

/** Compresses a records payload with the given codec. "none" returns the input itself. */
export async function compress(compression: Compression, data: Uint8Array): Promise<Uint8Array> {
  switch (compressionCode(compression)) {
    case 0:
      return data;
    case 1:
      return plain(await gzipAsync(data));
    case 2:
      return await encodeXerialSnappy(data);
    case 3:
      return await codec("lz4").compress(data);
    default:
      return await codec("zstd").compress(data);
  }
}

/**
 * Decompresses a records payload; any codec failure becomes DataCorruptionError. With `maxBytes`,
 * a payload whose framing says it may decode to more (decompressed-size.ts; gzip while decoding) is
 * refused with InvalidArgumentError code DECOMPRESSED_TOO_LARGE before its output is allocated.
 */
export async function decompress(
  compression: Compression,
  data: Uint8Array,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Uint8Array> {
  const code = compressionCode(compression);
  if (code === 0) return data;
  const bounded = Number.isFinite(maxBytes);
  try {
    // gzip has no framing to bound it by: zlib stops at the limit while decoding.
    const bound = bounded && code !== 1 ? sizeBound(code, data) : 0;
    if (bound > maxBytes && code === 3) {
      // LZ4's bound is loose for very compressible blocks (255 bytes out per byte in): decode with
      // the JavaScript decoder instead, which stops once its output passes the limit.
      return lz4DecompressFrame(data, maxBytes);
    }
    if (bound > maxBytes) throw tooLarge(compression, data.length, maxBytes, bound);
    let out: Uint8Array;
    switch (code) {
      case 1:
        out = plain(await (bounded ? gunzipAsync(data, { maxOutputLength: maxBytes }) : gunzipAsync(data)));
        break;
      case 2:
        out = await decodeSnappy(data);
        break;
      case 3:
        out = await codec("lz4").decompress(data);
        break;
      default:
        out = await codec("zstd").decompress(data);
    }
    if (out.length > maxBytes) throw tooLarge(compression, data.length, maxBytes);
    return out;
  } catch (error) {
    if (error instanceof SluiceError) throw error;
    if (error instanceof Lz4OutputLimitError) throw tooLarge(compression, data.length, maxBytes);
    if (bounded && code === 1 && (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw tooLarge(compression, data.length, maxBytes);
    }
    throw new DataCorruptionError(
      `${compression} payload of ${data.length} bytes failed to decompress: ${(error as Error).message}`,
      { cause: error, details: { compression, length: data.length } },
    );
  }
}

function sizeBound(code: number, data: Uint8Array): number {
  if (code === 2) return snappySizeBound(data, isXerialSnappy(data));
  return code === 3 ? lz4SizeBound(data) : zstdSizeBound(data);
}

function tooLarge(
  compression: Compression,
  length: number,
  maxBytes: number,
  bound?: number,
): InvalidArgumentError {
  const what = bound === undefined ? "decompresses to more than" : `may decompress to ${bound} bytes, over`;
  return new InvalidArgumentError(
    `${compression} payload of ${length} bytes ${what} the ${maxBytes}-byte limit`,
    {
      code: "DECOMPRESSED_TOO_LARGE",
      details: { compression, length, maxBytes, ...(bound === undefined ? {} : { bound }) },
    },
  );
}

/**
 * Runs `fn` with every codec forced onto one backend, for tests and benchmarks. The choice follows
 * the asynchronous calls `fn` makes and nothing else (AsyncLocalStorage), so it never leaks into
 * other tests or concurrent requests. Forcing "native" where a native module is missing makes the
 * codec throw InternalError.
 */
export function withCodecBackend<T>(backend: CodecBackend, fn: () => T): T {
  return forcedBackend.run(backend, fn);
}

/**
 * What each codec compresses with here (under withCodecBackend, what it would use there):
 * "native", "portable", or "unavailable" (zstd when neither its native module nor its WebAssembly
 * build loads; decompression works on every platform regardless). "none" and gzip (node:zlib) are
 * always "native". Loads the codecs it reports on.
 */
export async function compressionBackends(): Promise<Record<Compression, CodecBackend | "unavailable">> {
  const report = async (name: NativeCodec): Promise<CodecBackend | "unavailable"> => {
    const forced = forcedBackend.getStore();
    if (forced !== "portable" && nativeCodec(name)) return "native";
    if (forced === "native") return "unavailable";
    if (name === "zstd" && (await zstdWasm()).module === undefined) return "unavailable";
    return "portable";
  };
  return {
    none: "native",
    gzip: "native",
    snappy: await report("snappy"),
    lz4: await report("lz4"),
    zstd: await report("zstd"),
  };
}

/**
 * The bindings return Buffers; hand out plain Uint8Arrays over the same memory instead, because
 * Buffer's `slice` returns a view where Uint8Array's copies, a trap behind a Uint8Array type.
 * (Some JavaScript codecs also answer a Buffer with a Buffer; they get plain views too.)
 */
function plain(buffer: Uint8Array): Uint8Array {
  return Buffer.isBuffer(buffer)
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    : buffer;
}

/** A Buffer over the same memory (no copy), for bindings typed to take Buffer. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// ---- backends ----

type NativeCodec = "snappy" | "lz4" | "zstd";

/** One codec's payload format: a raw snappy block (xerial framing is added above), an LZ4 frame, a zstd frame. */
interface Codec {
  compress(data: Uint8Array): Promise<Uint8Array>;
  decompress(data: Uint8Array): Promise<Uint8Array>;
}

const forcedBackend = new AsyncLocalStorage<CodecBackend>();

/** The codec's implementation for this call: the forced backend, else native when it loaded. */
function codec(name: NativeCodec): Codec {
  const forced = forcedBackend.getStore();
  if (forced === "portable") return PORTABLE[name];
  const native = nativeCodec(name);
  if (native) return native;
  if (forced === "native") {
    throw new InternalError(`the native ${name} codec is not installed on this platform`, {
      details: { compression: name, platform: `${process.platform}-${process.arch}` },
    });
  }
  return PORTABLE[name];
}

/** Native codecs, loaded on first use; null once loading failed. */
const natives: { [C in NativeCodec]?: Codec | null } = {};

function nativeCodec(name: NativeCodec): Codec | undefined {
  let loaded = natives[name];
  if (loaded === undefined) {
    loaded = loadNative(name) ?? null;
    natives[name] = loaded;
  }
  return loaded ?? undefined;
}

function loadNative(name: NativeCodec): Codec | undefined {
  switch (name) {
    case "snappy": {
      const snappy = loadNativeSnappy();
      return (
        snappy && {
          compress: async (data) => plain(await snappy.compress(data)),
          decompress: async (data) => plain((await snappy.uncompress(data, { asBuffer: true })) as Buffer),
        }
      );
    }
    case "lz4": {
      const lz4 = loadNativeLz4();
      return (
        lz4 && {
          compress: async (data) => plain(await lz4.compressFrame(data)),
          decompress: async (data) => plain(await lz4.decompressFrame(data)),
        }
      );
    }
    case "zstd": {
      const zstd = loadNativeZstd();
      return (
        zstd && {
          compress: async (data) => plain(await zstd.compress(asBuffer(data), ZSTD_LEVEL)),
          decompress: async (data) => plain(await zstd.decompress(asBuffer(data))),
        }
      );
    }
  }
}

const PORTABLE: { readonly [C in NativeCodec]: Codec } = {
  snappy: {
    // snappyjs returns a Buffer for a Buffer (a view over a larger allocation); hand it a plain view.
    compress: async (data) => portable("snappyjs", loadSnappyJs).compress(plain(data)),
    decompress: async (data) => snappyDecompressBlock(data),
  },
  lz4: {
    compress: async (data) => lz4CompressFrame(data),
    decompress: async (data) => lz4DecompressFrame(data),
  },
  zstd: {
    compress: async (data) => {
      const wasm = await zstdWasm();
      if (wasm.module === undefined) {
        throw new InternalError(
          `zstd compression is unavailable here: the native module is not installed and its WebAssembly build did not load (${errorMessage(wasm.error)}); zstd decompression still works`,
          { cause: wasm.error, details: { compression: "zstd" } },
        );
      }
      return wasm.module.compress(data, ZSTD_LEVEL);
    },
    decompress: async (data) => portable("fzstd", loadFzstd).decompress(data),
  },
};

const portables = new Map<string, unknown>();

/** A pure-JavaScript dependency; failing to load one is a broken installation. */
function portable<T>(name: string, load: () => T | undefined): T {
  let module = portables.get(name) as T | undefined;
  if (module === undefined) {
    module = load();
    if (module === undefined) {
      throw new InternalError(`the ${name} package did not load; reinstall dependencies`, {
        details: { package: name },
      });
    }
    portables.set(name, module);
  }
  return module;
}

let zstdWasmState: Promise<{ module?: ZstdWasm; error?: unknown }> | undefined;

/** The WebAssembly zstd, instantiated once (its zstd.wasm is read and compiled on first use). */
function zstdWasm(): Promise<{ module?: ZstdWasm; error?: unknown }> {
  zstdWasmState ??= (async () => {
    const module = loadZstdWasm();
    if (module === undefined) return { error: new Error("the @bokuweb/zstd-wasm package did not load") };
    try {
      await module.init();
      return { module };
    } catch (error) {
      return { error };
    }
  })();
  return zstdWasmState;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---- snappy with xerial (snappy-java) framing ----
//
// Stream = header, then chunks. Header (16 bytes): the magic 0x82 "SNAPPY" 0x00, a big-endian
// int32 version (1) and a big-endian int32 minimum compatible version (1). Chunk: a big-endian
// int32 length followed by that many bytes of one raw snappy block. snappy-java reads
// concatenated streams, recognising a repeated header where a chunk length would be.
//
// A raw snappy block cannot start with the magic: 0x82 0x53 is a complete length varint, and
// the next byte 'N' (0x4E) is a copy-with-2-byte-offset tag, which is invalid before any literal
// output. So the magic unambiguously distinguishes the two encodings.

/** The first 8 bytes of a xerial-framed snappy stream. */
export const XERIAL_SNAPPY_MAGIC: Uint8Array = Uint8Array.of(0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00);
const XERIAL_HEADER_SIZE = 16;
const XERIAL_VERSION = 1;
const XERIAL_MIN_COMPATIBLE_VERSION = 1;
/** The first four magic bytes read as a big-endian int32, which marks a concatenated stream. */
const XERIAL_MAGIC_HEAD = 0x82534e41 | 0;
/** snappy-java's default block size; Kafka's Java producer uses it unchanged. */
const XERIAL_BLOCK_SIZE = 32 * 1024;

/** True when the payload starts with the xerial header magic. */
export function isXerialSnappy(data: Uint8Array): boolean {
  if (data.length < XERIAL_SNAPPY_MAGIC.length) return false;
  for (let i = 0; i < XERIAL_SNAPPY_MAGIC.length; i++) {
    if (data[i] !== XERIAL_SNAPPY_MAGIC[i]) return false;
  }
  return true;
}

/** Snappy-compresses `data` in 32 KiB blocks inside xerial framing, as snappy-java writes it. */
export async function encodeXerialSnappy(data: Uint8Array): Promise<Uint8Array> {
  const snappy = codec("snappy");
  const pending: Promise<Uint8Array>[] = [];
  for (let start = 0; start < data.length; start += XERIAL_BLOCK_SIZE) {
    pending.push(snappy.compress(data.subarray(start, start + XERIAL_BLOCK_SIZE)));
  }
  const blocks = await Promise.all(pending);
  let total = XERIAL_HEADER_SIZE;
  for (const block of blocks) total += 4 + block.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(XERIAL_SNAPPY_MAGIC, 0);
  view.setInt32(8, XERIAL_VERSION);
  view.setInt32(12, XERIAL_MIN_COMPATIBLE_VERSION);
  let pos = XERIAL_HEADER_SIZE;
  for (const block of blocks) {
    view.setInt32(pos, block.length);
    out.set(block, pos + 4);
    pos += 4 + block.length;
  }
  return out;
}

/** Decodes snappy data in xerial framing or, failing the magic check, as one raw block. */
export async function decodeSnappy(data: Uint8Array): Promise<Uint8Array> {
  const snappy = codec("snappy");
  if (!isXerialSnappy(data)) return await snappy.decompress(data);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // The whole framing is checked before any block is decoded, so that no decode is left running
  // (its failure unobserved) when the framing turns out broken.
  const chunks: Uint8Array[] = [];
  let pos = 0;
  while (pos < data.length) {
    // At pos there is either a (possibly repeated) stream header or a chunk.
    if (pos + 4 > data.length) throw framingError("chunk length is cut short", pos);
    if (view.getInt32(pos) === XERIAL_MAGIC_HEAD) {
      if (pos + XERIAL_HEADER_SIZE > data.length) throw framingError("header is cut short", pos);
      if (!isXerialSnappy(data.subarray(pos))) throw framingError("header magic is damaged", pos);
      pos += XERIAL_HEADER_SIZE;
      continue;
    }
    const length = view.getInt32(pos);
    if (length < 0 || pos + 4 + length > data.length) {
      throw framingError(`chunk of ${length} bytes does not fit in the payload`, pos);
    }
    chunks.push(data.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  const blocks = await Promise.all(chunks.map((chunk) => snappy.decompress(chunk)));
  return blocks.length === 1 ? blocks[0]! : plain(Buffer.concat(blocks));
}

function framingError(what: string, position: number): DataCorruptionError {
  return new DataCorruptionError(`xerial snappy framing: ${what} at byte ${position}`, {
    details: { position },
  });
}
