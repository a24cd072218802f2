import { createHash, createHmac } from "node:crypto";

/**
 * A minimal AWS Query-protocol client (form-encoded POST, XML answer), signed with SigV4, for the
 * few CloudFormation and CloudWatch calls the deploy scripts and emulator repros make. The repository installs
 * only the S3 and DynamoDB SDK clients; the rest of AWS is reached through the CDK CLI. Reads the
 * standard environment: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN.
 */
export interface QueryOptions {
  /** The signing name: cloudformation, or monitoring (CloudWatch). */
  service: "cloudformation" | "monitoring";
  version: string;
  action: string;
  params?: Record<string, string>;
}

export class AwsQueryError extends Error {
  override readonly name = "AwsQueryError";
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export async function awsQuery(options: QueryOptions): Promise<string> {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint = new URL(
    process.env.AWS_ENDPOINT_URL ?? `https://${options.service}.${region}.amazonaws.com`,
  );
  const body = new URLSearchParams({ Action: options.action, Version: options.version, ...options.params })
    .toString()
    .replace(/\+/g, "%20");
  const headers = sign({
    service: options.service,
    region,
    host: endpoint.host,
    body,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "test",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
    sessionToken: process.env.AWS_SESSION_TOKEN,
  });
  const response = await fetch(new URL("/", endpoint), { method: "POST", headers, body });
  const text = await response.text();
  if (!response.ok) {
    throw new AwsQueryError(
      `${options.service} ${options.action} failed: status=${response.status} message=${xmlValue(text, "Message") ?? text}`,
      response.status,
      xmlValue(text, "Code"),
    );
  }
  return text;
}

/**
 * An AWS JSON 1.0 call (`X-Amz-Target: <target>`), the protocol current SDKs use for CloudWatch.
 * Answers the parsed JSON body.
 */
export async function awsJson(
  service: QueryOptions["service"],
  target: string,
  input: object,
): Promise<unknown> {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL ?? `https://${service}.${region}.amazonaws.com`);
  const body = JSON.stringify(input);
  const headers = sign({
    service,
    region,
    host: endpoint.host,
    body,
    contentType: "application/x-amz-json-1.0",
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "test",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
    sessionToken: process.env.AWS_SESSION_TOKEN,
  });
  const response = await fetch(new URL("/", endpoint), {
    method: "POST",
    headers: { ...headers, "x-amz-target": target },
    body,
  });
  const text = await response.text();
  if (!response.ok)
    throw new AwsQueryError(
      `${target} failed: status=${response.status} ${text}`,
      response.status,
      undefined,
    );
  return text === "" ? undefined : JSON.parse(text);
}

/** The text of the first `<tag>` element in an XML document, entities decoded. */
export function xmlValue(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return match?.[1] === undefined ? undefined : decodeXml(match[1]);
}

/** The texts of every `<tag>` element, in document order. */
export function xmlValues(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) =>
    decodeXml(m[1] ?? ""),
  );
}

function decodeXml(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

export interface SignInput {
  service: string;
  region: string;
  host: string;
  body: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
  /** @default the form encoding of the Query protocol */
  contentType?: string;
  /** The request's path, already URI-encoded. @default "/" */
  path?: string;
  /** @default now */
  date?: Date;
}

/** SigV4 headers for a POST with a body (AWS General Reference, "Signature Version 4"). */
export function sign(input: SignInput): Record<string, string> {
  const amzDate = (input.date ?? new Date()).toISOString().replace(/[-:]|\.\d{3}/g, "");
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    "content-type": input.contentType ?? "application/x-www-form-urlencoded; charset=utf-8",
    host: input.host,
    "x-amz-date": amzDate,
  };
  if (input.sessionToken) headers["x-amz-security-token"] = input.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((name) => `${name}:${headers[name]}\n`).join("");
  const canonicalRequest = [
    "POST",
    input.path ?? "/",
    "",
    canonicalHeaders,
    names.join(";"),
    sha256(input.body),
  ].join("\n");
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  let key: Buffer = hmac(`AWS4${input.secretAccessKey}`, day);
  for (const part of [input.region, input.service, "aws4_request"]) key = hmac(key, part);
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  // fetch sends the host header itself, from the same URL.
  const { host: _host, ...sent } = headers;
  return {
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}

function sha256(data: string): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/**
 * Invokes a Lambda function synchronously (the Invoke API, `RequestResponse`) and answers its
 * result, or throws with the function's error when it failed (`X-Amz-Function-Error`).
 */
export async function invokeLambda(functionName: string, payload: unknown): Promise<unknown> {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL ?? `https://lambda.${region}.amazonaws.com`);
  const path = `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;
  const body = JSON.stringify(payload);
  const headers = sign({
    service: "lambda",
    region,
    host: endpoint.host,
    body,
    path,
    contentType: "application/json",
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "test",
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
    sessionToken: process.env.AWS_SESSION_TOKEN,
  });
  const response = await fetch(new URL(path, endpoint), { method: "POST", headers, body });
  const text = await response.text();
  if (!response.ok)
    throw new AwsQueryError(
      `Invoke ${functionName} failed: status=${response.status} ${text}`,
      response.status,
      undefined,
    );
  const result = text === "" ? undefined : JSON.parse(text);
  const functionError = response.headers.get("x-amz-function-error");
  if (functionError)
    throw new AwsQueryError(
      `${functionName} failed (${functionError}): ${text}`,
      response.status,
      functionError,
    );
  return result;
}
