import type { SluiceClient } from "@sluice/client";
import { progress, progressDone } from "./report.js";

/**
 * Produces `records` records of `recordBytes` bytes to `topic` before a consuming benchmark
 * (groups, queues) starts: requests of `perRequest` records, four in flight, each request to the
 * next partition in turn, with progress shown.
 */
export async function fillTopic(
  client: SluiceClient,
  topic: string,
  options: { records: number; partitions: number; recordBytes: number; perRequest: number },
): Promise<void> {
  const { records, partitions, recordBytes, perRequest } = options;
  const value = "x".repeat(recordBytes);
  let sent = 0;
  let request = 0;
  const worker = async () => {
    while (sent < records) {
      const count = Math.min(perRequest, records - sent);
      sent += count;
      const partitionId = request++ % partitions;
      const outcomes = await client.produceMany(
        topic,
        Array.from({ length: count }, () => ({ partitionId, value })),
      );
      if (outcomes.some((outcome) => !outcome.ok)) throw new Error(`filling ${topic} failed`);
      progress(
        `filling: ${Math.min(sent, records).toLocaleString("en-US")}/${records.toLocaleString("en-US")} records`,
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  progressDone();
}
