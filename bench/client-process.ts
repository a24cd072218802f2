/**
 * The peers benchmark's Node clients — Sluice's producers and single-request clients, the floor's,
 * NATS's npm client — each run in a Node process of its own (`measureInOwnProcess`), as Kafka's
 * tools and `nats bench` run in theirs.
 *
 * Why a process each: measured in the benchmark's own process, a client inherits the heap of
 * whatever ran there before. After a million records went through the SDK producer, the young
 * collections of the single produces that followed took 3–4 ms each instead of 0.2–0.9 ms, and
 * NATS's client, measured in the same process later, inherited the same heap
 * (docs/benchmarks.md, "Every latency client in its own process"). And a process that has just
 * produced a million records and stays alive keeps collecting its heap on this machine's two
 * cores while the next client is timed: with the producer's process alive, the SDK's
 * single-produce p99 was 0.65–0.78 ms, 0.52–0.54 with it gone (docs/benchmarks.md, "The SDK polls
 * for its answers"). So the producers run in processes of their own too, which end before the
 * next measurement starts, and the benchmark's own process stays small.
 *
 * Run as a script (`node --import tsx bench/client-process.ts KIND JSON`), it measures one kind
 * and writes its figures as one JSON line on stdout; progress goes to stderr.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type RecordMetadata, SluiceClient } from "@sluice/client";
import { recordCollections, Spans, type Timeline, threadIds } from "./anatomy-timeline.js";
import { apiFor, type BatchValueType, batchedProduce, concurrentSingles } from "./http.js";
import {
  type Floor,
  httpRoundTripFloor,
  measure,
  measureWindows,
  plainSocketSender,
  type Windows,
} from "./http-floor.js";
import { type Latency, progress, progressDone } from "./report.js";

/** What each kind measures, with what it needs, and what it answers. */
export interface ClientKinds {
  /** The SDK's producer (binary route), a callback per record: records acknowledged per second. */
  "sluice-binary-produce": {
    params: { url: string; records: number; valueBytes: number };
    result: { recordsPerS: number };
  };
  /** JSON requests of 1,000 records to `bench-batch`, four in flight (bench/http.ts); STRING values unless said. */
  "sluice-json-produce": {
    params: { url: string; requests: number; valueType?: BatchValueType };
    result: { recordsPerS: number };
  };
  /** The machine's floor: a `node:http` server that does nothing (bench/http-floor.ts). */
  floor: { params: { requests: number; bodyBytes: number }; result: Floor };
  /** Sluice's SDK: `produce` of one record, each awaited (answer polling as given, else its default). */
  "sluice-sdk": {
    params: { url: string; topic: string; requests: number; valueBytes: number; answerPollUs?: number };
    result: Windows;
  };
  /**
   * The SDK's single produce as `sluice-sdk`, one at a time, each request's start and answer and
   * the process's collections written to `out` on the shared clock (bench/anatomy-timeline.ts).
   */
  "sluice-sdk-timeline": {
    params: {
      url: string;
      topic: string;
      requests: number;
      valueBytes: number;
      out: string;
      answerPollUs?: number;
    };
    result: { requests: number };
  };
  /** The same request's bytes on a plain socket: the server's and the machine's share. */
  "sluice-socket": {
    params: { url: string; topic: string; requests: number; valueBytes: number };
    result: Latency;
  };
  /** NATS's npm client: a JetStream publish, each ack awaited. */
  nats: { params: { url: string; requests: number; payloadBytes: number }; result: Windows };
  /** Many small producers (bench/http.ts's concurrentSingles): `producers` connections, one request in flight each. */
  "sluice-concurrent-singles": {
    params: { url: string; serverPid: number; requests: number; producers: number };
    result: { requestsPerS: number; p50Ms: number; p99Ms: number; serverCpuUsPerRequest?: number };
  };
}
type Kind = keyof ClientKinds;

/** Measures `kind` in a child Node process of its own, and returns its figures. */
export async function measureInOwnProcess<K extends Kind>(
  kind: K,
  params: ClientKinds[K]["params"],
): Promise<ClientKinds[K]["result"]> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "client-process.ts"), kind, JSON.stringify(params)],
    { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    output += chunk;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  const last = output.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{"))
    throw new Error(`the ${kind} client failed (exit ${code}): ${output.slice(-500)}`);
  return JSON.parse(last) as ClientKinds[K]["result"];
}

async function measureKind(kind: Kind, params: Record<string, unknown>): Promise<unknown> {
  switch (kind) {
    case "sluice-binary-produce": {
      const { url, records, valueBytes } = params as ClientKinds["sluice-binary-produce"]["params"];
      return sluiceBinaryProduce(url, records, valueBytes);
    }
    case "sluice-json-produce": {
      const { url, requests, valueType } = params as ClientKinds["sluice-json-produce"]["params"];
      const { recordsPerS } = await batchedProduce(await apiFor(url), requests, 4, valueType);
      return { recordsPerS };
    }
    case "floor": {
      const { requests, bodyBytes } = params as ClientKinds["floor"]["params"];
      return httpRoundTripFloor(requests, bodyBytes);
    }
    case "sluice-sdk":
      return sluiceSingleProduce(params as ClientKinds["sluice-sdk"]["params"]);
    case "sluice-sdk-timeline":
      return sluiceSingleProduceTimeline(params as ClientKinds["sluice-sdk-timeline"]["params"]);
    case "sluice-socket":
      return sluiceSocketProduce(params as ClientKinds["sluice-socket"]["params"]);
    case "nats":
      return natsPublishLatency(params as ClientKinds["nats"]["params"]);
    case "sluice-concurrent-singles": {
      const { url, serverPid, requests, producers } =
        params as ClientKinds["sluice-concurrent-singles"]["params"];
      const measured = await concurrentSingles(await apiFor(url), serverPid, requests, producers);
      if (measured === undefined) throw new Error("no requests to measure");
      return {
        requestsPerS: measured.requestsPerS,
        p50Ms: measured.latency.getValueAtPercentile(50) / 1000,
        p99Ms: measured.latency.getValueAtPercentile(99) / 1000,
        ...(measured.serverCpuUsPerRequest === undefined
          ? {}
          : { serverCpuUsPerRequest: measured.serverCpuUsPerRequest }),
      };
    }
    default:
      throw new Error(`no client of kind ${String(kind)}`);
  }
}

/** The SDK's producer, as an application would use it: produce as fast as back-pressure allows. */
async function sluiceBinaryProduce(
  url: string,
  records: number,
  valueBytes: number,
): Promise<{ recordsPerS: number }> {
  const client = new SluiceClient({ url });
  const producer = client.producer({ lingerMs: 10, batchSizeBytes: 256 * 1024 });
  const value = new Uint8Array(valueBytes).fill(120);
  await producer.send({ topic: "peers-binary", value }); // the producer id and the topic's shape
  let acknowledged = 0;
  // A callback per record, as ProducerPerformance gives Kafka's producer.
  const onDelivery = (error: unknown, metadata: RecordMetadata | undefined) => {
    if (!metadata) throw error;
    acknowledged++;
  };
  const started = performance.now();
  let lastShown = started;
  for (let i = 0; i < records; i++) {
    await producer.produce({ topic: "peers-binary", value }, onDelivery);
    if ((i & 0x3fff) === 0 && performance.now() - lastShown > 250) {
      lastShown = performance.now();
      const rate = acknowledged / ((lastShown - started) / 1000);
      progress(
        `Sluice: batched produce, binary: ${acknowledged.toLocaleString("en-US")} acknowledged, ${Math.round(rate).toLocaleString("en-US")} records/s`,
      );
    }
  }
  await producer.flush();
  const seconds = (performance.now() - started) / 1000;
  if (acknowledged !== records) throw new Error(`binary produce: ${acknowledged} of ${records} acknowledged`);
  return { recordsPerS: records / seconds };
}

/** Single-record produce with the SDK, one at a time, each awaited: its acknowledgement latency. */
async function sluiceSingleProduce(params: ClientKinds["sluice-sdk"]["params"]): Promise<Windows> {
  const client = new SluiceClient({
    url: params.url,
    ...(params.answerPollUs === undefined ? {} : { answerPollUs: params.answerPollUs }),
  });
  const value = "x".repeat(params.valueBytes);
  const windows = await measureWindows(
    params.requests,
    async () => {
      await client.produce(params.topic, { value });
    },
    (sent, total) => progress(`single-record produce: ${sent}/${total}`),
  );
  progressDone();
  return windows;
}

/** `sluiceSingleProduce` with each request's times kept, for bench/anatomy.ts. */
async function sluiceSingleProduceTimeline(
  params: ClientKinds["sluice-sdk-timeline"]["params"],
): Promise<{ requests: number }> {
  const collections = recordCollections();
  const client = new SluiceClient({
    url: params.url,
    ...(params.answerPollUs === undefined ? {} : { answerPollUs: params.answerPollUs }),
  });
  const value = "x".repeat(params.valueBytes);
  const spans = new Spans();
  for (let i = 0; i < params.requests; i++) {
    const span = spans.start();
    await client.produce(params.topic, { value });
    spans.end(span);
    if (i % 1000 === 0) progress(`single-record produce, timed: ${i}/${params.requests}`);
  }
  progressDone();
  await new Promise((resolve) => setImmediate(resolve)); // the last collections' entries
  const timeline: Timeline = {
    requests: spans.toShared(),
    collections,
    pid: process.pid,
    threads: threadIds(),
  };
  writeFileSync(params.out, JSON.stringify(timeline));
  return { requests: params.requests };
}

/**
 * The same single-record produce with no HTTP client in the way: its request's bytes written on a
 * plain socket, as the floor's second figure is, so the server's and the machine's share of the
 * SDK's latency shows apart from the client's.
 */
async function sluiceSocketProduce(params: ClientKinds["sluice-socket"]["params"]): Promise<Latency> {
  const cluster = await new SluiceClient({ url: params.url }).clusterId();
  const body = JSON.stringify({ value: { type: "STRING", data: "x".repeat(params.valueBytes) } });
  const path = `/v3/clusters/${cluster}/topics/${params.topic}/records`;
  return measure(params.requests, await plainSocketSender(Number(new URL(params.url).port), path, body));
}

async function natsPublishLatency(params: ClientKinds["nats"]["params"]): Promise<Windows> {
  const { connect } = await import("nats");
  const connection = await connect({ servers: params.url });
  try {
    const manager = await connection.jetstreamManager();
    await manager.streams.add({ name: "peers-latency", subjects: ["peers.latency"] });
    const stream = connection.jetstream();
    const payload = new Uint8Array(params.payloadBytes).fill(120);
    return await measureWindows(
      params.requests,
      async () => {
        await stream.publish("peers.latency", payload);
      },
      (sent, total) => progress(`NATS: single publish latency: ${sent}/${total}`),
    );
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [kind, params] = process.argv.slice(2);
  const result = await measureKind(kind as Kind, JSON.parse(params ?? "{}") as Record<string, unknown>);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
