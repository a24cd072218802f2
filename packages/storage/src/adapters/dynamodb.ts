// The AWS metadata store (DynamoDB through the AWS SDK v3).
export * from "../metadata-store/dynamodb.js";
