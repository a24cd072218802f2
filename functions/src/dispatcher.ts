import { type Clock, systemClock } from "@sluice/core";
import { combineEvents, Handlers, ProcessorRuntime, processorMetrics } from "@sluice/processors";
import { EmfMetrics } from "@sluice/telemetry/emf";
import { createEngineFromEnv } from "./aws-engine.js";
import { API_SERVICE } from "./lambda-handler.js";

/**
 * The processors' dispatcher Lambda (ARCHITECTURE.md, "Processors", "Triggering"): the same
 * runtime and runners as the local server, woken differently —
 * - by the table's DynamoDB stream, filtered to inserts of index entries: each names the
 *   partition a commit moved (`partition#{topicId}#{p}` / `index#…`);
 * - by an EventBridge schedule, `{"sluice":"sweep"}`: every partition with lag;
 * - directly, `{"sluice":"wake","topic":"orders","partition":0}` (tests, operators).
 * It runs the woken runners within the invocation's time, less a margin to commit and release.
 * Processing errors never fail the invocation: progress lives in the table and the next wake-up or
 * sweep carries on, so the stream is never blocked by a failing processor.
 */
export interface StreamRecord {
  eventName?: string;
  dynamodb?: { Keys?: { pk?: { S?: string }; sk?: { S?: string } } };
}

export type DispatcherEvent =
  | { Records: StreamRecord[] }
  | { sluice: "sweep" }
  | { sluice: "wake"; topic: string; partition: number }
  | { source: "aws.events"; "detail-type"?: string };

export interface DispatcherContext {
  getRemainingTimeInMillis(): number;
}

export interface DispatchSummary {
  woken: { topicId?: string; topic?: string; partition: number }[];
  swept: boolean;
}

/** Time kept back from the invocation's end for runners to commit what is in flight and let go. */
const MARGIN_MS = 10_000;

export function createDispatcher(
  runtime: ProcessorRuntime,
  options: { clock?: Clock; metrics?: { flush(): void } } = {},
): (event: DispatcherEvent, context: DispatcherContext) => Promise<DispatchSummary> {
  const clock = options.clock ?? systemClock;
  return async (event, context) => {
    runtime.setDeadline(clock.now() + Math.max(1_000, context.getRemainingTimeInMillis() - MARGIN_MS));
    const summary: DispatchSummary = { woken: [], swept: false };
    await runtime.refresh();
    if ("Records" in event && Array.isArray(event.Records)) {
      const seen = new Set<string>();
      for (const record of event.Records) {
        const pk = record.dynamodb?.Keys?.pk?.S;
        const sk = record.dynamodb?.Keys?.sk?.S;
        const match = pk && sk?.startsWith("index#") ? /^partition#([^#]+)#(\d+)$/.exec(pk) : null;
        if (!match || seen.has(pk!)) continue;
        seen.add(pk!);
        summary.woken.push({ topicId: match[1]!, partition: Number(match[2]) });
        runtime.wake(match[1]!, Number(match[2]));
      }
    } else if ("sluice" in event && event.sluice === "wake") {
      summary.woken.push({ topic: event.topic, partition: event.partition });
      await runtime.wakeByName(event.topic, event.partition);
    } else {
      summary.swept = true;
      await runtime.sweep();
    }
    await runtime.settle();
    options.metrics?.flush();
    return summary;
  };
}

/**
 * The Lambda entry: the engine from the environment (as the HTTP function's), Lambda and webhook
 * handlers, the processors' series as EMF documents under the platform's `service`, so the
 * platform's dashboard and alarms (infra/lib/monitoring.ts) and each Processor's alarms see them,
 * and runner failures as JSON log lines.
 */
function fromEnvironment() {
  const metrics = new EmfMetrics({ service: API_SERVICE });
  const { engine, metadata } = createEngineFromEnv(process.env, metrics);
  const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fields)}\n`);
  const runtime = new ProcessorRuntime({
    engine,
    metadata,
    handlers: new Handlers(),
    lingerMs: 0,
    events: combineEvents(processorMetrics(metrics), {
      runnerError: (event) =>
        log({
          level: "ERROR",
          message: "processor runner failed",
          processor: event.processor,
          topic: event.topic,
          partition: event.partition,
          error: event.error instanceof Error ? event.error.message : String(event.error),
        }),
      sweepError: (error) =>
        log({
          level: "ERROR",
          message: "processor sweep failed",
          error: error instanceof Error ? error.message : String(error),
        }),
    }),
  });
  return createDispatcher(runtime, { metrics });
}

let dispatch: ReturnType<typeof createDispatcher> | undefined;

export const handler = (event: DispatcherEvent, context: DispatcherContext): Promise<DispatchSummary> => {
  dispatch ??= fromEnvironment();
  return dispatch(event, context);
};
