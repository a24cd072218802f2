import { type ConsumedRecord, dataBytes } from "@sluice/client";
import { UsageError, unescapeText } from "./args.js";

type Part = string | ((record: ConsumedRecord) => Uint8Array | string);

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A kcat-style output format: %k key, %v (or %s) value, %o offset, %p partition, %T timestamp in
 * ms, %t topic, %h headers (name=value,…), %K key length, %S value length, %d delivery count (share
 * groups), %% a percent sign;
 * escapes \n \t \r \0 \\. Keys and values are written as their raw bytes; a null one as nothing.
 */
export function compileFormat(format: string): (record: ConsumedRecord) => Uint8Array {
  const parts: Part[] = [];
  let literal = "";
  const text = unescapeText(format);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "%") {
      literal += c;
      continue;
    }
    const token = text[++i];
    if (token === "%") {
      literal += "%";
      continue;
    }
    const part = TOKENS[token ?? ""];
    if (!part) {
      throw new UsageError(
        `unknown format token %${token ?? ""} (known: %k %v %s %o %p %T %t %h %K %S %d %%)`,
      );
    }
    if (literal) parts.push(literal);
    literal = "";
    parts.push(part);
  }
  if (literal) parts.push(literal);
  const encoded = parts.map((part) => (typeof part === "string" ? utf8.encode(part) : part));
  return (record) => {
    const chunks = encoded.map((part) => {
      if (part instanceof Uint8Array) return part;
      const value = part(record);
      return typeof value === "string" ? utf8.encode(value) : value;
    });
    return concat(chunks);
  };
}

const TOKENS: Record<string, (record: ConsumedRecord) => Uint8Array | string> = {
  k: (record) => dataBytes(record.key) ?? EMPTY,
  v: (record) => dataBytes(record.value) ?? EMPTY,
  s: (record) => dataBytes(record.value) ?? EMPTY,
  o: (record) => String(record.offset),
  p: (record) => String(record.partitionId),
  T: (record) => String(record.timestamp),
  t: (record) => record.topicName,
  h: (record) =>
    concat(
      record.headers.flatMap((header, index) => [
        utf8.encode(`${index > 0 ? "," : ""}${header.name}=`),
        header.value ?? EMPTY,
      ]),
    ),
  K: (record) => String(dataBytes(record.key)?.length ?? -1),
  S: (record) => String(dataBytes(record.value)?.length ?? -1),
  // A share group's records carry their delivery count; other records print nothing.
  d: (record) => String((record as { deliveryCount?: number }).deliveryCount ?? ""),
};

/** One record as a JSON line: keys, values and headers as text when they are UTF-8, else {"base64": …}. */
export function recordJson(record: ConsumedRecord): string {
  return JSON.stringify({
    topic: record.topicName,
    partition: record.partitionId,
    offset: record.offset,
    timestamp: record.timestamp,
    key: bytesJson(dataBytes(record.key)),
    value: bytesJson(dataBytes(record.value)),
    headers: record.headers.map((header) => ({ name: header.name, value: bytesJson(header.value) })),
  });
}

function bytesJson(bytes: Uint8Array | null): string | { base64: string } | null {
  if (bytes === null) return null;
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return { base64: Buffer.from(bytes).toString("base64") };
  }
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let position = 0;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}
