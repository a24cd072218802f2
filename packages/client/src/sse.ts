/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface ServerSentEvent {
  /** "message" when the event named none. */
  event: string;
  data: string;
  /** The `id` field of this event, if it had one. */
  id: string | undefined;
  /** The `retry` field, in milliseconds, if it had one. */
  retry: number | undefined;
}

/**
 * Parses an event stream. Comments (`: keep-alive`) are skipped; an event is dispatched at each
 * blank line if it carried data; a trailing event without its blank line is dropped, as the
 * specification says.
 */
export async function* parseServerSentEvents(
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let event = "";
  let id: string | undefined;
  let retry: number | undefined;
  let sawData = false;
  let first = true;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    if (first && buffer.length > 0) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      first = false;
    }
    let lineStart = 0;
    for (;;) {
      const end = lineEnd(buffer, lineStart);
      if (end === undefined) break;
      const line = buffer.slice(lineStart, end.index);
      lineStart = end.next;
      if (line === "") {
        if (sawData) yield { event: event || "message", data: data.join("\n"), id, retry };
        data = [];
        event = "";
        id = undefined;
        retry = undefined;
        sawData = false;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") {
        data.push(value);
        sawData = true;
      } else if (field === "event") event = value;
      else if (field === "id" && !value.includes("\0")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
    }
    buffer = buffer.slice(lineStart);
  }
}

/** The end of the line starting at `from` (CRLF, LF or CR), or undefined when it is not complete yet. */
function lineEnd(buffer: string, from: number): { index: number; next: number } | undefined {
  for (let i = from; i < buffer.length; i++) {
    const c = buffer.charCodeAt(i);
    if (c === 0x0a) return { index: i, next: i + 1 };
    if (c === 0x0d) {
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (i + 1 >= buffer.length) return undefined;
      return { index: i, next: buffer.charCodeAt(i + 1) === 0x0a ? i + 2 : i + 1 };
    }
  }
  return undefined;
}
