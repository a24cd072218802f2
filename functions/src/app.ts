import { OpenAPIHono } from "@hono/zod-openapi";
import { type Clock, NotFoundError } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { ConsumerGroups, RestConsumers } from "@sluice/groups";
import { ProcessorAdmin } from "@sluice/processors";
import { ShareGroups } from "@sluice/queues";
import type { MetadataStore } from "@sluice/storage";
import { type Metrics, noopMetrics } from "@sluice/telemetry";
import type { MiddlewareHandler } from "hono";
import { AppendCoalescer } from "./append-coalescer.js";
import type { AppContext } from "./context.js";
import { type OpenApiDocument, renderDocsPage } from "./docs-page.js";
import {
  type ClientDisconnectListener,
  consoleLogger,
  createErrorHandler,
  type Logger,
  notFoundHandler,
  validationHook,
} from "./http-errors.js";
import { HttpMeter } from "./http-meter.js";
import { DEFAULT_LIMITS, type HttpLimits } from "./limits.js";
import { allowedMethods } from "./methods.js";
import { baseUrlFor, normalisePublicUrl, setBaseUrl } from "./resources.js";
import { CachedRouter } from "./route-cache.js";
import { registerClusterRoutes } from "./routes/clusters.js";
import { registerConfigRoutes } from "./routes/configs.js";
import { registerConsumerGroupRoutes } from "./routes/consumer-groups.js";
import { registerConsumerV2Routes } from "./routes/consumers-v2.js";
import { type MetricsExposition, registerMetricsRoute } from "./routes/metrics.js";
import { registerPartitionRoutes } from "./routes/partitions.js";
import { registerProcessorRoutes } from "./routes/processors.js";
import { registerProduceRoutes } from "./routes/produce.js";
import { registerProduceBatchRoutes } from "./routes/produce-batches.js";
import { registerProducerRoutes } from "./routes/producers.js";
import { registerReadRoutes } from "./routes/read.js";
import { registerRootRoutes } from "./routes/root.js";
import { registerShareGroupRoutes } from "./routes/share-groups.js";
import { registerTopicRoutes } from "./routes/topics.js";

export interface CreateAppOptions {
  engine: Engine;
  /** The engine's metadata store, which also holds the consumer groups and v2 consumer instances. */
  metadata: MetadataStore;
  /** Drives group sessions and v2 consumer instances. Default: the system clock. */
  clock?: Clock;
  /** Consumer groups built elsewhere (their session settings); default: over `engine` and `metadata`. */
  groups?: ConsumerGroups;
  /** Share groups built elsewhere (their session settings); default: over `engine` and `metadata`. */
  shareGroups?: ShareGroups;
  /** The one cluster this deployment serves (`/v3/clusters/{cluster_id}`). */
  clusterId: string;
  limits?: Partial<HttpLimits>;
  /** Receives server-side failures (500, 503) with their cause. Default: console.error. */
  logger?: Logger;
  /** Reported as every topic's replication_factor. Default 3: S3 and DynamoDB keep three copies. */
  replicationFactor?: number;
  /**
   * Where clients reach this deployment, e.g. `https://sluice.example.com` (a path is kept as a
   * prefix): every `self` and `related` link starts with it. Without it, links use the request's
   * origin when its host is a plain host[:port] (the Host header is the client's to choose, so set
   * this behind a proxy or a custom domain).
   */
  publicUrl?: string;
  /** Told of each request whose client closed the connection before its body ended. */
  onClientDisconnect?: ClientDisconnectListener;
  /**
   * Processor administration built elsewhere (the local server's, whose runtime wants to hear of
   * changes at once); default: over `engine` and `metadata`.
   */
  processors?: { admin: ProcessorAdmin; changed?: (name: string) => void };
  /** Where HTTP requests and errors are measured (docs/operations.md). Default: nowhere. */
  metrics?: Metrics;
  /** Serves `GET /metrics` (the local server's Prometheus sink). Default: no such route. */
  metricsExposition?: MetricsExposition;
  /**
   * Aborted when the server stops: long-polls and event streams then end with an answer instead
   * of a cut connection. Default: none (a Lambda's requests end with the invocation).
   */
  shutdown?: AbortSignal;
}

export const API_VERSION = "0.1.0";

const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Sluice HTTP API",
    version: API_VERSION,
    description:
      "Kafka-style topics, partitions and offsets over HTTP, in the shapes of the Confluent REST Proxy v3. Every error is {error_code, message}.",
  },
};

/**
 * The whole HTTP API as one Hono app. It holds no Node-server specifics: the same object serves
 * Lambda (hono/aws-lambda), the local server and in-process tests (`app.request`).
 */
export function createApp(options: CreateAppOptions): OpenAPIHono {
  const logger = options.logger ?? consoleLogger;
  const groups =
    options.groups ??
    new ConsumerGroups({
      engine: options.engine,
      metadata: options.metadata,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  const context: AppContext = {
    engine: options.engine,
    groups,
    restConsumers: new RestConsumers({
      groups,
      engine: options.engine,
      metadata: options.metadata,
      ...(options.clock ? { clock: options.clock } : {}),
    }),
    shareGroups:
      options.shareGroups ??
      new ShareGroups({
        engine: options.engine,
        metadata: options.metadata,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.metrics ? { metrics: options.metrics } : {}),
      }),
    clusterId: options.clusterId,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    logger,
    replicationFactor: options.replicationFactor ?? 3,
    processors:
      options.processors?.admin ??
      new ProcessorAdmin({
        engine: options.engine,
        metadata: options.metadata,
        ...(options.clock ? { clock: options.clock } : {}),
      }),
    ...(options.processors?.changed ? { processorsChanged: options.processors.changed } : {}),
    meter: new HttpMeter(options.metrics ?? noopMetrics, options.engine.activity),
    appendCoalescer: new AppendCoalescer((topic, records) =>
      options.engine.appendInChunks({ topic, records }),
    ),
    ...(options.shutdown ? { shutdown: options.shutdown } : {}),
  };
  const publicUrl = options.publicUrl === undefined ? undefined : normalisePublicUrl(options.publicUrl);
  const app = new OpenAPIHono({ defaultHook: validationHook, router: new CachedRouter() });
  app.onError(createErrorHandler(logger, options.onClientDisconnect));
  // A path the API knows, asked with a method it does not serve: 405 with the methods it does.
  let allowed: ((path: string) => string[]) | undefined;
  app.notFound((c) => {
    allowed ??= allowedMethods(app.routes);
    const methods = allowed(c.req.path);
    if (methods.length === 0) return notFoundHandler(c);
    c.header("Allow", methods.join(", "));
    return c.json(
      {
        error_code: 405,
        message: `method ${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(", ")}`,
      },
      405,
    );
  });
  app.use("*", context.meter.middleware);
  app.use("*", async (c, next) => {
    setBaseUrl(c, () => baseUrlFor(c.req.raw, publicUrl));
    await next();
  });

  const requireCluster: MiddlewareHandler = async (c, next) => {
    const clusterId = c.req.param("cluster_id");
    if (clusterId !== context.clusterId) {
      throw new NotFoundError(
        `cluster not found: ${clusterId} (this deployment serves cluster ${context.clusterId})`,
      );
    }
    await next();
  };
  app.use("/v3/clusters/:cluster_id", requireCluster);
  app.use("/v3/clusters/:cluster_id/*", requireCluster);

  registerRootRoutes(app, context, API_VERSION);
  registerClusterRoutes(app, context);
  registerTopicRoutes(app, context);
  registerConfigRoutes(app, context);
  registerPartitionRoutes(app, context);
  registerProduceRoutes(app, context);
  registerProduceBatchRoutes(app, context);
  registerReadRoutes(app, context);
  registerProducerRoutes(app, context);
  registerConsumerGroupRoutes(app, context);
  registerConsumerV2Routes(app, context);
  registerShareGroupRoutes(app, context);
  registerProcessorRoutes(app, context);
  if (options.metricsExposition) registerMetricsRoute(app, options.metricsExposition);

  app.doc31("/openapi.json", OPENAPI_INFO);
  let docsPage: string | undefined;
  app.get("/docs", (c) => {
    docsPage ??= renderDocsPage(app.getOpenAPI31Document(OPENAPI_INFO) as OpenApiDocument);
    return c.html(docsPage);
  });
  return app;
}
