import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * An AWS::Events::Rule with ScheduleExpression rate(1 minute) invokes its Lambda target every
 * minute: the processors' sweep runs this way. The target writes a marker item; the repro waits
 * up to 150 s for it.
 */
const stackName = reproName("schedule");
const code = `const { DynamoDBClient, PutItemCommand } = require("@aws-sdk/client-dynamodb");
exports.handler = async (event) => {
  await new DynamoDBClient({}).send(new PutItemCommand({
    TableName: process.env.TABLE,
    Item: { pk: { S: "swept" }, payload: { S: JSON.stringify(event) } },
  }));
};`;
const stack = await createStack(stackName, {
  Resources: {
    Table: {
      Type: "AWS::DynamoDB::Table",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      },
    },
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
    Sweep: {
      Type: "AWS::Lambda::Function",
      Properties: {
        Runtime: "nodejs22.x",
        Handler: "index.handler",
        Role: { "Fn::GetAtt": ["Role", "Arn"] },
        LoggingConfig: { LogGroup: { Ref: "Logs" } },
        Environment: { Variables: { TABLE: { Ref: "Table" } } },
        Code: { ZipFile: code },
      },
    },
    Rule: {
      Type: "AWS::Events::Rule",
      Properties: {
        ScheduleExpression: "rate(1 minute)",
        State: "ENABLED",
        Targets: [
          {
            Arn: { "Fn::GetAtt": ["Sweep", "Arn"] },
            Id: "sweep",
            Input: JSON.stringify({ sluice: "sweep" }),
          },
        ],
      },
    },
    Permission: {
      Type: "AWS::Lambda::Permission",
      Properties: {
        Action: "lambda:InvokeFunction",
        FunctionName: { Ref: "Sweep" },
        Principal: "events.amazonaws.com",
        SourceArn: { "Fn::GetAtt": ["Rule", "Arn"] },
      },
    },
  },
});
let observed = "no invocation within 150 s";
let invoked = false;
try {
  const ddb = new DynamoDBClient({ maxAttempts: 2 });
  const started = Date.now();
  while (Date.now() - started < 150_000) {
    const marker = await ddb.send(
      new GetItemCommand({ TableName: stack.resources.Table!, Key: { pk: { S: "swept" } } }),
    );
    if (marker.Item) {
      invoked = true;
      observed = `invoked after ${Math.round((Date.now() - started) / 1000)} s with ${marker.Item.payload?.S}`;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
} finally {
  await deleteStack(stackName);
}
verdict(
  "events-schedule-lambda",
  invoked,
  observed,
  'the target invoked within about a minute with {"sluice":"sweep"}',
);
