// The AWS object store (S3 through the AWS SDK v3).
export * from "../object-store/s3.js";
