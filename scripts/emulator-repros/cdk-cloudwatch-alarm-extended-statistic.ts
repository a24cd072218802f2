import { awsJson } from "../../infra/emulator/aws-query.js";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * An alarm on a percentile (ExtendedStatistic p99, our duration alarm) has no Statistic. MiniStack
 * reports Statistic=Average beside ExtendedStatistic=p99 in DescribeAlarms (its evaluator does use
 * p99), which misleads tools that read Statistic first.
 */
const stackName = reproName("cw-p99");
const stack = await createStack(stackName, {
  Resources: {
    Alarm: {
      Type: "AWS::CloudWatch::Alarm",
      Properties: {
        Namespace: "AWS/Lambda",
        MetricName: "Duration",
        Dimensions: [{ Name: "FunctionName", Value: "nothing" }],
        ExtendedStatistic: "p99",
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1000,
        ComparisonOperator: "GreaterThanThreshold",
      },
    },
  },
});
let statistic: string | undefined;
let extended: string | undefined;
try {
  // The JSON protocol, as current SDKs and the AWS CLI call CloudWatch.
  const described = (await awsJson("monitoring", "GraniteServiceVersion20100801.DescribeAlarms", {
    AlarmNames: [stack.resources.Alarm],
  })) as { MetricAlarms?: { Statistic?: string; ExtendedStatistic?: string }[] };
  statistic = described.MetricAlarms?.[0]?.Statistic;
  extended = described.MetricAlarms?.[0]?.ExtendedStatistic;
} finally {
  await deleteStack(stackName);
}
verdict(
  "cdk-cloudwatch-alarm-extended-statistic",
  extended === "p99" && !statistic,
  `ExtendedStatistic=${extended} Statistic=${statistic}`,
  "ExtendedStatistic=p99 and no Statistic",
);
