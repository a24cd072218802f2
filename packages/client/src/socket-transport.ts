/**
 * HTTP/1.1 written and read on Node's sockets directly, for plain `http:` URLs: the requests
 * node-transport.ts carries (every JSON request and the binary reads), with nothing between the
 * socket and the caller. A request goes out in one socket write; its answer is parsed by its
 * framing (a length, chunked, or the connection's end).
 *
 * Why not `node:http`: measured on loopback against a server that answers fixed bytes, one request
 * at a time, a kept-alive `node:http` client's round trip had a p99 of 0.7–2.2 ms and the same
 * bytes on a plain socket 0.3–0.7 ms (docs/benchmarks.md, "Where a single produce's tail comes
 * from"); the SDK's single produce is one such round trip. `https:` URLs keep `node:https`: TLS is
 * not worth a second implementation where the network, not the client, sets the latency.
 *
 * Connections are kept alive and used by one request at a time. A connection idle for
 * `IDLE_SOCKET_MS` is closed before it is used again, so a server's usual 5 s keep-alive timeout
 * does not close it under a request; one the server closes while idle is dropped from the pool.
 *
 * While requests await their answers, the event loop keeps turning for a short adaptive window
 * (answer polling, `@sluice/loop-polling`), so an answer that comes soon finds the process awake
 * instead of a halted CPU that the kernel must wake first (docs/benchmarks.md, "The SDK polls for
 * its answers"). Answers that come later than the window's maximum (a distant server) turn it off.
 */
import { LoopPoller } from "@sluice/loop-polling";
import { type BytesResponse, joined, type RequestBytes } from "./node-transport.js";

type NetModule = typeof import("node:net");
type Socket = import("node:net").Socket;

/** Idle connections older than this are closed rather than used (a server's usual timeout is 5 s). */
export const IDLE_SOCKET_MS = 4_000;
/** Idle connections kept at most; more are closed (as `node:http`'s agent keeps 256). */
const IDLE_SOCKETS_MAX = 256;
/** An answer's head (status line and headers) larger than this is refused. */
const HEAD_BYTES_MAX = 64 * 1024;
/** A larger announced length is not trusted with one allocation up front. */
const PREALLOCATE_MAX_BYTES = 64 * 1024 * 1024;
/** A request whose head and body together are at most this long is copied into one write. */
const ONE_WRITE_MAX_BYTES = 64 * 1024;

/** Answer polling's defaults: a window of at most 1 ms, taking at most 90% of the time. */
export const ANSWER_POLL_MAX_US_DEFAULT = 1000;
export const ANSWER_POLL_BUDGET_DEFAULT = 0.9;

export interface SocketTransportOptions {
  /** Milliseconds: the clock idle connections are aged on and answer polling is timed by (tests move it). */
  now?: () => number;
  /**
   * The longest time, in microseconds, the event loop keeps turning while a request awaits its
   * answer; 0 turns answer polling off. Default `ANSWER_POLL_MAX_US_DEFAULT`.
   */
  answerPollUs?: number;
  /** The share of time answer polling may take (0 to 1]. Default `ANSWER_POLL_BUDGET_DEFAULT`. */
  answerPollBudget?: number;
  /** Runs a callback after the event loop's next poll for I/O (tests count turns). */
  schedule?: (callback: () => void) => void;
}

/**
 * The socket transport for an `http:` `baseUrl`, or undefined for any other protocol or where
 * `node:net` is not there (reached through `process.getBuiltinModule`, so the client imports no
 * node: module and still loads elsewhere).
 */
export function socketRequestBytes(
  baseUrl: string,
  options: SocketTransportOptions = {},
): RequestBytes | undefined {
  const node = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const origin = new URL(baseUrl);
  if (origin.protocol !== "http:") return undefined;
  const net = node?.getBuiltinModule?.("node:net") as NetModule | undefined;
  if (!net) return undefined;
  const host = origin.hostname.replace(/^\[|\]$/g, "");
  const port = Number(origin.port || 80);
  const answerPoller = new LoopPoller({
    maxUs: options.answerPollUs ?? ANSWER_POLL_MAX_US_DEFAULT,
    budget: options.answerPollBudget ?? ANSWER_POLL_BUDGET_DEFAULT,
    name: "answer poll",
    ...(options.now ? { now: options.now } : {}),
    ...(options.schedule ? { schedule: options.schedule } : {}),
  });
  const pool = new ConnectionPool(
    () => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      return socket;
    },
    options.now ?? Date.now,
    answerPoller,
  );
  return (method, url, headers, body, signal) =>
    pool.request(method, url, headers, body, signal, method === "GET" || method === "HEAD");
}

class ConnectionPool {
  private readonly idle: Connection[] = [];
  /** Requests sent and not yet answered (or failed), on all connections. */
  private awaiting = 0;

  constructor(
    private readonly open: () => Socket,
    private readonly now: () => number,
    private readonly answerPoller: LoopPoller,
  ) {}

  request(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | Uint8Array | undefined,
    signal: AbortSignal | undefined,
    retryOnStaleSocket: boolean,
  ): Promise<BytesResponse> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let head: string;
    try {
      head = requestHead(method, url, headers, body);
    } catch (error) {
      return Promise.reject(error);
    }
    const reused = this.takeIdle();
    const connection = reused ?? new Connection(this.open(), (closed) => this.forget(closed));
    if (this.awaiting++ === 0) this.answerPoller.waitStarted();
    return connection.exchange(head, body, method === "HEAD", signal).then(
      (answer) => {
        this.answered();
        if (answer.keepAlive) this.giveBack(connection);
        else connection.socket.destroy();
        return answer.response;
      },
      (error: unknown) => {
        this.answered();
        connection.socket.destroy();
        if (signal?.aborted) throw signal.reason;
        // A kept-alive socket the server closed while idle fails the next request sent on it
        // before any answer; a GET is safe to send again once, on a fresh socket. Anything else
        // may have been handled, so it fails as it is.
        if (reused && retryOnStaleSocket && error instanceof NoAnswerError) {
          return this.request(method, url, headers, body, signal, false);
        }
        throw error instanceof NoAnswerError ? error.cause : error;
      },
    );
  }

  /** A request in flight ended: its wait is over; the next answer's, if any, begins. */
  private answered(): void {
    this.awaiting--;
    this.answerPoller.waitEnded();
    if (this.awaiting > 0) this.answerPoller.waitStarted();
  }

  private takeIdle(): Connection | undefined {
    const now = this.now();
    for (let idle = this.idle.pop(); idle; idle = this.idle.pop()) {
      const socket = idle.socket;
      // A socket whose server has ended its side (a keep-alive timeout) takes no more requests.
      if (now - idle.idleSince < IDLE_SOCKET_MS && !socket.destroyed && !socket.readableEnded) {
        socket.ref();
        return idle;
      }
      socket.destroy();
    }
    return undefined;
  }

  private giveBack(connection: Connection): void {
    if (this.idle.length >= IDLE_SOCKETS_MAX) {
      connection.socket.destroy();
      return;
    }
    // An idle socket keeps no process alive.
    connection.socket.unref();
    connection.idleSince = this.now();
    this.idle.push(connection);
  }

  private forget(connection: Connection): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

/** The request in flight on a connection, until its answer is whole or it fails. */
interface InFlight {
  parser: AnswerParser;
  resolve: (answer: ParsedAnswer) => void;
  reject: (error: unknown) => void;
  /** Some byte of an answer came: a failure from now on is not a stale connection's. */
  received: boolean;
  /** The whole request was handed to the socket. */
  written: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * One kept-alive connection. Its socket's listeners are added once, when it opens, and pass what
 * comes to the request in flight: adding and removing four listeners and their closures for every
 * request was the largest part of what a single produce allocated in the client (3.7 of 15 KB,
 * docs/benchmarks.md). Between requests, bytes from the server belong to no request and close the
 * connection, as an error does.
 */
class Connection {
  /** When it was last given back to the pool. */
  idleSince = 0;
  private inFlight: InFlight | undefined;

  constructor(
    readonly socket: Socket,
    onClose: (connection: Connection) => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("end", () => this.ended());
    socket.on("error", (error: Error) => {
      if (this.inFlight) this.fail(error);
      else socket.destroy();
    });
    socket.once("close", () => {
      this.fail(new ConnectionClosedError("the connection closed before the whole answer"));
      onClose(this);
    });
  }

  /** Writes one request and parses its answer. */
  exchange(
    head: string,
    body: string | Uint8Array | undefined,
    headRequest: boolean,
    signal: AbortSignal | undefined,
  ): Promise<ParsedAnswer> {
    return new Promise((resolve, reject) => {
      const flight: InFlight = {
        parser: new AnswerParser(headRequest),
        resolve,
        reject,
        received: false,
        written: false,
        signal,
        onAbort: undefined,
      };
      this.inFlight = flight;
      if (signal) {
        flight.onAbort = () => {
          this.settle();
          this.socket.destroy();
          reject(signal.reason);
        };
        signal.addEventListener("abort", flight.onAbort, { once: true });
      }
      const wrote = () => {
        flight.written = true;
      };
      const socket = this.socket;
      const bodyBytes = typeof body === "string" ? Buffer.from(body) : body;
      if (bodyBytes === undefined || bodyBytes.byteLength === 0) {
        socket.write(head, "latin1", wrote);
        return;
      }
      if (head.length + bodyBytes.byteLength <= ONE_WRITE_MAX_BYTES) {
        // One write, so a small request leaves in one segment (the head is latin1: one byte a char).
        const whole = Buffer.allocUnsafe(head.length + bodyBytes.byteLength);
        whole.write(head, 0, "latin1");
        whole.set(bodyBytes, head.length);
        socket.write(whole, wrote);
        return;
      }
      socket.cork();
      socket.write(head, "latin1");
      socket.write(bodyBytes, wrote);
      socket.uncork();
    });
  }

  private received(chunk: Buffer): void {
    const flight = this.inFlight;
    if (!flight) {
      this.socket.destroy();
      return;
    }
    flight.received = true;
    let answer: ParsedAnswer | undefined;
    try {
      answer = flight.parser.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (answer) this.done(answer);
  }

  private ended(): void {
    const flight = this.inFlight;
    if (!flight) return;
    const answer = flight.parser.end();
    if (answer) this.done(answer);
    else this.fail(new ConnectionClosedError("the server closed the connection before the whole answer"));
  }

  private done(answer: ParsedAnswer): void {
    const flight = this.settle();
    if (!flight) return;
    // An answer that came before the whole request was written (a refusal of a large body)
    // leaves the rest of the request on the connection: it is not used again.
    flight.resolve(flight.written ? answer : { response: answer.response, keepAlive: false });
  }

  private fail(error: unknown): void {
    const flight = this.settle();
    if (!flight) return;
    flight.reject(flight.received ? error : new NoAnswerError(error));
  }

  /** Ends the request in flight, if any, and hands it back to be answered. */
  private settle(): InFlight | undefined {
    const flight = this.inFlight;
    this.inFlight = undefined;
    if (flight?.onAbort) flight.signal?.removeEventListener("abort", flight.onAbort);
    return flight;
  }
}

/** A connection that ended under a request, with the code `node:http` gives it. */
class ConnectionClosedError extends Error {
  readonly code = "ECONNRESET";
}

/** The connection failed before any byte of an answer came: a GET may be sent again. */
class NoAnswerError extends Error {
  constructor(override readonly cause: unknown) {
    super("the connection failed before an answer", { cause });
  }
}

/**
 * The request line and headers, with `host` and the body's length. Names and values are checked
 * as `node:http` checks them, so a header can never end early and smuggle another.
 */
export function requestHead(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
): string {
  if (!TOKEN.test(method)) throw new TypeError(`not an HTTP method: ${JSON.stringify(method)}`);
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const name in headers) {
    const value = headers[name] as string;
    if (!TOKEN.test(name)) throw new TypeError(`not a header name: ${JSON.stringify(name)}`);
    if (!FIELD_VALUE.test(value)) throw new TypeError(`header ${name} has a character a header cannot carry`);
    const lower = name.toLowerCase();
    // The transport frames the request itself.
    if (lower === "host" || lower === "content-length" || lower === "transfer-encoding") continue;
    head += `${name}: ${value}\r\n`;
  }
  if (body !== undefined) {
    head += `content-length: ${typeof body === "string" ? Buffer.byteLength(body) : body.byteLength}\r\n`;
  }
  return `${head}\r\n`;
}

/** RFC 9110's token: a method or a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: visible characters, spaces and tabs, and bytes from 0x80 to 0xFF. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface ParsedAnswer {
  response: BytesResponse;
  keepAlive: boolean;
}

/**
 * One HTTP/1.1 answer, fed in the chunks a socket gives; `push` returns it once it is whole, and
 * throws on bytes that are not an answer.
 */
export class AnswerParser {
  private buffered: Buffer;
  private status = 0;
  private headers: Map<string, string> | undefined;
  private keepAlive = true;
  private framing: "length" | "chunked" | "close" | "none" = "none";
  /** Body bytes still to come: of the whole body (length) or of the current chunk (chunked). */
  private remaining = 0;
  /** Chunked: between a chunk's data and the next size line, the CRLF still to be read. */
  private chunkDataEnded = false;
  /** The body: one buffer when its length was announced, else parts joined at the end. */
  private body: Uint8Array | undefined;
  private bodyBytes = 0;
  private readonly parts: Uint8Array[] = [];

  constructor(private readonly headRequest: boolean) {
    this.buffered = Buffer.alloc(0);
  }

  push(chunk: Buffer): ParsedAnswer | undefined {
    this.buffered = this.buffered.byteLength === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (!this.headers) {
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.buffered.byteLength > HEAD_BYTES_MAX) throw new Error("the answer's head is too large");
        return undefined;
      }
      if (end > HEAD_BYTES_MAX) throw new Error("the answer's head is too large");
      const head = this.buffered.toString("latin1", 0, end);
      this.buffered = this.buffered.subarray(end + 4);
      this.readHead(head); // an interim (1xx) answer leaves `headers` unset: the next head follows
    }
    return this.readBody();
  }

  /** The connection ended: the answer, if its body ran to the end of the connection. */
  end(): ParsedAnswer | undefined {
    return this.headers && this.framing === "close" ? this.finish(false) : undefined;
  }

  private readHead(head: string): void {
    const statusEnd = lineEnd(head, 0);
    const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(head.slice(0, statusEnd));
    if (!statusLine)
      throw new Error(`not an HTTP/1.1 answer: ${JSON.stringify(head.slice(0, Math.min(statusEnd, 100)))}`);
    const status = Number(statusLine[2]);
    if (status >= 100 && status < 200) {
      if (status === 101) throw new Error("the server switched protocols, which no request here asks for");
      return;
    }
    // Header lines read where they lie in the head, without splitting it into lines first.
    const headers = new Map<string, string>();
    for (let start = statusEnd + 2; start < head.length; ) {
      const end = lineEnd(head, start);
      const colon = head.indexOf(":", start);
      const name = colon > start && colon < end ? head.slice(start, colon) : "";
      if (name === "" || !TOKEN.test(name)) {
        throw new Error(
          `a malformed header line in the answer: ${JSON.stringify(head.slice(start, Math.min(end, start + 100)))}`,
        );
      }
      const key = name.toLowerCase();
      const value = head.slice(colon + 1, end).trim();
      const before = headers.get(key);
      headers.set(key, before === undefined ? value : `${before}, ${value}`);
      start = end + 2;
    }
    this.status = status;
    this.headers = headers;
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    this.keepAlive =
      statusLine[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    const transferEncoding = headers.get("transfer-encoding");
    const length = headers.get("content-length");
    if (this.headRequest || status === 204 || status === 304) this.framing = "none";
    else if (transferEncoding !== undefined) {
      // Chunked must be the last coding; anything else runs to the connection's end.
      if (/(?:^|,)\s*chunked\s*$/i.test(transferEncoding)) this.framing = "chunked";
      else this.closeDelimited();
    } else if (length !== undefined) {
      // Repeated lengths arrive joined ("5, 5"); they must agree.
      const only = length.includes(",") ? agreed(length) : length;
      if (!/^\d{1,15}$/.test(only)) throw new Error(`a malformed content-length in the answer: ${length}`);
      this.framing = "length";
      this.remaining = Number(only);
      if (this.remaining <= PREALLOCATE_MAX_BYTES) this.body = new Uint8Array(this.remaining);
    } else this.closeDelimited();
  }

  private closeDelimited(): void {
    this.framing = "close";
    this.keepAlive = false;
  }

  private readBody(): ParsedAnswer | undefined {
    switch (this.framing) {
      case "none":
        return this.finish(true);
      case "close":
        this.take(this.buffered.byteLength);
        return undefined;
      case "length":
        this.take(Math.min(this.remaining, this.buffered.byteLength));
        return this.remaining === 0 ? this.finish(true) : undefined;
      case "chunked":
        return this.readChunks();
    }
  }

  private readChunks(): ParsedAnswer | undefined {
    for (;;) {
      if (this.remaining > 0) {
        this.take(Math.min(this.remaining, this.buffered.byteLength));
        if (this.remaining > 0) return undefined;
        this.chunkDataEnded = true;
      }
      if (this.chunkDataEnded) {
        if (this.buffered.byteLength < 2) return undefined;
        if (this.buffered[0] !== CR || this.buffered[1] !== LF)
          throw new Error("a chunk in the answer ran past its size");
        this.buffered = this.buffered.subarray(2);
        this.chunkDataEnded = false;
      }
      const lineEnd = this.buffered.indexOf("\r\n");
      if (lineEnd < 0) {
        if (this.buffered.byteLength > HEAD_BYTES_MAX)
          throw new Error("a chunk size line in the answer is too long");
        return undefined;
      }
      const sizeText = (this.buffered.toString("latin1", 0, lineEnd).split(";")[0] as string).trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) {
        throw new Error(`a malformed chunk size in the answer: ${JSON.stringify(sizeText.slice(0, 20))}`);
      }
      const size = Number.parseInt(sizeText, 16);
      if (size > 0) {
        this.buffered = this.buffered.subarray(lineEnd + 2);
        this.remaining = size;
        continue;
      }
      // The last chunk, then trailers (ignored) up to an empty line.
      const trailersEnd =
        this.buffered[lineEnd + 2] === CR && this.buffered[lineEnd + 3] === LF
          ? lineEnd
          : this.buffered.indexOf("\r\n\r\n", lineEnd + 2);
      if (trailersEnd < 0) {
        if (this.buffered.byteLength > HEAD_BYTES_MAX) throw new Error("the answer's trailers are too large");
        return undefined;
      }
      this.buffered = this.buffered.subarray(trailersEnd + 4);
      return this.finish(true);
    }
  }

  /** Moves `count` buffered bytes into the body, copied: the answer does not keep a socket's buffers. */
  private take(count: number): void {
    if (count === 0) return;
    const bytes = this.buffered.subarray(0, count);
    if (this.body && this.bodyBytes + count <= this.body.byteLength) this.body.set(bytes, this.bodyBytes);
    else this.parts.push(bytes.slice());
    this.bodyBytes += count;
    if (this.framing !== "close") this.remaining -= count;
    this.buffered = this.buffered.subarray(count);
  }

  private finish(reusable: boolean): ParsedAnswer {
    const headers = this.headers as Map<string, string>;
    const bytes =
      this.body ?? (this.parts.length === 1 ? (this.parts[0] as Uint8Array) : joined(undefined, this.parts));
    // Bytes past the answer mean the server answered more than was asked: the socket is not reused.
    const keepAlive = reusable && this.keepAlive && this.buffered.byteLength === 0;
    return {
      response: { status: this.status, header: (name) => headers.get(name.toLowerCase()), bytes },
      keepAlive,
    };
  }
}

const CR = 13;
const LF = 10;

/** Where the line starting at `start` ends: its CRLF, or the end of the head. */
function lineEnd(head: string, start: number): number {
  const end = head.indexOf("\r\n", start);
  return end < 0 ? head.length : end;
}

/** Repeated content-length values, joined by commas: the one value if they all agree, else "". */
function agreed(joinedValues: string): string {
  const values = new Set(joinedValues.split(",").map((value) => value.trim()));
  return values.size === 1 ? [...values][0]! : "";
}
