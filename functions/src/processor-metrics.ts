import type { ProcessorEvents, RuntimeEvents } from "@sluice/processors";

/** The CloudWatch namespace of the processors' metrics; the Processor construct's alarms read it. */
export const PROCESSOR_METRICS_NAMESPACE = "Sluice/Processors";

interface Totals {
  processed: number;
  deadLettered: number;
  lag: number | undefined;
}

/**
 * Processor metrics as CloudWatch Embedded Metric Format lines on stdout (Lambda's logs turn them
 * into metrics, no API call): per processor, the records processed and dead-lettered since the
 * last flush, and the lag the last sweep saw. Dimension `Processor`.
 */
export class ProcessorMetrics {
  private readonly totals = new Map<string, Totals>();

  constructor(private readonly print: (line: string) => void) {}

  events(): ProcessorEvents & RuntimeEvents {
    return {
      committed: (event) => {
        const totals = this.of(event.processor);
        totals.processed += event.processed;
        totals.deadLettered += event.deadLettered;
      },
      lag: (event) => {
        this.of(event.processor).lag = event.lag;
      },
      runnerError: (event) =>
        this.print(
          JSON.stringify({
            level: "error",
            message: "processor runner failed",
            processor: event.processor,
            topic: event.topic,
            partition: event.partition,
            error: event.error instanceof Error ? event.error.message : String(event.error),
          }),
        ),
      sweepError: (error) =>
        this.print(
          JSON.stringify({
            level: "error",
            message: "processor sweep failed",
            error: error instanceof Error ? error.message : String(error),
          }),
        ),
    };
  }

  /** One EMF line per processor with anything to say; the totals start again. */
  flush(timestampMs = Date.now()): void {
    for (const [processor, totals] of this.totals) {
      const metrics = [
        { Name: "Processed", Unit: "Count" },
        { Name: "DeadLettered", Unit: "Count" },
        ...(totals.lag === undefined ? [] : [{ Name: "Lag", Unit: "Count" }]),
      ];
      this.print(
        JSON.stringify({
          _aws: {
            Timestamp: timestampMs,
            CloudWatchMetrics: [
              { Namespace: PROCESSOR_METRICS_NAMESPACE, Dimensions: [["Processor"]], Metrics: metrics },
            ],
          },
          Processor: processor,
          Processed: totals.processed,
          DeadLettered: totals.deadLettered,
          ...(totals.lag === undefined ? {} : { Lag: totals.lag }),
        }),
      );
    }
    this.totals.clear();
  }

  private of(processor: string): Totals {
    let totals = this.totals.get(processor);
    if (!totals) {
      totals = { processed: 0, deadLettered: 0, lag: undefined };
      this.totals.set(processor, totals);
    }
    return totals;
  }
}
