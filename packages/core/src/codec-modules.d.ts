// Declarations for the untyped codec packages, covering only what compression-vendor.ts uses.

declare module "snappyjs" {
  /** One raw snappy block (no framing). A Uint8Array that is not a Buffer gives a Uint8Array. */
  export function compress(input: Uint8Array): Uint8Array;
  /** Decodes one raw snappy block; `maxLength` refuses larger declared lengths. */
  export function uncompress(input: Uint8Array, maxLength?: number): Uint8Array;
}

declare module "lz4js/xxh32.js" {
  /** xxHash-32 of `src[index, index + length)`, unsigned. */
  export function hash(seed: number, src: Uint8Array, index: number, length: number): number;
}
