import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import { AssetStaging, type CfnElement, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { type ICommandHooks, NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3express from "aws-cdk-lib/aws-s3express";
import { Construct } from "constructs";
import { SluiceMaintenance, type SluiceMaintenanceOptions } from "./maintenance.js";
import { SluiceMonitoring, type SluiceMonitoringOptions } from "./monitoring.js";
import { assertNativeBinariesMatch } from "./native-binaries.js";
import { bundlingRootOf, DEFAULT_API_ENTRY } from "./paths.js";

/** The S3 prefix whose objects the lifecycle rule expires: the engine moves unreferenced objects here. */
export const GARBAGE_PREFIX = "garbage/";

/**
 * The Node-API packages of @sluice/core: the codecs and the CRC-32C. Each has a portable fallback
 * (packages/core/src/compression.ts, crc32c.ts), so a bundle may leave them out.
 */
export const NATIVE_MODULES: readonly string[] = ["snappy", "lz4-napi", "@mongodb-js/zstd", "@node-rs/crc32"];

/** The WebAssembly zstd's module, which it reads from beside the bundle (`__dirname`). */
export const ZSTD_WASM_FILE = "zstd.wasm";

export interface SluicePlatformAlarmOptions {
  /** Alarm when the function reports at least this many errors in 5 minutes. @default 1 */
  readonly errorsThreshold?: number;
  /** Alarm when at least this many invocations are throttled in 5 minutes. @default 1 */
  readonly throttlesThreshold?: number;
  /** Alarm when p99 duration stays above this for 15 minutes. @default 80% of the function timeout */
  readonly durationP99Threshold?: Duration;
  /** Where the alarms notify (an SNS topic action, for example). @default none */
  readonly actions?: cloudwatch.IAlarmAction[];
}

/**
 * Where partition data lives. "standard": an S3 bucket (the default). "express-one-zone": an S3
 * Express One Zone directory bucket in one Availability Zone (`availabilityZoneId`, e.g.
 * "use1-az4"; put the function's callers there too): single-digit-millisecond PUTs and GETs and
 * cheaper requests, against pricier storage and one zone's durability — docs/benchmarks.md, "The
 * AWS model", weighs it. Conditional writes (create-only) work on directory buckets; their
 * listings are not in key order, which Sluice does not need (it lists only to delete a topic).
 */
export type SluiceDataStorage =
  | { readonly kind: "standard" }
  | { readonly kind: "express-one-zone"; readonly availabilityZoneId: string };

export interface SluicePlatformProps {
  /** Where partition data lives. @default { kind: "standard" } */
  readonly dataStorage?: SluiceDataStorage;
  /**
   * Upload and commit appends without producer sequences or an idempotency key at once, so a
   * produce waits for the slower of the two rather than both (ARCHITECTURE.md, "Parallel
   * commit"): worth it where the object store is about as fast as DynamoDB. A writer that fails
   * between the two leaves a gap of offsets, and readers wait up to 30 s behind it.
   * @default true with "express-one-zone" data storage, false with "standard"
   */
  readonly parallelCommit?: boolean;
  /**
   * Appends of at most this many bytes are not uploaded: each index entry carries its batch in
   * DynamoDB, and the commit is the produce's only write (ARCHITECTURE.md, "Small appends carried
   * in the index"). Saves the S3 PUT's latency and price on small produces; costs DynamoDB write
   * units per KB carried, until compaction moves the bytes into segments. Up to 65,536.
   * @default 0 (every append is uploaded)
   */
  readonly inlineMaxBytes?: number;
  /** The cluster id the HTTP API answers to (`/v3/clusters/{cluster_id}`). @default "sluice" */
  readonly clusterId?: string;
  /**
   * The Lambda entry of the HTTP apps, a module exporting `handler` (hono/aws-lambda, payload
   * format 2.0). @default functions/src/lambda.ts
   */
  readonly entry?: string;
  /**
   * The HTTP function's architecture. ARM_64 costs 20% less per GB-second and runs
   * the portable codecs (see `bundleNativeCodecs`); X86_64 carries the native codec binaries npm
   * installed on a Linux x64 build machine, which compress and decompress faster (docs/deploy.md).
   * @default ARM_64
   */
  readonly architecture?: lambda.Architecture;
  /**
   * Bundle the native modules (NATIVE_MODULES: snappy, lz4-napi, @mongodb-js/zstd, @node-rs/crc32)
   * with their binaries. Left out, they are esbuild externals that fail to load at run time, and
   * the codecs and CRC-32C run their portable JavaScript and WebAssembly implementations. npm
   * installs binaries for the build machine only, so this is right only when the function's
   * architecture matches it (a Linux x64 machine for X86_64); synthesis fails when a bundled
   * binary does not match the function's architecture (native-binaries.ts).
   * @default true for X86_64, false for ARM_64
   */
  readonly bundleNativeCodecs?: boolean;
  /** @default 1024 */
  readonly memorySizeMb?: number;
  /** The HTTP function's timeout; bounds long-poll reads. @default 30 seconds */
  readonly timeout?: Duration;
  /**
   * Who may call the Function URL. AWS_IAM (the default) requires SigV4-signed requests from
   * principals granted lambda:InvokeFunctionUrl. NONE makes the URL public: anyone on the internet
   * can produce, consume and administer topics, because the HTTP apps carry no authentication of
   * their own yet. Use NONE only on an emulator or behind your own authentication.
   * @default FunctionUrlAuthType.AWS_IAM
   */
  readonly apiAuthType?: lambda.FunctionUrlAuthType;
  /** CORS for browsers calling the Function URL directly. @default no CORS headers */
  readonly apiCors?: lambda.FunctionUrlCorsOptions;
  /** BUFFERED (hono/aws-lambda `handle`) or RESPONSE_STREAM (`streamHandle`). @default BUFFERED */
  readonly apiInvokeMode?: lambda.InvokeMode;
  /** Caps the HTTP function's concurrency (and so its cost under a flood). @default unreserved */
  readonly reservedConcurrentExecutions?: number;
  /** DynamoDB point-in-time recovery (35 days of restores, billed per GB-month). @default true */
  readonly pointInTimeRecovery?: boolean;
  /**
   * What happens to the bucket and the table when they leave the stack. RETAIN keeps every
   * record; DESTROY deletes the table and the bucket (which must be empty: the destroy scripts
   * empty it first).
   * @default RemovalPolicy.RETAIN
   */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /** How long objects under `garbage/` live before S3 deletes them. @default 7 days */
  readonly garbageExpiration?: Duration;
  /** Retention of the HTTP function's logs. @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** Errors, throttles and p99 duration alarms on the HTTP function; `false` creates none. @default {} */
  readonly alarms?: SluicePlatformAlarmOptions | false;
  /** A CloudWatch dashboard ($3/month beyond the free tier's three). @default true */
  readonly dashboard?: boolean;
  /**
   * The maintenance function and its schedule (retention, compaction, garbage collection, topic
   * purges; docs/maintenance.md); `false` deploys none, and nothing is then enforced or collected.
   * @default {} (every 5 minutes)
   */
  readonly maintenance?: SluiceMaintenanceOptions | false;
  /**
   * Golden-signal alarms (error rate, p99 latencies, consumer lag, dead-lettered records) and
   * dashboard widgets from the functions' metrics, and the lag-collection schedule
   * (infra/lib/monitoring.ts, docs/operations.md); `false` creates none. @default {}
   */
  readonly monitoring?: SluiceMonitoringOptions | false;
  /** AWS X-Ray active tracing on the HTTP function. @default false */
  readonly tracing?: boolean;
  /**
   * Bundle the HTTP apps with esbuild (minified, source maps, AWS SDK included). Template tests
   * may turn bundling off for every stack with the context `aws:cdk:bundling-stacks: []`.
   */
  readonly bundling?: { readonly minify?: boolean; readonly sourceMap?: boolean };
}

/**
 * The whole Sluice data plane in one construct: the bucket holding partition data, the table
 * holding offsets, indexes and leases, and the HTTP apps in one Lambda function behind a
 * Function URL, with least-privilege grants, logs, alarms and a dashboard.
 */
export class SluicePlatform extends Construct {
  readonly clusterId: string;
  readonly bucket: s3.Bucket;
  /** With `dataStorage` "express-one-zone": the directory bucket holding partition data. */
  readonly directoryBucket?: s3express.CfnDirectoryBucket;
  /** The bucket the HTTP apps write partition data to: the directory bucket when there is one. */
  readonly dataBucketName: string;
  readonly table: dynamodb.Table;
  readonly api: NodejsFunction;
  readonly apiUrl: lambda.FunctionUrl;
  readonly apiLogGroup: logs.LogGroup;
  /** The packages the HTTP function's bundle leaves out (esbuild externals): NATIVE_MODULES or none. */
  readonly apiExternalModules: readonly string[];
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard?: cloudwatch.Dashboard;
  readonly maintenance?: SluiceMaintenance;
  readonly monitoring?: SluiceMonitoring;

  constructor(scope: Construct, id: string, props: SluicePlatformProps = {}) {
    super(scope, id);
    this.clusterId = props.clusterId ?? "sluice";
    const dataRemovalPolicy = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;
    const timeout = props.timeout ?? Duration.seconds(30);

    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      removalPolicy: dataRemovalPolicy,
      lifecycleRules: [
        {
          id: "expire-garbage",
          prefix: GARBAGE_PREFIX,
          expiration: props.garbageExpiration ?? Duration.days(7),
        },
        { id: "abort-incomplete-multipart-uploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    const storage = props.dataStorage ?? { kind: "standard" };
    const inline = props.inlineMaxBytes;
    // The engine's INLINE_MAX_BYTES_LIMIT: refused here, at synth, rather than by every cold start.
    if (inline !== undefined && (!Number.isInteger(inline) || inline < 0 || inline > 65_536)) {
      throw new Error(`inlineMaxBytes must be a whole number of bytes from 0 (off) to 65536, got ${inline}`);
    }
    if (storage.kind === "express-one-zone") {
      this.directoryBucket = new s3express.CfnDirectoryBucket(this, "DirectoryBucket", {
        dataRedundancy: "SingleAvailabilityZone",
        locationName: storage.availabilityZoneId,
        lifecycleConfiguration: {
          rules: [
            {
              id: "expire-garbage",
              status: "Enabled",
              prefix: GARBAGE_PREFIX,
              expirationInDays: (props.garbageExpiration ?? Duration.days(7)).toDays(),
            },
            {
              id: "abort-incomplete-multipart-uploads",
              status: "Enabled",
              abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
            },
          ],
        },
      });
      this.directoryBucket.applyRemovalPolicy(dataRemovalPolicy);
    }
    this.dataBucketName = this.directoryBucket?.ref ?? this.bucket.bucketName;
    Validations.of(this.bucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "Server access logs would need a second bucket and write a log object per request batch on the hot path; audit data access with CloudTrail S3 data events when required.",
    });

    this.table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      sortKey: { name: "sk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: "expiresAt",
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery ?? true },
      // Processors are woken by commits: DynamoDB Streams on the index entries.
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: dataRemovalPolicy,
    });

    if (props.pointInTimeRecovery === false) {
      Validations.of(this.table).acknowledge({
        id: "AwsSolutions-DDB3",
        reason: "Point-in-time recovery turned off by the deployer (throwaway stacks: emulators, CI).",
      });
    }

    this.apiLogGroup = new logs.LogGroup(this, "ApiLogs", {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Our own role instead of AWSLambdaBasicExecutionRole: it may write to this log group only.
    const role = new iam.Role(this, "ApiRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "Sluice HTTP apps: read and write this platform's bucket and table, write its logs",
    });
    this.grantData(role);
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.apiLogGroup.logGroupArn],
      }),
    );

    const entry = props.entry ?? DEFAULT_API_ENTRY;
    const sourceMap = props.bundling?.sourceMap ?? true;
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const bundleNativeCodecs =
      props.bundleNativeCodecs ?? architecture.name === lambda.Architecture.X86_64.name;
    this.apiExternalModules = bundleNativeCodecs ? [] : NATIVE_MODULES;
    const bundlingRoot = bundlingRootOf(entry);
    const zstdWasm = zstdWasmCopy(entry, bundlingRoot.projectRoot);
    this.api = new NodejsFunction(this, "Api", {
      entry,
      handler: "handler",
      ...bundlingRoot,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture,
      memorySize: props.memorySizeMb ?? 1024,
      timeout,
      role,
      logGroup: this.apiLogGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      ...(props.tracing ? { tracing: lambda.Tracing.ACTIVE } : {}),
      description: "Sluice HTTP apps (produce, consume, admin, groups)",
      environment: {
        SLUICE_BUCKET: this.dataBucketName,
        SLUICE_TABLE: this.table.tableName,
        SLUICE_CLUSTER_ID: this.clusterId,
        ...((props.parallelCommit ?? storage.kind === "express-one-zone")
          ? { SLUICE_PARALLEL_COMMIT: "true" }
          : {}),
        ...(props.inlineMaxBytes ? { SLUICE_INLINE_MAX_BYTES: String(props.inlineMaxBytes) } : {}),
        // Stack traces in the logs point into the TypeScript sources.
        ...(sourceMap ? { NODE_OPTIONS: "--enable-source-maps" } : {}),
      },
      bundling: {
        format: OutputFormat.CJS,
        target: "node22",
        minify: props.bundling?.minify ?? true,
        sourceMap,
        sourcesContent: false,
        // Bundle the AWS SDK instead of using the runtime's copy: the function runs the SDK
        // version the suites ran, and the same bundle works on emulators that provide none.
        // Without native codecs their packages stay external: `require` fails in the function
        // and the portable implementations take over.
        externalModules: [...this.apiExternalModules],
        // Native modules (the codecs): copy each binary beside the bundle and require it there.
        loader: { ".node": "copy" },
        // The WebAssembly zstd reads its module from the bundle's directory.
        ...(zstdWasm ? { commandHooks: zstdWasm } : {}),
      },
    });
    if (Stack.of(this).bundlingRequired) {
      const staging = this.api.node.findChild("Code").node.findChild("Stage");
      if (staging instanceof AssetStaging)
        assertNativeBinariesMatch(staging.absoluteStagedPath, architecture.name);
    }

    this.apiUrl = this.api.addFunctionUrl({
      authType: props.apiAuthType ?? lambda.FunctionUrlAuthType.AWS_IAM,
      invokeMode: props.apiInvokeMode ?? lambda.InvokeMode.BUFFERED,
      cors: props.apiCors,
    });

    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(this.bucket.node.defaultChild as CfnElement)}.Arn>/*]`,
      reason:
        "Object-level actions (get, put, delete, abort upload) on the objects of this platform's own bucket; partition objects have generated keys, so they cannot be named one by one.",
    });
    Validations.of(this.api).acknowledge({
      id: "AwsSolutions-L1",
      reason:
        "nodejs22.x is the runtime Sluice is built and tested for (supported by AWS until 2027); moving to a newer one is a deliberate, tested change.",
    });

    if (props.alarms !== false) this.createAlarms(props.alarms ?? {}, timeout);
    if (props.maintenance !== false) {
      this.maintenance = new SluiceMaintenance(this, "Maintenance", {
        ...props.maintenance,
        bucket: this.bucket,
        dataBucketName: this.dataBucketName,
        table: this.table,
        grantData: (grantee) => this.grantData(grantee),
        architecture,
        externalModules: this.apiExternalModules,
        ...(props.maintenance?.entry ? {} : zstdWasm ? { commandHooks: zstdWasm } : {}),
        logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
        alarmActions: props.alarms === false ? false : [...(props.alarms?.actions ?? [])],
        ...(props.bundling ? { bundling: props.bundling } : {}),
      });
    }
    if (props.monitoring !== false) {
      this.monitoring = new SluiceMonitoring(this, "Monitoring", {
        api: this.api,
        ...(props.alarms ? { actions: props.alarms.actions } : {}),
        ...props.monitoring,
      });
      this.alarms.push(...this.monitoring.alarms);
    }
    if (props.dashboard ?? true) this.dashboard = this.createDashboard();
  }

  /**
   * Grants the data-plane permissions of the HTTP apps and processors: object get, put, delete
   * and abort-upload plus list on this bucket only, item reads and writes on this table only.
   * Every action is named; none is a wildcard.
   */
  grantData(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
      resourceArns: [this.bucket.arnForObjects("*")],
    });
    iam.Grant.addToPrincipal({ grantee, actions: ["s3:ListBucket"], resourceArns: [this.bucket.bucketArn] });
    if (this.directoryBucket) {
      // Directory buckets authorise every object call through a session created for the bucket.
      iam.Grant.addToPrincipal({
        grantee,
        actions: ["s3express:CreateSession"],
        resourceArns: [this.directoryBucket.attrArn],
      });
    }
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
      ],
      resourceArns: [this.table.tableArn],
    });
  }

  private createAlarms(options: SluicePlatformAlarmOptions, timeout: Duration): void {
    const period = Duration.minutes(5);
    const errors = new cloudwatch.Alarm(this, "ApiErrorsAlarm", {
      alarmDescription: "Sluice HTTP function errors (uncaught exceptions, timeouts, out of memory)",
      metric: this.api.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
      threshold: options.errorsThreshold ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const throttles = new cloudwatch.Alarm(this, "ApiThrottlesAlarm", {
      alarmDescription: "Sluice HTTP function throttled: requests refused for lack of concurrency",
      metric: this.api.metricThrottles({ period, statistic: cloudwatch.Stats.SUM }),
      threshold: options.throttlesThreshold ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const durationThreshold = options.durationP99Threshold ?? Duration.millis(timeout.toMilliseconds() * 0.8);
    const durationP99 = new cloudwatch.Alarm(this, "ApiDurationP99Alarm", {
      alarmDescription: `Sluice HTTP function p99 duration above ${durationThreshold.toMilliseconds()} ms for 15 minutes`,
      metric: this.api.metricDuration({ period, statistic: cloudwatch.Stats.percentile(99) }),
      threshold: durationThreshold.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarms.push(errors, throttles, durationP99);
    for (const alarm of this.alarms) alarm.addAlarmAction(...(options.actions ?? []));
  }

  private createDashboard(): cloudwatch.Dashboard {
    const period = Duration.minutes(5);
    const tableMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: "AWS/DynamoDB",
        metricName,
        dimensionsMap: { TableName: this.table.tableName },
        statistic,
        period,
      });
    const dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      defaultInterval: Duration.hours(3),
    });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "HTTP function: invocations, errors, throttles",
        left: [this.api.metricInvocations({ period }), this.api.metricErrors({ period })],
        right: [this.api.metricThrottles({ period })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "HTTP function: duration (ms)",
        left: [
          this.api.metricDuration({ period, statistic: cloudwatch.Stats.percentile(50) }),
          this.api.metricDuration({ period, statistic: cloudwatch.Stats.percentile(99) }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Table: consumed capacity",
        left: [
          tableMetric("ConsumedReadCapacityUnits", cloudwatch.Stats.SUM),
          tableMetric("ConsumedWriteCapacityUnits", cloudwatch.Stats.SUM),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Table: throttles and conditional-check failures",
        left: [
          tableMetric("ThrottledRequests", cloudwatch.Stats.SUM),
          tableMetric("ConditionalCheckFailedRequests", cloudwatch.Stats.SUM),
        ],
        width: 12,
      }),
    );
    this.monitoring?.addWidgets(dashboard);
    if (this.alarms.length > 0) {
      dashboard.addWidgets(
        new cloudwatch.AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24 }),
      );
    }
    return dashboard;
  }
}

/**
 * Bundling hooks copying @bokuweb/zstd-wasm's `zstd.wasm` beside the bundle, where the package
 * looks for it. Undefined when the entry does not resolve the package (another entry's project):
 * then zstd compression without the native module is unavailable in the function (decompression
 * still works), as packages/core/src/compression.ts explains.
 */
function zstdWasmCopy(entry: string, projectRoot: string): ICommandHooks | undefined {
  let wasm: string;
  try {
    wasm = join(dirname(createRequire(entry).resolve("@bokuweb/zstd-wasm")), ZSTD_WASM_FILE);
  } catch {
    return undefined;
  }
  // Relative to the project root, so that the command also works inside a bundling container.
  const source = relative(projectRoot, wasm).split(sep).join("/");
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) => [`cp "${inputDir}/${source}" "${outputDir}/${ZSTD_WASM_FILE}"`],
  };
}

function logicalIdOf(element: CfnElement): string {
  return Stack.of(element).resolve(element.logicalId) as string;
}
