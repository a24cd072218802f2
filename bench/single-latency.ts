/**
 * The peers benchmark's single-request latencies, each measured by a client in a Node process of
 * its own (`measureInOwnProcess`), as Kafka's tools and `nats bench` run in theirs.
 *
 * Why a process each: measured in the benchmark's own process, a client inherits the heap of
 * whatever ran there before. After a million records went through the SDK producer, the young
 * collections of the single produces that followed took 3–4 ms each instead of 0.2–0.9 ms, and
 * NATS's client, measured in the same process later, inherited the same heap
 * (docs/benchmarks.md, "Every latency client in its own process"). A fresh process per
 * measurement gives every system's client the same start: Node's defaults and nothing else.
 *
 * Run as a script (`node --import tsx bench/single-latency.ts KIND JSON`), it measures one kind
 * and writes its figures as one JSON line on stdout; progress goes to stderr.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SluiceClient } from "@sluice/client";
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
export interface LatencyKinds {
  /** The machine's floor: a `node:http` server that does nothing (bench/http-floor.ts). */
  floor: { params: { requests: number; bodyBytes: number }; result: Floor };
  /** Sluice's SDK: `produce` of one record, each awaited (answer polling as given, else its default). */
  "sluice-sdk": {
    params: { url: string; topic: string; requests: number; valueBytes: number; answerPollUs?: number };
    result: Windows;
  };
  /** The same request's bytes on a plain socket: the server's and the machine's share. */
  "sluice-socket": {
    params: { url: string; topic: string; requests: number; valueBytes: number };
    result: Latency;
  };
  /** NATS's npm client: a JetStream publish, each ack awaited. */
  nats: { params: { url: string; requests: number; payloadBytes: number }; result: Windows };
}
type Kind = keyof LatencyKinds;

/** Measures `kind` in a child Node process of its own, and returns its figures. */
export async function measureInOwnProcess<K extends Kind>(
  kind: K,
  params: LatencyKinds[K]["params"],
): Promise<LatencyKinds[K]["result"]> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "single-latency.ts"), kind, JSON.stringify(params)],
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
    throw new Error(`the ${kind} latency client failed (exit ${code}): ${output.slice(-500)}`);
  return JSON.parse(last) as LatencyKinds[K]["result"];
}

async function measureKind(kind: Kind, params: Record<string, unknown>): Promise<unknown> {
  switch (kind) {
    case "floor": {
      const { requests, bodyBytes } = params as LatencyKinds["floor"]["params"];
      return httpRoundTripFloor(requests, bodyBytes);
    }
    case "sluice-sdk":
      return sluiceSingleProduce(params as LatencyKinds["sluice-sdk"]["params"]);
    case "sluice-socket":
      return sluiceSocketProduce(params as LatencyKinds["sluice-socket"]["params"]);
    case "nats":
      return natsPublishLatency(params as LatencyKinds["nats"]["params"]);
    default:
      throw new Error(`no latency client of kind ${String(kind)}`);
  }
}

/** Single-record produce with the SDK, one at a time, each awaited: its acknowledgement latency. */
async function sluiceSingleProduce(params: LatencyKinds["sluice-sdk"]["params"]): Promise<Windows> {
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

/**
 * The same single-record produce with no HTTP client in the way: its request's bytes written on a
 * plain socket, as the floor's second figure is, so the server's and the machine's share of the
 * SDK's latency shows apart from the client's.
 */
async function sluiceSocketProduce(params: LatencyKinds["sluice-socket"]["params"]): Promise<Latency> {
  const cluster = await new SluiceClient({ url: params.url }).clusterId();
  const body = JSON.stringify({ value: { type: "STRING", data: "x".repeat(params.valueBytes) } });
  const path = `/v3/clusters/${cluster}/topics/${params.topic}/records`;
  return measure(params.requests, await plainSocketSender(Number(new URL(params.url).port), path, body));
}

async function natsPublishLatency(params: LatencyKinds["nats"]["params"]): Promise<Windows> {
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
