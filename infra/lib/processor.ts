import { join } from "node:path";
import { type CfnElement, CustomResource, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { API_SERVICE, SLUICE_NAMESPACE } from "./monitoring.js";
import { bundlingRootOf, REPO_ROOT } from "./paths.js";
import { NATIVE_MODULES, type SluicePlatform } from "./sluice-platform.js";
import { Topic, TopicProvider } from "./topic.js";

export const DEFAULT_DISPATCHER_ENTRY = join(REPO_ROOT, "functions", "src", "dispatcher.ts");

export interface ProcessorDispatcherProps {
  /** The dispatcher's Lambda entry (exports `handler`). @default functions/src/dispatcher.ts */
  readonly entry?: string;
  /** How long one invocation runs processors. @default 5 minutes */
  readonly timeout?: Duration;
  /** @default 1024 */
  readonly memorySizeMb?: number;
  /** How often every partition with lag is swept. @default 1 minute */
  readonly sweepInterval?: Duration;
}

/**
 * One per platform (`ProcessorDispatcher.of(platform)`): the function that runs every processor
 * of the platform, woken by the table's DynamoDB stream — one event source mapping filtered to
 * inserts of index entries, since a stream shard takes two readers at most — and by an EventBridge
 * schedule that sweeps every partition with lag. It reads and writes the platform's data like the
 * HTTP function; each Processor grants it the invocation of its own handler and nothing else.
 */
export class ProcessorDispatcher extends Construct {
  static of(platform: SluicePlatform, props: ProcessorDispatcherProps = {}): ProcessorDispatcher {
    const existing = platform.node.tryFindChild("ProcessorDispatcher");
    return existing instanceof ProcessorDispatcher
      ? existing
      : new ProcessorDispatcher(platform, "ProcessorDispatcher", platform, props);
  }

  readonly function: NodejsFunction;
  readonly logGroup: logs.LogGroup;
  readonly sweep: events.Rule;

  private constructor(
    scope: Construct,
    id: string,
    platform: SluicePlatform,
    props: ProcessorDispatcherProps,
  ) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description:
        "Sluice processor dispatcher: this platform's bucket and table, its stream, its logs, the processors' handlers",
    });
    platform.grantData(role);
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    const entry = props.entry ?? DEFAULT_DISPATCHER_ENTRY;
    this.function = new NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      ...bundlingRootOf(entry),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySizeMb ?? 1024,
      timeout: props.timeout ?? Duration.minutes(5),
      role,
      logGroup: this.logGroup,
      description: "Sluice processor dispatcher: runs processors on commits and sweeps",
      environment: {
        SLUICE_BUCKET: platform.dataBucketName,
        SLUICE_TABLE: platform.table.tableName,
        SLUICE_CLUSTER_ID: platform.clusterId,
        NODE_OPTIONS: "--enable-source-maps",
      },
      bundling: {
        format: OutputFormat.CJS,
        target: "node22",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // As the HTTP function on arm64: the portable codecs, the bundled AWS SDK.
        externalModules: [...NATIVE_MODULES],
      },
    });
    platform.table.grantStreamRead(role);
    this.function.addEventSourceMapping("Commits", {
      eventSourceArn: platform.table.tableStreamArn!,
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: 100,
      // The dispatcher never fails a batch (progress lives in the table); a retry is only for
      // invocations that died, and the sweep covers anything still left.
      retryAttempts: 2,
      filters: [
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("INSERT"),
          dynamodb: { Keys: { sk: { S: lambda.FilterRule.beginsWith("index#") } } },
        }),
      ],
    });
    this.sweep = new events.Rule(this, "Sweep", {
      description: "Sluice processors: wake every partition with lag, so no commit goes unprocessed",
      schedule: events.Schedule.rate(props.sweepInterval ?? Duration.minutes(1)),
      targets: [
        new targets.LambdaFunction(this.function, {
          event: events.RuleTargetInput.fromObject({ sluice: "sweep" }),
        }),
      ],
    });
    Validations.of(this.function).acknowledge({
      id: "AwsSolutions-L1",
      reason: "nodejs22.x, the runtime the whole platform is built and tested for.",
    });
    Validations.of(role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "dynamodb:ListStreams has no resource-level permissions (AWS requires *); the table's stream itself is granted by its ARN only.",
    });
    const bucket = platform.bucket.node.defaultChild as CfnElement;
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(bucket).resolve(bucket.logicalId) as string}.Arn>/*]`,
      reason:
        "Object-level actions on the objects of this platform's own bucket, whose keys are generated; the same grant as the HTTP function's.",
    });
  }

  /**
   * Lets the dispatcher invoke a processor's handler function: that function's unqualified ARN
   * only (the definition names it so), no versions or aliases.
   */
  grantInvoke(handler: lambda.IFunction): void {
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [handler.functionArn] }),
    );
  }
}

export type TopicRef = string | Topic;

export interface ProcessorAlarmOptions {
  /** Alarm when a processor's lag (records behind, summed over partitions) stays above this for 15 minutes. @default 10000 */
  readonly lagThreshold?: number;
  /** Alarm when at least this many records are dead-lettered in 5 minutes. @default 1 */
  readonly deadLetteredThreshold?: number;
  readonly actions?: cloudwatch.IAlarmAction[];
}

export interface ProcessorProps {
  readonly platform: SluicePlatform;
  /** The processor's name. @default the construct's id */
  readonly processorName?: string;
  /** The source topic (or `topics` for several). */
  readonly topic?: TopicRef;
  readonly topics?: TopicRef[];
  /** The handler: a Lambda function invoked synchronously with each batch (docs/processors.md). */
  readonly handler: lambda.IFunction;
  readonly outputTopics?: TopicRef[];
  readonly deadLetterTopic?: TopicRef;
  /** @default 100 */
  readonly batchSize?: number;
  /** @default 1 MiB (at most 4 MiB for a Lambda handler) */
  readonly batchMaxBytes?: number;
  /** @default none */
  readonly batchWindow?: Duration;
  /** @default "LATEST" */
  readonly startingPosition?: "EARLIEST" | "LATEST" | { readonly timestamp: Date };
  /** Only records matching it reach the handler (docs/processors.md, "Filters"). */
  readonly filter?: Record<string, unknown>;
  readonly retry?: {
    readonly maxAttempts?: number;
    readonly backoff?: Duration;
    readonly maxBackoff?: Duration;
    readonly maxRecordAge?: Duration;
    readonly timeout?: Duration;
  };
  readonly bisectOnError?: boolean;
  /**
   * "PARTITION" (default); per key with a parallelism factor; or shared: no order, the
   * processor's own share group handing records to `parallelism` batches per dispatcher
   * invocation, past the partition count, outputs at least once (docs/processors.md, "Shared").
   */
  readonly ordering?:
    | "PARTITION"
    | { readonly key: { readonly parallelism?: number } }
    | { readonly shared: { readonly parallelism?: number } };
  /** Lag and dead-letter alarms; `false` creates none. @default {} */
  readonly alarms?: ProcessorAlarmOptions | false;
  /**
   * A row of this processor's own graphs on the platform's dashboard (throughput, p99 handler
   * duration, failures, retries and dead letters, lag and iterator age), when the platform has a
   * dashboard. @default true
   */
  readonly dashboardWidgets?: boolean;
  /** DESTROY (default) deletes the processor and its progress with the resource. */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A processor declared in code: its definition stored through the platform's admin API at deploy
 * time (created, updated keeping its progress, deleted), run by the platform's dispatcher, which is
 * granted the invocation of this handler only; alarms on its lag and on dead-lettered records.
 */
export class Processor extends Construct {
  readonly processorName: string;
  readonly dispatcher: ProcessorDispatcher;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    this.processorName = props.processorName ?? id;
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(this.processorName)) {
      throw new Error(`processor names are 1-249 of [a-zA-Z0-9._-]: processor=${this.processorName}`);
    }
    const sources = [...(props.topic === undefined ? [] : [props.topic]), ...(props.topics ?? [])];
    if (sources.length === 0) throw new Error(`processor ${this.processorName} needs a topic (or topics)`);
    const name = (ref: TopicRef) => (typeof ref === "string" ? ref : ref.topicName);
    const definition: Record<string, unknown> = {
      name: this.processorName,
      topics: sources.map(name),
      handler: { type: "lambda", function_name: props.handler.functionArn },
      ...(props.outputTopics ? { output_topics: props.outputTopics.map(name) } : {}),
      ...(props.deadLetterTopic ? { dead_letter_topic: name(props.deadLetterTopic) } : {}),
      ...(props.batchSize === undefined ? {} : { batch_size: props.batchSize }),
      ...(props.batchMaxBytes === undefined ? {} : { batch_max_bytes: props.batchMaxBytes }),
      ...(props.batchWindow ? { batch_window_ms: props.batchWindow.toMilliseconds() } : {}),
      ...startingPosition(props.startingPosition),
      ...(props.filter ? { filter: props.filter } : {}),
      ...(props.retry ? { retry: retry(props.retry) } : {}),
      ...(props.bisectOnError ? { bisect_on_error: true } : {}),
      ...ordering(props.ordering),
    };
    this.dispatcher = ProcessorDispatcher.of(props.platform);
    this.dispatcher.grantInvoke(props.handler);
    const provider = TopicProvider.of(props.platform);
    this.resource = new CustomResource(this, "Resource", {
      serviceToken: provider.function.functionArn,
      resourceType: "Custom::SluiceProcessor",
      serviceTimeout: Duration.minutes(10),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      properties: {
        ApiFunction: props.platform.api.functionArn,
        ClusterId: props.platform.clusterId,
        ProcessorName: this.processorName,
        Definition: Stack.of(this).toJsonString(definition),
      },
    });
    this.resource.node.addDependency(provider);
    for (const ref of [
      ...sources,
      ...(props.outputTopics ?? []),
      ...(props.deadLetterTopic ? [props.deadLetterTopic] : []),
    ]) {
      if (ref instanceof Topic) this.resource.node.addDependency(ref);
    }
    if (props.alarms !== false) this.createAlarms(props.alarms ?? {});
    if (props.dashboardWidgets !== false && props.platform.dashboard)
      this.addWidgets(props.platform.dashboard);
  }

  /** This processor's golden signals, one row of graphs, each at the alarms' 5-minute period. */
  addWidgets(dashboard: cloudwatch.Dashboard): void {
    const name = this.processorName;
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Processor ${name}: records processed`,
        left: [
          this.metric("ProcessorRecordsProcessed", { statistic: cloudwatch.Stats.SUM, label: "processed" }),
        ],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: `Processor ${name}: handler duration (p99, ms)`,
        left: [
          this.metric("ProcessorHandlerDuration", {
            statistic: cloudwatch.Stats.percentile(99),
            label: "p99",
          }),
        ],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: `Processor ${name}: failures, retries, dead-lettered`,
        left: [
          this.metric("ProcessorFailures", { statistic: cloudwatch.Stats.SUM, label: "failures" }),
          this.metric("ProcessorRetries", { statistic: cloudwatch.Stats.SUM, label: "retries" }),
          this.metric("ProcessorDeadLettered", { statistic: cloudwatch.Stats.SUM, label: "dead-lettered" }),
        ],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: `Processor ${name}: lag (records) and iterator age`,
        left: [this.metric("ProcessorLagRecords", { statistic: cloudwatch.Stats.MAXIMUM, label: "lag" })],
        right: [
          this.metric("ProcessorIteratorAge", { statistic: cloudwatch.Stats.MAXIMUM, label: "iterator age" }),
        ],
        width: 6,
      }),
    );
  }

  /**
   * A processor series as the dispatcher publishes it (EMF, namespace `Sluice`, the platform's
   * `service` and this processor: packages/telemetry/src/series.ts): `ProcessorRecordsProcessed`,
   * `ProcessorDeadLettered`, `ProcessorFailures`, `ProcessorRetries`, `ProcessorLagRecords` (the
   * sum over partitions at each sweep), `ProcessorIteratorAge` or `ProcessorHandlerDuration`.
   */
  metric(metricName: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: SLUICE_NAMESPACE,
      metricName,
      dimensionsMap: { service: API_SERVICE, processor: this.processorName },
      period: Duration.minutes(5),
      ...options,
    });
  }

  private createAlarms(options: ProcessorAlarmOptions): void {
    const lag = new cloudwatch.Alarm(this, "LagAlarm", {
      alarmDescription: `Sluice processor ${this.processorName}: lag above ${options.lagThreshold ?? 10_000} records for 15 minutes`,
      metric: this.metric("ProcessorLagRecords", { statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: options.lagThreshold ?? 10_000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const deadLettered = new cloudwatch.Alarm(this, "DeadLetteredAlarm", {
      alarmDescription: `Sluice processor ${this.processorName}: records dead-lettered`,
      metric: this.metric("ProcessorDeadLettered", { statistic: cloudwatch.Stats.SUM }),
      threshold: options.deadLetteredThreshold ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarms.push(lag, deadLettered);
    for (const alarm of this.alarms) alarm.addAlarmAction(...(options.actions ?? []));
  }
}

function startingPosition(position: ProcessorProps["startingPosition"]): Record<string, unknown> {
  if (position === undefined) return {};
  if (typeof position === "string") return { starting_position: position };
  return { starting_position: "AT_TIMESTAMP", starting_timestamp: position.timestamp.getTime() };
}

function retry(policy: NonNullable<ProcessorProps["retry"]>): Record<string, unknown> {
  return {
    ...(policy.maxAttempts === undefined ? {} : { max_attempts: policy.maxAttempts }),
    ...(policy.backoff ? { backoff_ms: policy.backoff.toMilliseconds() } : {}),
    ...(policy.maxBackoff ? { max_backoff_ms: policy.maxBackoff.toMilliseconds() } : {}),
    ...(policy.maxRecordAge ? { max_record_age_ms: policy.maxRecordAge.toMilliseconds() } : {}),
    ...(policy.timeout ? { timeout_ms: policy.timeout.toMilliseconds() } : {}),
  };
}

function ordering(given: ProcessorProps["ordering"]): Record<string, unknown> {
  if (given === undefined || given === "PARTITION") return {};
  const [kind, settings] =
    "key" in given ? (["KEY", given.key] as const) : (["SHARED", given.shared] as const);
  return { ordering: kind, ...(settings.parallelism ? { parallelism: settings.parallelism } : {}) };
}
