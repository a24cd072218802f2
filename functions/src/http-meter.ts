import {
  type Counter,
  type Histogram,
  type Metrics,
  noopMetrics,
  type RecentActivity,
  secondsSince,
  series,
} from "@sluice/telemetry";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { nodeOutgoing } from "./node-bindings.js";

/** The stable code of each error answer, noted by the error boundary for the meter to count. */
const errorCodes = new WeakMap<Context, string>();

/** Called by the error boundary (http-errors.ts) with the code of the body it answers. */
export function noteErrorCode(c: Context, code: string): void {
  errorCodes.set(c, code);
}

/**
 * Measures the HTTP apps (docs/operations.md): every request by method, route pattern and status,
 * its duration, and every error answered by status, class, code and topic — error responses
 * here, and rejected records inside a 200 or 207 produce answer where the produce routes report
 * them. Errors naming a topic also go to the engine's recent-activity window (the topic
 * resources' `errors`).
 */
export class HttpMeter {
  private readonly requests: Counter<"method" | "route" | "status">;
  private readonly duration: Histogram<"method" | "route">;
  private readonly errors: Counter<"status" | "class" | "code" | "topic">;

  constructor(
    metrics: Metrics,
    private readonly activity: RecentActivity,
  ) {
    this.requests = metrics.counter(series.httpRequests);
    this.duration = metrics.histogram(series.httpRequestDuration);
    this.errors = metrics.counter(series.httpErrors);
    this.measuring = metrics !== noopMetrics;
  }

  /** False with the no-op sink: the middleware then only watches for errors (the activity window). */
  private readonly measuring: boolean;

  readonly middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const route = respondingRoute(c);
    // How long the app took, for the caller to tell it from the network and queues (W3C Server
    // Timing; browsers' developer tools and the benchmarks read it). A long-poll's wait is in it.
    try {
      const timing = `app;dur=${(performance.now() - started).toFixed(2)}`;
      // Under @hono/node-server, on Node's response, which merges it into the head it writes:
      // `c.res.headers` would build a Headers object for every answer (1–2% of a single produce).
      const outgoing = nodeOutgoing(c);
      if (outgoing) outgoing.setHeader("Server-Timing", timing);
      else c.res.headers.set("Server-Timing", timing);
    } catch {
      // Immutable headers (a response passed through as it came): left without the timing.
    }
    if (this.measuring) {
      this.requests.add(1, { method: c.req.method, route, status });
      this.duration.record(secondsSince(started), { method: c.req.method, route });
    }
    if (status >= 400) {
      this.errorAnswered(status, errorCodes.get(c) ?? String(status), topicOf(c, route));
    }
  };

  /** One error answered: an error response, or one rejected record of a multi-record answer. */
  errorAnswered(status: number, code: string, topic: string): void {
    this.errors.add(1, { status, class: status >= 500 ? "server" : "client", code, topic });
    if (topic !== "") this.activity.error(topic);
  }
}

/**
 * The route pattern that answered (`/v3/clusters/:cluster_id/topics/:topic_name`), or
 * `unmatched` when no route did (404, 405): a bounded label, unlike the path.
 */
function respondingRoute(c: Context): string {
  const route = matchedRoutes(c)[c.req.routeIndex];
  if (!route || route.method === "ALL") return "unmatched";
  return route.path;
}

function topicOf(c: Context, route: string): string {
  if (!route.includes(":topic_name")) return "";
  return c.req.param("topic_name") ?? "";
}
