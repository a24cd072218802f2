import { GetBucketLifecycleConfigurationCommand, S3Client } from "@aws-sdk/client-s3";
import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * AWS::S3::Bucket LifecycleConfiguration must reach the bucket. MiniStack's CloudFormation
 * provisioner ignores the property (it applies CORS, public access block, website, versioning and
 * notifications only), so a stack's lifecycle rules (ours: expire garbage/, abort incomplete
 * multipart uploads) are silently missing, though PutBucketLifecycleConfiguration itself works.
 */
const stackName = reproName("s3-lifecycle");
const stack = await createStack(stackName, {
  Resources: {
    Bucket: {
      Type: "AWS::S3::Bucket",
      Properties: {
        LifecycleConfiguration: {
          Rules: [{ Id: "expire-garbage", Prefix: "garbage/", ExpirationInDays: 7, Status: "Enabled" }],
        },
      },
    },
  },
});
let rules: string;
try {
  const s3 = new S3Client({ forcePathStyle: true, maxAttempts: 2 });
  const lifecycle = await s3.send(
    new GetBucketLifecycleConfigurationCommand({ Bucket: stack.resources.Bucket }),
  );
  rules = JSON.stringify(lifecycle.Rules?.map((r) => r.ID));
} catch (error) {
  rules = error instanceof Error ? error.name : String(error);
} finally {
  await deleteStack(stackName);
}
verdict(
  "cdk-s3-lifecycle-configuration",
  rules === '["expire-garbage"]',
  `GetBucketLifecycleConfiguration answered ${rules}`,
  'the rule from the template, ["expire-garbage"]',
);
