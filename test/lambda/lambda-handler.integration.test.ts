import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { createMetadataTable, deleteMetadataTable } from "@sluice/storage/dynamodb";
import { createBucketIfMissing, deleteBucketAndContents } from "@sluice/storage/s3";
import { awsClientConfig, emfProblems, uniqueName } from "@sluice/testing";
import type { LambdaContext, LambdaEvent } from "hono/aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  API_SERVICE,
  createLambdaHandler,
  LAG_COLLECTION_EVENT,
} from "../../functions/src/lambda-handler.js";

/**
 * The Lambda handler in-process over the emulator's S3 and DynamoDB: what it writes to CloudWatch
 * (EMF documents, checked against the specification's structure) for known requests.
 */
const config = awsClientConfig();
const { forcePathStyle: _s3Only, ...dynamoConfig } = config;
const s3 = new S3Client(config);
const dynamodb = new DynamoDBClient(dynamoConfig);
const bucket = uniqueName("lambda");
const table = uniqueName("lambda");
const lines: string[] = [];
let handler: ReturnType<typeof createLambdaHandler>;

const context = (id: string): LambdaContext =>
  ({
    awsRequestId: id,
    functionName: "sluice-api",
    functionVersion: "$LATEST",
    invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:sluice-api",
    memoryLimitInMB: "1024",
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as LambdaContext;

/** A Function URL event (payload format 2.0). */
function urlEvent(method: string, path: string, body?: unknown) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { host: "abc.lambda-url.us-east-1.on.aws", "content-type": "application/json" },
    requestContext: {
      requestId: `http-${Math.random().toString(36).slice(2)}`,
      domainName: "abc.lambda-url.us-east-1.on.aws",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
    },
    isBase64Encoded: false,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  };
}

/** One HTTP invocation, answered with its status. */
async function invoke(event: ReturnType<typeof urlEvent>, id: string): Promise<{ statusCode: number }> {
  return (await handler(event as unknown as LambdaEvent, context(id))) as { statusCode: number };
}

type Document = Record<string, unknown> & {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
};

/** The EMF documents written since the last call. */
function documents(): Document[] {
  return lines.splice(0).map((line) => JSON.parse(line) as Document);
}

/** A metric's values in the documents whose dimensions include `where`. */
function values(docs: Document[], metric: string, where: Record<string, string> = {}): number[] {
  return docs
    .filter((doc) => metric in doc && Object.entries(where).every(([key, value]) => doc[key] === value))
    .flatMap((doc) => doc[metric] as number | number[]);
}

/** The sum of a counter's values. */
function total(docs: Document[], metric: string, where: Record<string, string> = {}): number {
  return values(docs, metric, where).reduce((sum, value) => sum + value, 0);
}

beforeAll(async () => {
  await Promise.all([createBucketIfMissing(s3, bucket), createMetadataTable(dynamodb, table)]);
  handler = createLambdaHandler({
    env: { ...process.env, SLUICE_BUCKET: bucket, SLUICE_TABLE: table, SLUICE_CLUSTER_ID: "lambda-cluster" },
    writeMetrics: (line) => lines.push(line),
  });
});

afterAll(async () => {
  await Promise.all([deleteBucketAndContents(s3, bucket), deleteMetadataTable(dynamodb, table)]);
  s3.destroy();
  dynamodb.destroy();
});

describe("the Lambda handler's CloudWatch metrics", () => {
  it("writes valid EMF documents counting each invocation's records, bytes, requests and storage calls", async () => {
    const topics = "/v3/clusters/lambda-cluster/topics";
    const created = await invoke(urlEvent("POST", topics, { topic_name: "emf", partitions_count: 2 }), "l-1");
    expect(created.statusCode).toBe(201);
    documents();

    const produced = await invoke(
      urlEvent("POST", `${topics}/emf/records`, {
        partition_id: 1,
        key: { type: "STRING", data: "k" },
        value: { type: "STRING", data: "value" },
      }),
      "l-2",
    );
    expect(produced.statusCode).toBe(200);
    const docs = documents();
    for (const doc of docs) {
      expect(emfProblems(doc)).toEqual([]);
      expect(doc._aws.CloudWatchMetrics[0]!.Namespace).toBe("Sluice");
      expect(doc.service).toBe(API_SERVICE);
    }
    expect(total(docs, "ProduceRecords", { topic: "emf" })).toBe(1);
    expect(total(docs, "ProduceBytes", { topic: "emf" })).toBe(6);
    expect(total(docs, "ProduceRequests", { topic: "emf" })).toBe(1);
    // One latency observation, in milliseconds.
    expect(values(docs, "ProduceLatency", { topic: "emf" })).toEqual([expect.any(Number)]);
    expect(total(docs, "HttpRequests")).toBe(1);
    // One upload to S3, one commit transaction in DynamoDB.
    expect(total(docs, "StorageRequests", { backend: "s3", operation: "put" })).toBe(1);
    expect(total(docs, "StorageRequests", { backend: "dynamodb", operation: "transactWrite" })).toBe(1);
    const produce = docs.find((doc) => "ProduceRecords" in doc)!;
    expect(produce._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([["service", "topic"], ["service"]]);
    expect(produce._aws.CloudWatchMetrics[0]!.Metrics).toContainEqual({
      Name: "ProduceLatency",
      Unit: "Milliseconds",
    });

    const missing = await invoke(urlEvent("GET", `${topics}/nope`), "l-3");
    expect(missing.statusCode).toBe(404);
    const errors = documents();
    expect(total(errors, "HttpErrors", { class: "client", status: "404", topic: "nope" })).toBe(1);
  });

  it("answers the schedule's lag-collection event with each group's lag as metrics", async () => {
    const topics = "/v3/clusters/lambda-cluster/topics";
    await invoke(urlEvent("POST", topics, { topic_name: "lagged", partitions_count: 1 }), "l-4");
    for (const value of ["a", "b", "c"]) {
      await invoke(
        urlEvent("POST", `${topics}/lagged/records`, { value: { type: "STRING", data: value } }),
        "l-5",
      );
    }
    const groups = "/v3/clusters/lambda-cluster/consumer-groups";
    const joined = await invoke(
      urlEvent("POST", `${groups}/watchers/heartbeat`, {
        member_id: "m",
        member_epoch: 0,
        subscribed_topic_names: ["lagged"],
      }),
      "l-6",
    );
    expect(joined.statusCode).toBe(200);
    const committed = await invoke(
      urlEvent("POST", `${groups}/watchers/offsets`, {
        member_id: "m",
        offsets: [{ topic_name: "lagged", partition_id: 0, offset: 1 }],
      }),
      "l-7",
    );
    expect(committed.statusCode).toBe(200);
    documents();

    expect(await handler({ ...LAG_COLLECTION_EVENT }, context("l-8"))).toEqual({
      collected: "consumer-group-lag",
    });
    const docs = documents();
    for (const doc of docs) expect(emfProblems(doc)).toEqual([]);
    const lag = docs.find((doc) => doc.group === "watchers")!;
    expect(lag).toMatchObject({ group: "watchers", topic: "lagged", ConsumerGroupLagRecords: 2 });
    expect(lag.ConsumerGroupLagSeconds).toBeGreaterThanOrEqual(0);
    expect(lag._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([
      ["service", "group", "topic"],
      ["service", "group"],
      ["service"],
    ]);
  });
});
