import { ConsumerGroups, collectConsumerGroupLag } from "@sluice/groups";
import { collectShareGroupMetrics, ShareGroups } from "@sluice/queues";
import { EmfMetrics } from "@sluice/telemetry/emf";
import { LambdaLogger } from "@sluice/telemetry/lambda-logger";
import { handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import { createApp } from "./app.js";
import { createEngineFromEnv } from "./aws-engine.js";

/** The `service` of the HTTP function's metrics and log lines. */
export const API_SERVICE = "sluice-api";

/** The EventBridge schedule's event that asks for a lag collection (infra/lib/monitoring.ts). */
export const LAG_COLLECTION_EVENT = { source: "sluice.monitoring", action: "collect-lag" } as const;

export interface LambdaHandlerOptions {
  env?: Record<string, string | undefined>;
  /** Where EMF documents go (default standard output, which Lambda sends to CloudWatch Logs). */
  writeMetrics?: (line: string) => void;
}

type ScheduledEvent = { source?: unknown; action?: unknown };

function isLagCollection(event: unknown): boolean {
  const scheduled = event as ScheduledEvent | null;
  return (
    scheduled?.source === LAG_COLLECTION_EVENT.source && scheduled.action === LAG_COLLECTION_EVENT.action
  );
}

/**
 * The HTTP function's handler, built once per execution environment: the engine over S3 and
 * DynamoDB (metered), CloudWatch metrics as EMF lines flushed at the end of every invocation,
 * and structured JSON logs carrying the invocation's and the HTTP request's ids. The same
 * function answers the monitoring schedule's lag-collection event: it reads every consumer
 * group's lag and writes it as metrics.
 */
export function createLambdaHandler(options: LambdaHandlerOptions = {}) {
  const env = options.env ?? process.env;
  const logger = new LambdaLogger({ service: API_SERVICE });
  const metrics = new EmfMetrics({
    service: API_SERVICE,
    ...(options.writeMetrics ? { write: options.writeMetrics } : {}),
  });
  const { engine, metadata, clusterId } = createEngineFromEnv(env, metrics);
  const groups = new ConsumerGroups({ engine, metadata });
  const shareGroups = new ShareGroups({ engine, metadata, metrics });
  // Without SLUICE_PUBLIC_URL, links use the Function URL's domain, which AWS sets, not the Host header.
  const publicUrl = env.SLUICE_PUBLIC_URL || undefined;
  const http = handle(
    createApp({
      engine,
      metadata,
      groups,
      shareGroups,
      clusterId,
      logger,
      metrics,
      ...(publicUrl ? { publicUrl } : {}),
    }),
  );

  return async (event: LambdaEvent | ScheduledEvent, context: LambdaContext) => {
    try {
      if (isLagCollection(event)) {
        logger.startInvocation(context);
        await collectConsumerGroupLag({ groups, engine, metrics });
        await collectShareGroupMetrics({ shareGroups, metrics });
        return { collected: "consumer-group-lag" };
      }
      const requestId = (event as { requestContext?: { requestId?: unknown } }).requestContext?.requestId;
      logger.startInvocation(context, typeof requestId === "string" ? { request_id: requestId } : {});
      return await http(event as LambdaEvent, context);
    } finally {
      // Lambda may freeze the process as soon as the handler returns: write the metrics first.
      metrics.flush();
    }
  };
}
