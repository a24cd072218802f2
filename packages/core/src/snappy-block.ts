/**
 * Decoding of one raw snappy block (format_description.txt of google/snappy) in JavaScript, the
 * portable stand-in for the native `snappy` package. Compression uses snappyjs; its decoder is not
 * used because it does not check that the output fills exactly the declared length (damaged input
 * can decode silently to zero-padded or truncated bytes), which this one does, along with every
 * bound. Failures throw a plain Error; compression.ts turns them into DataCorruptionError.
 *
 * A block is the uncompressed length as a little-endian base-128 varint, then elements, each
 * starting with a tag byte whose low two bits give its kind: 0 literal, 1 copy with an 11-bit
 * offset, 2 copy with a 16-bit offset, 3 copy with a 32-bit offset.
 */

/** The most output one input byte can yield: a 3-byte copy element writes up to 64 bytes. */
const MAX_EXPANSION = 22;

export function snappyDecompressBlock(src: Uint8Array): Uint8Array {
  let s = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (s >= src.length || shift > 28) throw new Error("bad uncompressed length varint");
    const byte = src[s++]!;
    length += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  if (length > 0xffffffff || length > (src.length - s) * MAX_EXPANSION) {
    throw new Error(`declared length ${length} cannot come from ${src.length} bytes`);
  }
  const out = new Uint8Array(length);
  let o = 0;
  while (s < src.length) {
    const tag = src[s++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let literal = tag >>> 2;
      if (literal >= 60) {
        const bytes = literal - 59;
        if (s + bytes > src.length) throw new Error("literal length cut short");
        literal = 0;
        for (let k = bytes - 1; k >= 0; k--) literal = literal * 256 + src[s + k]!;
        s += bytes;
      }
      literal += 1;
      if (s + literal > src.length) throw new Error("literal runs past the input");
      if (o + literal > length) throw new Error("literal runs past the declared length");
      if (literal < 32) {
        for (const stop = s + literal; s < stop; ) out[o++] = src[s++]!;
      } else {
        out.set(src.subarray(s, s + literal), o);
        s += literal;
        o += literal;
      }
      continue;
    }
    let copy: number;
    let offset: number;
    if (kind === 1) {
      if (s + 1 > src.length) throw new Error("copy offset cut short");
      copy = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | src[s++]!;
    } else if (kind === 2) {
      if (s + 2 > src.length) throw new Error("copy offset cut short");
      copy = (tag >>> 2) + 1;
      offset = src[s]! | (src[s + 1]! << 8);
      s += 2;
    } else {
      if (s + 4 > src.length) throw new Error("copy offset cut short");
      copy = (tag >>> 2) + 1;
      offset = (src[s]! | (src[s + 1]! << 8) | (src[s + 2]! << 16) | (src[s + 3]! << 24)) >>> 0;
      s += 4;
    }
    if (offset === 0 || offset > o) throw new Error(`copy offset ${offset} points before the data`);
    if (o + copy > length) throw new Error("copy runs past the declared length");
    let from = o - offset;
    if (offset >= copy && copy >= 32) {
      out.copyWithin(o, from, from + copy);
      o += copy;
    } else {
      // Overlapping copies repeat the last `offset` bytes, so they go byte by byte.
      for (const stop = o + copy; o < stop; ) out[o++] = out[from++]!;
    }
  }
  if (o !== length) throw new Error(`decoded ${o} bytes, the block declares ${length}`);
  return out;
}
