import { Readable } from "node:stream";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { readBodyBytes, readBodyChunks } from "./body.js";
import { ClientDisconnectedError } from "./http-errors.js";
import { nodeIncoming } from "./node-bindings.js";

/** A request whose body arrives in the given chunks, counting how many were pulled. */
function streamedRequest(chunks: Uint8Array[], headers: Record<string, string> = {}) {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const next = chunks[pulled++];
        if (next) controller.enqueue(next);
        else controller.close();
      },
    },
    // Pull only when read, so `pulled` counts what the reader asked for.
    { highWaterMark: 0 },
  );
  const request = new Request("http://test/", {
    method: "POST",
    body,
    headers,
    duplex: "half",
  } as RequestInit);
  return { request, pulled: () => pulled };
}

async function statusOf(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HTTPException) return { status: error.status, message: error.message };
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("readBodyChunks", () => {
  it("refuses a declared Content-Length over the limit before reading anything", async () => {
    const { request, pulled } = streamedRequest([new Uint8Array(10)], { "content-length": "11" });
    expect(await statusOf(readBodyBytes(request, 10))).toEqual({
      status: 413,
      message: "request body is 11 bytes, over the limit of 10 bytes",
    });
    expect(pulled()).toBe(0);
  });

  it("counts the bytes of a body without a length and stops at the limit", async () => {
    const chunk = new Uint8Array(4 * 1024 * 1024);
    const { request, pulled } = streamedRequest([chunk, chunk, chunk, chunk]);
    expect(await statusOf(readBodyBytes(request, 6 * 1024 * 1024))).toEqual({
      status: 413,
      message: "request body is over the limit of 6291456 bytes (6 MiB)",
    });
    expect(pulled()).toBe(2);
  });

  it("does not trust a Content-Length that understates the body", async () => {
    const { request } = streamedRequest([new Uint8Array(8), new Uint8Array(8)], { "content-length": "8" });
    expect((await statusOf(readBodyBytes(request, 12))).status).toBe(413);
  });

  it("yields every chunk of a body within the limit", async () => {
    const { request } = streamedRequest([Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5)]);
    const chunks: number[][] = [];
    for await (const chunk of readBodyChunks(request, 5)) chunks.push([...chunk]);
    expect(chunks).toEqual([[1, 2], [3], [4, 5]]);
  });

  it("reads an absent body as empty", async () => {
    expect(await readBodyBytes(new Request("http://test/", { method: "POST" }), 10)).toEqual(
      new Uint8Array(0),
    );
  });
});

describe("readBodyChunks from Node's stream (the local server)", () => {
  /** A Node stream that hands out the given chunks when read, counting them. */
  function nodeBody(chunks: Uint8Array[]) {
    let pulled = 0;
    const stream = new Readable({
      highWaterMark: 0,
      read() {
        const next = chunks[pulled++];
        this.push(next ? Buffer.from(next) : null);
      },
    });
    return { stream, pulled: () => pulled };
  }
  const requestWith = (headers: Record<string, string> = {}) =>
    new Request("http://test/", { method: "POST", headers, body: "the Request's own body" });

  it("reads Node's stream instead of the Request's body, every chunk in order", async () => {
    const { stream } = nodeBody([Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(4, 5)]);
    const chunks: number[][] = [];
    for await (const chunk of readBodyChunks(requestWith(), 5, stream)) chunks.push([...chunk]);
    expect(chunks).toEqual([[1, 2], [3], [4, 5]]);
  });

  it("stops at the limit and destroys the stream, which stops the upload", async () => {
    const chunk = new Uint8Array(4 * 1024 * 1024);
    const { stream, pulled } = nodeBody([chunk, chunk, chunk, chunk]);
    expect(await statusOf(readBodyBytes(requestWith(), 6 * 1024 * 1024, stream))).toEqual({
      status: 413,
      message: "request body is over the limit of 6291456 bytes (6 MiB)",
    });
    expect(pulled()).toBeLessThanOrEqual(3);
    expect(stream.destroyed).toBe(true);
  });

  it("refuses a declared Content-Length over the limit before reading anything", async () => {
    const { stream, pulled } = nodeBody([new Uint8Array(10)]);
    expect((await statusOf(readBodyBytes(requestWith({ "content-length": "11" }), 10, stream))).status).toBe(
      413,
    );
    expect(pulled()).toBe(0);
  });

  it("destroys the stream when the reader gives up early (a malformed record)", async () => {
    const { stream } = nodeBody([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    for await (const chunk of readBodyChunks(requestWith(), 10, stream)) {
      expect([...chunk]).toEqual([1]);
      break;
    }
    expect(stream.destroyed).toBe(true);
  });

  it("reports a stream that fails mid-body as the client going away", async () => {
    const stream = new Readable({ read() {} });
    stream.push(Buffer.from("half"));
    const reading = readBodyBytes(requestWith(), 100, stream);
    stream.destroy(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    await expect(reading).rejects.toBeInstanceOf(ClientDisconnectedError);
  });

  /** Node's stream of a request whose body has arrived (as far as given), not read yet. */
  function arrived(chunks: Uint8Array[], options: { ended?: boolean } = {}) {
    const stream = new Readable({ read() {} });
    for (const chunk of chunks) stream.push(Buffer.from(chunk));
    if (options.ended ?? true) stream.push(null);
    return stream;
  }
  const noIterator = () => {
    throw new Error("iterated: the whole body should have been taken in one read");
  };

  it("takes a body that has all arrived, as its Content-Length says, in one read", async () => {
    // The stream need not have ended: HTTP/1.1 frames the body by its declared length.
    for (const ended of [true, false]) {
      const stream = arrived([Uint8Array.of(1, 2), Uint8Array.of(3)], { ended });
      stream.iterator = noIterator;
      const chunks: number[][] = [];
      for await (const chunk of readBodyChunks(requestWith({ "content-length": "3" }), 3, stream)) {
        chunks.push([...chunk]);
      }
      expect(chunks).toEqual([[1, 2, 3]]);
      expect(stream.readableDidRead).toBe(true);
    }
  });

  it("reads the Content-Length from Node's parsed headers when the stream has them", async () => {
    const stream = Object.assign(arrived([Uint8Array.of(7, 8)]), {
      headers: { "content-length": "2" },
      iterator: noIterator,
    });
    expect([...(await readBodyBytes(requestWith(), 2, stream))]).toEqual([7, 8]);
    const over = Object.assign(arrived([Uint8Array.of(7, 8)]), { headers: { "content-length": "2" } });
    expect((await statusOf(readBodyBytes(requestWith(), 1, over))).status).toBe(413);
    const chunked = Object.assign(arrived([Uint8Array.of(7, 8)]), {
      headers: { "content-length": "2", "transfer-encoding": "chunked" },
      iterator: noIterator,
    });
    await expect(readBodyBytes(requestWith(), 2, chunked)).rejects.toThrow(/iterated/);
  });

  it("reads a body that has only partly arrived as it comes", async () => {
    const stream = arrived([Uint8Array.of(1, 2)], { ended: false });
    const reading = readBodyBytes(requestWith({ "content-length": "3" }), 10, stream);
    stream.push(Buffer.of(3));
    stream.push(null);
    expect([...(await reading)]).toEqual([1, 2, 3]);
  });

  it("reads a chunked body (no Content-Length) as it comes", async () => {
    const stream = arrived([Uint8Array.of(1, 2), Uint8Array.of(3)]);
    let iterated = false;
    const iterator = stream.iterator.bind(stream);
    stream.iterator = (options) => {
      iterated = true;
      return iterator(options);
    };
    expect([...(await readBodyBytes(requestWith(), 10, stream))]).toEqual([1, 2, 3]);
    expect(iterated).toBe(true);
  });

  it("falls back to the Request's body when Node's stream was read already", async () => {
    const { stream } = nodeBody([Uint8Array.of(9)]);
    for await (const _ of stream) break; // someone read it
    const bytes = await readBodyBytes(requestWith(), 100, stream);
    expect(new TextDecoder().decode(bytes)).toBe("the Request's own body");
  });
});

describe("nodeIncoming", () => {
  it("finds Node's request stream in the context's bindings, and nothing elsewhere", () => {
    const incoming = new Readable({ read() {} });
    expect(nodeIncoming({ env: { incoming } } as unknown as Context)).toBe(incoming);
    expect(nodeIncoming({ env: {} } as unknown as Context)).toBeUndefined();
    expect(nodeIncoming({ env: undefined } as unknown as Context)).toBeUndefined();
    // A Lambda event carries no stream.
    expect(nodeIncoming({ env: { incoming: { body: "x" } } } as unknown as Context)).toBeUndefined();
  });
});
