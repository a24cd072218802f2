import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SluiceClient } from "./client.js";
import { SluiceConnectionError, SluiceHttpError } from "./errors.js";
import type { BytesResponse } from "./node-transport.js";
import { AnswerParser, IDLE_SOCKET_MS, requestHead, socketRequestBytes } from "./socket-transport.js";
import { describeTransport, testServer } from "./transport.behaviour.js";

describeTransport("the socket transport", (url) => socketRequestBytes(url));

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Feeds `answer` to a parser in pieces of `step` bytes: the answer once whole, or nothing. */
function parse(
  answer: string | Buffer,
  step: number,
  headRequest = false,
): { response: BytesResponse | undefined; keepAlive: boolean | undefined } {
  const bytes = typeof answer === "string" ? Buffer.from(answer, "latin1") : answer;
  const parser = new AnswerParser(headRequest);
  for (let at = 0; at < bytes.byteLength; at += step) {
    const parsed = parser.push(bytes.subarray(at, at + step));
    if (parsed) return parsed;
  }
  return { response: undefined, keepAlive: undefined };
}

describe("the socket transport's answer parser", () => {
  const steps = [1, 2, 7, 1_000_000];

  it("reads a body by its announced length, fed a byte at a time or all at once", () => {
    for (const step of steps) {
      const answer = parse(
        "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nhello",
        step,
      );
      expect(answer.response?.status, `step ${step}`).toBe(201);
      expect(text(answer.response!.bytes)).toBe("hello");
      expect(answer.response!.header("X-TWO")).toBe("a, b");
      expect(answer.keepAlive).toBe(true);
    }
  });

  it("reads chunked bodies with extensions and trailers, and checks each chunk's end", () => {
    const chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nB\r\n, chunked!!\r\n0\r\nx-trailer: t\r\n\r\n";
    const bare = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for (const step of steps) {
      const answer = parse(chunked, step);
      expect(text(answer.response!.bytes), `step ${step}`).toBe("hello, chunked!!");
      expect(answer.keepAlive).toBe(true);
      expect(text(parse(bare, step).response!.bytes)).toBe("abc");
    }
    expect(() =>
      parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 100),
    ).toThrow("a chunk in the answer ran past its size");
    expect(() => parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 100)).toThrow(
      'a malformed chunk size in the answer: "zz"',
    );
  });

  it("knows answers without a body: to a HEAD, 204 and 304, and skips interim answers", () => {
    expect(text(parse("HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", 3, true).response!.bytes)).toBe("");
    expect(parse("HTTP/1.1 204 No Content\r\n\r\n", 3).response!.status).toBe(204);
    expect(parse("HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n", 3).response!.status).toBe(304);
    const interim = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 4);
    expect([interim.response!.status, text(interim.response!.bytes)]).toEqual([200, "ok"]);
  });

  it("reads to the connection's end when nothing frames the body, and never reuses that connection", () => {
    const bytes = Buffer.from("HTTP/1.1 200 OK\r\n\r\nall of it");
    const parser = new AnswerParser(false);
    expect(parser.push(bytes.subarray(0, 20))).toBeUndefined();
    expect(parser.push(bytes.subarray(20))).toBeUndefined();
    const answer = parser.end();
    expect(text(answer!.response.bytes)).toBe("all of it");
    expect(answer!.keepAlive).toBe(false);
    // A connection that ended inside a framed body is no answer.
    const cut = new AnswerParser(false);
    cut.push(Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"));
    expect(cut.end()).toBeUndefined();
  });

  it("keeps a connection only when the answer lets it and nothing follows the answer", () => {
    expect(parse("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", 5).keepAlive).toBe(
      false,
    );
    expect(parse("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", 5).keepAlive).toBe(false);
    expect(parse("HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n", 5).keepAlive).toBe(
      true,
    );
    const extra = parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", 1_000);
    expect([text(extra.response!.bytes), extra.keepAlive]).toEqual(["ok", false]);
  });

  it("refuses what is not an answer, naming what is wrong", () => {
    const cases: [string, string][] = [
      ["SSH-2.0-OpenSSH\r\n\r\n", 'not an HTTP/1.1 answer: "SSH-2.0-OpenSSH"'],
      ["HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 'a malformed header line in the answer: "no colon here"'],
      ["HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "a malformed content-length in the answer: -1"],
      [
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        "a malformed content-length in the answer: 5, 6",
      ],
      ["HTTP/1.1 101 Switching Protocols\r\n\r\n", "the server switched protocols"],
    ];
    for (const [answer, message] of cases) expect(() => parse(answer, 3), answer).toThrow(message);
    // Agreeing repeated lengths are one length.
    expect(
      text(parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok", 3).response!.bytes),
    ).toBe("ok");
    const endless = Buffer.from(`HTTP/1.1 200 OK\r\nx: ${"a".repeat(70_000)}`);
    expect(() => parse(endless, 16_384)).toThrow("the answer's head is too large");
  });
});

describe("the socket transport's request head", () => {
  const url = new URL("http://127.0.0.1:8082/v3/a%20b?x=1&y=%C3%A9");

  it("writes the request line, host, the caller's headers and the body's length in bytes", () => {
    expect(requestHead("POST", url, { accept: "application/json", "x-v": "café" }, "é")).toBe(
      "POST /v3/a%20b?x=1&y=%C3%A9 HTTP/1.1\r\nhost: 127.0.0.1:8082\r\naccept: application/json\r\nx-v: café\r\ncontent-length: 2\r\n\r\n",
    );
    // The transport frames the request itself: a caller's length or host is not written twice.
    expect(requestHead("GET", url, { "Content-Length": "9", Host: "elsewhere" }, undefined)).toBe(
      "GET /v3/a%20b?x=1&y=%C3%A9 HTTP/1.1\r\nhost: 127.0.0.1:8082\r\n\r\n",
    );
  });

  it("refuses a header that could end early and smuggle another, or a name or method that is no token", () => {
    expect(() => requestHead("GET", url, { "x-a": "1\r\nx-b: 2" }, undefined)).toThrow(
      "header x-a has a character a header cannot carry",
    );
    expect(() => requestHead("GET", url, { "x a": "1" }, undefined)).toThrow('not a header name: "x a"');
    expect(() => requestHead("GET", url, { "x-a": "€" }, undefined)).toThrow("header x-a has a character");
    expect(() => requestHead("GET /x HTTP/1.1\r\n", url, {}, undefined)).toThrow("not an HTTP method");
  });

  it("is not a transport for https, which node:https carries", () => {
    expect(socketRequestBytes("https://example.test")).toBeUndefined();
    expect(socketRequestBytes("http://127.0.0.1:1")).toBeTypeOf("function");
  });
});

/** A raw TCP server: each connection handed to `onConnection`, counted; closed after each test. */
function rawServer() {
  let server: NetServer | undefined;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });
  return async (onConnection: (socket: Socket, index: number) => void): Promise<string> => {
    let connections = 0;
    server = createNetServer((socket) => {
      sockets.add(socket);
      onConnection(socket, connections++);
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const address = server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  };
}

/** Answers each request head that arrives on `socket` with `answer(index)`; the requests are bodiless. */
function answerHeads(socket: Socket, answer: (request: number) => string): void {
  let buffered = "";
  let requests = 0;
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    for (let end = buffered.indexOf("\r\n\r\n"); end >= 0; end = buffered.indexOf("\r\n\r\n")) {
      buffered = buffered.slice(end + 4);
      socket.write(answer(requests++));
    }
  });
}

const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

describe("the socket transport's connections", () => {
  const serveRaw = rawServer();
  const { serve, close } = testServer();

  it("sends one request after another on one kept-alive connection", async () => {
    const connections: number[] = [];
    const url = await serveRaw((socket, index) => {
      connections.push(index);
      answerHeads(socket, () => OK);
    });
    const send = socketRequestBytes(url)!;
    for (let i = 0; i < 5; i++)
      expect(text((await send("GET", new URL(url), {}, undefined)).bytes)).toBe("ok");
    expect(connections).toEqual([0]);
  });

  it("gives concurrent requests a connection each, and each its own answer", async () => {
    const url = await serve((request, response) => response.end(request.url));
    const send = socketRequestBytes(url)!;
    const paths = ["/a", "/b", "/c", "/d"];
    const answers = await Promise.all(
      paths.map((path) => send("GET", new URL(`${url}${path}`), {}, undefined)),
    );
    expect(answers.map((answer) => text(answer.bytes))).toEqual(paths);
  });

  it("opens a new connection after an answer that closes its own, or one idle for the idle limit", async () => {
    let now = 1_000_000;
    const connections: number[] = [];
    const url = await serveRaw((socket, index) => {
      connections.push(index);
      answerHeads(socket, (request) =>
        index === 0 && request === 0
          ? "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
          : OK,
      );
    });
    const send = socketRequestBytes(url, { now: () => now })!;
    const get = () => send("GET", new URL(url), {}, undefined);
    await get(); // connection 0 answers "close"
    await get(); // connection 1
    now += IDLE_SOCKET_MS - 1;
    await get(); // still connection 1
    now += IDLE_SOCKET_MS;
    await get(); // connection 1 idled out: connection 2
    expect(connections).toEqual([0, 1, 2]);
  });

  it("drops an idle connection the server closed, so a POST is not sent on it", async () => {
    let closedByServer: () => void = () => undefined;
    const serverClosed = new Promise<void>((resolve) => {
      closedByServer = resolve;
    });
    const connections: number[] = [];
    const url = await serveRaw((socket, index) => {
      connections.push(index);
      answerHeads(socket, () => OK);
      if (index === 0) {
        // Closes once it has answered, as a server's keep-alive timeout does.
        socket.once("data", () => socket.end());
        socket.once("close", closedByServer);
      }
    });
    const send = socketRequestBytes(url)!;
    await send("POST", new URL(url), {}, "one");
    // The server's side closes only once the client's has answered its end.
    await serverClosed;
    expect(text((await send("POST", new URL(url), {}, "two")).bytes)).toBe("ok");
    expect(connections).toEqual([0, 1]);
  });

  it("closes an idle connection on which bytes arrive that no request asked for", async () => {
    let closed: () => void = () => undefined;
    const firstClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    let first: Socket | undefined;
    const connections: number[] = [];
    const url = await serveRaw((socket, index) => {
      connections.push(index);
      answerHeads(socket, () => OK);
      if (index === 0) {
        first = socket;
        socket.once("close", closed);
      }
    });
    const send = socketRequestBytes(url)!;
    await send("GET", new URL(url), {}, undefined);
    // Written only once the answer is in: the connection is idle when these bytes come.
    first?.write("HTTP/1.1 200 OK\r\n");
    await firstClosed;
    expect(text((await send("GET", new URL(url), {}, undefined)).bytes)).toBe("ok");
    expect(connections).toEqual([0, 1]);
  });

  it("does not reuse a connection answered before its request was written whole", async () => {
    // A server refusing a large body at its head and reading no further: the rest of the body is
    // still on the connection, where the next request would follow it.
    const connections: number[] = [];
    const url = await serveRaw((socket, index) => {
      connections.push(index);
      if (index === 0) {
        socket.once("data", () => {
          socket.pause();
          socket.write("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig");
        });
        return;
      }
      answerHeads(socket, () => OK);
    });
    const send = socketRequestBytes(url)!;
    const refused = await send("POST", new URL(url), {}, new Uint8Array(32 * 1024 * 1024));
    expect([refused.status, text(refused.bytes)]).toEqual([413, "big"]);
    expect(text((await send("GET", new URL(url), {}, undefined)).bytes)).toBe("ok");
    expect(connections).toEqual([0, 1]);
  });

  it("carries SluiceClient's JSON requests and binary reads, and their errors, without fetch", async () => {
    const url = await serve((request, response) => {
      request.resume();
      request.on("end", () => {
        if (request.url?.endsWith("/configs/retention.ms")) {
          response.writeHead(404, { "content-type": "application/json" });
          response.end(JSON.stringify({ error_code: 40403, message: "topic t does not exist" }));
          return;
        }
        if (request.url?.includes("/partitions/9")) {
          response.writeHead(404, { "content-type": "application/json" });
          response.end(
            JSON.stringify({ error_code: 40403, message: "partition 9 does not exist", code: "not_found" }),
          );
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
      const read = await client.fetchPartitionBatches("t", 9).catch((caught: unknown) => caught);
      expect(read).toMatchObject({ status: 404, errorCode: 40403, message: "partition 9 does not exist" });
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("turns a refused connection into SluiceConnectionError", async () => {
    const url = await serve(() => undefined);
    await close();
    const client = new SluiceClient({ url, clusterId: "c" });
    const error = await client.fetchPartitionBatches("t", 0).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SluiceConnectionError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
});

describe("the socket transport's answer polling", () => {
  const serveRaw = rawServer();

  /**
   * A transport on a hand-moved clock whose answer-polling turns are counted (and run on the
   * event loop, as setImmediate's would), against a server that holds each answer until
   * `answer()` and moves the clock by `waitUs` first: each request's wait lasts `waitUs` by that
   * clock.
   */
  async function polled(waitUs: number, options: { answerPollUs?: number } = {}) {
    let nowMs = 0;
    let turns = 0;
    let onTurn: (() => void) | undefined;
    const held: (() => void)[] = [];
    const url = await serveRaw((socket) =>
      answerHeads(socket, () => {
        // Writes nothing itself: the answer goes out when the test releases it.
        held.push(() => {
          nowMs += waitUs / 1000;
          socket.write(OK);
        });
        return "";
      }),
    );
    const send = socketRequestBytes(url, {
      ...options,
      now: () => nowMs,
      schedule: (callback) => {
        turns++;
        onTurn?.();
        setImmediate(callback);
      },
    })!;
    return {
      get turns() {
        return turns;
      },
      /** Sends one request; resolves, with its answer to come, when the server holds it. */
      async send(): Promise<{ answer: Promise<BytesResponse> }> {
        const heldBefore = held.length;
        const answer = send("GET", new URL(url), {}, undefined);
        while (held.length === heldBefore) await new Promise((resolve) => setImmediate(resolve));
        return { answer };
      },
      answer() {
        held.shift()?.();
      },
      /** Resolves once `count` more turns have run. */
      turnsRun(count: number) {
        const target = turns + count;
        return new Promise<void>((resolve) => {
          onTurn = () => {
            if (turns >= target) resolve();
          };
        });
      },
      /** `count` requests, one after another, each answered after the loop has gone round a few times. */
      async exchanges(count: number) {
        for (let i = 0; i < count; i++) {
          const { answer } = await this.send();
          await this.settle();
          this.answer();
          await answer;
        }
      },
      /** Lets the event loop go round `count` times. */
      async settle(count = 5) {
        for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
      },
    };
  }

  it("keeps the event loop turning while an answer is awaited, once answers came soon, and stops when it comes", async () => {
    const t = await polled(100);
    // The window starts at zero: the first waits, of 100 µs each, grow it (50, then 100 µs).
    for (let i = 0; i < 3; i++) {
      const { answer } = await t.send();
      t.answer();
      expect((await answer).status).toBe(200);
    }
    const before = t.turns;
    const { answer } = await t.send();
    await t.turnsRun(20); // the clock stands still while the answer is held: polling goes on
    expect(t.turns - before).toBeGreaterThanOrEqual(20);
    t.answer();
    expect((await answer).status).toBe(200);
    await t.settle();
    const after = t.turns;
    await t.settle(20);
    expect(t.turns).toBe(after); // nothing awaited: the loop is no longer kept turning
  });

  it("does not poll for a server whose answers come later than the maximum", async () => {
    const t = await polled(5_000); // 5 ms waits, past the 1 ms default maximum
    await t.exchanges(5);
    expect(t.turns).toBe(0);
  });

  it("does not poll with answerPollUs 0", async () => {
    const t = await polled(100, { answerPollUs: 0 });
    await t.exchanges(5);
    expect(t.turns).toBe(0);
  });

  it("refuses a bad setting where nothing polls too: https, or a fetch of the caller's", () => {
    expect(() => new SluiceClient({ url: "https://example.test", answerPollUs: -1 })).toThrow(
      /^answer poll maximum must be 0 or more microseconds/,
    );
    expect(
      () => new SluiceClient({ url: "http://127.0.0.1:1", fetch: globalThis.fetch, answerPollBudget: 2 }),
    ).toThrow(/^answer poll budget must be in \(0, 1\]/);
  });

  it("refuses a bad setting, naming it", () => {
    expect(() => new SluiceClient({ url: "http://127.0.0.1:1", answerPollUs: -1 })).toThrow(
      /^answer poll maximum must be 0 or more microseconds, got -1/,
    );
    expect(() => new SluiceClient({ url: "http://127.0.0.1:1", answerPollBudget: 0 })).toThrow(
      /^answer poll budget must be in \(0, 1\]/,
    );
  });
});
