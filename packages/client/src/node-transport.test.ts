import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SluiceClient } from "./client.js";
import { SluiceConnectionError, SluiceHttpError } from "./errors.js";
import { nodeRequestBytes } from "./node-transport.js";

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A GET over the transport, as the client's binary reads send it. */
const nodeGetBytes = (baseUrl: string) => {
  const send = nodeRequestBytes(baseUrl);
  return (
    send &&
    ((url: URL, headers: Record<string, string>, signal?: AbortSignal) =>
      send("GET", url, headers, undefined, signal))
  );
};

const pattern = (length: number) => Uint8Array.from({ length }, (_, n) => (n * 7 + 3) & 0xff);

describe("the Node transport of binary reads", () => {
  it("answers the whole body, its status and headers, with or without an announced length", async () => {
    const body = pattern(300_000);
    const url = await serve((request, response) => {
      const chunked = request.url === "/chunked";
      response.writeHead(200, {
        "x-seen-accept": String(request.headers.accept),
        ...(chunked ? {} : { "content-length": body.byteLength }),
      });
      // Several writes, so the body arrives in several chunks.
      for (let at = 0; at < body.byteLength; at += 70_000) response.write(body.subarray(at, at + 70_000));
      response.end();
    });
    const get = nodeGetBytes(url)!;
    for (const path of ["/sized", "/chunked"]) {
      const answer = await get(new URL(`${url}${path}`), { accept: "application/x-test" });
      expect(answer.status).toBe(200);
      expect(answer.header("X-Seen-Accept")).toBe("application/x-test");
      expect(answer.header("absent")).toBeUndefined();
      expect(Buffer.from(answer.bytes).equals(Buffer.from(body)), path).toBe(true);
    }
  });

  it("joins a body longer than its announced length rather than dropping bytes", async () => {
    // A server may announce nothing reliable; what arrives is what is answered.
    const url = await serve((request, response) => {
      request.socket.write("HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd");
      request.socket.end();
      response.destroy();
    });
    const answer = await nodeGetBytes(url)!(new URL(url), {});
    expect(new TextDecoder().decode(answer.bytes)).toBe("abcd");
  });

  it("fails with the signal's reason when aborted while waiting", async () => {
    const url = await serve(() => {
      // Never answers: a long poll still waiting.
    });
    const controller = new AbortController();
    const pending = nodeGetBytes(url)!(new URL(url), {}, controller.signal);
    const reason = new Error("revoked");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("sends a GET again once, on a fresh socket, when a kept-alive socket is dropped before an answer", async () => {
    // What a server closing an idle connection looks like to a client that just reused it: the
    // request is sent and the socket is reset without an answer.
    const answered = new Set<unknown>();
    let dropped = 0;
    const url = await serve((request, response) => {
      if (answered.has(request.socket) && dropped === 0) {
        dropped++;
        request.socket.destroy();
        return;
      }
      answered.add(request.socket);
      response.end("ok");
    });
    const get = nodeGetBytes(url)!;
    expect(new TextDecoder().decode((await get(new URL(url), {})).bytes)).toBe("ok");
    expect(new TextDecoder().decode((await get(new URL(url), {})).bytes)).toBe("ok");
    expect(dropped).toBe(1);
    expect(answered.size).toBe(2); // the second answer came on a new socket
  });

  it("fails the read when a socket it just opened is dropped: nothing stale to retry", async () => {
    const url = await serve((request) => {
      request.socket.destroy();
    });
    await expect(nodeGetBytes(url)!(new URL(url), {})).rejects.toMatchObject({ code: "ECONNRESET" });
  });
});

describe("the Node transport of other requests", () => {
  it("sends the method, headers and a string or byte body with its length, and answers the reply", async () => {
    const seen: { method: string; length: string | undefined; type: string | undefined; body: string }[] = [];
    const url = await serve((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        seen.push({
          method: request.method!,
          length: request.headers["content-length"],
          type: request.headers["content-type"],
          body: Buffer.concat(chunks).toString(),
        });
        response.end(`{"echo":${seen.length}}`);
      });
    });
    const send = nodeRequestBytes(url)!;
    const text = await send("POST", new URL(url), { "content-type": "application/json" }, '{"a":"é"}');
    expect(new TextDecoder().decode(text.bytes)).toBe('{"echo":1}');
    await send("PUT", new URL(url), {}, new TextEncoder().encode("bytes"));
    await send("DELETE", new URL(url), {}, undefined);
    expect(seen).toEqual([
      { method: "POST", length: "10", type: "application/json", body: '{"a":"é"}' },
      { method: "PUT", length: "5", type: undefined, body: "bytes" },
      { method: "DELETE", length: undefined, type: undefined, body: "" },
    ]);
  });

  it("does not send a POST again when its kept-alive socket is dropped: it may have been handled", async () => {
    const handled: string[] = [];
    let first = true;
    const url = await serve((request, response) => {
      request.resume();
      request.on("end", () => {
        handled.push(request.method!);
        if (!first) {
          request.socket.destroy();
          return;
        }
        first = false;
        response.end("ok");
      });
    });
    const send = nodeRequestBytes(url)!;
    await send("POST", new URL(url), {}, "one");
    await expect(send("POST", new URL(url), {}, "two")).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(handled).toEqual(["POST", "POST"]);
  });

  it("carries SluiceClient's JSON requests, and their errors, without fetch", async () => {
    const url = await serve((request, response) => {
      request.resume();
      request.on("end", () => {
        if (request.url?.endsWith("/configs/retention.ms")) {
          response.writeHead(404, { "content-type": "application/json" });
          response.end(JSON.stringify({ error_code: 40403, message: "topic t does not exist" }));
          return;
        }
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ data: [{ cluster_id: "c" }] }));
      });
    });
    // The global fetch fails every call meanwhile: the answers show none was made.
    const realFetch = globalThis.fetch;
    globalThis.fetch = () => Promise.reject(new Error("fetch was called"));
    try {
      const client = new SluiceClient({ url });
      expect(await client.clusterId()).toBe("c");
      const error = await client.getTopicConfig("t", "retention.ms").catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SluiceHttpError);
      expect(error).toMatchObject({ status: 404, errorCode: 40403, message: "topic t does not exist" });
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});

describe("SluiceClient's binary reads under Node", () => {
  it("turn an error answer into SluiceHttpError with the server's message and code", async () => {
    const url = await serve((_request, response) => {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ error_code: 40403, message: "partition 9 does not exist", code: "not_found" }),
      );
    });
    const client = new SluiceClient({ url, clusterId: "c" });
    const error = await client.fetchPartitionBatches("t", 9).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SluiceHttpError);
    expect(error).toMatchObject({ status: 404, errorCode: 40403, message: "partition 9 does not exist" });
  });

  it("turn a refused connection into SluiceConnectionError", async () => {
    const url = await serve(() => undefined);
    server!.close();
    server = undefined;
    const client = new SluiceClient({ url, clusterId: "c" });
    await expect(client.fetchPartitionBatches("t", 0)).rejects.toBeInstanceOf(SluiceConnectionError);
  });
});
