import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * An AWS::Lambda::EventSourceMapping from a table's DynamoDB stream, filtered to inserts of items
 * whose sort key starts with `index#`, invokes its function with the stream records: the
 * processors' dispatcher is woken this way by every commit. The function here writes a marker item
 * naming the key it saw; the repro puts an `index#` item and waits up to 60 s for the marker.
 */
const stackName = reproName("ddb-stream");
const code = `const { DynamoDBClient, PutItemCommand } = require("@aws-sdk/client-dynamodb");
exports.handler = async (event) => {
  const client = new DynamoDBClient({});
  for (const record of event.Records ?? []) {
    const keys = record.dynamodb.Keys;
    await client.send(new PutItemCommand({
      TableName: process.env.TABLE,
      Item: { pk: { S: "seen" }, sk: { S: keys.pk.S + "/" + keys.sk.S } },
    }));
  }
};`;
const stack = await createStack(stackName, {
  Resources: {
    Table: {
      Type: "AWS::DynamoDB::Table",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        StreamSpecification: { StreamViewType: "NEW_IMAGE" },
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
    Dispatcher: {
      Type: "AWS::Lambda::Function",
      Properties: {
        Runtime: "nodejs22.x",
        Handler: "index.handler",
        Timeout: 30,
        Role: { "Fn::GetAtt": ["Role", "Arn"] },
        LoggingConfig: { LogGroup: { Ref: "Logs" } },
        Environment: { Variables: { TABLE: { Ref: "Table" } } },
        Code: { ZipFile: code },
      },
    },
    Mapping: {
      Type: "AWS::Lambda::EventSourceMapping",
      Properties: {
        EventSourceArn: { "Fn::GetAtt": ["Table", "StreamArn"] },
        FunctionName: { Ref: "Dispatcher" },
        StartingPosition: "LATEST",
        BatchSize: 100,
        FilterCriteria: {
          Filters: [
            {
              Pattern: JSON.stringify({
                eventName: ["INSERT"],
                dynamodb: { Keys: { sk: { S: [{ prefix: "index#" }] } } },
              }),
            },
          ],
        },
      },
    },
  },
});
let observed = "no marker within 60 s";
let invoked = false;
try {
  const ddb = new DynamoDBClient({ maxAttempts: 2 });
  const table = stack.resources.Table!;
  // The mapping may start reading a moment after the stack is complete, as on AWS.
  const started = Date.now();
  for (let attempt = 0; attempt < 60 && !invoked; attempt++) {
    const sk = `index#${String(attempt).padStart(20, "0")}`;
    await ddb.send(
      new PutItemCommand({ TableName: table, Item: { pk: { S: "partition#t#0" }, sk: { S: sk } } }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let seen = 0; seen <= attempt; seen++) {
      const marker = await ddb.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: "seen" }, sk: { S: `partition#t#0/index#${String(seen).padStart(20, "0")}` } },
        }),
      );
      if (marker.Item) {
        invoked = true;
        observed = `marker for index#${seen} after ${Math.round((Date.now() - started) / 1000)} s`;
        break;
      }
    }
  }
} finally {
  await deleteStack(stackName);
}
verdict(
  "lambda-dynamodb-stream-trigger",
  invoked,
  observed,
  "the function invoked with the stream record of the index# insert within seconds",
);
