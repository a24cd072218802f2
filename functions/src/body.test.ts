import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { readBodyBytes, readBodyChunks } from "./body.js";

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
