/**
 * MurmurHash2 exactly as Kafka's Java client computes it (`Utils.murmur2`): 32-bit, seed
 * 0x9747b28c, little-endian 4-byte blocks, Java `int` overflow semantics. Keyed records must land
 * on the same partition as a Java producer would put them, so this has to be bit-exact;
 * `Math.imul` gives the wrapping 32-bit multiply Java's `int` arithmetic has.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's murmur2 of `data`, as a signed 32-bit integer (what Java's method returns). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const blocksEnd = length & ~3;
  for (let i = 0; i < blocksEnd; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The 1–3 trailing bytes; Java uses a fall-through switch, spelled out here.
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= data[blocksEnd + 2]! << 16;
    if (tail >= 2) h ^= data[blocksEnd + 1]! << 8;
    h ^= data[blocksEnd]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}
