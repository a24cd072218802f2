import { describe, expect, it } from "vitest";
import { dataBytes, dataText, fromBase64, toBase64, toData, toWireHeaders } from "./data.js";
import { errorFromResponse, SluiceHttpError } from "./errors.js";
import { parseConcatenatedJson } from "./json-stream.js";
import { parseServerSentEvents, type ServerSentEvent } from "./sse.js";

async function events(chunks: string[]): Promise<ServerSentEvent[]> {
  const encoder = new TextEncoder();
  async function* body() {
    for (const chunk of chunks) yield encoder.encode(chunk);
  }
  const out: ServerSentEvent[] = [];
  for await (const event of parseServerSentEvents(body())) out.push(event);
  return out;
}

describe("parseConcatenatedJson", () => {
  it("splits objects separated by newlines, spaces or nothing", () => {
    expect(parseConcatenatedJson('{"a":1}\n{"b":[1,{"c":2}]} {"d":"}{"}{"e":"\\"}"}')).toEqual([
      { a: 1 },
      { b: [1, { c: 2 }] },
      { d: "}{" },
      { e: '"}' },
    ]);
  });

  it("reads objects one to a line, the usual answer, as the general reading does", () => {
    const lines = [{ a: 1 }, { b: "}\n{" }, { c: [{}, { d: null }] }];
    expect(parseConcatenatedJson(`${lines.map((line) => JSON.stringify(line)).join("\n")}\n`)).toEqual(lines);
    // A raw line break inside a string is not JSON, even where joining lines would make it parse.
    expect(() => parseConcatenatedJson('{"a":"x}\n{y"}')).toThrow(SyntaxError);
    expect(() => parseConcatenatedJson('"text"')).toThrow(SyntaxError);
    expect(() => parseConcatenatedJson("[1]\n[2]x")).toThrow(SyntaxError);
  });

  it("returns nothing for blank text and rejects truncated or stray input", () => {
    expect(parseConcatenatedJson(" \n\t")).toEqual([]);
    expect(() => parseConcatenatedJson('{"a":1}\n{"b":')).toThrow(SyntaxError);
    expect(() => parseConcatenatedJson("42")).toThrow(SyntaxError);
  });
});

describe("parseServerSentEvents", () => {
  it("parses ids, event names, multi-line data and skips comments", async () => {
    const parsed = await events([
      ": keep-alive\n\n",
      'id: 7\nevent: record\ndata: {"offset":7}\n\n',
      "data: line one\ndata: line two\nretry: 250\n\n",
    ]);
    expect(parsed).toEqual([
      { event: "record", data: '{"offset":7}', id: "7", retry: undefined },
      { event: "message", data: "line one\nline two", id: undefined, retry: 250 },
    ]);
  });

  it("handles fields split across chunks and CRLF line ends, and drops an unfinished event", async () => {
    const parsed = await events([
      "id: 1\r",
      "\nevent: rec",
      "ord\r\ndata: x\r\n",
      "\r\n",
      "data: unfinished",
    ]);
    expect(parsed).toEqual([{ event: "record", data: "x", id: "1", retry: undefined }]);
  });
});

describe("data helpers", () => {
  it("turns inputs into API data and back", () => {
    const bytes = new Uint8Array([0, 255, 10, 65]);
    expect(toData("hé")).toEqual({ type: "STRING", data: "hé" });
    expect(toData(bytes)).toEqual({ type: "BINARY", data: toBase64(bytes) });
    expect(toData({ type: "JSON", data: { a: 1 } })).toEqual({ type: "JSON", data: { a: 1 } });
    expect(fromBase64(toBase64(bytes))).toEqual(bytes);
    expect(dataBytes({ type: "BINARY", data: toBase64(bytes) })).toEqual(bytes);
    expect(dataText({ type: "JSON", data: { a: [1] } })).toBe('{"a":[1]}');
    expect(dataText({ type: "BINARY", data: toBase64(new TextEncoder().encode("hé")) })).toBe("hé");
    expect(dataText(null)).toBeNull();
  });

  it("encodes header values as base64 of their UTF-8 bytes", () => {
    expect(toWireHeaders({ a: "x", b: null })).toEqual([
      { name: "a", value: "eA==" },
      { name: "b", value: null },
    ]);
    expect(toWireHeaders([{ name: "c", value: new Uint8Array([1]) }])).toEqual([
      { name: "c", value: "AQ==" },
    ]);
  });
});

describe("errorFromResponse", () => {
  it("takes error_code and message from the body, and Retry-After", async () => {
    const response = new Response(JSON.stringify({ error_code: 429, message: "slow down" }), {
      status: 429,
      headers: { "retry-after": "2" },
    });
    const error = await errorFromResponse(response);
    expect(error).toBeInstanceOf(SluiceHttpError);
    expect(error).toMatchObject({ status: 429, errorCode: 429, message: "slow down", retryAfterMs: 2000 });
    expect(error.retryable).toBe(true);
  });

  it("falls back to the status when the body is not an error body", async () => {
    const error = await errorFromResponse(new Response("<html>bad gateway</html>", { status: 502 }));
    expect(error).toMatchObject({ status: 502, errorCode: 502 });
    expect(error.message).toContain("HTTP 502");
  });
});
