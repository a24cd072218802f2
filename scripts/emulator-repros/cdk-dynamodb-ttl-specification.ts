import { DescribeTimeToLiveCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * AWS::DynamoDB::Table TimeToLiveSpecification must enable TTL. MiniStack's CloudFormation
 * provisioner ignores it, so expired items (our leases and idempotency records carry expiresAt)
 * are never marked for deletion on a stack-created table, though UpdateTimeToLive itself works.
 */
const stackName = reproName("ddb-ttl");
const stack = await createStack(stackName, {
  Resources: {
    Table: {
      Type: "AWS::DynamoDB::Table",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      },
    },
  },
});
let ttl: string;
try {
  const ddb = new DynamoDBClient({ maxAttempts: 2 });
  const described = await ddb.send(new DescribeTimeToLiveCommand({ TableName: stack.resources.Table }));
  ttl = `${described.TimeToLiveDescription?.TimeToLiveStatus} ${described.TimeToLiveDescription?.AttributeName ?? "-"}`;
} finally {
  await deleteStack(stackName);
}
verdict("cdk-dynamodb-ttl-specification", ttl === "ENABLED expiresAt", `TTL ${ttl}`, "TTL ENABLED expiresAt");
