import { onProcessorEvent, type ProcessorEvent } from "./processor-reconcile.js";
import { type ApiResponse, type CallApi, onTopicEvent, type TopicEvent } from "./reconcile.js";

/**
 * The Lambda behind `Custom::SluiceTopic`. It reaches the HTTP apps by invoking their function
 * with a Function-URL-shaped (payload format 2.0) event: the same routes and validation as a
 * request to the URL, without depending on the URL's auth type or on network reachability, and
 * it needs only lambda:InvokeFunction on that one function.
 *
 * It answers CloudFormation itself (PUT to the ResponseURL), always: on success, on failure, and
 * shortly before its own timeout, so a broken deployment fails in minutes instead of hanging.
 */

export interface CloudFormationEvent extends TopicEvent {
  RequestId: string;
  ResponseURL: string;
  StackId: string;
  LogicalResourceId: string;
  ResourceType: string;
  ResourceProperties: TopicEvent["ResourceProperties"] & { ServiceToken: string; ApiFunction: string };
}

export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/** The slice of @aws-sdk/client-lambda this handler uses. */
export interface LambdaModule {
  LambdaClient: new (config: object) => { send(command: object): Promise<InvokeOutput> };
  InvokeCommand: new (input: { FunctionName: string; Payload: Uint8Array }) => object;
}

export interface InvokeOutput {
  FunctionError?: string;
  Payload?: Uint8Array;
}

// The nodejs22.x runtime provides AWS SDK v3; a non-literal specifier keeps esbuild from bundling it
// (and the repository from needing @aws-sdk/client-lambda installed). It is loaded with require(),
// not import(): the runtime's SDK is found through NODE_PATH, which only CommonJS resolution reads.
const LAMBDA_CLIENT_MODULE: string = "@aws-sdk/client-lambda";
const RESPONSE_MARGIN_MS = 5_000;
const REASON_MAX_CHARS = 1_000;

export const handler = topicProvider(() => require(LAMBDA_CLIENT_MODULE) as LambdaModule);

/** The provider, with the way it loads the Lambda client passed in (tests pass a fake). */
export function topicProvider(
  loadLambda: () => LambdaModule,
): (event: CloudFormationEvent, context: LambdaContext) => Promise<void> {
  return (event, context) => handle(event, context, loadLambda);
}

async function handle(
  event: CloudFormationEvent,
  context: LambdaContext,
  loadLambda: () => LambdaModule,
): Promise<void> {
  console.log(
    JSON.stringify({
      requestType: event.RequestType,
      logicalResourceId: event.LogicalResourceId,
      physicalResourceId: event.PhysicalResourceId,
      properties: event.ResourceProperties,
    }),
  );
  const deadlineMs = Math.max(1_000, context.getRemainingTimeInMillis() - RESPONSE_MARGIN_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from the HTTP apps within ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  try {
    const callApi = lambdaApi(event.ResourceProperties.ApiFunction, loadLambda);
    // One provider per platform serves its topics and its processors.
    const work =
      event.ResourceType === "Custom::SluiceProcessor"
        ? onProcessorEvent(event as unknown as ProcessorEvent, callApi)
        : onTopicEvent(event, callApi);
    const result = await Promise.race([work, timedOut]);
    await respond(event, {
      Status: "SUCCESS",
      PhysicalResourceId: result.physicalResourceId,
      Data: result.data,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(JSON.stringify({ failed: reason }));
    await respond(event, {
      Status: "FAILED",
      Reason: reason.slice(0, REASON_MAX_CHARS),
      // A failed create must still name a resource; Delete recognises this id and skips it.
      PhysicalResourceId: event.PhysicalResourceId ?? `failed-${event.RequestId}`,
    });
  } finally {
    clearTimeout(timer);
  }
}

function lambdaApi(functionName: string, loadLambda: () => LambdaModule): CallApi {
  let client: { module: LambdaModule; client: InstanceType<LambdaModule["LambdaClient"]> } | undefined;
  return async (method, path, body): Promise<ApiResponse> => {
    client ??= (() => {
      const module = loadLambda();
      return { module, client: new module.LambdaClient({}) };
    })();
    const { module, client: lambda } = client;
    const payload = new TextEncoder().encode(JSON.stringify(functionUrlEvent(method, path, body)));
    const output = await lambda.send(
      new module.InvokeCommand({ FunctionName: functionName, Payload: payload }),
    );
    const text = output.Payload ? new TextDecoder().decode(output.Payload) : "";
    if (output.FunctionError)
      throw new Error(`the HTTP apps failed: error=${output.FunctionError} payload=${text}`);
    const reply = JSON.parse(text) as { statusCode?: number; body?: string; isBase64Encoded?: boolean };
    const raw = reply.isBase64Encoded
      ? Buffer.from(reply.body ?? "", "base64").toString("utf8")
      : (reply.body ?? "");
    return { status: reply.statusCode ?? 200, body: parseJson(raw) };
  };
}

/** The payload format 2.0 event a Function URL would deliver for this request. */
export function functionUrlEvent(method: string, path: string, body: unknown): object {
  const now = new Date();
  const domainName = "topic-provider.sluice.internal";
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: {
      accept: "application/json",
      "content-type": "application/json",
      host: domainName,
      "user-agent": "sluice-topic-provider",
    },
    requestContext: {
      accountId: "anonymous",
      apiId: "topic-provider",
      domainName,
      domainPrefix: "topic-provider",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "sluice-topic-provider" },
      requestId: crypto.randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  };
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function respond(
  event: CloudFormationEvent,
  outcome: { Status: "SUCCESS" | "FAILED"; PhysicalResourceId: string; Reason?: string; Data?: object },
): Promise<void> {
  const body = JSON.stringify({
    ...outcome,
    Reason: outcome.Reason ?? "see the provider's CloudWatch logs",
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
  // The ResponseURL is a presigned S3 URL signed without a content type.
  const response = await fetch(event.ResponseURL, { method: "PUT", body, headers: { "content-type": "" } });
  if (!response.ok) throw new Error(`ResponseURL answered ${response.status}: ${await response.text()}`);
}
