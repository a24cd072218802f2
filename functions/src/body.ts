import type { Readable } from "node:stream";
import type { HonoRequest, MiddlewareHandler } from "hono";
import { ClientDisconnectedError, httpError } from "./http-errors.js";
import { headersOf, headerText, nodeIncoming } from "./node-bindings.js";

/**
 * Request bodies, read with a byte limit: a declared Content-Length over the limit is refused
 * before anything is read, and the bytes are counted as they arrive (a chunked body declares no
 * length, and a declared length may lie). `incoming`, Node's stream of the same request (see
 * `nodeIncoming` in node-bindings.ts), is read instead of the Request's body when given and not read yet.
 */
export async function* readBodyChunks(
  request: Request,
  bytesMax: number,
  incoming?: Readable,
): AsyncGenerator<Uint8Array> {
  // Node's parsed headers when there are any: `request.headers` would build a Headers object.
  const node = headersOf(incoming);
  const declared = node
    ? (headerText(node["content-length"]) ?? null)
    : request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > bytesMax) {
    throw tooLarge(`request body is ${declared} bytes, over the limit of ${describeBytes(bytesMax)}`);
  }
  if (incoming && !incoming.readableDidRead) {
    const chunked = node ? node["transfer-encoding"] !== undefined : request.headers.has("transfer-encoding");
    if (declared !== null && !chunked && arrivedWhole(incoming, declared)) {
      // The usual small request: its whole body came with its head and sits in the stream's
      // buffer, so take it in one read, without an async iterator. (The declared length is within
      // the limit: checked above.)
      const whole = incoming.read() as Uint8Array;
      incoming.resume(); // lets the stream end, as reading it to the end would
      yield whole;
      return;
    }
    // Destroyed when given up early, as cancelling the web stream below does.
    const chunks = incoming.iterator({ destroyOnReturn: true });
    yield* limited(
      () => chunks.next() as Promise<IteratorResult<Uint8Array>>,
      () => chunks.return?.(),
      bytesMax,
    );
    return;
  }
  if (request.body === null) return;
  const reader = request.body.getReader();
  yield* limited(
    () => reader.read(),
    () => reader.cancel(),
    bytesMax,
  );
}

/**
 * Whether all of a request's body, as its Content-Length declares it, waits unread in Node's
 * stream's buffer. HTTP/1.1 frames a body with a declared length by that length, so nothing more
 * belongs to it; a chunked body (no usable length) is never taken this way.
 */
function arrivedWhole(incoming: Readable, declared: string): boolean {
  return (
    /^\d+$/.test(declared) &&
    Number(declared) > 0 &&
    incoming.readableLength === Number(declared) &&
    !incoming.destroyed &&
    incoming.readableFlowing !== true
  );
}

/**
 * Chunks from `next` until the end, counting them against the limit. A failure to read is the
 * client gone (Node: "aborted" when the socket closes mid-body). Given up early (the limit, a
 * malformed record, a throw in the reader), `stop` ends the upload.
 */
async function* limited(
  next: () => Promise<IteratorResult<Uint8Array>>,
  stop: () => Promise<unknown> | undefined,
  bytesMax: number,
): AsyncGenerator<Uint8Array> {
  let ended = false;
  let total = 0;
  try {
    for (;;) {
      let chunk: IteratorResult<Uint8Array>;
      try {
        chunk = await next();
      } catch (error) {
        throw new ClientDisconnectedError(total, { cause: error });
      }
      if (chunk.done) {
        ended = true;
        return;
      }
      total += chunk.value.byteLength;
      if (total > bytesMax) throw tooLarge(`request body is over the limit of ${describeBytes(bytesMax)}`);
      yield chunk.value;
    }
  } finally {
    if (!ended) await stop()?.catch(() => undefined);
  }
}

export async function readBodyBytes(
  request: Request,
  bytesMax: number,
  incoming?: Readable,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of readBodyChunks(request, bytesMax, incoming)) {
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(size);
  let position = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, position);
    position += chunk.byteLength;
  }
  return bytes;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses JSON text from bytes; the message says what is wrong and where. `what` names the text. */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw httpError(400, `malformed JSON in ${what}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw httpError(400, `malformed JSON in ${what}: ${(error as Error).message}`);
  }
}

/**
 * Reads a JSON body for a route whose body zod validates: limit and syntax are checked here, with
 * messages that say what is wrong; the text is left for the validator. Every body is JSON whatever
 * its Content-Type says (`curl -d` sends a form type, `fetch` of a string text/plain), so the
 * request is marked as JSON for the validator. An empty body is `{}` when the body is optional.
 */
export function jsonBody(options: { bytesMax: number; required: boolean }): MiddlewareHandler {
  return async (c, next) => {
    const bytes = await readBodyBytes(c.req.raw, options.bytesMax, nodeIncoming(c));
    const empty = bytes.every(isJsonWhitespace);
    if (empty && options.required) throw httpError(400, "request body is empty: expected a JSON object");
    if (!empty) parseJsonBytes(bytes, "request body");
    // Hono caches bodies as promises (its type says string): the validator parses this text again.
    (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(
      empty ? "{}" : new TextDecoder().decode(bytes),
    );
    markAsJson(c.req);
    await next();
  };
}

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

function markAsJson(request: HonoRequest): void {
  const mediaType = request.raw.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
  if (JSON_MEDIA_TYPE.test(mediaType)) return;
  try {
    request.raw.headers.set("content-type", "application/json");
  } catch {
    // Immutable headers: a copy of the request without its body (which is cached already).
    const headers = new Headers(request.raw.headers);
    headers.set("content-type", "application/json");
    request.raw = new Request(request.raw.url, {
      method: request.raw.method,
      headers,
      signal: request.raw.signal,
    });
  }
}

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function tooLarge(message: string) {
  return httpError(413, message);
}

export function describeBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${bytes} bytes (${mib} MiB)` : `${bytes} bytes`;
}
