import { createStack, deleteStack, reproName, verdict } from "./cdk-repro-support.js";

/**
 * A Function URL with InvokeMode RESPONSE_STREAM delivers what the handler writes as it writes it:
 * the SSE tail (hono/aws-lambda's streamHandle) depends on it. MiniStack's local Node executor
 * does not provide the `awslambda.streamifyResponse` global the Lambda runtime defines, and it
 * answers a streamed URL only once the invocation has finished.
 */
const stackName = reproName("url-stream");
const code = `exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 200, headers: { "content-type": "text/plain" } });
  stream.write("first\\n");
  await new Promise((resolve) => setTimeout(resolve, 3000));
  stream.write("second\\n");
  stream.end();
});`;
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
    Logs: { Type: "AWS::Logs::LogGroup", Properties: { RetentionInDays: 1 } },
    Streamer: {
      Type: "AWS::Lambda::Function",
      Properties: {
        Runtime: "nodejs22.x",
        Handler: "index.handler",
        Timeout: 10,
        Role: { "Fn::GetAtt": ["Role", "Arn"] },
        LoggingConfig: { LogGroup: { Ref: "Logs" } },
        Code: { ZipFile: code },
      },
    },
    StreamerUrl: {
      Type: "AWS::Lambda::Url",
      Properties: {
        AuthType: "NONE",
        InvokeMode: "RESPONSE_STREAM",
        TargetFunctionArn: { "Fn::GetAtt": ["Streamer", "Arn"] },
      },
    },
  },
  Outputs: { Url: { Value: { "Fn::GetAtt": ["StreamerUrl", "FunctionUrl"] } } },
});
let observed: string;
let streamed = false;
try {
  const id = /^https:\/\/([a-z0-9]+)\.lambda-url\./.exec(stack.outputs.Url ?? "")?.[1];
  const started = Date.now();
  const response = await fetch(`${process.env.AWS_ENDPOINT_URL}/_aws/lambda-url/${id}/`);
  const reader = response.body?.getReader();
  const first = reader ? await reader.read() : { value: undefined };
  const firstMs = Date.now() - started;
  let body = new TextDecoder().decode(first.value ?? new Uint8Array());
  for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read()) {
    body += new TextDecoder().decode(chunk.value);
  }
  streamed =
    response.status === 200 && body.startsWith("first\n") && firstMs < 2_000 && body.includes("second");
  observed = `status ${response.status}, first bytes after ${firstMs} ms, body ${JSON.stringify(body.slice(0, 120))}`;
} finally {
  await deleteStack(stackName);
}
verdict(
  "lambda-function-url-response-stream",
  streamed,
  observed,
  'status 200, "first" within 2 s, "second" about 3 s later',
);
