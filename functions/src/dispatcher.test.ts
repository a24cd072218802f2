import { Engine } from "@sluice/engine";
import { defineProcessor } from "@sluice/processor-sdk";
import { Handlers, ProcessorAdmin, ProcessorRuntime, processorMetrics } from "@sluice/processors";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { EmfMetrics } from "@sluice/telemetry/emf";
import { beforeEach, describe, expect, it } from "vitest";
import { createDispatcher, type DispatcherEvent } from "./dispatcher.js";

const encoder = new TextEncoder();
let engine: Engine;
let metadata: MemoryMetadataStore;
let objects: MemoryObjectStore;
let lines: string[];
let dispatch: ReturnType<typeof createDispatcher>;
const context = { getRemainingTimeInMillis: () => 60_000 };

beforeEach(async () => {
  metadata = new MemoryMetadataStore();
  objects = new MemoryObjectStore();
  engine = new Engine({ objects, metadata });
  await engine.createTopic({ name: "orders", partitions: 2 });
  await engine.createTopic({ name: "upper", partitions: 1 });
  await new ProcessorAdmin({ engine, metadata }).create(
    {
      name: "upper",
      topics: ["orders"],
      handler: { type: "module", module: "upper" },
      output_topics: ["upper"],
      starting_position: "EARLIEST",
    },
    { allowModuleHandlers: true },
  );
  lines = [];
  const metrics = new EmfMetrics({ service: "sluice-api", write: (line) => lines.push(line) });
  // The dispatcher's own engine: commits made by the "HTTP function" below reach no notifier here.
  const runtime = new ProcessorRuntime({
    engine: new Engine({ objects, metadata }),
    metadata,
    handlers: new Handlers({
      modules: async () =>
        defineProcessor((batch) => ({
          outputs: batch.records.map((record) => ({
            value: new TextDecoder().decode(record.value!).toUpperCase(),
          })),
        })),
    }),
    events: processorMetrics(metrics),
  });
  dispatch = createDispatcher(runtime, { metrics });
});

async function produce(value: string, partition: number): Promise<void> {
  await engine.append({ topic: "orders", records: [{ key: null, value: encoder.encode(value), partition }] });
}

async function outputs(): Promise<string[]> {
  const page = await engine.fetch({ topic: "upper", partition: 0, offset: 0 });
  return page.records.map((record) => new TextDecoder().decode(record.value!));
}

function streamRecord(pk: string, sk: string, eventName = "INSERT") {
  return { eventName, dynamodb: { Keys: { pk: { S: pk }, sk: { S: sk } } } };
}

describe("the dispatcher", () => {
  it("runs the processors of the partitions its stream records name, once per partition", async () => {
    await produce("a", 1);
    await produce("b", 1);
    const topicId = (await engine.describeTopic("orders")).topicId;
    const event: DispatcherEvent = {
      Records: [
        streamRecord(`partition#${topicId}#1`, "index#00000000000000000000"),
        streamRecord(`partition#${topicId}#1`, "index#00000000000000000001"),
        // Not index entries: a head, another table's item.
        streamRecord(`partition#${topicId}#0`, "head"),
        streamRecord("processors", "upper"),
      ],
    };
    const summary = await dispatch(event, context);
    expect(summary).toEqual({ woken: [{ topicId, partition: 1 }], swept: false });
    expect(await outputs()).toEqual(["A", "B"]);
    const documents = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(
      documents.find((document) => document.processor === "upper" && "ProcessorRecordsProcessed" in document),
    ).toMatchObject({
      service: "sluice-api",
      processor: "upper",
      ProcessorRecordsProcessed: 2,
    });
  });

  it("sweeps every partition with lag on a schedule, and wakes one by name", async () => {
    await produce("a", 0);
    expect(await dispatch({ source: "aws.events", "detail-type": "Scheduled Event" }, context)).toMatchObject(
      { swept: true },
    );
    expect(await outputs()).toEqual(["A"]);
    const lag = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => "ProcessorLagRecords" in line);
    // The sweep saw the record before the runner it woke had handled it.
    expect(lag).toMatchObject({ service: "sluice-api", processor: "upper", ProcessorLagRecords: 1 });
    await produce("b", 1);
    expect(await dispatch({ sluice: "wake", topic: "orders", partition: 1 }, context)).toEqual({
      woken: [{ topic: "orders", partition: 1 }],
      swept: false,
    });
    expect(await outputs()).toEqual(["A", "B"]);
  });

  it("runs a shared processor from a stream record and from the sweep, through its share group", async () => {
    await engine.createTopic({ name: "scans", partitions: 1 });
    await engine.createTopic({ name: "scans-upper", partitions: 1 });
    await new ProcessorAdmin({ engine, metadata }).create(
      {
        name: "upper-shared",
        topics: ["scans"],
        handler: { type: "module", module: "upper" },
        output_topics: ["scans-upper"],
        starting_position: "EARLIEST",
        ordering: "SHARED",
        parallelism: 3,
        batch_size: 1,
      },
      { allowModuleHandlers: true },
    );
    const scans = async () =>
      (await engine.fetch({ topic: "scans-upper", partition: 0, offset: 0 })).records
        .map((record) => new TextDecoder().decode(record.value!))
        .sort();
    await engine.append({
      topic: "scans",
      records: ["x", "y", "z"].map((value) => ({ key: null, value: encoder.encode(value), partition: 0 })),
    });
    const topicId = (await engine.describeTopic("scans")).topicId;
    await dispatch(
      { Records: [streamRecord(`partition#${topicId}#0`, "index#00000000000000000000")] },
      context,
    );
    expect(await scans()).toEqual(["X", "Y", "Z"]);
    await engine.append({
      topic: "scans",
      records: [{ key: null, value: encoder.encode("w"), partition: 0 }],
    });
    await dispatch({ source: "aws.events", "detail-type": "Scheduled Event" }, context);
    expect(await scans()).toEqual(["W", "X", "Y", "Z"]);
  });
});
