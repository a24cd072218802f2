import { type Metrics, series } from "@sluice/telemetry";
import type { ProcessorEvents } from "./runner.js";
import type { RuntimeEvents } from "./runtime.js";

/**
 * Processor events recorded into the catalogue's processor series (packages/telemetry,
 * docs/operations.md): records done and dead-lettered, handler calls failed and their duration,
 * retries, iterator age, lag per partition. Entry points give the sink (Prometheus in the local
 * server, EMF in the dispatcher); without one nothing is measured.
 */
export function processorMetrics(metrics: Metrics): ProcessorEvents & RuntimeEvents {
  const processed = metrics.counter(series.processorRecordsProcessed);
  const deadLettered = metrics.counter(series.processorDeadLettered);
  const failures = metrics.counter(series.processorFailures);
  const retries = metrics.counter(series.processorRetries);
  const iteratorAge = metrics.gauge(series.processorIteratorAge);
  const lag = metrics.gauge(series.processorLagRecords);
  const duration = metrics.histogram(series.processorHandlerDuration);
  const labels = (event: { processor: string; topic: string; partition: number }) => ({
    processor: event.processor,
    topic: event.topic,
    partition: event.partition,
  });
  return {
    committed: (event) => {
      processed.add(event.processed + event.filtered, labels(event));
      if (event.deadLettered > 0) deadLettered.add(event.deadLettered, labels(event));
    },
    handlerCalled: (event) => {
      duration.record(event.durationMs / 1000, { processor: event.processor });
      iteratorAge.set(event.iteratorAgeMs / 1000, labels(event));
      if (event.failed || event.namedFailures > 0) failures.add(1, labels(event));
    },
    recordFailed: (event) => {
      if (!event.spent) retries.add(1, labels(event));
    },
    partitionLag: (event) => lag.set(event.lag, labels(event)),
  };
}

/** Several listeners as one: each is told of every event it has a handler for. */
export function combineEvents(
  ...listeners: (ProcessorEvents & RuntimeEvents)[]
): ProcessorEvents & RuntimeEvents {
  const each =
    <K extends keyof (ProcessorEvents & RuntimeEvents)>(name: K) =>
    (event: never) => {
      for (const listener of listeners) (listener[name] as ((event: never) => void) | undefined)?.(event);
    };
  return {
    committed: each("committed"),
    recordFailed: each("recordFailed"),
    handlerCalled: each("handlerCalled"),
    runnerError: each("runnerError"),
    lag: each("lag"),
    partitionLag: each("partitionLag"),
    sweepError: each("sweepError"),
  };
}
