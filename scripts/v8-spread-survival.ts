/**
 * Which ways of building an object leave it alive through a young-generation collection once it
 * is garbage, on the Node.js running this. The produce path builds its objects field by field
 * because of what this prints (docs/benchmarks.md, "Object spreads on the produce path").
 *
 *   node --expose-gc --import tsx scripts/v8-spread-survival.ts
 *
 * For each way: two full collections, then 4,000 objects built and dropped at once, then one
 * young collection; what is still in the young generation afterwards, per object built.
 */
import { getHeapSpaceStatistics } from "node:v8";

type Gc = (options?: { type: "major" | "minor" }) => void;
const gc = (globalThis as { gc?: Gc }).gc;
if (!gc) {
  process.stderr.write("run with node --expose-gc --import tsx scripts/v8-spread-survival.ts\n");
  process.exit(2);
}

const OBJECTS = 4_000;

function source(i: number) {
  return { partition: 0, recordCount: 1, position: i, length: 170, firstTimestamp: i, maxTimestamp: i };
}

let sink: unknown;
const ways: [string, (i: number) => unknown][] = [
  ["{ ...source, objectKey } (spread, then a new property)", (i) => ({ ...source(i), objectKey: "k" })],
  [
    "{ ...source } then copy.objectKey = … (spread, extended later)",
    (i) => {
      const copy: Record<string, unknown> = { ...source(i) };
      copy.objectKey = "k";
      return copy;
    },
  ],
  ["{ ...source } (spread alone)", (i) => ({ ...source(i) })],
  ["{ ...source, length } (spread, a property it has)", (i) => ({ ...source(i), length: 3 })],
  ["{ objectKey, ...source } (the new property first)", (i) => ({ objectKey: "k", ...source(i) })],
  ["Object.assign({}, source, { objectKey })", (i) => Object.assign({}, source(i), { objectKey: "k" })],
  [
    "field by field",
    (i) => {
      const s = source(i);
      return {
        objectKey: "k",
        partition: s.partition,
        recordCount: s.recordCount,
        position: s.position,
        length: s.length,
        firstTimestamp: s.firstTimestamp,
        maxTimestamp: s.maxTimestamp,
      };
    },
  ],
];

const youngUsed = () =>
  getHeapSpaceStatistics().find((space) => space.space_name === "new_space")!.space_used_size;

process.stdout.write(
  `Node ${process.version}, V8 ${process.versions.v8}: bytes left in the young generation per object built\n`,
);
for (const [name, build] of ways) {
  for (let i = 0; i < OBJECTS; i++) sink = build(i); // warm up: the code optimized as it will run
  gc();
  gc();
  const before = youngUsed();
  for (let i = 0; i < OBJECTS; i++) sink = build(i);
  sink = undefined;
  gc({ type: "minor" });
  const perObject = Math.max(0, youngUsed() - before) / OBJECTS;
  process.stdout.write(`${perObject.toFixed(1).padStart(8)}  ${name}\n`);
}
void sink;
