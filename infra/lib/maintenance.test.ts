import { Duration } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { onlyLogicalId, propertyOf, resourcesOf, synthStack } from "./test-support.js";

const { template } = synthStack();
const bucketId = onlyLogicalId(template, "AWS::S3::Bucket");
const tableId = onlyLogicalId(template, "AWS::DynamoDB::Table");
const functions = resourcesOf(template, "AWS::Lambda::Function");
const [maintenanceId, maintenance] = Object.entries(functions).find(([, fn]) =>
  String(fn.Properties?.Description).startsWith("Sluice maintenance"),
)!;

describe("the maintenance function", () => {
  it("runs nodejs22.x with the bucket and table, five minutes at most", () => {
    expect(maintenance.Properties).toMatchObject({
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 1024,
      Timeout: 300,
      Environment: { Variables: { SLUICE_BUCKET: { Ref: bucketId }, SLUICE_TABLE: { Ref: tableId } } },
    });
  });

  it("is run by an EventBridge rule every five minutes, once per run, with permission to invoke it", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      State: "ENABLED",
      Targets: [
        {
          Arn: { "Fn::GetAtt": [maintenanceId, "Arn"] },
          Id: "Target0",
          RetryPolicy: { MaximumRetryAttempts: 0 },
        },
      ],
    });
    // The other rule is the monitoring's lag collection, which invokes the HTTP function.
    const [ruleId] = Object.entries(resourcesOf(template, "AWS::Events::Rule")).find(([, rule]) =>
      JSON.stringify(rule.Properties?.Targets).includes(maintenanceId),
    )!;
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: { "Fn::GetAtt": [maintenanceId, "Arn"] },
      Principal: "events.amazonaws.com",
      SourceArn: { "Fn::GetAtt": [ruleId, "Arn"] },
    });
  });

  it("has its own role with the platform's data grants and its own log group", () => {
    const roleId = (propertyOf<{ "Fn::GetAtt": string[] }>(maintenance, "Role")["Fn::GetAtt"] ?? [])[0]!;
    const policies = Object.values(resourcesOf(template, "AWS::IAM::Policy")).filter((policy) =>
      JSON.stringify(policy.Properties?.Roles).includes(roleId),
    );
    const actions = policies.flatMap((policy) =>
      propertyOf<{ Statement: { Action: string | string[] }[] }>(policy, "PolicyDocument").Statement.flatMap(
        (statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]),
      ),
    );
    expect(actions).toEqual(
      expect.arrayContaining([
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
        "logs:PutLogEvents",
      ]),
    );
    const logGroupRef = propertyOf<{ LogGroup: { Ref: string } }>(maintenance, "LoggingConfig").LogGroup.Ref;
    expect(resourcesOf(template, "AWS::Logs::LogGroup")[logGroupRef]?.Properties?.RetentionInDays).toBe(30);
  });

  it("alarms when a run fails", () => {
    const alarm = Object.values(resourcesOf(template, "AWS::CloudWatch::Alarm"))
      .map((a) => a.Properties ?? {})
      .find((a) => JSON.stringify(a.Dimensions).includes(maintenanceId));
    expect(alarm).toMatchObject({
      Namespace: "AWS/Lambda",
      MetricName: "Errors",
      Statistic: "Sum",
      Period: 900,
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      TreatMissingData: "notBreaching",
    });
  });

  it("takes its schedule, timeout and segment size, and can be left out", () => {
    const tuned = synthStack({
      platform: {
        maintenance: {
          schedule: Duration.minutes(1),
          timeout: Duration.minutes(10),
          segmentBytes: 4_194_304,
        },
      },
    }).template;
    tuned.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 minute)" });
    tuned.hasResourceProperties("AWS::Lambda::Function", {
      Timeout: 600,
      Environment: { Variables: { SLUICE_SEGMENT_BYTES: "4194304" } },
    });
    const without = synthStack({ platform: { maintenance: false } }).template;
    expect(
      Object.values(resourcesOf(without, "AWS::Events::Rule")).map(
        (rule) => rule.Properties?.ScheduleExpression,
      ),
    ).toEqual(["rate(1 minute)"]); // the monitoring's lag collection only
    expect(Object.keys(resourcesOf(without, "AWS::Lambda::Function")).length).toBe(
      Object.keys(functions).length - 1,
    );
  });
});
