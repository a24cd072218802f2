import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "@sluice/engine";
import type { ConsumerGroups, RestConsumers } from "@sluice/groups";
import type { ProcessorAdmin } from "@sluice/processors";
import type { ShareGroups } from "@sluice/queues";
import type { AppendCoalescer } from "./append-coalescer.js";
import type { Logger } from "./http-errors.js";
import type { HttpMeter } from "./http-meter.js";
import type { HttpLimits } from "./limits.js";

/**
 * What every route module is given: the engine, the consumer groups over the same store, the
 * cluster it answers for, limits and a logger.
 */
export interface AppContext {
  engine: Engine;
  groups: ConsumerGroups;
  /** Confluent v2 consumer instances, kept in the store so any server can answer any call. */
  restConsumers: RestConsumers;
  /** Share groups (queues), over the same store. */
  shareGroups: ShareGroups;
  clusterId: string;
  limits: HttpLimits;
  logger: Logger;
  /** Reported as each topic's replication_factor (see docs/http-api.md). */
  replicationFactor: number;
  /** Processor definitions over the same store. */
  processors: ProcessorAdmin;
  /** Told when a processor was created, resumed, paused or deleted here (the local runtime looks at once). */
  processorsChanged?: (name: string) => void;
  /** Counts requests and errors answered (docs/operations.md). */
  meter: HttpMeter;
  /** Joins concurrent produce requests of a few records into one append (append-coalescer.ts). */
  appendCoalescer: AppendCoalescer;
  /** Aborted when the server stops: ends waits (long-polls, event streams) with an answer. */
  shutdown?: AbortSignal;
}

/**
 * What a route that waits (a long-poll, an event stream) watches: the client's request, and the
 * server's shutdown when there is one. Made only by the routes that wait: every other request
 * is spared an AbortSignal (and, on the Node server, a full Request behind its signal).
 */
export function waitSignal(request: Request, context: Pick<AppContext, "shutdown">): AbortSignal {
  return context.shutdown ? AbortSignal.any([request.signal, context.shutdown]) : request.signal;
}

export type SluiceApp = OpenAPIHono;

/**
 * A response in a media type the typed route responses cannot express (`application/x-ndjson`
 * matches their JSON pattern but is not one JSON value). The route still documents it.
 */
export function untypedResponse(response: Response): never {
  return response as never;
}
