import { Duration } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import {
  LAG_COLLECTION_EVENT as HANDLER_EVENT,
  API_SERVICE as HANDLER_SERVICE,
} from "../../functions/src/lambda-handler.js";
import { ALL_SERIES, CLOUDWATCH_NAMESPACE } from "../../packages/telemetry/src/series.js";
import { API_SERVICE, LAG_COLLECTION_EVENT, SLUICE_NAMESPACE } from "./monitoring.js";
import { resourcesOf, synthStack } from "./test-support.js";

const { template } = synthStack();
const apiId = Object.entries(resourcesOf(template, "AWS::Lambda::Function")).find(([, fn]) =>
  JSON.stringify(fn.Properties?.Environment ?? {}).includes("SLUICE_BUCKET"),
)?.[0] as string;

type Props = Record<string, unknown>;
const sluiceAlarms = () =>
  Object.values(resourcesOf(template, "AWS::CloudWatch::Alarm"))
    .map((alarm) => alarm.Properties as Props)
    .filter((alarm) => JSON.stringify(alarm).includes(`"${SLUICE_NAMESPACE}"`));
const alarmOn = (metric: string) =>
  sluiceAlarms().find(
    (alarm) => alarm.MetricName === metric || JSON.stringify(alarm.Metrics ?? []).includes(`"${metric}"`),
  )!;

/** The CloudWatch metric names and dimension sets the telemetry catalogue sends. */
const catalogue = new Map(
  ALL_SERIES.map((series) => [series.cloudwatch.metric, series.cloudwatch.dimensions]),
);

describe("golden-signal monitoring", () => {
  it("reads the metrics the functions write: same namespace, service, event and metric names", () => {
    expect(SLUICE_NAMESPACE).toBe(CLOUDWATCH_NAMESPACE);
    expect(API_SERVICE).toBe(HANDLER_SERVICE);
    expect(LAG_COLLECTION_EVENT).toEqual(HANDLER_EVENT);
    for (const alarm of sluiceAlarms()) {
      const metrics = alarm.MetricName
        ? [{ MetricName: alarm.MetricName, Dimensions: alarm.Dimensions }]
        : (alarm.Metrics as { MetricStat?: { Metric: { MetricName: string; Dimensions: unknown } } }[])
            .filter((m) => m.MetricStat)
            .map((m) => m.MetricStat!.Metric);
      for (const metric of metrics) {
        // Every alarm names a metric of the catalogue, under a dimension set the sink writes.
        const sets = catalogue.get(metric.MetricName as string);
        expect(sets, `${metric.MetricName} is in the catalogue`).toBeDefined();
        const names = (metric.Dimensions as { Name: string }[])
          .map((d) => d.Name)
          .filter((n) => n !== "service");
        expect(sets!.map((set) => [...set].sort().join(","))).toContain(names.sort().join(","));
      }
    }
  });

  it("alarms on error rate, p99 produce and fetch latency, lag age and dead-lettered records, with the documented thresholds", () => {
    expect(
      sluiceAlarms()
        .map((alarm) => alarm.AlarmDescription)
        .sort(),
    ).toEqual([
      "Sluice: a consumer group's oldest unconsumed record is older than 300 s for 15 minutes",
      "Sluice: more than 1% of HTTP requests answered with a server error (5xx) for 15 minutes",
      "Sluice: p99 fetch latency above 1000 ms for 15 minutes",
      "Sluice: p99 produce acknowledgement latency above 1000 ms for 15 minutes",
      "Sluice: processors dead-lettered at least 1 records in 5 minutes",
    ]);
    const service = [{ Name: "service", Value: "sluice-api" }];
    expect(alarmOn("ProduceLatency")).toMatchObject({
      Namespace: "Sluice",
      Dimensions: service,
      ExtendedStatistic: "p99",
      Threshold: 1000,
      Period: 300,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      ComparisonOperator: "GreaterThanThreshold",
      TreatMissingData: "notBreaching",
    });
    expect(alarmOn("FetchLatency")).toMatchObject({ ExtendedStatistic: "p99", Threshold: 1000 });
    expect(alarmOn("ConsumerGroupLagSeconds")).toMatchObject({
      Statistic: "Maximum",
      Threshold: 300,
      Dimensions: service,
    });
    expect(alarmOn("ProcessorDeadLettered")).toMatchObject({
      Statistic: "Sum",
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    const errorRate = alarmOn("HttpErrors");
    expect(errorRate).toMatchObject({
      Threshold: 1,
      EvaluationPeriods: 3,
      ComparisonOperator: "GreaterThanThreshold",
    });
    const metrics = errorRate.Metrics as {
      Id: string;
      Expression?: string;
      MetricStat?: { Metric: Props };
    }[];
    expect(metrics.find((m) => m.Expression)?.Expression).toBe(
      "IF(requests > 0, 100 * errors / requests, 0)",
    );
    expect(metrics.find((m) => m.Id === "errors")?.MetricStat?.Metric).toMatchObject({
      MetricName: "HttpErrors",
      Dimensions: expect.arrayContaining([{ Name: "class", Value: "server" }, ...service]),
    });
  });

  it("takes other thresholds, and a throughput alarm when asked", () => {
    const tuned = synthStack({
      platform: {
        monitoring: {
          serverErrorRatePercent: 5,
          produceLatencyP99: Duration.millis(250),
          consumerLagAge: Duration.minutes(30),
          minProducedRecords: 100,
        },
      },
    }).template;
    const alarms = Object.values(resourcesOf(tuned, "AWS::CloudWatch::Alarm")).map(
      (a) => a.Properties as Props,
    );
    const by = (metric: string) => alarms.find((a) => JSON.stringify(a).includes(`"${metric}"`))!;
    expect(by("ProduceLatency").Threshold).toBe(250);
    expect(by("ConsumerGroupLagSeconds").Threshold).toBe(1800);
    expect(by("HttpErrors").Threshold).toBe(5);
    expect(by("ProduceRecords")).toMatchObject({
      Threshold: 100,
      Period: 900,
      ComparisonOperator: "LessThanThreshold",
      TreatMissingData: "breaching",
    });
  });

  it("collects lag every minute by invoking the HTTP function with the lag-collection event", () => {
    // The maintenance function has its own schedule; this one invokes the HTTP function.
    const rules = Object.values(resourcesOf(template, "AWS::Events::Rule"))
      .map((r) => r.Properties as Props)
      .filter((rule) => JSON.stringify(rule.Targets).includes(apiId));
    expect(rules).toHaveLength(1);
    const [rule] = rules;
    expect(rule).toMatchObject({ ScheduleExpression: "rate(1 minute)", State: "ENABLED" });
    const [target] = rule!.Targets as Props[];
    expect(target).toMatchObject({
      Arn: { "Fn::GetAtt": [apiId, "Arn"] },
      RetryPolicy: { MaximumRetryAttempts: 0 },
    });
    expect(JSON.parse(target!.Input as string)).toEqual(LAG_COLLECTION_EVENT);
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [apiId, "Arn"] },
    });
  });

  it("the dashboard shows throughput, latency, errors and lag per topic, group and processor", () => {
    const [dashboard] = Object.values(resourcesOf(template, "AWS::CloudWatch::Dashboard"));
    // The body is a Fn::Join of text and tokens (the region, names): the text is enough here.
    const [, parts] = (dashboard!.Properties as { DashboardBody: { "Fn::Join": [string, unknown[]] } })
      .DashboardBody["Fn::Join"];
    const body = JSON.parse(parts.map((part) => (typeof part === "string" ? part : "TOKEN")).join("")) as {
      widgets: { properties: { title?: string; metrics?: unknown[] } }[];
    };
    const text = JSON.stringify(body.widgets);
    for (const metric of [
      "ProduceRecords",
      "FetchRecords",
      "ProduceBytes",
      "ProduceLatency",
      "FetchLatency",
      "HttpErrors",
      "HttpRequests",
      "ConsumerGroupLagRecords",
      "ConsumerGroupLagSeconds",
      "ProcessorRecordsProcessed",
      "ProcessorDeadLettered",
      "ProcessorIteratorAge",
      "ProcessorFailures",
    ]) {
      expect(text, metric).toContain(metric);
    }
    const searches = body.widgets.flatMap((widget) =>
      (widget.properties.metrics ?? [])
        .map((line) => (line as [{ expression?: string }])[0]?.expression)
        .filter((expression): expression is string => expression?.startsWith("SEARCH") === true),
    );
    expect(searches).toEqual(
      expect.arrayContaining([
        `SEARCH('{Sluice,service,topic} MetricName="ProduceRecords" service="sluice-api"', 'Sum', 300)`,
        `SEARCH('{Sluice,service,topic} MetricName="ProduceLatency" service="sluice-api"', 'p99', 300)`,
        `SEARCH('{Sluice,service,class,topic} MetricName="HttpErrors" service="sluice-api"', 'Sum', 300)`,
        `SEARCH('{Sluice,service,group} MetricName="ConsumerGroupLagRecords" service="sluice-api"', 'Maximum', 300)`,
        `SEARCH('{Sluice,service,group} MetricName="ConsumerGroupLagSeconds" service="sluice-api"', 'Maximum', 300)`,
        `SEARCH('{Sluice,service,processor} MetricName="ProcessorIteratorAge" service="sluice-api"', 'Maximum', 300)`,
      ]),
    );
    const titles = body.widgets.map((widget) => widget.properties.title);
    expect(titles).toEqual(
      expect.arrayContaining(["Throughput per topic: records produced", "Lag per consumer group: records"]),
    );
  });

  it("turns on X-Ray tracing only when asked", () => {
    const fn = resourcesOf(template, "AWS::Lambda::Function")[apiId]!.Properties as Props;
    expect(fn.TracingConfig).toBeUndefined();
    const traced = synthStack({ platform: { tracing: true } }).template;
    traced.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: { SLUICE_CLUSTER_ID: "sluice" } },
      TracingConfig: { Mode: "Active" },
    });
  });

  it("leaves the error-rate alarm out when asked (emulators refuse metric math), the others stay", () => {
    const noMath = synthStack({ platform: { monitoring: { serverErrorRatePercent: false } } }).template;
    const alarms = Object.values(resourcesOf(noMath, "AWS::CloudWatch::Alarm")).map(
      (a) => a.Properties as Props,
    );
    expect(alarms.filter((a) => a.Metrics !== undefined)).toEqual([]);
    expect(alarms.filter((a) => a.Namespace === "Sluice")).toHaveLength(4);
  });

  it("can be left out: no Sluice alarms and no schedule", () => {
    const bare = synthStack({ platform: { monitoring: false } }).template;
    const rules = Object.values(resourcesOf(bare, "AWS::Events::Rule"));
    // Only the maintenance function's schedule is left.
    expect(rules.map((rule) => rule.Properties?.ScheduleExpression)).toEqual(["rate(5 minutes)"]);
    const alarms = Object.values(resourcesOf(bare, "AWS::CloudWatch::Alarm"));
    expect(alarms.filter((a) => JSON.stringify(a).includes('"Sluice"'))).toEqual([]);
  });
});
