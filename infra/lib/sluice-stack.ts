import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { bundlingRootOf } from "./paths.js";
import { Processor, type ProcessorProps } from "./processor.js";
import { SluicePlatform, type SluicePlatformProps } from "./sluice-platform.js";
import { Topic, type TopicProps } from "./topic.js";

export interface TopicDeclaration extends Omit<TopicProps, "platform"> {}

/** A processor whose handler is a Lambda function built from a TypeScript entry in this repository. */
export interface ProcessorDeclaration extends Omit<ProcessorProps, "platform" | "handler"> {
  readonly processorName: string;
  /** The handler's entry: a module exporting `handler` (e.g. `eventHandler(defineProcessor(…))`). */
  readonly handlerEntry: string;
}

export interface SluiceStackProps extends StackProps {
  readonly platform?: SluicePlatformProps;
  /** Topics created (and kept in shape) at deploy time. */
  readonly topics?: TopicDeclaration[];
  /** Processors declared at deploy time, each with its handler function. */
  readonly processors?: ProcessorDeclaration[];
}

/** One Sluice deployment: the platform, its declared topics, and the outputs clients need. */
export class SluiceStack extends Stack {
  readonly platform: SluicePlatform;
  readonly topics: Topic[];
  readonly processors: Processor[];

  constructor(scope: Construct, id: string, props: SluiceStackProps = {}) {
    super(scope, id, props);
    this.platform = new SluicePlatform(this, "Platform", props.platform);
    this.topics = (props.topics ?? []).map(
      (topic) => new Topic(this, `Topic-${topic.topicName}`, { ...topic, platform: this.platform }),
    );
    this.processors = (props.processors ?? []).map((declaration) => {
      const { handlerEntry, ...rest } = declaration;
      const logGroup = new logs.LogGroup(this, `HandlerLogs-${declaration.processorName}`, {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Its own role: it may write its logs, nothing else (a handler needing more gets it granted).
      const role = new iam.Role(this, `HandlerRole-${declaration.processorName}`, {
        assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
        description: `Sluice processor ${declaration.processorName}'s handler: its own logs`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
          resources: [logGroup.logGroupArn],
        }),
      );
      const handler = new NodejsFunction(this, `Handler-${declaration.processorName}`, {
        entry: handlerEntry,
        role,
        logGroup,
        handler: "handler",
        ...bundlingRootOf(handlerEntry),
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        timeout: Duration.seconds(30),
        description: `Sluice processor ${declaration.processorName}: its handler`,
        bundling: { format: OutputFormat.CJS, target: "node22", minify: true },
      });
      Validations.of(handler).acknowledge({
        id: "AwsSolutions-L1",
        reason: "nodejs22.x, the runtime the whole platform is built and tested for.",
      });
      const byName = (name: string | Topic) =>
        typeof name === "string" ? (this.topics.find((topic) => topic.topicName === name) ?? name) : name;
      return new Processor(this, `Processor-${declaration.processorName}`, {
        ...rest,
        platform: this.platform,
        handler,
        ...(rest.topic ? { topic: byName(rest.topic) } : {}),
        ...(rest.topics ? { topics: rest.topics.map(byName) } : {}),
        ...(rest.outputTopics ? { outputTopics: rest.outputTopics.map(byName) } : {}),
        ...(rest.deadLetterTopic ? { deadLetterTopic: byName(rest.deadLetterTopic) } : {}),
      });
    });
    new CfnOutput(this, "ApiUrl", {
      value: this.platform.apiUrl.url,
      description: "Base URL of the HTTP API (Confluent REST v3 routes under /v3)",
    });
    new CfnOutput(this, "BucketName", { value: this.platform.dataBucketName });
    new CfnOutput(this, "TableName", { value: this.platform.table.tableName });
    new CfnOutput(this, "ClusterId", { value: this.platform.clusterId });
    if (this.platform.maintenance) {
      new CfnOutput(this, "MaintenanceFunctionName", {
        value: this.platform.maintenance.function.functionName,
        description: 'The maintenance function: invoke it with {} or {"topics":[...]} to run maintenance now',
      });
    }
    const dispatcher = this.processors[0]?.dispatcher;
    if (dispatcher) {
      new CfnOutput(this, "DispatcherFunction", {
        value: dispatcher.function.functionName,
        description: 'The processors\' dispatcher (invoke with {"sluice":"sweep"} to sweep now)',
      });
    }
  }
}
