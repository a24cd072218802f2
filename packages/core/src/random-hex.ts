import { randomBytes, randomFillSync } from "node:crypto";

/**
 * Random bytes from the operating system's CSPRNG, hex-encoded: object keys, etags and temporary
 * names, which must never collide. They come from a pool refilled 4 KiB at a time: one
 * `randomBytes` call per key cost about 20 µs of a single-record produce's 380 µs in the app,
 * more than its bytes are worth.
 */
export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) return randomBytes(bytes).toString("hex");
  if (poolAt + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += bytes;
  return pool.toString("hex", poolAt - bytes, poolAt);
}

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
/** Bytes of the pool handed out; starts full, so the first call fills it. */
let poolAt = POOL_BYTES;
