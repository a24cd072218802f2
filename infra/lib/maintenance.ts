import { join } from "node:path";
import { AssetStaging, type CfnElement, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { assertNativeBinariesMatch } from "./native-binaries.js";
import { bundlingRootOf, REPO_ROOT } from "./paths.js";

/** The Lambda entry of the maintenance function (functions/src/maintenance.ts). */
export const DEFAULT_MAINTENANCE_ENTRY = join(REPO_ROOT, "functions", "src", "maintenance.ts");

export interface SluiceMaintenanceOptions {
  /** How often EventBridge runs maintenance. @default 5 minutes */
  readonly schedule?: Duration;
  /** The function's timeout; each run stops starting work 30 s before it. @default 5 minutes */
  readonly timeout?: Duration;
  /** @default 1024 */
  readonly memorySizeMb?: number;
  /** Compaction's segment size (SLUICE_SEGMENT_BYTES). @default 8 MiB */
  readonly segmentBytes?: number;
  /** Alarm when at least this many runs fail in 15 minutes. @default 1 */
  readonly failuresThreshold?: number;
  /** The function's entry (a module exporting `handler`). @default functions/src/maintenance.ts */
  readonly entry?: string;
}

export interface SluiceMaintenanceProps extends SluiceMaintenanceOptions {
  /** The platform's bucket and table, and how to grant the data-plane permissions on them. */
  readonly bucket: s3.Bucket;
  /** Where partition data lives: the bucket, or the platform's directory bucket when it has one. */
  readonly dataBucketName: string;
  readonly table: dynamodb.Table;
  readonly grantData: (grantee: iam.IGrantable) => void;
  readonly architecture: lambda.Architecture;
  /** esbuild externals (the native modules when they are left out) and how to copy zstd's wasm. */
  readonly externalModules: readonly string[];
  readonly commandHooks?: NonNullable<
    NonNullable<ConstructorParameters<typeof NodejsFunction>[2]>["bundling"]
  >["commandHooks"];
  readonly logRetention: logs.RetentionDays;
  /** The failure alarm's actions; `false`: no alarm (the platform's alarms are off). */
  readonly alarmActions: cloudwatch.IAlarmAction[] | false;
  readonly bundling?: { readonly minify?: boolean; readonly sourceMap?: boolean };
}

/**
 * The maintenance function (ARCHITECTURE.md, "Maintenance") and what runs it: an EventBridge rule
 * invoking it on a schedule, its own role (the platform's data grants and its log group) and log
 * group, and an alarm on failed runs (a run in which any job failed ends in an error).
 */
export class SluiceMaintenance extends Construct {
  readonly function: NodejsFunction;
  readonly rule: events.Rule;
  readonly logGroup: logs.LogGroup;
  readonly failureAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: SluiceMaintenanceProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.minutes(5);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description:
        "Sluice maintenance: read, rewrite and delete this platform's objects and items, write its logs",
    });
    props.grantData(role);
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    const entry = props.entry ?? DEFAULT_MAINTENANCE_ENTRY;
    const sourceMap = props.bundling?.sourceMap ?? true;
    this.function = new NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      ...bundlingRootOf(entry),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: props.architecture,
      memorySize: props.memorySizeMb ?? 1024,
      timeout,
      role,
      logGroup: this.logGroup,
      description: "Sluice maintenance: retention, compaction, time index, garbage collection, topic purges",
      environment: {
        SLUICE_BUCKET: props.dataBucketName,
        SLUICE_TABLE: props.table.tableName,
        ...(props.segmentBytes === undefined ? {} : { SLUICE_SEGMENT_BYTES: String(props.segmentBytes) }),
        ...(sourceMap ? { NODE_OPTIONS: "--enable-source-maps" } : {}),
      },
      bundling: {
        format: OutputFormat.CJS,
        target: "node22",
        minify: props.bundling?.minify ?? true,
        sourceMap,
        sourcesContent: false,
        externalModules: [...props.externalModules],
        loader: { ".node": "copy" },
        ...(props.commandHooks ? { commandHooks: props.commandHooks } : {}),
      },
    });
    if (Stack.of(this).bundlingRequired) {
      const staging = this.function.node.findChild("Code").node.findChild("Stage");
      if (staging instanceof AssetStaging)
        assertNativeBinariesMatch(staging.absoluteStagedPath, props.architecture.name);
    }
    Validations.of(this.function).acknowledge({
      id: "AwsSolutions-L1",
      reason:
        "nodejs22.x is the runtime Sluice is built and tested for (supported by AWS until 2027); moving to a newer one is a deliberate, tested change.",
    });
    const bucketLogicalId = Stack.of(this).resolve((props.bucket.node.defaultChild as CfnElement).logicalId);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/*]`,
      reason:
        "Object-level actions on the objects of this platform's own bucket: compaction writes segments and garbage collection deletes objects under generated keys, which cannot be named one by one.",
    });

    this.rule = new events.Rule(this, "Schedule", {
      description: "Runs Sluice maintenance",
      schedule: events.Schedule.rate(props.schedule ?? Duration.minutes(5)),
      // One attempt: the next scheduled run picks up whatever this one left (leases make it safe).
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
    });

    if (props.alarmActions === false) return;
    this.failureAlarm = new cloudwatch.Alarm(this, "FailuresAlarm", {
      alarmDescription:
        "Sluice maintenance runs failed (a job failed, or the function errored or timed out): retention, compaction or garbage collection may be falling behind",
      metric: this.function.metricErrors({ period: Duration.minutes(15), statistic: cloudwatch.Stats.SUM }),
      threshold: props.failuresThreshold ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.failureAlarm.addAlarmAction(...props.alarmActions);
  }
}
