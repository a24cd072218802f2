/**
 * The floor under any single-request latency measured on this machine: a `node:http` server that
 * does nothing but answer, in its own process, and one request at a time from this process with a
 * kept-alive `node:http` client, as the SDK sends them. Whatever a server does per request comes
 * on top; what is left between two processes waking each other up is the machine's.
 */
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";
import { type Latency, latencyHistogram, latencyOf } from "./report.js";

/** Answers every request with a small JSON body once it has read the request's. */
const SERVER = `
const server = require("node:http").createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"error_code":200,"offset":0}');
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

export async function httpRoundTripFloor(requests: number, bodyBytes: number): Promise<Latency> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", (line) => resolve(Number(line)));
      child.once("exit", (code) => reject(new Error(`the floor's server exited with code ${code}`)));
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify({ value: { type: "STRING", data: "x".repeat(bodyBytes) } });
    const latency = latencyHistogram();
    const send = () =>
      new Promise<void>((resolve, reject) => {
        const outgoing = request(
          {
            host: "127.0.0.1",
            port,
            method: "POST",
            path: "/",
            agent,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
          },
          (incoming) => {
            incoming.resume();
            incoming.once("end", resolve);
          },
        );
        outgoing.once("error", reject);
        outgoing.end(body);
      });
    for (let i = 0; i < 200; i++) await send(); // warm-up, as the other workloads have
    for (let i = 0; i < requests; i++) {
      const begin = performance.now();
      await send();
      latency.recordValue(Math.max(1, Math.round((performance.now() - begin) * 1000)));
    }
    agent.destroy();
    return latencyOf(latency);
  } finally {
    child.kill("SIGTERM");
  }
}
