/**
 * Requests whose answers are read whole, over Node's own HTTP client, for `https:` URLs: the
 * binary reads a consumer repeats many times a second, and every JSON request (`http:` URLs go
 * over socket-transport.ts, which this file's types describe too). Measured on loopback, `fetch`
 * (undici) spends about 1.7 times the CPU per megabyte that `node:http` does, mostly building web
 * streams and a `Response` around bytes that are only ever wanted whole; at a million records a
 * second that difference is a sixth of a consumer's CPU, and on a single small request it is about
 * 0.3 ms of latency (1.5–2.5 ms at p99). Elsewhere (a browser, a worker runtime, or a client given
 * its own `fetch`), and for streamed bodies and event streams, requests use `fetch`.
 */

/** An answer read whole: the status, a header lookup and the body. */
export interface BytesResponse {
  status: number;
  header(name: string): string | undefined;
  bytes: Uint8Array;
}

/** Any request with an optional body already in hand, answered whole. */
export type RequestBytes = (
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal?: AbortSignal,
) => Promise<BytesResponse>;

/** A larger announced length is not trusted with one allocation up front. */
const PREALLOCATE_MAX_BYTES = 64 * 1024 * 1024;

type HttpModule = typeof import("node:http");

/**
 * The Node transport for `baseUrl`, or undefined where `node:http` is not there (reached through
 * `process.getBuiltinModule`, so the client imports no node: module and still loads elsewhere).
 */
export function nodeRequestBytes(baseUrl: string): RequestBytes | undefined {
  const node = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const protocol = new URL(baseUrl).protocol;
  if (protocol !== "http:" && protocol !== "https:") return undefined;
  const http = node?.getBuiltinModule?.(protocol === "https:" ? "node:https" : "node:http") as
    | HttpModule
    | undefined;
  if (!http) return undefined;
  // Keep-alive, as fetch pools its connections. An idle socket is closed after 4 s, before a
  // server's usual 5 s keep-alive timeout closes it under a request that cannot be sent again.
  const agent = new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  return (method, url, headers, body, signal) =>
    request(http, agent, method, url, headers, body, signal, method === "GET" || method === "HEAD");
}

const IDLE_SOCKET_MS = 4_000;

function request(
  http: HttpModule,
  agent: import("node:http").Agent,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal: AbortSignal | undefined,
  retryOnStaleSocket: boolean,
): Promise<BytesResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    // Aborted, it fails as fetch does: with the signal's reason.
    const fail = (error: unknown) => reject(signal?.aborted ? signal.reason : error);
    const sent =
      body === undefined
        ? headers
        : {
            ...headers,
            "content-length": String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength),
          };
    const outgoing = http.request(url, { method, agent, headers: sent, signal }, (incoming) => {
      const length = Number(incoming.headers["content-length"]);
      // One allocation when the length is known (the read route always sends it).
      const body =
        Number.isSafeInteger(length) && length >= 0 && length <= PREALLOCATE_MAX_BYTES
          ? new Uint8Array(length)
          : undefined;
      let copied = 0; // bytes copied into `body`; a body longer or shorter than announced is joined
      const chunks: Uint8Array[] = [];
      incoming.on("data", (chunk: Uint8Array) => {
        if (body && chunks.length === 0 && copied + chunk.byteLength <= body.byteLength) {
          body.set(chunk, copied);
          copied += chunk.byteLength;
        } else chunks.push(chunk);
      });
      incoming.on("error", fail);
      incoming.on("end", () => {
        resolve({
          status: incoming.statusCode ?? 0,
          header: (name) => {
            const value = incoming.headers[name.toLowerCase()];
            return Array.isArray(value) ? value.join(", ") : value;
          },
          bytes:
            body && copied === body.byteLength && chunks.length === 0
              ? body
              : joined(body?.subarray(0, copied), chunks),
        });
      });
    });
    outgoing.on("error", (error) => {
      // A kept-alive socket the server closed while idle fails the next request sent on it before
      // any answer; a GET is safe to send again once, on a fresh socket.
      if (retryOnStaleSocket && outgoing.reusedSocket && (error as { code?: string }).code === "ECONNRESET") {
        request(http, agent, method, url, headers, body, signal, true).then(resolve, reject);
        return;
      }
      fail(error);
    });
    outgoing.end(body);
  });
}

/** `first` followed by `chunks`, in one array (also the socket transport's). */
export function joined(first: Uint8Array | undefined, chunks: Uint8Array[]): Uint8Array {
  const parts = first ? [first, ...chunks] : chunks;
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
