import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ResourceNotFoundException,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from "@aws-sdk/client-dynamodb";
import { InternalError, InvalidArgumentError, NotFoundError, UnavailableError } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { cond } from "./condition.js";
import { DynamoDbMetadataStore } from "./dynamodb.js";
import { formatNumber, marshallValue, unmarshallItem, unmarshallValue } from "./dynamodb-codec.js";
import { ConditionFailedError, TransactionCanceledError } from "./errors.js";
import { encodeCursor } from "./paging.js";
import type { AttributeValue } from "./port.js";

/**
 * What the emulator cannot show: the exact requests (ConsistentRead, placeholders, ALL_OLD) and
 * the mapping of failures an emulator never produces (throttling, transaction conflicts, 5xx,
 * network errors). A stub client records commands and throws prepared errors.
 */
interface SentCommand {
  name: string;
  input: Record<string, unknown>;
}

function stubStore(respond: (command: SentCommand) => unknown = () => ({})) {
  const sent: SentCommand[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const recorded = { name: command.constructor.name, input: command.input };
      sent.push(recorded);
      const outcome = respond(recorded);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
  } as unknown as DynamoDBClient;
  return { store: new DynamoDbMetadataStore({ client, tableName: "sluice-metadata" }), sent };
}

function failingStore(error: Error) {
  return stubStore(() => error).store;
}

const metadata = { $metadata: {} };
const key = { pk: "topic#orders", sk: "head" };

describe("DynamoDbMetadataStore requests", () => {
  it("reads with ConsistentRead on GetItem and Query", async () => {
    const { store, sent } = stubStore(() => ({ Items: [] }));
    await store.get(key);
    await store.query({ pk: "p", order: "desc", limit: 3, cursor: encodeCursor({ pk: "p", sk: "s9" }) });
    expect(sent[0]).toMatchObject({ name: "GetItemCommand", input: { ConsistentRead: true } });
    expect(sent[1]).toMatchObject({
      name: "QueryCommand",
      input: {
        ConsistentRead: true,
        ScanIndexForward: false,
        Limit: 3,
        ExclusiveStartKey: { pk: { S: "p" }, sk: { S: "s9" } },
      },
    });
  });

  it("never puts attribute names or values into expression text", async () => {
    const { store, sent } = stubStore(() => ({ Attributes: { pk: { S: "p" }, sk: { S: "s" } } }));
    const hostileName = "a) OR attribute_exists(#x";
    const hostileValue = ":v0 OR 1 = 1";
    await store.update(
      { pk: "p", sk: "s" },
      { set: { [hostileName]: hostileValue }, add: { "count.total": 1 }, remove: ["old name"] },
      { condition: cond.and(cond.eq(hostileName, hostileValue), cond.notExists("size")) },
    );
    const input = sent[0]?.input ?? {};
    const expressions = `${String(input.UpdateExpression)} ${String(input.ConditionExpression)}`;
    expect(expressions).not.toContain(hostileName);
    expect(expressions).not.toContain("count.total");
    expect(expressions).not.toContain("old name");
    expect(expressions).toMatch(/^[#:\w\s=(),<>]+$/);
    expect(Object.values(input.ExpressionAttributeNames as Record<string, string>)).toEqual(
      expect.arrayContaining([hostileName, "count.total", "old name", "size"]),
    );
    expect(input).toMatchObject({ ReturnValues: "ALL_NEW", ReturnValuesOnConditionCheckFailure: "ALL_OLD" });
  });

  it("asks for ALL_OLD on every conditional transaction item", async () => {
    const { store, sent } = stubStore();
    await store.transactWrite([
      { kind: "put", item: { pk: "p", sk: "1" }, condition: cond.notExists("pk") },
      { kind: "update", key: { pk: "p", sk: "2" }, changes: { add: { n: 1 } }, condition: cond.eq("n", 1) },
      { kind: "delete", key: { pk: "p", sk: "3" }, condition: cond.exists("pk") },
      { kind: "condition_check", key: { pk: "p", sk: "4" }, condition: cond.eq("epoch", 2) },
    ]);
    const items = (sent[0]?.input.TransactItems ?? []) as Record<string, Record<string, unknown>>[];
    const members = items.map((item) => Object.values(item)[0]);
    expect(members).toHaveLength(4);
    for (const member of members) expect(member?.ReturnValuesOnConditionCheckFailure).toBe("ALL_OLD");
  });

  it("compiles an ordering comparison of a non-orderable value to a condition that never holds", async () => {
    const { store, sent } = stubStore();
    await store.put({ pk: "p", sk: "s" }, { condition: cond.compare("bin", "<", Uint8Array.of(1)) });
    expect(sent[0]?.input.ConditionExpression).toBe("attribute_exists(#n0) AND attribute_not_exists(#n0)");
    expect(sent[0]?.input.ExpressionAttributeNames).toEqual({ "#n0": "pk" });
  });
});

describe("DynamoDbMetadataStore error mapping", () => {
  it("ConditionalCheckFailedException becomes ConditionFailedError with the returned item", async () => {
    const cause = new ConditionalCheckFailedException({
      ...metadata,
      message: "The conditional request failed",
      Item: { pk: { S: key.pk }, sk: { S: key.sk }, epoch: { N: "4" } },
    });
    const error = await failingStore(cause)
      .put({ ...key, epoch: 5 }, { condition: cond.eq("epoch", 3) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConditionFailedError);
    expect((error as ConditionFailedError).current).toEqual({ ...key, epoch: 4 });
    expect((error as Error).cause).toBe(cause);
  });

  it("TransactionCanceledException with failed conditions lists index and current item", async () => {
    const cause = new TransactionCanceledException({
      ...metadata,
      message: "Transaction cancelled",
      CancellationReasons: [
        { Code: "None" },
        { Code: "ConditionalCheckFailed", Item: { pk: { S: "p" }, sk: { S: "2" }, n: { N: "7" } } },
        { Code: "ConditionalCheckFailed" },
      ],
    });
    const error = await failingStore(cause)
      .transactWrite([
        { kind: "put", item: { pk: "p", sk: "1" } },
        { kind: "condition_check", key: { pk: "p", sk: "2" }, condition: cond.eq("n", 1) },
        { kind: "condition_check", key: { pk: "p", sk: "3" }, condition: cond.exists("pk") },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionCanceledError);
    expect((error as TransactionCanceledError).failures).toEqual([
      { index: 1, current: { pk: "p", sk: "2", n: 7 } },
      { index: 2, current: undefined },
    ]);
    expect((error as Error).cause).toBe(cause);
  });

  const transactionCases: Array<[string, string[], abstract new (...args: never[]) => Error]> = [
    ["a transaction conflict is retryable", ["None", "TransactionConflict"], UnavailableError],
    ["throttling is retryable", ["ThrottlingError", "None"], UnavailableError],
    ["exceeded throughput is retryable", ["ProvisionedThroughputExceeded"], UnavailableError],
    ["a validation error is the caller's", ["ValidationError", "None"], InvalidArgumentError],
    ["an unknown reason is internal", ["SomethingNew"], InternalError],
  ];
  for (const [title, codes, expected] of transactionCases) {
    it(`TransactionCanceledException: ${title}`, async () => {
      const cause = new TransactionCanceledException({
        ...metadata,
        message: "Transaction cancelled",
        CancellationReasons: codes.map((Code) => ({ Code })),
      });
      const operations = codes.map((_, i) => ({ kind: "put" as const, item: { pk: "p", sk: `${i}` } }));
      const error = await failingStore(cause)
        .transactWrite(operations)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(expected);
      expect((error as Error).cause).toBe(cause);
    });
  }

  const serviceError = (name: string, status: number, fault: "client" | "server" = "client") =>
    new DynamoDBServiceException({
      name,
      $fault: fault,
      $metadata: { httpStatusCode: status },
      message: name,
    });
  const networkError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:4566`), { code });

  const errorCases: Array<[string, Error, abstract new (...args: never[]) => Error]> = [
    [
      "ProvisionedThroughputExceededException",
      new ProvisionedThroughputExceededException({ ...metadata, message: "slow down" }),
      UnavailableError,
    ],
    ["ThrottlingException", new ThrottlingException({ ...metadata, message: "slow down" }), UnavailableError],
    ["RequestLimitExceeded", new RequestLimitExceeded({ ...metadata, message: "limit" }), UnavailableError],
    [
      "TransactionConflictException",
      new TransactionConflictException({ ...metadata, message: "conflict" }),
      UnavailableError,
    ],
    ["InternalServerError", new InternalServerError({ ...metadata, message: "oops" }), UnavailableError],
    ["an unmodelled 503", serviceError("ServiceUnavailable", 503, "server"), UnavailableError],
    ["ECONNRESET", networkError("ECONNRESET"), UnavailableError],
    ["ECONNREFUSED", networkError("ECONNREFUSED"), UnavailableError],
    [
      "TimeoutError",
      Object.assign(new Error("socket timed out"), { name: "TimeoutError" }),
      UnavailableError,
    ],
    ["ValidationException", serviceError("ValidationException", 400), InvalidArgumentError],
    [
      "ResourceNotFoundException",
      new ResourceNotFoundException({ ...metadata, message: "gone" }),
      NotFoundError,
    ],
    ["an unknown client error", serviceError("SomethingNewException", 400), InternalError],
  ];
  for (const [title, cause, expected] of errorCases) {
    it(`${title} maps to ${expected.name}, keeping the cause`, async () => {
      const error = await failingStore(cause)
        .get(key)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(expected);
      expect((error as Error).cause).toBe(cause);
    });
  }

  it("a missing table is NotFoundError naming the table", async () => {
    const error = await failingStore(new ResourceNotFoundException({ ...metadata, message: "not found" }))
      .query({ pk: "p" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain("sluice-metadata");
  });
});

describe("DynamoDB marshalling", () => {
  it("formats numbers in plain decimal notation", () => {
    expect(formatNumber(0)).toBe("0");
    expect(formatNumber(-42)).toBe("-42");
    expect(formatNumber(Number.MAX_SAFE_INTEGER)).toBe("9007199254740991");
    expect(formatNumber(3.25)).toBe("3.25");
    expect(formatNumber(1e21)).toBe("1000000000000000000000");
    expect(formatNumber(6.02214076e23)).toBe("602214076000000000000000");
    expect(formatNumber(1.5e-7)).toBe("0.00000015");
    expect(formatNumber(-2.5e-10)).toBe("-0.00000000025");
    for (const value of [1e21, 6.02214076e23, 1.5e-7, -2.5e-10, Math.PI, 1e-130, 9.99e125]) {
      expect(Number(formatNumber(value))).toBe(value);
    }
  });

  it("round-trips every port value type through AttributeValue", () => {
    const values: AttributeValue[] = [
      "text",
      "",
      0,
      -1.5,
      true,
      false,
      null,
      Uint8Array.of(0, 128, 255),
      [1, ["nested"], { m: null }],
      { a: { b: [Uint8Array.of(1)] } },
    ];
    for (const value of values) expect(unmarshallValue(marshallValue(value))).toEqual(value);
  });

  it("refuses set types, which the port has no value for", () => {
    expect(() => unmarshallItem({ pk: { S: "p" }, sk: { S: "s" }, tags: { SS: ["a"] } })).toThrow(
      InternalError,
    );
  });
});
