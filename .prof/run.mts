import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Engine } from "@sluice/engine";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { startServer } from "@sluice/server";

const N = Number(process.env.N ?? 200000);
const dir = await mkdtemp("/tmp/prof/data-");
{
  const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite"), durability: "buffered" });
  const engine = new Engine({ objects: new FilesystemObjectStore({ root: join(dir, "objects"), durability: "buffered" }), metadata });
  await engine.createTopic({ name: "src", partitions: 16 });
  await engine.createTopic({ name: "out", partitions: 16 });
  const enc = new TextEncoder();
  for (let start = 0; start < N; start += 1000) {
    await engine.append({ topic: "src", records: Array.from({ length: 1000 }, () => ({ key: null, value: enc.encode("x".repeat(100)), partition: (start / 1000) % 16 })) });
  }
  metadata.close();
}
const config = join(dir, "c.json");
await writeFile(config, JSON.stringify({ processors: [{ name: "pass", topics: ["src"], handler: { type: "module", module: "/work/wt/processors/bench/fixtures/pass-through.ts" }, output_topics: ["out"], starting_position: "EARLIEST", batch_size: 10000, batch_max_bytes: 4194304 }] }));
const t0 = performance.now();
const server = await startServer({ dataDir: dir, port: 0, durability: "buffered", processorsFile: config, logProcessors: (l) => console.log(l) });
const t1 = performance.now();
for (;;) {
  let total = 0;
  for (let p = 0; p < 16; p++) total += (await server.engine.partitionOffsets("out", p)).highWatermark;
  if (total >= N) break;
  await new Promise((r) => setTimeout(r, 20));
}
const t2 = performance.now();
console.log(`start ${Math.round(t1 - t0)} ms, drain ${Math.round(t2 - t1)} ms, ${Math.round(N / ((t2 - t1) / 1000))} records/s`);
await server.close();
