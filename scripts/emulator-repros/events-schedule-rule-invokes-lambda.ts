import { sign } from "../../infra/emulator/aws-query.js";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * An EventBridge rule with `ScheduleExpression: rate(1 minute)` and a Lambda target must invoke
 * the function every minute (how the maintenance function runs in AWS). This deploys such a rule,
 * a function that logs a marker when invoked, and the permission EventBridge needs, waits a
 * little over two minutes, and looks for the marker in the function's log group.
 */
const stackName = reproName("events-schedule");
const marker = `scheduled-invocation-${Date.now().toString(36)}`;
const code = `exports.handler = async (event) => { console.log(${JSON.stringify(marker)}, JSON.stringify(event)); return {}; };`;

const stack = await createStack(stackName, {
  Resources: {
    Role: {
      Type: "AWS::IAM::Role",
      Properties: {
        AssumeRolePolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        },
      },
    },
    Logs: { Type: "AWS::Logs::LogGroup", Properties: { RetentionInDays: 1 } },
    Probe: {
      Type: "AWS::Lambda::Function",
      Properties: {
        LoggingConfig: { LogGroup: { Ref: "Logs" } },
        Runtime: "nodejs22.x",
        Handler: "index.handler",
        Role: { "Fn::GetAtt": ["Role", "Arn"] },
        Code: { ZipFile: code },
      },
    },
    Schedule: {
      Type: "AWS::Events::Rule",
      Properties: {
        ScheduleExpression: "rate(1 minute)",
        State: "ENABLED",
        Targets: [{ Arn: { "Fn::GetAtt": ["Probe", "Arn"] }, Id: "probe" }],
      },
    },
    Permission: {
      Type: "AWS::Lambda::Permission",
      Properties: {
        Action: "lambda:InvokeFunction",
        FunctionName: { Ref: "Probe" },
        Principal: "events.amazonaws.com",
        SourceArn: { "Fn::GetAtt": ["Schedule", "Arn"] },
      },
    },
  },
});

let invocations = 0;
try {
  await new Promise((resolve) => setTimeout(resolve, 135_000));
  invocations = await markersIn(stack.resources.Logs ?? "");
} finally {
  await deleteStack(stackName);
}
verdict(
  "events-schedule-rule-invokes-lambda",
  invocations >= 1,
  `a rate(1 minute) rule invoked its Lambda target ${invocations} times in 135 s`,
  "the rule invokes the function about once a minute (two or three times in 135 s)",
);

/** Log events holding the marker in the function's log group (CloudWatch Logs, JSON 1.1). */
async function markersIn(logGroupName: string): Promise<number> {
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL ?? "http://127.0.0.1:4566");
  const region = process.env.AWS_REGION ?? "us-east-1";
  const body = JSON.stringify({ logGroupName, filterPattern: `"${marker}"` });
  const headers = sign({
    service: "logs",
    region,
    host: endpoint.host,
    body,
    contentType: "application/x-amz-json-1.1",
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "test",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
    sessionToken: process.env.AWS_SESSION_TOKEN,
  });
  const response = await fetch(new URL("/", endpoint), {
    method: "POST",
    headers: { ...headers, "x-amz-target": "Logs_20140328.FilterLogEvents" },
    body,
  });
  if (!response.ok) throw new Error(`FilterLogEvents failed: ${response.status} ${await response.text()}`);
  const answer = (await response.json()) as { events?: { message?: string }[] };
  return (answer.events ?? []).filter((event) => event.message?.includes(marker)).length;
}
