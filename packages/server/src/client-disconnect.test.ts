import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "./server.js";

let dataDir: string;
let server: RunningServer;
const errors: string[] = [];
const debug: string[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-disconnect-"));
  errors.length = 0;
  debug.length = 0;
  server = await startServer({
    dataDir,
    port: 0,
    durability: "buffered",
    logger: {
      error: (message) => {
        errors.push(message);
        for (const wake of waiters.splice(0)) wake();
      },
      debug: (message, details) => {
        debug.push(`${message} ${JSON.stringify(details)}`);
        for (const wake of waiters.splice(0)) wake();
      },
    },
  });
});

afterEach(async () => {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Resolves once `lines` holds `count` entries (each logger call checks). */
const waiters: (() => void)[] = [];
function untilLogged(lines: string[], count: number, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${what} after 10 s; errors: ${errors.join(" | ")}`)),
      10_000,
    );
    const check = () => {
      if (lines.length >= count) {
        clearTimeout(timer);
        resolve();
      } else waiters.push(check);
    };
    check();
  });
}

/** Sends the headers and part of a body, and closes the socket once the server has the request. */
async function abortedUpload(path: string): Promise<void> {
  const socket = connect(server.port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const arrived = new Promise<void>((resolve) => server.httpServer.once("request", () => resolve()));
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"value":`,
  );
  await arrived;
  socket.destroy();
}

describe("a client that disconnects mid-body", () => {
  it("is counted and logged at debug level, not as an internal error; the server stays up", async () => {
    const cluster = `/v3/clusters/${server.clusterId}`;
    const created = await fetch(`${server.url}${cluster}/topics`, {
      method: "POST",
      body: JSON.stringify({ topic_name: "t" }),
    });
    expect(created.status).toBe(201);
    const paths = [`${cluster}/topics/t/records`, `${cluster}/topics/t/records:batch`, `${cluster}/topics`];
    for (const [index, path] of paths.entries()) {
      await abortedUpload(path);
      await untilLogged(debug, index + 1, `debug line for ${path}`);
    }
    expect(errors).toEqual([]);
    expect(server.clientDisconnects).toBe(3);
    expect(debug).toHaveLength(3);
    expect(debug[0]).toMatch(/client disconnected before the request body ended .*"path":".*\/records"/);
    const after = await fetch(`${server.url}${cluster}/topics/t`);
    expect(after.status).toBe(200);
  });
});
