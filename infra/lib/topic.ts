import { join } from "node:path";
import { CustomResource, Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { bundlingRootOf } from "./paths.js";
import type { SluicePlatform } from "./sluice-platform.js";

export interface TopicProps {
  /** The platform whose HTTP apps create the topic. */
  readonly platform: SluicePlatform;
  readonly topicName: string;
  /** Partitions can be added later, never removed. @default 1 */
  readonly partitions?: number;
  /** Topic configs, Kafka names: `{ "retention.ms": "604800000", "cleanup.policy": "compact" }`. */
  readonly configs?: Record<string, string>;
  /**
   * RETAIN (the default) keeps the topic and its records when it leaves the stack, the stack is
   * deleted, or its name changes; DESTROY deletes the topic through the admin API.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A topic declared in code, created at deploy time through the platform's own admin API
 * (`POST /v3/clusters/{cluster_id}/topics`), updated on later deploys (configs altered,
 * partitions added) and, if its removal policy says so, deleted.
 */
export class Topic extends Construct {
  readonly topicName: string;
  readonly partitions: number;
  private readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: TopicProps) {
    super(scope, id);
    const partitions = props.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new Error(`partitions must be a positive integer: topic=${props.topicName} value=${partitions}`);
    }
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(props.topicName)) {
      throw new Error(`topic names are 1-249 of [a-zA-Z0-9._-] (Kafka's rule): topic=${props.topicName}`);
    }
    const provider = TopicProvider.of(props.platform);
    this.resource = new CustomResource(this, "Resource", {
      serviceToken: provider.function.functionArn,
      resourceType: "Custom::SluiceTopic",
      // Fail a stuck deployment after 10 minutes, not CloudFormation's default hour.
      serviceTimeout: Duration.minutes(10),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      properties: {
        ApiFunction: props.platform.api.functionArn,
        ClusterId: props.platform.clusterId,
        TopicName: props.topicName,
        PartitionsCount: partitions,
        Configs: Object.entries(props.configs ?? {}).map(([name, value]) => ({ name, value })),
      },
    });
    this.resource.node.addDependency(provider);
    this.topicName = props.topicName;
    this.partitions = partitions;
  }
}

/** One provider function per platform, shared by all its topics. */
export class TopicProvider extends Construct {
  static of(platform: SluicePlatform): TopicProvider {
    const existing = platform.node.tryFindChild("TopicProvider");
    return existing instanceof TopicProvider ? existing : new TopicProvider(platform, "TopicProvider");
  }

  readonly function: NodejsFunction;

  private constructor(platform: SluicePlatform, id: string) {
    super(platform, id);
    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "Sluice topic provider: invoke the platform's HTTP function, write its own logs",
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [platform.api.functionArn] }),
    );
    const entry = join(import.meta.dirname, "topic-provider", "handler.ts");
    this.function = new NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      ...bundlingRootOf(entry),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.minutes(2),
      role,
      logGroup,
      description: "Sluice topic provider: creates and updates declared topics through the admin API",
      bundling: { format: OutputFormat.CJS, target: "node22", minify: true, sourceMap: false },
    });
    Validations.of(this.function).acknowledge({
      id: "AwsSolutions-L1",
      reason: "nodejs22.x, the runtime the whole platform is built and tested for.",
    });
  }
}
