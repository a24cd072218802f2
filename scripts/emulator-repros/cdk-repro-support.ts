import { randomBytes } from "node:crypto";
import { awsQuery, xmlValue, xmlValues } from "../../infra/emulator/aws-query.js";
import { useEmulatorEnvironment } from "../../infra/emulator/deploy.js";

/**
 * Shared by the cdk-* and lambda-* emulator repros: each deploys a tiny CloudFormation template
 * (what `cdk deploy` hands the emulator), checks one behaviour against what AWS does, cleans up,
 * and exits 1 while the emulator misbehaves, 0 once it behaves like AWS. Run one with
 * `npx tsx scripts/emulator-repros/<name>.ts` (AWS_ENDPOINT_URL defaults to http://127.0.0.1:4566).
 */

export type Template = { Resources: Record<string, unknown>; Outputs?: Record<string, unknown> };

export interface CreatedStack {
  stackName: string;
  outputs: Record<string, string>;
  /** Logical id to physical id. */
  resources: Record<string, string>;
}

export function reproName(purpose: string): string {
  return `SluiceRepro-${purpose}-${Date.now().toString(36)}${randomBytes(2).toString("hex")}`;
}

export async function createStack(stackName: string, template: Template): Promise<CreatedStack> {
  useEmulatorEnvironment();
  await cfn("CreateStack", {
    StackName: stackName,
    TemplateBody: JSON.stringify(template),
    "Capabilities.member.1": "CAPABILITY_IAM",
  });
  const status = await waitForStatus(stackName, (s) => !s.endsWith("_IN_PROGRESS"));
  if (status !== "CREATE_COMPLETE") throw new Error(`stack ${stackName} ended ${status}`);
  const described = await cfn("DescribeStacks", { StackName: stackName });
  const keys = xmlValues(described, "OutputKey");
  const values = xmlValues(described, "OutputValue");
  const resourcesXml = await cfn("DescribeStackResources", { StackName: stackName });
  const logical = xmlValues(resourcesXml, "LogicalResourceId");
  const physical = xmlValues(resourcesXml, "PhysicalResourceId");
  return {
    stackName,
    outputs: Object.fromEntries(keys.map((k, i) => [k, values[i] ?? ""])),
    resources: Object.fromEntries(logical.map((k, i) => [k, physical[i] ?? ""])),
  };
}

/** Deletes the stack and returns its final status (DELETE_COMPLETE when it is gone). */
export async function deleteStack(stackName: string): Promise<string> {
  await cfn("DeleteStack", { StackName: stackName });
  return waitForStatus(stackName, (s) => !s.endsWith("_IN_PROGRESS"));
}

export async function cfn(action: string, params: Record<string, string>): Promise<string> {
  return awsQuery({ service: "cloudformation", version: "2010-05-15", action, params });
}

async function waitForStatus(stackName: string, done: (status: string) => boolean): Promise<string> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    let status: string;
    try {
      status = xmlValue(await cfn("DescribeStacks", { StackName: stackName }), "StackStatus") ?? "UNKNOWN";
    } catch (error) {
      if (error instanceof Error && /does not exist/.test(error.message)) return "DELETE_COMPLETE";
      throw error;
    }
    if (done(status)) return status;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`stack ${stackName} did not settle within 120 s`);
}

/** Prints the verdict and exits: 1 while the bug is present, 0 when the emulator behaves like AWS. */
export function verdict(name: string, behavesLikeAws: boolean, observed: string, expected: string): never {
  const line = behavesLikeAws
    ? `FIXED ${name}: ${observed}`
    : `BUG ${name}: observed ${observed}; AWS: ${expected}`;
  process.stdout.write(`${line}\n`);
  process.exit(behavesLikeAws ? 0 : 1);
}

/**
 * A nodejs22.x function answering with its Node version and CPU architecture, behind a Function
 * URL (auth NONE), deployed from an inline template the way CDK deploys functions.
 */
export async function deployProbeFunction(
  purpose: string,
  architecture: "x86_64" | "arm64",
): Promise<{ stack: CreatedStack; report: { version: string; arch: string } }> {
  const stackName = reproName(purpose);
  const code = `exports.handler = async () => ({ statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ version: process.version, arch: process.arch }) });`;
  const stack = await createStack(stackName, {
    Resources: {
      Role: {
        Type: "AWS::IAM::Role",
        Properties: {
          AssumeRolePolicyDocument: {
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
            ],
          },
        },
      },
      // A log group of the stack's own, so deleting the stack leaves no /aws/lambda/ group behind.
      Logs: { Type: "AWS::Logs::LogGroup", Properties: { RetentionInDays: 1 } },
      Probe: {
        Type: "AWS::Lambda::Function",
        Properties: {
          LoggingConfig: { LogGroup: { Ref: "Logs" } },
          Runtime: "nodejs22.x",
          Architectures: [architecture],
          Handler: "index.handler",
          Role: { "Fn::GetAtt": ["Role", "Arn"] },
          Code: { ZipFile: code },
        },
      },
      ProbeUrl: {
        Type: "AWS::Lambda::Url",
        Properties: { AuthType: "NONE", TargetFunctionArn: { "Fn::GetAtt": ["Probe", "Arn"] } },
      },
      ProbeUrlPermission: {
        Type: "AWS::Lambda::Permission",
        Properties: {
          Action: "lambda:InvokeFunctionUrl",
          FunctionName: { Ref: "Probe" },
          Principal: "*",
          FunctionUrlAuthType: "NONE",
        },
      },
    },
    Outputs: { Url: { Value: { "Fn::GetAtt": ["ProbeUrl", "FunctionUrl"] } } },
  });
  try {
    const id = /^https:\/\/([a-z0-9]+)\.lambda-url\./.exec(stack.outputs.Url ?? "")?.[1];
    const endpoint = process.env.AWS_ENDPOINT_URL ?? "";
    const url = id ? `${endpoint}/_aws/lambda-url/${id}/` : (stack.outputs.Url ?? "");
    const response = await fetch(url);
    const report = (await response.json()) as { version: string; arch: string };
    return { stack, report };
  } finally {
    await deleteStack(stackName);
  }
}
