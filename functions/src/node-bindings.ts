import type { Readable } from "node:stream";
import type { Context } from "hono";

/**
 * What @hono/node-server (the local server) hands the app besides the web `Request`: Node's own
 * request and response (`c.env.incoming`, `c.env.outgoing`). Read from them, a body costs no
 * web-stream adapter and a header no `Headers` object built from all of them: together about a
 * tenth of a single produce's server time (docs/benchmarks.md). Elsewhere (Lambda) each accessor
 * gives undefined and callers use the web objects.
 */

/** The request's body as Node's own stream, else undefined. */
export function nodeIncoming(c: Context): Readable | undefined {
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  return isReadable(incoming) ? incoming : undefined;
}

/** `IncomingMessage.headers`: lower-case names; a repeated header is an array or joined. */
export type NodeHeaders = Record<string, string | string[] | undefined>;

/** The headers Node parsed for this request stream, if it is Node's request. */
export function headersOf(incoming: Readable | undefined): NodeHeaders | undefined {
  const headers = (incoming as (Readable & { headers?: unknown }) | undefined)?.headers;
  return typeof headers === "object" && headers !== null ? (headers as NodeHeaders) : undefined;
}

/** The request's headers as Node parsed them, else undefined. */
export function nodeHeaders(c: Context): NodeHeaders | undefined {
  return headersOf(nodeIncoming(c));
}

/** One header's text as `Headers.get` gives it: a repeated header's values joined with ", ". */
export function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Node's response for this request, if its head is not written yet, else undefined. */
export function nodeOutgoing(c: Context): { setHeader(name: string, value: string): unknown } | undefined {
  const outgoing = (c.env as { outgoing?: { setHeader?: unknown; headersSent?: unknown } } | undefined)
    ?.outgoing;
  return typeof outgoing?.setHeader === "function" && outgoing.headersSent === false
    ? (outgoing as { setHeader(name: string, value: string): unknown })
    : undefined;
}

function isReadable(value: unknown): value is Readable {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Readable).iterator === "function" &&
    typeof (value as Readable).readableDidRead === "boolean"
  );
}
