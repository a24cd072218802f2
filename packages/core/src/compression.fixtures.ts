/**
 * Hand-built codec inputs shared by the compression tests.
 *
 * A zstd frame without a content size, as streaming writers (the Java client) emit: magic, frame
 * header descriptor 0 (no content size, not single-segment), window byte, then one last raw
 * block whose 3-byte little-endian header is last(1) | type raw(0) << 1 | size << 3.
 */
export function zstdFrameWithoutContentSize(): { data: Uint8Array; frame: Uint8Array } {
  const data = new TextEncoder().encode("a raw zstd block in a frame that omits its content size");
  const blockHeader = 1 | (data.length << 3);
  const frame = Uint8Array.of(
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x00,
    0x00,
    blockHeader & 0xff,
    (blockHeader >> 8) & 0xff,
    (blockHeader >> 16) & 0xff,
    ...data,
  );
  return { data, frame };
}

/**
 * A decompression bomb: one zstd frame of `blocks` RLE blocks, each 4 bytes that stand for
 * 128 KiB of one byte value (block header last | type RLE(1) << 1 | size << 3, then the byte).
 */
export function zstdRleBomb(blocks: number): Uint8Array {
  const blockSize = 128 << 10;
  // Frame header descriptor 0 (no content size, not single-segment); window byte 0x38 (2^17).
  const frame = new Uint8Array(6 + blocks * 4);
  frame.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]);
  for (let index = 0; index < blocks; index++) {
    const header = (index === blocks - 1 ? 1 : 0) | (1 << 1) | (blockSize << 3);
    frame.set([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x61], 6 + index * 4);
  }
  return frame;
}
