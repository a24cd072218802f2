import { createRequire } from "node:module";

/**
 * Loading of the third-party codec packages, each on first use and each optional.
 *
 * Every package is named by a literal `require("…")` in the CommonJS branch: esbuild, bundling the
 * Lambda function as CommonJS, sees the names and bundles the packages (the native ones with their
 * `.node` binaries, unless the function's bundling marks them external, which it does for arm64:
 * infra/lib/sluice-platform.ts). Under ESM (tests, the local server) `require` does not exist and
 * the same names go through a require made from this module's URL. A package that fails to load
 * (absent, or its binary built for another platform) yields undefined, and compression.ts falls
 * back to the portable implementation.
 */

let esmRequire: NodeJS.Require | undefined;

/** `require` itself in CommonJS, else one made from this module's URL. */
function requireFromHere(): NodeJS.Require {
  esmRequire ??= createRequire(import.meta.url);
  return esmRequire;
}

function optional<T>(load: () => unknown): T | undefined {
  try {
    return (load() as T | undefined) ?? undefined;
  } catch {
    return undefined;
  }
}

// ---- native (Node-API) codecs ----

export type NativeSnappy = Pick<typeof import("snappy"), "compress" | "uncompress">;
export type NativeLz4 = Pick<typeof import("lz4-napi"), "compressFrame" | "decompressFrame">;
export type NativeZstd = Pick<typeof import("@mongodb-js/zstd"), "compress" | "decompress">;

export function loadNativeSnappy(): NativeSnappy | undefined {
  return optional(() => (typeof require === "function" ? require("snappy") : requireFromHere()("snappy")));
}

export function loadNativeLz4(): NativeLz4 | undefined {
  return optional(() =>
    typeof require === "function" ? require("lz4-napi") : requireFromHere()("lz4-napi"),
  );
}

export function loadNativeZstd(): NativeZstd | undefined {
  return optional(() =>
    typeof require === "function" ? require("@mongodb-js/zstd") : requireFromHere()("@mongodb-js/zstd"),
  );
}

// ---- portable codecs (plain JavaScript and WebAssembly) ----

export type SnappyJs = typeof import("snappyjs");
export type Fzstd = Pick<typeof import("fzstd"), "decompress">;
export type ZstdWasm = Pick<typeof import("@bokuweb/zstd-wasm"), "init" | "compress">;

export function loadSnappyJs(): SnappyJs | undefined {
  return optional(() =>
    typeof require === "function" ? require("snappyjs") : requireFromHere()("snappyjs"),
  );
}

export function loadFzstd(): Fzstd | undefined {
  return optional(() => (typeof require === "function" ? require("fzstd") : requireFromHere()("fzstd")));
}

/**
 * zstd compression without the native module: the reference C library compiled to WebAssembly.
 * Its `init()` reads `zstd.wasm` from the package's own directory (`__dirname`); inside a bundle
 * that is the bundle's directory, where the function's bundling copies the file.
 */
export function loadZstdWasm(): ZstdWasm | undefined {
  return optional(() =>
    typeof require === "function" ? require("@bokuweb/zstd-wasm") : requireFromHere()("@bokuweb/zstd-wasm"),
  );
}

type Xxh32 = (seed: number, bytes: Uint8Array, index: number, length: number) => number;
let xxh32Function: Xxh32 | undefined;

/** xxHash-32 of `bytes[index, index + length)`, as an unsigned number (lz4js's implementation). */
export function xxh32(seed: number, bytes: Uint8Array, index: number, length: number): number {
  xxh32Function ??= (
    (typeof require === "function"
      ? require("lz4js/xxh32.js")
      : requireFromHere()("lz4js/xxh32.js")) as typeof import("lz4js/xxh32.js")
  ).hash;
  return xxh32Function(seed, bytes, index, length) >>> 0;
}
