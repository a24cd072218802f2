import {
  ConflictError,
  DataCorruptionError,
  FencedError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@sluice/core";
import { OffsetOutOfRangeError, OutOfOrderSequenceError, RecordTooLargeError } from "@sluice/engine";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeError, describeZodError, type Logger } from "./http-errors.js";

function recordingLogger() {
  const lines: { message: string; details: Record<string, unknown> }[] = [];
  const logger: Logger = { error: (message, details) => lines.push({ message, details }) };
  return { logger, lines };
}

describe("describeError", () => {
  it.each([
    [new InvalidArgumentError("bad field x"), 400],
    [new RecordTooLargeError("record 0 is too large"), 413],
    [new OffsetOutOfRangeError("offset 9 is out of range"), 416],
    [new NotFoundError("topic not found: t"), 404],
    [new ConflictError("topic already exists: t"), 409],
    [new OutOfOrderSequenceError("sequence 5 skips ahead"), 409],
    [new FencedError("epoch 0 is fenced by epoch 1"), 409],
    [new HTTPException(413, { message: "request body is over the limit" }), 413],
  ])("maps %s to %i and passes its message through", (error, status) => {
    const { logger, lines } = recordingLogger();
    const code =
      error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
    expect(describeError(error, logger)).toEqual({
      status,
      message: error.message,
      ...(code ? { code } : {}),
    });
    expect(lines).toEqual([]);
  });

  it("carries a stable code and Confluent's five-digit error code when the error names them", () => {
    const { logger } = recordingLogger();
    expect(describeError(new OutOfOrderSequenceError("gap"), logger).code).toBe("OUT_OF_ORDER_SEQUENCE");
    const named = new FencedError("member m is fenced", {
      code: "FENCED_MEMBER_EPOCH",
      restErrorCode: 40903,
    });
    expect(describeError(named, logger)).toEqual({
      status: 409,
      message: "member m is fenced",
      code: "FENCED_MEMBER_EPOCH",
      errorCode: 40903,
    });
  });

  it("maps UnavailableError to 503 with Retry-After, logging the cause", () => {
    const { logger, lines } = recordingLogger();
    const error = new UnavailableError("DynamoDB throttled table=secret-table");
    const described = describeError(error, logger, { path: "/x" });
    expect(described).toMatchObject({ status: 503, retryAfterSeconds: 1 });
    expect(described.message).toMatch(
      /temporarily unavailable; retry with backoff \(error id [0-9a-f-]{36}\)/,
    );
    expect(described.message).not.toContain("secret-table");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.details).toMatchObject({
      path: "/x",
      error: { name: "UnavailableError", message: error.message },
    });
  });

  it.each([
    [new DataCorruptionError("crc mismatch in topics/abc/data/1.batches")],
    [new InternalError("unexpected DynamoDB answer")],
    [new TypeError("cannot read properties of undefined")],
    ["a thrown string"],
  ])("maps %s to 500 with a generic message and logs the cause under an error id", (error) => {
    const { logger, lines } = recordingLogger();
    const described = describeError(error, logger);
    expect(described.status).toBe(500);
    const id = /error id ([0-9a-f-]{36})/.exec(described.message)?.[1];
    expect(id).toBeDefined();
    expect(described.message).not.toContain(String(error instanceof Error ? error.message : error));
    expect(lines).toEqual([
      { message: "sluice http: internal error", details: expect.objectContaining({ errorId: id }) },
    ]);
  });

  it("logs the chain of causes", () => {
    const { logger, lines } = recordingLogger();
    describeError(new InternalError("commit failed", { cause: new Error("socket hang up") }), logger);
    expect(lines[0]!.details.error).toMatchObject({
      message: "commit failed",
      cause: { message: "socket hang up" },
    });
  });
});

describe("describeZodError", () => {
  it("names each failing field and where it was", () => {
    const schema = z.object({ timeout_ms: z.number(), nested: z.object({ name: z.string() }) });
    const error = schema.safeParse({ timeout_ms: "x", nested: {} }).error!;
    expect(describeZodError("query", error)).toMatch(
      /^invalid query parameter timeout_ms: .*; query parameter nested\.name: /,
    );
    expect(describeZodError("json", error)).toMatch(/^invalid request body: timeout_ms: .*; nested\.name: /);
    expect(describeZodError("param", error)).toMatch(/^invalid path parameter timeout_ms/);
    expect(describeZodError("header", error)).toMatch(/^invalid header timeout_ms/);
  });
});
