import { DescribeContinuousBackupsCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * AWS::DynamoDB::Table PointInTimeRecoverySpecification must enable point-in-time recovery.
 * MiniStack's CloudFormation provisioner ignores it: a stack-created table reports PITR DISABLED.
 */
const stackName = reproName("ddb-pitr");
const stack = await createStack(stackName, {
  Resources: {
    Table: {
      Type: "AWS::DynamoDB::Table",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      },
    },
  },
});
let pitr: string | undefined;
try {
  const ddb = new DynamoDBClient({ maxAttempts: 2 });
  const backups = await ddb.send(new DescribeContinuousBackupsCommand({ TableName: stack.resources.Table }));
  pitr = backups.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus;
} finally {
  await deleteStack(stackName);
}
verdict("cdk-dynamodb-pitr-specification", pitr === "ENABLED", `PITR ${pitr}`, "PITR ENABLED");
