import { z } from "@hono/zod-openapi";
import type { ActivityRates, TopicActivity } from "@sluice/telemetry";

/**
 * The `activity` of the topic and partition resources (a Sluice extension): rates over the last
 * seconds as the answering process measured them, so scripts and `sluice top` need no
 * Prometheus. Locally one process serves everything, so the figures are the topic's; in AWS
 * each function instance answers with its own share (CloudWatch has the totals).
 */
const RATE_FIELDS = {
  window_seconds: z.number().openapi({
    description: "The window the rates cover: the last 10 seconds, or less while the process is younger",
  }),
  records_in_per_second: z.number().openapi({ description: "Records acknowledged per second" }),
  bytes_in_per_second: z
    .number()
    .openapi({ description: "Record bytes (keys, values, headers) acknowledged per second" }),
  records_out_per_second: z.number().openapi({ description: "Records handed to readers per second" }),
  bytes_out_per_second: z.number().openapi({ description: "Record bytes handed to readers per second" }),
};

export const PartitionActivitySchema = z.object(RATE_FIELDS).openapi("PartitionActivity", {
  description: "What the partition did in the window, as this process saw it",
});

export const TopicActivitySchema = z
  .object({
    ...RATE_FIELDS,
    errors: z.number().int().openapi({ description: "Errors answered for the topic in the window" }),
    errors_per_second: z.number(),
    produce_latency_p99_ms: z.number().nullable().openapi({
      description:
        "99th percentile of produce acknowledgement latency in the window (19 % buckets); null without appends",
    }),
    fetch_latency_p99_ms: z
      .number()
      .nullable()
      .openapi({ description: "99th percentile of fetch latency in the window; null without fetches" }),
  })
  .openapi("TopicActivity", { description: "What the topic did in the window, as this process saw it" });

/** Rates rounded to 3 decimals: a human reads them, and JSON need not carry float noise. */
const round = (value: number) => Math.round(value * 1000) / 1000;

function rates(windowSeconds: number, activity: ActivityRates | undefined) {
  return {
    window_seconds: round(windowSeconds),
    records_in_per_second: round(activity?.recordsInPerSecond ?? 0),
    bytes_in_per_second: round(activity?.bytesInPerSecond ?? 0),
    records_out_per_second: round(activity?.recordsOutPerSecond ?? 0),
    bytes_out_per_second: round(activity?.bytesOutPerSecond ?? 0),
  };
}

export function topicActivity(activity: TopicActivity): z.infer<typeof TopicActivitySchema> {
  const ms = (seconds: number | null) => (seconds === null ? null : round(seconds * 1000));
  return {
    ...rates(activity.windowSeconds, activity),
    errors: activity.errors,
    errors_per_second: round(activity.errorsPerSecond),
    produce_latency_p99_ms: ms(activity.produceLatencyP99Seconds),
    fetch_latency_p99_ms: ms(activity.fetchLatencyP99Seconds),
  };
}

export function partitionActivity(activity: TopicActivity, partition: number) {
  return rates(activity.windowSeconds, activity.partitions.get(partition));
}
