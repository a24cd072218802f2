import { InvokeCommand, LambdaClient, ListEventSourceMappingsCommand } from "@aws-sdk/client-lambda";
import { expect, it } from "vitest";
import type { DeployedStack, TopicDeclarationContext } from "../../infra/emulator/deploy.js";

/**
 * The processor of the end-to-end stack: topics, a processor whose handler is a real Lambda
 * function (test/e2e/fixtures/enrich-handler.ts), records produced through the Function URL,
 * transformed by the handler into the output topic, a poison record in the dead-letter topic. The
 * commits wake the dispatcher through the table's DynamoDB stream (MiniStack runs stream mappings:
 * scripts/emulator-repros/lambda-dynamodb-stream-trigger.ts); the sweep is invoked directly, which
 * works the same on AWS (its schedule is scripts/emulator-repros/events-schedule-lambda.ts).
 */
export const PROCESSOR_TOPICS: TopicDeclarationContext[] = [
  { topicName: "e2e-orders", partitions: 2, removalPolicy: "destroy" },
  { topicName: "e2e-orders-enriched", partitions: 2, removalPolicy: "destroy" },
  { topicName: "e2e-orders-dead", partitions: 1, removalPolicy: "destroy" },
];

export const PROCESSORS = [
  {
    processorName: "e2e-enrich",
    topics: ["e2e-orders"],
    outputTopics: ["e2e-orders-enriched"],
    deadLetterTopic: "e2e-orders-dead",
    handlerEntry: "test/e2e/fixtures/enrich-handler.ts",
    startingPosition: "EARLIEST",
    maxAttempts: 2,
    backoffMs: 200,
  },
];

interface WireRecord {
  offset: number;
  value: { data: unknown } | null;
  headers: { name: string; value: string | null }[];
}

export function processorCases(stack: () => DeployedStack): void {
  const cluster = () => `${stack().reachableApiUrl}/v3/clusters/${stack().clusterId}`;

  /** Long-polls the partitions of `topic` until they hold `count` records in all (bounded). */
  async function recordsOf(
    topic: string,
    partitions: number,
    count: number,
    limitMs: number,
  ): Promise<WireRecord[]> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const pages = await Promise.all(
        Array.from({ length: partitions }, async (_, partition) => {
          const response = await fetch(
            `${cluster()}/topics/${topic}/partitions/${partition}/records?offset=0&timeout_ms=2000`,
          );
          expect(response.status).toBe(200);
          return ((await response.json()) as { records: WireRecord[] }).records;
        }),
      );
      const all = pages.flat();
      if (all.length >= count || Date.now() > deadline) return all;
    }
  }

  it("declares the processor at deploy time, with its Lambda handler", async () => {
    const response = await fetch(`${cluster()}/processors/e2e-enrich`);
    expect(response.status).toBe(200);
    const processor = (await response.json()) as {
      state: string;
      definition: { handler: { type: string; function_name: string } };
    };
    expect(processor.state).toBe("RUNNING");
    expect(processor.definition.handler.type).toBe("lambda");
    expect(processor.definition.handler.function_name).toMatch(/^arn:aws:lambda:.*:function:/);
    const mappings = await new LambdaClient({ maxAttempts: 3 }).send(
      new ListEventSourceMappingsCommand({ FunctionName: stack().dispatcherFunction }),
    );
    expect(mappings.EventSourceMappings?.map((mapping) => mapping.EventSourceArn)).toEqual([
      expect.stringContaining(":table/"),
    ]);
  });

  it("transforms records produced through the Function URL into the output topic, and dead-letters a poison one", async () => {
    const orders = [
      { key: "c-1", value: { item: "tea", qty: 2 } },
      { key: "c-2", value: { item: "cake", qty: 1, poison: true } },
      { key: "c-3", value: { item: "coffee", qty: 3 } },
      { key: "c-1", value: { item: "tea", qty: 1 } },
    ];
    for (const order of orders) {
      const response = await fetch(`${cluster()}/topics/e2e-orders/records`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          key: { type: "STRING", data: order.key },
          value: { type: "JSON", data: order.value },
        }),
      });
      expect(response.status).toBe(200);
    }
    const enriched = await recordsOf("e2e-orders-enriched", 2, 3, 120_000);
    expect(enriched.map((record) => record.value?.data)).toEqual(
      expect.arrayContaining([
        { item: "tea", qty: 2, enriched: true },
        { item: "coffee", qty: 3, enriched: true },
        { item: "tea", qty: 1, enriched: true },
      ]),
    );
    expect(enriched).toHaveLength(3);
    const dead = await recordsOf("e2e-orders-dead", 1, 1, 60_000);
    expect(dead.map((record) => record.value?.data)).toEqual([{ item: "cake", qty: 1, poison: true }]);
    const header = (name: string) => {
      const value = dead[0]!.headers.find((candidate) => candidate.name === name)?.value;
      return value === null || value === undefined
        ? undefined
        : Buffer.from(value, "base64").toString("utf8");
    };
    expect(header("sluice-processor")).toBe("e2e-enrich");
    expect(header("sluice-source-topic")).toBe("e2e-orders");
    expect(header("sluice-attempts")).toBe("2");
    expect(header("sluice-error")).toMatch(/poison order/);
  }, 180_000);

  it("sweeps when invoked as the schedule would, and describes the processor with no lag left", async () => {
    const answer = await new LambdaClient({ maxAttempts: 3 }).send(
      new InvokeCommand({
        FunctionName: stack().dispatcherFunction,
        Payload: new TextEncoder().encode(JSON.stringify({ sluice: "sweep" })),
      }),
    );
    expect(answer.FunctionError).toBeUndefined();
    expect(JSON.parse(new TextDecoder().decode(answer.Payload))).toMatchObject({ swept: true });
    const described = (await (await fetch(`${cluster()}/processors/e2e-enrich`)).json()) as {
      lag: number;
      partitions: { processed: number; dead_lettered: number }[];
    };
    expect(described.lag).toBe(0);
    expect(described.partitions.reduce((sum, partition) => sum + partition.processed, 0)).toBe(3);
    expect(described.partitions.reduce((sum, partition) => sum + partition.dead_lettered, 0)).toBe(1);
  });
}
