/**
 * A separate process for packed.test.ts, killed while it writes: node --import tsx
 * packed-crash-worker.ts <root>. It opens a packed store in "fsync" durability and, four at a
 * time until killed, create-only puts `k-<n>` (bytes that `expectedBody` rebuilds from the key and
 * size) and deletes some of the keys it wrote, printing "acked <key> <size>" and "deleted <key>"
 * as each is acknowledged, and "deleting <key>" as a delete is sent.
 */
import { PackedObjectStore } from "./packed.js";

/** The bytes put under `key`: its name repeated to `size` bytes. */
export function expectedBody(key: string, size: number): Uint8Array {
  const unit = new TextEncoder().encode(`${key};`);
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = unit[i % unit.length]!;
  return body;
}

async function main(): Promise<void> {
  const [root] = process.argv.slice(2);
  if (!root) throw new Error("usage: packed-crash-worker <root>");
  const store = new PackedObjectStore({
    root,
    durability: "fsync",
    inlineBytesMax: 256,
    segmentBytesMax: 256 * 1024,
  });
  let next = 0;
  const acked: string[] = [];
  const writer = async () => {
    for (;;) {
      const n = next++;
      if (n % 5 === 4 && acked.length > 0) {
        // Half of them the newest key, whose bytes are in the open segment.
        const key = n % 2 === 0 ? acked.pop()! : acked.splice(n % acked.length, 1)[0]!;
        process.stdout.write(`deleting ${key}\n`);
        await store.delete(key);
        process.stdout.write(`deleted ${key}\n`);
        continue;
      }
      const key = `k-${n}`;
      const size = 100 + ((n * 7919) % 20_000);
      await store.put(key, expectedBody(key, size), { condition: { ifNoneMatch: "*" } });
      acked.push(key);
      process.stdout.write(`acked ${key} ${size}\n`);
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
}

if (process.argv[1]?.endsWith("packed-crash-worker.ts")) await main();
