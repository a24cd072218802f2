/**
 * What every transport of requests answered whole must do (node-transport.ts, socket-transport.ts),
 * written once and bound to each in its own test file: bodies in every framing, methods, headers
 * and bodies sent, aborts, and which requests go again when a kept-alive connection is dropped.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { RequestBytes } from "./node-transport.js";

/** A `node:http` server on loopback for one test, closed after it. */
export function testServer() {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });
  return {
    async serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
      server = createServer(handler);
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    /** Stops listening, so the next connection to its URL is refused. */
    async close(): Promise<void> {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
      server = undefined;
    },
  };
}

export const pattern = (length: number) => Uint8Array.from({ length }, (_, n) => (n * 7 + 3) & 0xff);

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

export function describeTransport(name: string, make: (baseUrl: string) => RequestBytes | undefined): void {
  describe(`${name}: reads`, () => {
    const { serve } = testServer();
    const transport = (url: string) => {
      const send = make(url);
      if (!send) throw new Error(`${name} is not available for ${url}`);
      return send;
    };
    const get = (url: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
      transport(url)("GET", new URL(url), headers, undefined, signal);

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
      const send = transport(url);
      for (const path of ["/sized", "/chunked"]) {
        const answer = await send(
          "GET",
          new URL(`${url}${path}`),
          { accept: "application/x-test" },
          undefined,
        );
        expect(answer.status).toBe(200);
        expect(answer.header("X-Seen-Accept")).toBe("application/x-test");
        expect(answer.header("absent")).toBeUndefined();
        expect(Buffer.from(answer.bytes).equals(Buffer.from(body)), path).toBe(true);
      }
    });

    it("answers a body that runs to the connection's end, and one whose length the server wrote itself", async () => {
      const url = await serve((request, response) => {
        const sized = request.url === "/sized";
        request.socket.write(
          sized
            ? "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd"
            : "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end",
        );
        request.socket.end();
        response.destroy();
      });
      expect(text((await get(`${url}/sized`)).bytes)).toBe("abcd");
      expect(text((await get(`${url}/close`)).bytes)).toBe("to the end");
    });

    it("fails with the signal's reason when aborted while waiting, or before sending", async () => {
      let requests = 0;
      let arrived: () => void = () => undefined;
      const arrival = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      const url = await serve(() => {
        requests++; // never answers: a long poll still waiting
        arrived();
      });
      const controller = new AbortController();
      const pending = get(url, {}, controller.signal);
      const reason = new Error("revoked");
      await arrival;
      controller.abort(reason);
      await expect(pending).rejects.toBe(reason);
      const early = new AbortController();
      early.abort(reason);
      await expect(get(url, {}, early.signal)).rejects.toBe(reason);
      expect(requests).toBe(1); // the aborted one was never sent
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
      const send = transport(url);
      expect(text((await send("GET", new URL(url), {}, undefined)).bytes)).toBe("ok");
      expect(text((await send("GET", new URL(url), {}, undefined)).bytes)).toBe("ok");
      expect(dropped).toBe(1);
      expect(answered.size).toBe(2); // the second answer came on a new socket
    });

    it("fails the read when a socket it just opened is dropped: nothing stale to retry", async () => {
      let requests = 0;
      const url = await serve((request) => {
        requests++;
        request.socket.destroy();
      });
      await expect(get(url)).rejects.toMatchObject({ code: "ECONNRESET" });
      expect(requests).toBe(1);
    });
  });

  describe(`${name}: other requests`, () => {
    const { serve } = testServer();

    it("sends the method, headers and a string or byte body with its length, and answers the reply", async () => {
      const seen: { method: string; length: string | undefined; type: string | undefined; body: string }[] =
        [];
      const bodies: Buffer[] = [];
      const url = await serve((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          bodies.push(Buffer.concat(chunks));
          seen.push({
            method: request.method!,
            length: request.headers["content-length"],
            type: request.headers["content-type"],
            body: Buffer.concat(chunks).toString(),
          });
          response.end(`{"echo":${seen.length}}`);
        });
      });
      const send = make(url)!;
      const answer = await send("POST", new URL(url), { "content-type": "application/json" }, '{"a":"é"}');
      expect(text(answer.bytes)).toBe('{"echo":1}');
      await send("PUT", new URL(url), {}, new TextEncoder().encode("bytes"));
      await send("DELETE", new URL(url), {}, undefined);
      const large = pattern(200_000);
      await send("POST", new URL(url), {}, large);
      expect(seen.slice(0, 3)).toEqual([
        { method: "POST", length: "10", type: "application/json", body: '{"a":"é"}' },
        { method: "PUT", length: "5", type: undefined, body: "bytes" },
        { method: "DELETE", length: undefined, type: undefined, body: "" },
      ]);
      expect(seen[3]).toMatchObject({ method: "POST", length: "200000" });
      expect(bodies[3]!.equals(Buffer.from(large))).toBe(true);
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
      const send = make(url)!;
      await send("POST", new URL(url), {}, "one");
      await expect(send("POST", new URL(url), {}, "two")).rejects.toMatchObject({ code: "ECONNRESET" });
      expect(handled).toEqual(["POST", "POST"]);
    });
  });
}
