import { resolve } from "node:path";
import { App, Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Architecture, FunctionUrlAuthType } from "aws-cdk-lib/aws-lambda";
import { AwsSolutionsChecks } from "cdk-nag";
import { type ProcessorDeclaration, SluiceStack, type TopicDeclaration } from "../lib/sluice-stack.js";

/**
 * The Sluice CDK app (`npx cdk synth|deploy|destroy` from the repository root). Settings come from
 * CDK context, in cdk.json or as `-c key=value`:
 *
 * - stackName (default "Sluice"), clusterId (default "sluice")
 * - apiAuthType: AWS_IAM (default) or NONE (a public URL; see docs/deploy.md)
 * - architecture: arm64 (default; portable codecs) or x86_64 (native codecs when synthesized on
 *   Linux x64; see docs/deploy.md)
 * - dataRemovalPolicy: retain (default) or destroy (throwaway stacks: emulators, CI)
 * - alarms, dashboard, pointInTimeRecovery, monitoring: true (default) or false
 * - serverErrorRateAlarm: true (default) or false (no metric-math alarm: emulators refuse them)
 * - tracing: false (default) or true (X-Ray on the HTTP function)
 * - entry: the HTTP apps' Lambda entry (default functions/src/lambda.ts)
 * - topics: topics to declare, e.g. [{"topicName":"orders","partitions":3,"configs":{"retention.ms":"604800000"}}]
 * - processors: processors to declare, each with a handler built from an entry, e.g.
 *   [{"processorName":"enrich","topics":["orders"],"outputTopics":["orders-enriched"],
 *     "deadLetterTopic":"orders-dead","handlerEntry":"path/to/handler.ts","startingPosition":"EARLIEST"}]
 * - nag: run the cdk-nag AwsSolutions checks (default true)
 *
 * The stack is environment-agnostic: no lookups, so a fresh clone synthesizes offline.
 */
const app = new App();

const stackName = stringContext("stackName") ?? "Sluice";
new SluiceStack(app, stackName, {
  description: "Sluice: serverless Kafka-style streaming on S3 and DynamoDB",
  platform: {
    clusterId: stringContext("clusterId"),
    entry: stringContext("entry"),
    apiAuthType: authTypeContext("apiAuthType"),
    architecture: architectureContext("architecture"),
    dataRemovalPolicy: removalPolicyContext("dataRemovalPolicy"),
    alarms: booleanContext("alarms") === false ? false : {},
    dashboard: booleanContext("dashboard"),
    pointInTimeRecovery: booleanContext("pointInTimeRecovery"),
    monitoring:
      booleanContext("monitoring") === false
        ? false
        : booleanContext("serverErrorRateAlarm") === false
          ? { serverErrorRatePercent: false }
          : {},
    tracing: booleanContext("tracing"),
  },
  topics: topicsContext("topics"),
  processors: processorsContext("processors"),
});

if (booleanContext("nag") ?? true)
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));

function stringContext(key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string")
    throw new Error(`context ${key} must be a string: value=${JSON.stringify(value)}`);
  return value;
}

function booleanContext(key: string): boolean | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === "") return undefined;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new Error(`context ${key} must be true or false: value=${JSON.stringify(value)}`);
}

function authTypeContext(key: string): FunctionUrlAuthType | undefined {
  const value = stringContext(key);
  if (value === undefined) return undefined;
  if (value === "AWS_IAM") return FunctionUrlAuthType.AWS_IAM;
  if (value === "NONE") return FunctionUrlAuthType.NONE;
  throw new Error(`context ${key} must be AWS_IAM or NONE: value=${value}`);
}

function architectureContext(key: string): Architecture | undefined {
  const value = stringContext(key);
  if (value === undefined) return undefined;
  if (value === "x86_64") return Architecture.X86_64;
  if (value === "arm64") return Architecture.ARM_64;
  throw new Error(`context ${key} must be x86_64 or arm64: value=${value}`);
}

function removalPolicyContext(key: string): RemovalPolicy | undefined {
  const value = stringContext(key)?.toLowerCase();
  if (value === undefined) return undefined;
  if (value === "retain") return RemovalPolicy.RETAIN;
  if (value === "destroy") return RemovalPolicy.DESTROY;
  throw new Error(`context ${key} must be retain or destroy: value=${value}`);
}

interface TopicContext {
  topicName: string;
  partitions?: number;
  configs?: Record<string, string>;
  removalPolicy?: "retain" | "destroy";
}

function topicsContext(key: string): TopicDeclaration[] {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === "") return [];
  const value: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (!Array.isArray(value)) throw new Error(`context ${key} must be a JSON array of topics`);
  return (value as TopicContext[]).map((topic) => ({
    topicName: topic.topicName,
    partitions: topic.partitions,
    configs: topic.configs,
    removalPolicy:
      topic.removalPolicy === undefined
        ? undefined
        : topic.removalPolicy === "destroy"
          ? RemovalPolicy.DESTROY
          : RemovalPolicy.RETAIN,
  }));
}

interface ProcessorContext {
  processorName: string;
  topics: string[];
  handlerEntry: string;
  outputTopics?: string[];
  deadLetterTopic?: string;
  startingPosition?: "EARLIEST" | "LATEST";
  batchSize?: number;
  maxAttempts?: number;
  backoffMs?: number;
  bisectOnError?: boolean;
  ordering?: "PARTITION" | "KEY";
  parallelism?: number;
}

function processorsContext(key: string): ProcessorDeclaration[] {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === "") return [];
  const value: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (!Array.isArray(value)) throw new Error(`context ${key} must be a JSON array of processors`);
  return (value as ProcessorContext[]).map((processor) => ({
    processorName: processor.processorName,
    topics: processor.topics,
    handlerEntry: resolve(processor.handlerEntry),
    ...(processor.outputTopics ? { outputTopics: processor.outputTopics } : {}),
    ...(processor.deadLetterTopic ? { deadLetterTopic: processor.deadLetterTopic } : {}),
    ...(processor.startingPosition ? { startingPosition: processor.startingPosition } : {}),
    ...(processor.batchSize ? { batchSize: processor.batchSize } : {}),
    ...(processor.maxAttempts || processor.backoffMs
      ? {
          retry: {
            ...(processor.maxAttempts ? { maxAttempts: processor.maxAttempts } : {}),
            ...(processor.backoffMs ? { backoff: Duration.millis(processor.backoffMs) } : {}),
          },
        }
      : {}),
    ...(processor.bisectOnError ? { bisectOnError: true } : {}),
    ...(processor.ordering === "KEY"
      ? { ordering: { key: { parallelism: processor.parallelism ?? 4 } } }
      : {}),
  }));
}
