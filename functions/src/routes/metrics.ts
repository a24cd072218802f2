import { createRoute } from "@hono/zod-openapi";
import type { SluiceApp } from "../context.js";

/** What serves `GET /metrics`: the Prometheus sink of the process (the local server's). */
export interface MetricsExposition {
  contentType: string;
  exposition(): Promise<string>;
}

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["Service"],
  summary: "Metrics in the Prometheus text format",
  description:
    "Throughput, latency, errors, storage calls and consumer-group lag (docs/operations.md lists every series), for Prometheus to scrape. Group lag is read from the store at each scrape. Served by the local server; a deployment in AWS sends the same series to CloudWatch instead.",
  responses: {
    200: {
      description: "The Prometheus text exposition format, version 0.0.4",
      content: { "text/plain": { schema: { type: "string" } } },
    },
  },
});

export function registerMetricsRoute(app: SluiceApp, metrics: MetricsExposition): void {
  app.openapi(metricsRoute, async (c) => {
    const body = await metrics.exposition();
    return c.body(body, 200, { "Content-Type": metrics.contentType }) as never;
  });
}
