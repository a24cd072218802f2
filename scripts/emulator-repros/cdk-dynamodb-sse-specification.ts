import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * AWS::DynamoDB::Table SSESpecification { SSEEnabled: true } (CDK's TableEncryption.AWS_MANAGED)
 * must show as KMS encryption in DescribeTable. MiniStack's provisioner stores no SSEDescription
 * for a stack-created table, so it looks like the default AWS-owned-key encryption.
 */
const stackName = reproName("ddb-sse");
const stack = await createStack(stackName, {
  Resources: {
    Table: {
      Type: "AWS::DynamoDB::Table",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        SSESpecification: { SSEEnabled: true },
      },
    },
  },
});
let sse: string;
try {
  const ddb = new DynamoDBClient({ maxAttempts: 2 });
  const table = await ddb.send(new DescribeTableCommand({ TableName: stack.resources.Table }));
  sse = JSON.stringify(table.Table?.SSEDescription ?? null);
} finally {
  await deleteStack(stackName);
}
verdict(
  "cdk-dynamodb-sse-specification",
  /"Status":"ENABLED"/.test(sse) && /"SSEType":"KMS"/.test(sse),
  `SSEDescription ${sse}`,
  'SSEDescription {"Status":"ENABLED","SSEType":"KMS",...}',
);
