import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { handle } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type CloudFormationEvent, type InvokeOutput, type LambdaModule, topicProvider } from "./handler.js";

/** A stand-in for the HTTP apps behind hono/aws-lambda, as the deployed function runs them. */
const topics = new Map<string, number>();
const app = new Hono();
app.post("/v3/clusters/:cluster/topics", async (c) => {
  const body = await c.req.json<{ topic_name: string; partitions_count: number }>();
  if (body.topic_name === "refused") return c.json({ error_code: 40002, message: "refused on purpose" }, 400);
  if (body.topic_name === "crash") throw new Error("boom");
  topics.set(`${c.req.param("cluster")}/${body.topic_name}`, body.partitions_count);
  return c.json({ topic_name: body.topic_name }, 201);
});
const appHandler = handle(app);

/** @aws-sdk/client-lambda as the provider uses it, invoking the app in process. */
function fakeLambda(
  options: { hang?: boolean; functionError?: boolean } = {},
): LambdaModule & { invoked: string[] } {
  const invoked: string[] = [];
  class InvokeCommand {
    constructor(readonly input: { FunctionName: string; Payload: Uint8Array }) {}
  }
  class LambdaClient {
    async send(command: InvokeCommand): Promise<InvokeOutput> {
      invoked.push(command.input.FunctionName);
      if (options.hang) return new Promise(() => {});
      if (options.functionError) {
        return { FunctionError: "Unhandled", Payload: new TextEncoder().encode('{"errorMessage":"boom"}') };
      }
      const event = JSON.parse(new TextDecoder().decode(command.input.Payload));
      const result = await appHandler(event, {} as never);
      return { Payload: new TextEncoder().encode(JSON.stringify(result)) };
    }
  }
  return { LambdaClient, InvokeCommand, invoked } as unknown as LambdaModule & { invoked: string[] };
}

let server: Server;
let responseUrl: string;
const responses: { headers: Record<string, unknown>; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  // The provider logs each event and failure for CloudWatch; keep the test output clean.
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "error").mockImplementation(() => {});
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      responses.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  responseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?signature=x`;
});

afterAll(async () => {
  vi.restoreAllMocks();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function cfnEvent(topicName: string, requestId: string): CloudFormationEvent {
  return {
    RequestType: "Create",
    RequestId: requestId,
    ResponseURL: responseUrl,
    StackId: "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
    LogicalResourceId: "Topic",
    ResourceType: "Custom::SluiceTopic",
    ResourceProperties: {
      ServiceToken: "arn:provider",
      ApiFunction: "arn:aws:lambda:us-east-1:000000000000:function:api",
      ClusterId: "c1",
      TopicName: topicName,
      PartitionsCount: "4",
    },
  };
}

const context = { getRemainingTimeInMillis: () => 60_000 };

async function run(topicName: string, lambda: LambdaModule, ctx = context) {
  const requestId = `${topicName}-${responses.length}`;
  await topicProvider(() => lambda)(cfnEvent(topicName, requestId), ctx);
  const response = responses.find((r) => r.body.RequestId === requestId);
  if (!response) throw new Error("the provider did not answer CloudFormation");
  return response;
}

describe("the topic provider Lambda", () => {
  it("invokes the HTTP function with a Function URL event and reports SUCCESS", async () => {
    const lambda = fakeLambda();
    const response = await run("orders", lambda);
    expect(lambda.invoked).toEqual(["arn:aws:lambda:us-east-1:000000000000:function:api"]);
    expect(topics.get("c1/orders")).toBe(4);
    expect(response.body).toMatchObject({
      Status: "SUCCESS",
      PhysicalResourceId: "c1/orders",
      LogicalResourceId: "Topic",
      StackId: "arn:aws:cloudformation:us-east-1:000000000000:stack/s/1",
      Data: { ClusterId: "c1", TopicName: "orders", PartitionsCount: "4" },
    });
    // The presigned ResponseURL is signed without a content type.
    expect(response.headers["content-type"]).toBe("");
  });

  it("reports FAILED with the API's message when the API refuses", async () => {
    const response = await run("refused", fakeLambda());
    expect(response.body).toMatchObject({
      Status: "FAILED",
      PhysicalResourceId: expect.stringMatching(/^failed-/),
    });
    expect(response.body.Reason).toMatch(/status=400 message=refused on purpose/);
  });

  it("reports FAILED when the HTTP function answers 500 or fails", async () => {
    expect((await run("crash", fakeLambda())).body).toMatchObject({ Status: "FAILED" });
    const failed = await run("orders", fakeLambda({ functionError: true }));
    expect(failed.body).toMatchObject({ Status: "FAILED" });
    expect(failed.body.Reason).toMatch(/error=Unhandled/);
  });

  it("reports FAILED before its own timeout when the HTTP function does not answer", async () => {
    const response = await run("orders", fakeLambda({ hang: true }), {
      getRemainingTimeInMillis: () => 6_000,
    });
    expect(response.body).toMatchObject({ Status: "FAILED" });
    expect(response.body.Reason).toMatch(/no answer from the HTTP apps within 1000 ms/);
  });
});
