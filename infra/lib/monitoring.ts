import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

/** The CloudWatch namespace the functions' EMF metrics land in (packages/telemetry/src/series.ts). */
export const SLUICE_NAMESPACE = "Sluice";

/** The `service` dimension of the HTTP function's metrics (functions/src/lambda-handler.ts). */
export const API_SERVICE = "sluice-api";

/** The event the schedule sends the HTTP function to collect consumer-group lag (functions/src/lambda-handler.ts). */
export const LAG_COLLECTION_EVENT = { source: "sluice.monitoring", action: "collect-lag" } as const;

/**
 * Alarm thresholds, each documented in docs/operations.md. Every alarm treats missing data as
 * not breaching: a platform nobody uses is healthy.
 */
export interface SluiceMonitoringOptions {
  /**
   * Alarm when more than this percentage of HTTP requests are answered with a server error (5xx)
   * in each of three consecutive 5-minute periods; `false`: no such alarm (it is a metric-math
   * alarm, which some emulators refuse). @default 1 (percent)
   */
  readonly serverErrorRatePercent?: number | false;
  /** Alarm when p99 produce acknowledgement latency stays above this for 15 minutes. @default 1 second */
  readonly produceLatencyP99?: Duration;
  /** Alarm when p99 fetch latency stays above this for 15 minutes. @default 1 second */
  readonly fetchLatencyP99?: Duration;
  /**
   * Alarm when some consumer group's oldest unconsumed record is older than this for 15 minutes
   * (lag in time: independent of the topic's rate). @default 5 minutes
   */
  readonly consumerLagAge?: Duration;
  /** Alarm when processors dead-letter at least this many records in 5 minutes. @default 1 */
  readonly deadLetteredRecords?: number;
  /**
   * Alarm when fewer records than this are produced in 15 minutes: a pipeline whose sources
   * stopped. Only meaningful with a steady workload. @default no such alarm
   */
  readonly minProducedRecords?: number;
  /**
   * How often the HTTP function reads every consumer group's lag into CloudWatch (an EventBridge
   * schedule; one short invocation each time). `false`: never, and the lag alarm never fires.
   * @default 1 minute
   */
  readonly lagCollectionInterval?: Duration | false;
  /** Where the alarms notify. @default none */
  readonly actions?: cloudwatch.IAlarmAction[];
}

export interface SluiceMonitoringProps extends SluiceMonitoringOptions {
  /** The HTTP function: it writes the metrics, and collects lag on the schedule. */
  readonly api: lambda.IFunction;
  /** The `service` dimension of its metrics. @default API_SERVICE */
  readonly service?: string;
}

const PERIOD = Duration.minutes(5);

/**
 * The four golden signals of a Sluice platform in CloudWatch — throughput, latency, errors and
 * lag, plus dead-lettered records — as alarms with documented thresholds and dashboard widgets
 * (docs/operations.md). The metrics come from the functions' EMF documents (namespace `Sluice`).
 */
export class SluiceMonitoring extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly lagSchedule?: events.Rule;
  private readonly service: string;

  constructor(scope: Construct, id: string, props: SluiceMonitoringProps) {
    super(scope, id);
    this.service = props.service ?? API_SERVICE;

    const interval = props.lagCollectionInterval ?? Duration.minutes(1);
    if (interval !== false) {
      this.lagSchedule = new events.Rule(this, "LagCollection", {
        description: "Sluice: read every consumer group's lag into CloudWatch",
        schedule: events.Schedule.rate(interval),
        targets: [
          new targets.LambdaFunction(props.api, {
            event: events.RuleTargetInput.fromObject(LAG_COLLECTION_EVENT),
            retryAttempts: 0,
          }),
        ],
      });
    }

    const errorRate = props.serverErrorRatePercent ?? 1;
    if (errorRate !== false) {
      this.alarm("ServerErrorRateAlarm", {
        alarmDescription: `Sluice: more than ${errorRate}% of HTTP requests answered with a server error (5xx) for 15 minutes`,
        metric: this.serverErrorRate(),
        threshold: errorRate,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
      });
    }
    const produceP99 = props.produceLatencyP99 ?? Duration.seconds(1);
    this.alarm("ProduceLatencyP99Alarm", {
      alarmDescription: `Sluice: p99 produce acknowledgement latency above ${produceP99.toMilliseconds()} ms for 15 minutes`,
      metric: this.metric("ProduceLatency", cloudwatch.Stats.percentile(99)),
      threshold: produceP99.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
    });
    const fetchP99 = props.fetchLatencyP99 ?? Duration.seconds(1);
    this.alarm("FetchLatencyP99Alarm", {
      alarmDescription: `Sluice: p99 fetch latency above ${fetchP99.toMilliseconds()} ms for 15 minutes`,
      metric: this.metric("FetchLatency", cloudwatch.Stats.percentile(99)),
      threshold: fetchP99.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
    });
    const lagAge = props.consumerLagAge ?? Duration.minutes(5);
    this.alarm("ConsumerLagAlarm", {
      alarmDescription: `Sluice: a consumer group's oldest unconsumed record is older than ${lagAge.toSeconds()} s for 15 minutes`,
      metric: this.metric("ConsumerGroupLagSeconds", cloudwatch.Stats.MAXIMUM),
      threshold: lagAge.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
    });
    const deadLettered = props.deadLetteredRecords ?? 1;
    this.alarm("DeadLetteredAlarm", {
      alarmDescription: `Sluice: processors dead-lettered at least ${deadLettered} records in 5 minutes`,
      metric: this.metric("ProcessorDeadLettered", cloudwatch.Stats.SUM),
      threshold: deadLettered,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
    if (props.minProducedRecords !== undefined) {
      this.alarm("ThroughputAlarm", {
        alarmDescription: `Sluice: fewer than ${props.minProducedRecords} records produced in 15 minutes`,
        metric: this.metric("ProduceRecords", cloudwatch.Stats.SUM, Duration.minutes(15)),
        threshold: props.minProducedRecords,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // No records at all is the very thing this alarm is for.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    }
    for (const alarm of this.alarms) alarm.addAlarmAction(...(props.actions ?? []));
  }

  /** A service-wide Sluice metric (the EMF dimension set with `service` alone). */
  metric(name: string, statistic: string, period: Duration = PERIOD): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: SLUICE_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: this.service },
      statistic,
      period,
    });
  }

  /** Percent of HTTP requests answered with a 5xx. */
  serverErrorRate(): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      label: "server errors (% of requests)",
      expression: "IF(requests > 0, 100 * errors / requests, 0)",
      usingMetrics: {
        errors: new cloudwatch.Metric({
          namespace: SLUICE_NAMESPACE,
          metricName: "HttpErrors",
          dimensionsMap: { service: this.service, class: "server" },
          statistic: cloudwatch.Stats.SUM,
          period: PERIOD,
        }),
        requests: this.metric("HttpRequests", cloudwatch.Stats.SUM),
      },
      period: PERIOD,
    });
  }

  /** One line per value of `dimension` (a topic, a group, a processor), found by a SEARCH. */
  private perDimension(name: string, dimension: string, statistic: string) {
    return new cloudwatch.MathExpression({
      expression: `SEARCH('{${SLUICE_NAMESPACE},service,${dimension}} MetricName="${name}" service="${this.service}"', '${statistic}', 300)`,
      usingMetrics: {},
      period: PERIOD,
    });
  }

  /** The golden-signal widgets: throughput, latency, errors and lag per topic, group and processor. */
  addWidgets(dashboard: cloudwatch.Dashboard): void {
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          "## Golden signals\nThroughput, latency, errors and lag from the functions' metrics (namespace `Sluice`); thresholds in docs/operations.md.",
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "Throughput: records produced and fetched (per 5 min)",
        left: [
          this.metric("ProduceRecords", cloudwatch.Stats.SUM).with({ label: "produced" }),
          this.metric("FetchRecords", cloudwatch.Stats.SUM).with({ label: "fetched" }),
        ],
        right: [
          this.metric("ProduceBytes", cloudwatch.Stats.SUM).with({ label: "bytes produced" }),
          this.metric("FetchBytes", cloudwatch.Stats.SUM).with({ label: "bytes fetched" }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Throughput per topic: records produced",
        left: [this.perDimension("ProduceRecords", "topic", "Sum")],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Latency: p50 and p99 (ms)",
        left: [
          this.metric("ProduceLatency", cloudwatch.Stats.percentile(99)).with({ label: "produce p99" }),
          this.metric("ProduceLatency", cloudwatch.Stats.percentile(50)).with({ label: "produce p50" }),
          this.metric("FetchLatency", cloudwatch.Stats.percentile(99)).with({ label: "fetch p99" }),
          this.metric("FetchLatency", cloudwatch.Stats.percentile(50)).with({ label: "fetch p50" }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Latency per topic: produce p99 (ms)",
        left: [this.perDimension("ProduceLatency", "topic", "p99")],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Errors: server errors (% of requests) and client errors",
        left: [this.serverErrorRate()],
        right: [
          new cloudwatch.Metric({
            namespace: SLUICE_NAMESPACE,
            metricName: "HttpErrors",
            dimensionsMap: { service: this.service, class: "client" },
            statistic: cloudwatch.Stats.SUM,
            period: PERIOD,
            label: "client errors (4xx)",
          }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Errors per topic",
        left: [
          new cloudwatch.MathExpression({
            expression: `SEARCH('{${SLUICE_NAMESPACE},service,class,topic} MetricName="HttpErrors" service="${this.service}"', 'Sum', 300)`,
            usingMetrics: {},
            period: PERIOD,
          }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Lag per consumer group: records",
        left: [this.perDimension("ConsumerGroupLagRecords", "group", "Maximum")],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Lag per consumer group: oldest unconsumed record (s)",
        left: [this.perDimension("ConsumerGroupLagSeconds", "group", "Maximum")],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Processors: records processed and dead-lettered",
        left: [this.perDimension("ProcessorRecordsProcessed", "processor", "Sum")],
        right: [this.metric("ProcessorDeadLettered", cloudwatch.Stats.SUM).with({ label: "dead-lettered" })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Processors: iterator age (s) and failures",
        left: [this.perDimension("ProcessorIteratorAge", "processor", "Maximum")],
        right: [this.perDimension("ProcessorFailures", "processor", "Sum")],
        width: 12,
      }),
    );
  }

  private alarm(
    id: string,
    props: Omit<cloudwatch.AlarmProps, "treatMissingData"> & {
      treatMissingData?: cloudwatch.TreatMissingData;
    },
  ): void {
    this.alarms.push(
      new cloudwatch.Alarm(this, id, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...props,
      }),
    );
  }
}
