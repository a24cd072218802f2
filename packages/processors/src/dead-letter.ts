import type { ProduceRecord } from "@sluice/engine";
import type { ProcessorRecord } from "@sluice/processor-sdk";

/** Headers a dead letter carries beside the record's own (docs/processors.md). */
export const DEAD_LETTER_HEADERS = {
  processor: "sluice-processor",
  topic: "sluice-source-topic",
  partition: "sluice-source-partition",
  offset: "sluice-source-offset",
  attempts: "sluice-attempts",
  error: "sluice-error",
} as const;

const ERROR_CHARS_MAX = 1_000;
const utf8 = new TextEncoder();

/**
 * The dead letter of a source record: its key, value, timestamp and headers, plus headers naming
 * where it came from, how often it was tried and the last error. It goes to the dead-letter
 * partition `source partition mod partitions`, so one source partition's dead letters stay in order.
 */
export function deadLetter(
  source: { processor: string; topic: string; partition: number },
  record: ProcessorRecord,
  attempts: number,
  error: string,
  deadLetterPartitions: number,
): ProduceRecord {
  const message = error.length > ERROR_CHARS_MAX ? `${error.slice(0, ERROR_CHARS_MAX)}…` : error;
  return {
    key: record.key,
    value: record.value,
    timestamp: record.timestamp,
    partition: source.partition % deadLetterPartitions,
    headers: [
      ...record.headers,
      { key: DEAD_LETTER_HEADERS.processor, value: utf8.encode(source.processor) },
      { key: DEAD_LETTER_HEADERS.topic, value: utf8.encode(source.topic) },
      { key: DEAD_LETTER_HEADERS.partition, value: utf8.encode(String(source.partition)) },
      { key: DEAD_LETTER_HEADERS.offset, value: utf8.encode(String(record.offset)) },
      { key: DEAD_LETTER_HEADERS.attempts, value: utf8.encode(String(attempts)) },
      { key: DEAD_LETTER_HEADERS.error, value: utf8.encode(message) },
    ],
  };
}
