import { type App, RemovalPolicy } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { Architecture, FunctionUrlAuthType } from "aws-cdk-lib/aws-lambda";
import { describe, expect, it } from "vitest";
import { GARBAGE_PREFIX, NATIVE_MODULES, type SluicePlatformProps } from "./sluice-platform.js";
import {
  lambdaEnvironmentValues,
  onlyLogicalId,
  propertyOf,
  resourcesOf,
  synthStack,
} from "./test-support.js";

const { template } = synthStack();
const bucketId = onlyLogicalId(template, "AWS::S3::Bucket");
const tableId = onlyLogicalId(template, "AWS::DynamoDB::Table");
const apiId = Object.entries(resourcesOf(template, "AWS::Lambda::Function")).find(([, fn]) =>
  JSON.stringify(fn.Properties?.Environment ?? {}).includes("SLUICE_CLUSTER_ID"),
)?.[0] as string;

describe("the bucket", () => {
  it("is encrypted with S3-managed keys, blocks all public access and is not versioned", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: Match.absent(),
    });
  });

  it("expires garbage/ objects and aborts incomplete multipart uploads", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: GARBAGE_PREFIX, ExpirationInDays: 7, Status: "Enabled" }),
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: "Enabled" }),
        ]),
      },
    });
    expect(GARBAGE_PREFIX).toBe("garbage/");
  });

  it("denies every request that is not over TLS", () => {
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Principal: { AWS: "*" },
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      },
    });
  });

  it("is retained by default and destroyed when asked", () => {
    template.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    const destroyed = synthStack({ platform: { dataRemovalPolicy: RemovalPolicy.DESTROY } }).template;
    destroyed.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Delete" });
  });
});

describe("the table", () => {
  it("has string keys pk and sk, on-demand billing, TTL on expiresAt and a NEW_IMAGE stream", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ]),
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      StreamSpecification: { StreamViewType: "NEW_IMAGE" },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it("has point-in-time recovery unless turned off", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    synthStack({ platform: { pointInTimeRecovery: false } }).template.hasResourceProperties(
      "AWS::DynamoDB::Table",
      {
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
      },
    );
  });

  it("is retained by default and destroyed when asked", () => {
    template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    const destroyed = synthStack({ platform: { dataRemovalPolicy: RemovalPolicy.DESTROY } }).template;
    destroyed.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
  });
});

describe("the HTTP function", () => {
  it("runs nodejs22.x on arm64 with the bucket, table and cluster id in its environment", () => {
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 1024,
      Timeout: 30,
      Environment: {
        Variables: {
          SLUICE_BUCKET: { Ref: bucketId },
          SLUICE_TABLE: { Ref: tableId },
          SLUICE_CLUSTER_ID: "sluice",
          NODE_OPTIONS: "--enable-source-maps",
        },
      },
    });
  });

  it("runs on x86_64 when asked", () => {
    const x86 = synthStack({ platform: { architecture: Architecture.X86_64 } }).template;
    x86.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ SLUICE_CLUSTER_ID: "sluice" }) },
      Architectures: ["x86_64"],
    });
  });

  it("leaves the native modules out of the bundle except on x86_64, unless told otherwise", () => {
    // The template cannot show bundling; bundling.test.ts checks what real bundles hold.
    const external = (props: SluicePlatformProps) =>
      synthStack({ platform: props }).stack.platform.apiExternalModules;
    expect([...NATIVE_MODULES].sort()).toEqual(["@mongodb-js/zstd", "@node-rs/crc32", "lz4-napi", "snappy"]);
    expect(external({})).toEqual(NATIVE_MODULES);
    expect(external({ architecture: Architecture.ARM_64 })).toEqual(NATIVE_MODULES);
    expect(external({ architecture: Architecture.X86_64 })).toEqual([]);
    expect(external({ architecture: Architecture.ARM_64, bundleNativeCodecs: true })).toEqual([]);
    expect(external({ architecture: Architecture.X86_64, bundleNativeCodecs: false })).toEqual(
      NATIVE_MODULES,
    );
  });

  it("logs to its own log group, kept one month", () => {
    const fn = resourcesOf(template, "AWS::Lambda::Function")[apiId];
    const logGroupRef = propertyOf<{ LogGroup: { Ref: string } }>(fn, "LoggingConfig").LogGroup.Ref;
    const logGroup = resourcesOf(template, "AWS::Logs::LogGroup")[logGroupRef];
    expect(logGroup?.Properties?.RetentionInDays).toBe(30);
    expect(logGroup?.DeletionPolicy).toBe("Delete");
  });

  it("is exposed through a Function URL that requires IAM auth unless made public", () => {
    template.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "AWS_IAM",
      InvokeMode: "BUFFERED",
      TargetFunctionArn: { "Fn::GetAtt": [apiId, "Arn"] },
    });
    const open = synthStack({ platform: { apiAuthType: FunctionUrlAuthType.NONE } }).template;
    open.hasResourceProperties("AWS::Lambda::Url", { AuthType: "NONE" });
  });

  it("uses a role with no managed policies", () => {
    for (const role of Object.values(resourcesOf(template, "AWS::IAM::Role"))) {
      expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe("IAM", () => {
  const statements = Object.values(resourcesOf(template, "AWS::IAM::Policy")).flatMap(
    (policy) =>
      propertyOf<{ Statement: { Action: string | string[]; Resource: unknown }[] }>(policy, "PolicyDocument")
        .Statement,
  );
  const actionsOf = (statement: { Action: string | string[] }) =>
    Array.isArray(statement.Action) ? statement.Action : [statement.Action];
  const bucketArn = { "Fn::GetAtt": [bucketId, "Arn"] };
  const bucketObjects = { "Fn::Join": ["", [bucketArn, "/*"]] };
  const tableArn = { "Fn::GetAtt": [tableId, "Arn"] };

  it("names every action: no wildcard in any action of any policy", () => {
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      for (const action of actionsOf(statement)) expect(action).not.toContain("*");
    }
  });

  it("scopes S3 actions to this bucket and its objects", () => {
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith("s3:")));
    expect(s3.map((s) => s.Resource)).toEqual(expect.arrayContaining([bucketArn, bucketObjects]));
    for (const statement of s3) expect([bucketArn, bucketObjects]).toContainEqual(statement.Resource);
    expect([...new Set(s3.flatMap(actionsOf))].sort()).toEqual([
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
  });

  it("scopes DynamoDB actions to this table", () => {
    const dynamodb = statements.filter((s) => actionsOf(s).some((a) => a.startsWith("dynamodb:")));
    expect(dynamodb.length).toBeGreaterThan(0);
    for (const statement of dynamodb) expect(statement.Resource).toEqual(tableArn);
    expect(dynamodb.flatMap(actionsOf)).toEqual(
      expect.arrayContaining([
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
      ]),
    );
  });

  it("lets no policy reach any other resource with a wildcard", () => {
    for (const statement of statements) {
      const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
      for (const resource of resources) {
        if (typeof resource === "string") expect(resource).not.toContain("*");
      }
    }
  });
});

describe("alarms and dashboard", () => {
  it("alarm on errors, throttles and p99 duration of the HTTP function", () => {
    // The golden-signal alarms on Sluice's own metrics are monitoring.test.ts's, the maintenance function's maintenance.test.ts's.
    const alarms = Object.values(resourcesOf(template, "AWS::CloudWatch::Alarm"))
      .map((a) => a.Properties ?? {})
      .filter((a) => a.Namespace === "AWS/Lambda" && JSON.stringify(a.Dimensions).includes(apiId));
    expect(alarms.map((a) => a.MetricName).sort()).toEqual(["Duration", "Errors", "Throttles"]);
    for (const alarm of alarms) {
      expect(alarm.Namespace).toBe("AWS/Lambda");
      expect(alarm.Dimensions).toEqual([{ Name: "FunctionName", Value: { Ref: apiId } }]);
      expect(alarm.TreatMissingData).toBe("notBreaching");
    }
    const duration = alarms.find((a) => a.MetricName === "Duration");
    expect(duration).toMatchObject({ ExtendedStatistic: "p99", Threshold: 24_000 });
  });

  it("can be left out", () => {
    const bare = synthStack({ platform: { alarms: false, dashboard: false, monitoring: false } }).template;
    bare.resourceCountIs("AWS::CloudWatch::Alarm", 0);
    bare.resourceCountIs("AWS::CloudWatch::Dashboard", 0);
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });
});

describe("the stack", () => {
  it("outputs ApiUrl, BucketName, TableName and ClusterId", () => {
    const urlId = onlyLogicalId(template, "AWS::Lambda::Url");
    template.hasOutput("ApiUrl", { Value: { "Fn::GetAtt": [urlId, "FunctionUrl"] } });
    template.hasOutput("BucketName", { Value: { Ref: bucketId } });
    template.hasOutput("TableName", { Value: { Ref: tableId } });
    template.hasOutput("ClusterId", { Value: "sluice" });
  });

  it("is environment-agnostic and needs no lookups", () => {
    const { stack } = synthStack();
    expect(stack.resolve(stack.account)).toEqual({ Ref: "AWS::AccountId" });
    expect(stack.resolve(stack.region)).toEqual({ Ref: "AWS::Region" });
    const assembly = (stack.node.root as App).synth();
    expect(assembly.manifest.missing ?? []).toEqual([]);
  });
});

describe("S3 Express One Zone data storage", () => {
  const express = synthStack({
    platform: { dataStorage: { kind: "express-one-zone", availabilityZoneId: "use1-az4" } },
  }).template;
  const directoryId = onlyLogicalId(express, "AWS::S3Express::DirectoryBucket");

  it("puts partition data in a single-zone directory bucket that expires garbage/ objects", () => {
    express.hasResourceProperties("AWS::S3Express::DirectoryBucket", {
      DataRedundancy: "SingleAvailabilityZone",
      LocationName: "use1-az4",
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: GARBAGE_PREFIX, ExpirationInDays: 7, Status: "Enabled" }),
        ]),
      },
    });
    express.hasResource("AWS::S3Express::DirectoryBucket", { DeletionPolicy: "Retain" });
  });

  it("points the HTTP and maintenance functions and the BucketName output at the directory bucket", () => {
    const buckets = Object.values(resourcesOf(express, "AWS::Lambda::Function"))
      .map((fn) => (fn.Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment)
      .map((environment) => environment?.Variables?.SLUICE_BUCKET)
      .filter((bucket) => bucket !== undefined);
    // The HTTP function and the maintenance function (which compacts and collects that data).
    expect(buckets).toEqual([{ Ref: directoryId }, { Ref: directoryId }]);
    express.hasOutput("BucketName", { Value: { Ref: directoryId } });
  });

  it("carries small appends in the index only when asked, and refuses a size it cannot carry", () => {
    const inlineIn = (template: typeof express) =>
      lambdaEnvironmentValues(template, "SLUICE_INLINE_MAX_BYTES");
    expect(inlineIn(synthStack({}).template)).toEqual([]);
    expect(inlineIn(synthStack({ platform: { inlineMaxBytes: 4096 } }).template)).toEqual(["4096"]);
    for (const bad of [-1, 1.5, 65_537]) {
      expect(() => synthStack({ platform: { inlineMaxBytes: bad } })).toThrow(
        `inlineMaxBytes must be a whole number of bytes from 0 (off) to 65536, got ${bad}`,
      );
    }
  });

  it("turns parallel commit on in the HTTP function there, and nowhere unless asked on S3 Standard", () => {
    const parallelIn = (template: typeof express) =>
      lambdaEnvironmentValues(template, "SLUICE_PARALLEL_COMMIT");
    expect(parallelIn(express)).toEqual(["true"]);
    expect(parallelIn(synthStack({}).template)).toEqual([]);
    expect(parallelIn(synthStack({ platform: { parallelCommit: true } }).template)).toEqual(["true"]);
    const expressWithout = synthStack({
      platform: {
        dataStorage: { kind: "express-one-zone", availabilityZoneId: "use1-az4" },
        parallelCommit: false,
      },
    }).template;
    expect(parallelIn(expressWithout)).toEqual([]);
  });

  it("grants s3express:CreateSession on that bucket only", () => {
    const statements = Object.values(resourcesOf(express, "AWS::IAM::Policy")).flatMap(
      (policy) =>
        (policy.Properties as { PolicyDocument: { Statement: { Action: unknown; Resource: unknown }[] } })
          .PolicyDocument.Statement,
    );
    const session = statements.filter((statement) => statement.Action === "s3express:CreateSession");
    // One in the HTTP function's role, one in the maintenance function's.
    expect(session).toEqual([
      expect.objectContaining({ Resource: { "Fn::GetAtt": [directoryId, "Arn"] } }),
      expect.objectContaining({ Resource: { "Fn::GetAtt": [directoryId, "Arn"] } }),
    ]);
  });

  it("is not there by default", () => {
    expect(Object.keys(resourcesOf(template, "AWS::S3Express::DirectoryBucket"))).toEqual([]);
  });
});
