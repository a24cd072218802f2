import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { REPO_ROOT } from "../lib/paths.js";
import { AwsQueryError, awsQuery, xmlValue, xmlValues } from "./aws-query.js";

/**
 * Deploys the Sluice CDK app onto an AWS emulator (MiniStack or LocalStack) with the real CDK CLI:
 * `cdk bootstrap` under its own qualifier, `cdk deploy` (assets published to the emulator's S3,
 * the template applied through CloudFormation change sets), then reads the stack outputs. Tearing
 * down empties the bucket and deletes the stack through CloudFormation, as one would on AWS.
 */

export const DEFAULT_EMULATOR_ENDPOINT = "http://127.0.0.1:4566";

export interface TopicDeclarationContext {
  topicName: string;
  partitions?: number;
  configs?: Record<string, string>;
  removalPolicy?: "retain" | "destroy";
}

export interface EmulatorStackOptions {
  stackName: string;
  /** The bootstrap qualifier: up to 10 lowercase letters and digits. */
  qualifier: string;
  /** @default `SluiceToolkit-${qualifier}` */
  toolkitStackName?: string;
  /** The HTTP apps' Lambda entry. @default functions/src/lambda.ts */
  entry?: string;
  topics?: TopicDeclarationContext[];
  /** Processors to declare (the app's `processors` context: name, topics, handler entry, …). */
  processors?: Record<string, unknown>[];
  /** More `-c key=value` context for the app. */
  context?: Record<string, string>;
  /** Where progress lines go. @default nowhere */
  log?: (line: string) => void;
}

export interface DeployedStack {
  stackName: string;
  /** The Function URL as CloudFormation reports it. */
  apiUrl: string;
  /** The same URL in a form this machine can reach, without a trailing slash. */
  reachableApiUrl: string;
  bucketName: string;
  tableName: string;
  clusterId: string;
  /** The maintenance function, when the stack deploys one. */
  maintenanceFunctionName: string | undefined;
  /** The processors' dispatcher function, when the stack declares processors. */
  dispatcherFunction?: string;
}

/** Fills in the emulator endpoint, region and dummy credentials, keeping whatever is set already. */
export function useEmulatorEnvironment(): string {
  process.env.AWS_ENDPOINT_URL ??= DEFAULT_EMULATOR_ENDPOINT;
  process.env.AWS_REGION ??= process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  return process.env.AWS_ENDPOINT_URL;
}

export function toolkitStackNameOf(options: EmulatorStackOptions): string {
  return options.toolkitStackName ?? `SluiceToolkit-${options.qualifier}`;
}

export async function deployToEmulator(options: EmulatorStackOptions): Promise<DeployedStack> {
  const endpoint = useEmulatorEnvironment();
  if (!/^[a-z0-9]{1,10}$/.test(options.qualifier)) {
    throw new Error(
      `the bootstrap qualifier is 1-10 lowercase letters and digits: qualifier=${options.qualifier}`,
    );
  }
  const log = options.log ?? (() => {});
  const toolkitStackName = toolkitStackNameOf(options);
  const region = process.env.AWS_REGION ?? "us-east-1";
  log(`bootstrapping ${toolkitStackName} (qualifier ${options.qualifier}) at ${endpoint}`);
  // Bootstrapping needs no app: run it outside the repository so the CLI does not synthesize one.
  const bootstrapDir = mkdtempSync(join(tmpdir(), "sluice-bootstrap-"));
  await cdk(
    [
      "bootstrap",
      `aws://${accountId()}/${region}`,
      "--qualifier",
      options.qualifier,
      "--toolkit-stack-name",
      toolkitStackName,
    ],
    log,
    bootstrapDir,
  ).finally(() => rmSync(bootstrapDir, { recursive: true, force: true }));
  const output = mkdtempSync(join(tmpdir(), "sluice-cdk-"));
  try {
    const outputsFile = join(output, "outputs.json");
    log(`deploying ${options.stackName}`);
    await cdk(
      [
        "deploy",
        options.stackName,
        "--require-approval",
        "never",
        "--toolkit-stack-name",
        toolkitStackName,
        "--outputs-file",
        outputsFile,
        "--output",
        join(output, "cdk.out"),
        ...contextArgs(options),
      ],
      log,
    );
    const outputs = JSON.parse(readFileSync(outputsFile, "utf8")) as Record<string, Record<string, string>>;
    const stack = outputs[options.stackName] ?? {};
    const apiUrl = required(stack, "ApiUrl");
    return {
      stackName: options.stackName,
      apiUrl,
      reachableApiUrl: reachableApiUrl(apiUrl, endpoint),
      bucketName: required(stack, "BucketName"),
      tableName: required(stack, "TableName"),
      clusterId: required(stack, "ClusterId"),
      maintenanceFunctionName: stack.MaintenanceFunctionName,
      ...(stack.DispatcherFunction ? { dispatcherFunction: stack.DispatcherFunction } : {}),
    };
  } finally {
    rmSync(output, { recursive: true, force: true });
  }
}

/**
 * Empties the stack's bucket, deletes the stack and waits until it is gone; with `removeToolkit`,
 * then deletes the bootstrap stack and its staging bucket (which the bootstrap template retains).
 * A stack that does not exist is not an error.
 */
export async function destroyOnEmulator(
  options: EmulatorStackOptions & { removeToolkit?: boolean },
): Promise<void> {
  useEmulatorEnvironment();
  const log = options.log ?? (() => {});
  const outputs = await stackOutputs(options.stackName);
  if (outputs) {
    const bucket = outputs.BucketName;
    if (bucket) {
      log(`emptying ${bucket}`);
      await emptyBucket(bucket);
    }
    log(`deleting ${options.stackName}`);
    await deleteStack(options.stackName);
  }
  if (options.removeToolkit) {
    const toolkitStackName = toolkitStackNameOf(options);
    const toolkit = await stackOutputs(toolkitStackName);
    if (toolkit) {
      log(`deleting ${toolkitStackName}`);
      await deleteStack(toolkitStackName);
    }
    // The bootstrap template retains its staging bucket; the name follows from the qualifier.
    const region = process.env.AWS_REGION ?? "us-east-1";
    const staging = toolkit?.BucketName ?? `cdk-${options.qualifier}-assets-${accountId()}-${region}`;
    log(`deleting the staging bucket ${staging}`);
    await emptyBucket(staging);
    await s3()
      .send(new DeleteBucketCommand({ Bucket: staging }))
      .catch((error: unknown) => {
        if (!(error instanceof Error && error.name === "NoSuchBucket")) throw error;
      });
  }
}

/**
 * The Function URL in a form this machine can reach. MiniStack reports AWS's own
 * `https://<id>.lambda-url.<region>.on.aws/`, which resolves to nothing locally; it serves the same
 * URL under `<endpoint>/_aws/lambda-url/<id>/`. Other URLs (LocalStack's
 * `*.localhost.localstack.cloud`, real AWS) are kept.
 */
export function reachableApiUrl(apiUrl: string, endpoint: string | undefined): string {
  const awsShaped = /^https:\/\/([a-z0-9]+)\.lambda-url\.[a-z0-9-]+\.on\.aws\/?$/.exec(apiUrl);
  const local = endpoint !== undefined && isLocalEndpoint(endpoint);
  const url = awsShaped && local ? `${endpoint.replace(/\/$/, "")}/_aws/lambda-url/${awsShaped[1]}` : apiUrl;
  return url.replace(/\/$/, "");
}

function isLocalEndpoint(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return ["127.0.0.1", "localhost", "::1", "[::1]"].includes(host) || host.endsWith(".localstack.cloud");
}

function contextArgs(options: EmulatorStackOptions): string[] {
  const context: Record<string, string> = {
    "@aws-cdk/core:bootstrapQualifier": options.qualifier,
    stackName: options.stackName,
    // A public URL: emulators do not check signatures, and the HTTP suites call it unsigned.
    apiAuthType: "NONE",
    // Throwaway stacks: deleting the stack deletes the data.
    dataRemovalPolicy: "destroy",
    // MiniStack refuses metric-math alarms (scripts/emulator-repros/cdk-cloudwatch-alarm-metric-math.ts).
    serverErrorRateAlarm: "false",
    ...(options.entry ? { entry: options.entry } : {}),
    ...(options.topics ? { topics: JSON.stringify(options.topics) } : {}),
    ...(options.processors ? { processors: JSON.stringify(options.processors) } : {}),
    ...options.context,
  };
  return Object.entries(context).flatMap(([key, value]) => ["-c", `${key}=${value}`]);
}

function accountId(): string {
  // Emulators take a 12-digit access key id as the account, and 000000000000 otherwise.
  const key = process.env.AWS_ACCESS_KEY_ID ?? "";
  return /^\d{12}$/.test(key) ? key : "000000000000";
}

function required(outputs: Record<string, string>, key: string): string {
  const value = outputs[key];
  if (!value) throw new Error(`the stack has no output ${key}: outputs=${JSON.stringify(outputs)}`);
  return value;
}

/** Runs the repository's CDK CLI (from its root by default); a failure carries the output's tail. */
function cdk(args: string[], log: (line: string) => void, cwd = REPO_ROOT): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(REPO_ROOT, "node_modules", ".bin", "cdk"), args, {
      cwd,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: string[] = [];
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        lines.push(line);
        if (lines.length > 200) lines.shift();
        log(`  ${line}`);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`cdk ${args[0]} failed: exit=${code}\n${lines.slice(-40).join("\n")}`));
    });
  });
}

async function stackOutputs(stackName: string): Promise<Record<string, string> | undefined> {
  let xml: string;
  try {
    xml = await awsQuery({
      service: "cloudformation",
      version: "2010-05-15",
      action: "DescribeStacks",
      params: { StackName: stackName },
    });
  } catch (error) {
    if (error instanceof AwsQueryError && /does not exist/.test(error.message)) return undefined;
    throw error;
  }
  if (xmlValue(xml, "StackStatus") === "DELETE_COMPLETE") return undefined;
  const keys = xmlValues(xml, "OutputKey");
  const values = xmlValues(xml, "OutputValue");
  return Object.fromEntries(keys.map((key, i) => [key, values[i] ?? ""]));
}

async function deleteStack(stackName: string, timeoutMs = 10 * 60_000): Promise<void> {
  await awsQuery({
    service: "cloudformation",
    version: "2010-05-15",
    action: "DeleteStack",
    params: { StackName: stackName },
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let xml: string;
    try {
      xml = await awsQuery({
        service: "cloudformation",
        version: "2010-05-15",
        action: "DescribeStacks",
        params: { StackName: stackName },
      });
    } catch (error) {
      if (error instanceof AwsQueryError && /does not exist/.test(error.message)) return;
      throw error;
    }
    const status = xmlValue(xml, "StackStatus");
    if (status === "DELETE_COMPLETE") return;
    if (status === "DELETE_FAILED") {
      throw new Error(
        `deleting ${stackName} failed: reason=${xmlValue(xml, "StackStatusReason") ?? "unknown"}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  throw new Error(`deleting ${stackName} did not finish within ${timeoutMs} ms`);
}

function s3(): S3Client {
  return new S3Client({ forcePathStyle: true, maxAttempts: 3 });
}

/** Deletes every object version and delete marker (the bootstrap's staging bucket is versioned). */
async function emptyBucket(bucket: string): Promise<void> {
  const client = s3();
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    let page: ListObjectVersionsCommandOutput;
    try {
      page = await client.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
        }),
      );
    } catch (error) {
      if (error instanceof Error && error.name === "NoSuchBucket") return;
      throw error;
    }
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].flatMap((version) =>
      version.Key ? [{ Key: version.Key, VersionId: version.VersionId }] : [],
    );
    if (objects.length > 0) {
      await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
      );
    }
    if (!page.IsTruncated) return;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}
