import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { SimulatedClock } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { createApp } from "./app.js";

const CLUSTER = "c";
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
const body = async (response: Response | Promise<Response>): Promise<Json> => (await response).json();
const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

/** An app on the simulated clock, so the window and the rates are exact. */
async function setup() {
  const clock = new SimulatedClock();
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata, clock });
  const app = createApp({ engine, metadata, clock, clusterId: CLUSTER, logger: { error: () => undefined } });
  const topics = `/v3/clusters/${CLUSTER}/topics`;
  expect((await app.request(topics, json({ topic_name: "rated", partitions_count: 2 }))).status).toBe(201);
  return { clock, app, topics };
}

describe("activity in the topic and partition resources", () => {
  it("reports records and bytes in and out per second over the window, per topic and per partition, and errors", async () => {
    const { clock, app, topics } = await setup();
    await clock.advance(4_000);
    const value = (data: string) => ({ type: "STRING", data });
    // 3 records, 30 record bytes, to partition 0; 1 record of 10 bytes to partition 1.
    const stream = [0, 0, 0, 1].map((partition) =>
      JSON.stringify({ partition_id: partition, value: value("0123456789") }),
    );
    expect((await app.request(`${topics}/rated/records`, json(stream.join("")))).status).toBe(200);
    const read = await app.request(`${topics}/rated/partitions/0/records?offset=1`);
    expect(read.status).toBe(200);
    expect((await body(read)).records).toHaveLength(2);
    expect((await app.request(`${topics}/rated/partitions/0/records?offset=50`)).status).toBe(416);
    expect(
      (await app.request(`${topics}/rated/records`, json({ partition_id: 7, value: value("x") }))).status,
    ).toBe(404);
    await clock.advance(1_000);

    // The tracker started with the engine, 5 s ago: the window covers 5 s.
    const topic = await body(app.request(`${topics}/rated`));
    expect(topic.activity).toEqual({
      window_seconds: 5,
      records_in_per_second: 0.8,
      bytes_in_per_second: 8,
      records_out_per_second: 0.4,
      bytes_out_per_second: 4,
      errors: 2,
      errors_per_second: 0.4,
      produce_latency_p99_ms: expect.any(Number),
      fetch_latency_p99_ms: expect.any(Number),
    });
    const partitions = await body(app.request(`${topics}/rated/partitions`));
    expect(partitions.data.map((partition: { activity: unknown }) => partition.activity)).toEqual([
      {
        window_seconds: 5,
        records_in_per_second: 0.6,
        bytes_in_per_second: 6,
        records_out_per_second: 0.4,
        bytes_out_per_second: 4,
      },
      {
        window_seconds: 5,
        records_in_per_second: 0.2,
        bytes_in_per_second: 2,
        records_out_per_second: 0,
        bytes_out_per_second: 0,
      },
    ]);
    const one = await body(app.request(`${topics}/rated/partitions/1`));
    expect(one.activity.records_in_per_second).toBe(0.2);
    const listed = await body(app.request(topics));
    expect(listed.data[0].activity.records_in_per_second).toBe(0.8);

    // Ten seconds later the window holds nothing. It covers its ten one-second slots, the current
    // one as far as it has gone: 9 s on a whole second.
    await clock.advance(10_000);
    const quiet = await body(app.request(`${topics}/rated`));
    expect(quiet.activity).toMatchObject({
      window_seconds: 9,
      records_in_per_second: 0,
      errors: 0,
      produce_latency_p99_ms: null,
      fetch_latency_p99_ms: null,
    });
  });
});
