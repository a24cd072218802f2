import type { PreparedRecord } from "./produce-records.js";

/** A prepared record as plain data (bytes as hex), for comparing two ways of preparing one. */
export function comparable(prepared: PreparedRecord) {
  const bytes = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("hex"));
  return {
    key: prepared.key,
    value: prepared.value,
    record: {
      key: bytes(prepared.record.key),
      value: bytes(prepared.record.value),
      headers: prepared.record.headers ?? [],
      timestamp: prepared.record.timestamp,
      partition: prepared.record.partition,
    },
  };
}
