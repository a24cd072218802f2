import { DeleteObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { cfn, createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * Deleting a stack whose bucket still holds objects must fail (DELETE_FAILED, BucketNotEmpty) and
 * keep the bucket. MiniStack deletes the bucket with its objects, so a destroy script that forgets
 * to empty the bucket (or a DESTROY removal policy without autoDeleteObjects) passes on the
 * emulator and fails on AWS. Our destroy scripts empty the bucket first.
 */
const stackName = reproName("s3-nonempty");
const stack = await createStack(stackName, { Resources: { Bucket: { Type: "AWS::S3::Bucket" } } });
const bucket = stack.resources.Bucket ?? "";
const s3 = new S3Client({ forcePathStyle: true, maxAttempts: 2 });
await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "left-behind", Body: "x" }));
const status = await deleteStack(stackName);
const bucketExists = await s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
  () => true,
  () => false,
);
if (bucketExists) {
  // Clean up the way one must on AWS: empty the bucket, then delete the stack again.
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "left-behind" }));
  if (status !== "DELETE_COMPLETE") await deleteStack(stackName);
  else await cfn("DescribeStacks", { StackName: stackName }).catch(() => undefined);
}
verdict(
  "cdk-s3-delete-nonempty-bucket",
  status === "DELETE_FAILED" && bucketExists,
  `stack ${status}, bucket ${bucketExists ? "kept" : "deleted with its object"}`,
  "stack DELETE_FAILED (BucketNotEmpty), bucket kept",
);
