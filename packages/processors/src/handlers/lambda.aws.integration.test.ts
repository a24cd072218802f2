import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  LambdaClient,
} from "@aws-sdk/client-lambda";
import type { ProcessorBatch } from "@sluice/processor-sdk";
import { awsClientConfig, storedZip, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Handlers } from "./invoker.js";

/**
 * A Lambda handler invoked for real (AWS SDK v3, RequestResponse) on the emulator: the function
 * receives the JSON event and answers outputs and failures, or fails. Needs an emulator, where any
 * role ARN is accepted; on real AWS the end-to-end stack's handler function covers the same path.
 */
const endpoint = process.env.AWS_ENDPOINT_URL ?? "";
const local = /^https?:\/\/(127\.0\.0\.1|localhost)(:|\/|$)/.test(endpoint);
const client = new LambdaClient({ ...awsClientConfig() });
const enrich = uniqueName("enrich");
const failing = uniqueName("failing");

const enrichCode = `exports.handler = async (event) => ({
  outputs: event.records.map((record) => ({
    key: record.key,
    value: { type: "JSON", data: { ...record.value.data, partition: event.partition, attempt: event.attempt } },
    sourceOffset: record.offset,
  })),
  failures: event.records.filter((record) => record.value.data.poison).map((record) => record.offset),
});`;
const failingCode = `exports.handler = async () => { throw new TypeError("cannot read the order"); };`;

async function createFunction(name: string, code: string): Promise<void> {
  await client.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs22.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::000000000000:role/sluice-processor-test",
      Code: { ZipFile: storedZip({ "index.js": code }) },
      Timeout: 30,
    }),
  );
  for (let attempt = 0; attempt < 60; attempt++) {
    const state = (await client.send(new GetFunctionCommand({ FunctionName: name }))).Configuration?.State;
    if (state === "Active") return;
    if (state === "Failed") throw new Error(`function ${name} failed to create`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`function ${name} not active after 30 s`);
}

const encoder = new TextEncoder();
const batch: ProcessorBatch = {
  processor: "enrich",
  topic: "orders",
  partition: 1,
  attempt: 2,
  records: [
    { offset: 5, timestamp: 1, key: encoder.encode("c-1"), value: encoder.encode('{"qty":1}'), headers: [] },
    {
      offset: 6,
      timestamp: 2,
      key: encoder.encode("c-2"),
      value: encoder.encode('{"qty":2,"poison":true}'),
      headers: [],
    },
  ],
};

describe.skipIf(!local)(
  "Lambda handlers on the emulator (needs a local endpoint: any role ARN works there)",
  () => {
    beforeAll(async () => {
      await Promise.all([createFunction(enrich, enrichCode), createFunction(failing, failingCode)]);
    }, 120_000);
    afterAll(async () => {
      await Promise.all(
        [enrich, failing].map((name) =>
          client.send(new DeleteFunctionCommand({ FunctionName: name })).catch(() => undefined),
        ),
      );
    });

    it("are invoked synchronously with the JSON event; their outputs and failures come back", async () => {
      const result = await new Handlers().invoke({
        handler: { kind: "lambda", functionName: enrich },
        batch,
        idempotencyKey: (offset) => `k:${offset}`,
        signal: new AbortController().signal,
      });
      expect(result.failures).toEqual([6]);
      expect(
        result.outputs.map((output) => [output.sourceOffset, new TextDecoder().decode(output.record.value!)]),
      ).toEqual([
        [5, '{"qty":1,"partition":1,"attempt":2}'],
        [6, '{"qty":2,"poison":true,"partition":1,"attempt":2}'],
      ]);
    });

    it("fail the batch with the function's error when it throws", async () => {
      await expect(
        new Handlers().invoke({
          handler: { kind: "lambda", functionName: failing },
          batch,
          idempotencyKey: (offset) => `k:${offset}`,
          signal: new AbortController().signal,
        }),
      ).rejects.toThrow(/Lambda function .* failed \(Unhandled\): .*cannot read the order/);
    });
  },
);
