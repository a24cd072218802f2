import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { awsClientConfig, uniqueName } from "@sluice/testing";
import { createMetadataTable, DynamoDbMetadataStore, deleteMetadataTable } from "./dynamodb.js";
import { runMetadataStoreContract } from "./metadata-store.contract.js";

runMetadataStoreContract({
  name: "dynamodb",
  create: async () => {
    // forcePathStyle is an S3 setting; DynamoDB takes the rest of the shared config.
    const { forcePathStyle: _s3Only, ...config } = awsClientConfig();
    const client = new DynamoDBClient(config);
    const tableName = uniqueName("metadata");
    await createMetadataTable(client, tableName);
    return {
      store: new DynamoDbMetadataStore({ client, tableName }),
      cleanup: async () => {
        await deleteMetadataTable(client, tableName);
        client.destroy();
      },
    };
  },
});
