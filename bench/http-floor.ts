/**
 * The floor under any single-request latency measured on this machine: a `node:http` server that
 * does nothing but answer, in its own process, and one request at a time from this process, twice:
 * with a kept-alive `node:http` client, as the SDK sends them, and with the same request's bytes
 * written on a plain socket and the answer read by its length, as a client with its own protocol
 * (NATS's) talks to its server. Whatever a server does per request comes on top; what is left
 * between two processes waking each other up is the machine's, and the difference between the two
 * is the HTTP client's.
 */
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { type Latency, latencyHistogram, latencyOf } from "./report.js";

/** Answers every request with a small JSON body, its length announced, once it has read the request's. */
const SERVER = `
const answer = '{"error_code":200,"offset":0}';
const server = require("node:http").createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": answer.length });
    res.end(answer);
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

/**
 * Requests sent before the cold window is timed, in every single-request workload here (the floor,
 * Sluice's single produces, NATS's publishes): the very first of a process's requests are slower
 * while its code is first compiled and its young generation grows.
 */
export const WARM_UP_REQUESTS = 500;

/**
 * Requests sent before the steady window is timed. One request at a time between two Node
 * processes, the p99 kept falling for about the first 8,000 requests and then held, and with V8's
 * optimizing compiler off (`--no-opt`, both processes) it was flat from the start: the early tail
 * is the compiler at work on two cores (docs/benchmarks.md, "The SDK on a plain socket, and the
 * local server's heap"). The steady window is what a producer that has been running sees; the
 * cold window is reported beside it.
 */
export const STEADY_AFTER_REQUESTS = 10_000;

/** The cold window's length at most: it stays among a process's early requests. */
export const COLD_WINDOW_REQUESTS = 2_000;

/** A single-request latency in its two windows (`measureWindows`). */
export interface Windows {
  /** The `count` requests (at most `COLD_WINDOW_REQUESTS`) after `WARM_UP_REQUESTS`. */
  cold: Latency;
  /** The `count` requests after `STEADY_AFTER_REQUESTS`. */
  steady: Latency;
}

/** `send` one at a time, each timed from its call to its settling, in the two windows. */
export async function measureWindows(
  count: number,
  send: () => Promise<void>,
  onProgress?: (sent: number, total: number) => void,
): Promise<Windows> {
  const cold = latencyHistogram();
  const steady = latencyHistogram();
  const coldEnd = WARM_UP_REQUESTS + Math.min(count, COLD_WINDOW_REQUESTS);
  const total = STEADY_AFTER_REQUESTS + count;
  for (let i = 0; i < total; i++) {
    const window =
      i >= STEADY_AFTER_REQUESTS ? steady : i >= WARM_UP_REQUESTS && i < coldEnd ? cold : undefined;
    const begin = performance.now();
    await send();
    window?.recordValue(Math.max(1, Math.round((performance.now() - begin) * 1000)));
    if (onProgress && i % 500 === 0) onProgress(i, total);
  }
  return { cold: latencyOf(cold), steady: latencyOf(steady) };
}

export interface Floor {
  /** A kept-alive `node:http` client. */
  http: Latency;
  /** The request's bytes on a plain socket, the answer read by its content-length. */
  socket: Latency;
}

export async function httpRoundTripFloor(requests: number, bodyBytes: number): Promise<Floor> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", (line) => resolve(Number(line)));
      child.once("exit", (code) => reject(new Error(`the floor's server exited with code ${code}`)));
    });
    const body = JSON.stringify({ value: { type: "STRING", data: "x".repeat(bodyBytes) } });
    const http = await measure(requests, nodeHttpSender(port, body));
    const socket = await measure(requests, await plainSocketSender(port, "/", body));
    return { http, socket };
  } finally {
    child.kill("SIGTERM");
  }
}

export interface Sender {
  send(): Promise<void>;
  close(): void;
}

/** `requests` sent one at a time in the steady window (`measureWindows`), then the sender closed. */
export async function measure(requests: number, sender: Sender): Promise<Latency> {
  try {
    return (await measureWindows(requests, () => sender.send())).steady;
  } finally {
    sender.close();
  }
}

function nodeHttpSender(port: number, body: string): Sender {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  return {
    send: () =>
      new Promise<void>((resolve, reject) => {
        const outgoing = request(
          { host: "127.0.0.1", port, method: "POST", path: "/", agent, headers },
          (incoming) => {
            incoming.resume();
            incoming.once("end", resolve);
          },
        );
        outgoing.once("error", reject);
        outgoing.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/**
 * One HTTP/1.1 POST of `body` to `path` at a time on one socket; an answer is complete at its
 * content-length, and anything but a 200 fails the send.
 */
export async function plainSocketSender(port: number, path: string, body: string): Promise<Sender> {
  const socket: Socket = connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const requestBytes = Buffer.from(
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let received: Buffer = Buffer.alloc(0);
  let waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  socket.on("data", (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const headEnd = received.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const length = /\r\ncontent-length: *(\d+)/i.exec(received.subarray(0, headEnd).toString("latin1"));
    if (!length) {
      waiting?.reject(new Error("the server answered without a content-length"));
      return;
    }
    const end = headEnd + 4 + Number(length[1]);
    if (received.length < end) return;
    const answer = received.subarray(0, end);
    received = received.subarray(end);
    const done = waiting;
    waiting = undefined;
    if (answer.subarray(0, 12).toString("latin1") === "HTTP/1.1 200") done?.resolve();
    else done?.reject(new Error(`answered ${answer.toString("utf8", 0, Math.min(end, 400))}`));
  });
  socket.on("error", (error) => waiting?.reject(error));
  return {
    send: () =>
      new Promise<void>((resolve, reject) => {
        waiting = { resolve, reject };
        socket.write(requestBytes);
      }),
    close: () => socket.destroy(),
  };
}
