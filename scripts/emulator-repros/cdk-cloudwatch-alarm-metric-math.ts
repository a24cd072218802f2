import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * An alarm on a metric-math expression (`Metrics` with an `Expression`, our server-error-rate
 * alarm: 100 × errors / requests) is refused by MiniStack's CloudFormation: "Properties.Metrics
 * (metric math) is not supported; use MetricName and Namespace". AWS creates it. The emulator
 * deployment therefore turns that one alarm off (`serverErrorRateAlarm=false`).
 */
const stackName = reproName("cw-math");
const metric = (id: string, name: string) => ({
  Id: id,
  ReturnData: false,
  MetricStat: {
    Metric: { Namespace: "Sluice", MetricName: name, Dimensions: [{ Name: "service", Value: "sluice-api" }] },
    Period: 300,
    Stat: "Sum",
  },
});
let outcome: string;
try {
  await createStack(stackName, {
    Resources: {
      Alarm: {
        Type: "AWS::CloudWatch::Alarm",
        Properties: {
          Metrics: [
            { Id: "rate", Expression: "IF(requests > 0, 100 * errors / requests, 0)", ReturnData: true },
            metric("errors", "HttpErrors"),
            metric("requests", "HttpRequests"),
          ],
          EvaluationPeriods: 1,
          Threshold: 1,
          ComparisonOperator: "GreaterThanThreshold",
        },
      },
    },
  });
  outcome = "CREATE_COMPLETE";
} catch (error) {
  outcome = error instanceof Error ? error.message : String(error);
} finally {
  await deleteStack(stackName);
}
verdict("cdk-cloudwatch-alarm-metric-math", outcome === "CREATE_COMPLETE", outcome, "CREATE_COMPLETE");
