import { describe, expect, it } from "vitest";
import { LambdaLogger } from "./lambda-logger.js";

/**
 * Collects what is written to standard output and error while `run` runs, in order: Lambda sends
 * both to CloudWatch Logs (Powertools writes errors to standard error).
 */
function captureOutput(run: () => void): string[] {
  const lines: string[] = [];
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      lines.push(
        ...String(chunk)
          .split("\n")
          .filter((line) => line !== ""),
      );
      return true;
    }) as typeof stream.write;
  }
  try {
    run();
  } finally {
    streams.forEach((stream, index) => {
      stream.write = originals[index]!;
    });
  }
  return lines;
}

const context = (awsRequestId: string) => ({
  awsRequestId,
  functionName: "sluice-api",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:sluice-api",
  memoryLimitInMB: "1024",
});

describe("LambdaLogger", () => {
  it("writes one JSON object per line with the service, level, both request ids and the details", () => {
    const logger = new LambdaLogger({ service: "sluice-api" });
    const lines = captureOutput(() => {
      logger.startInvocation(context("lambda-1"), { request_id: "http-1" });
      logger.error("sluice http: internal error", { errorId: "e-1", path: "/v3/clusters" });
      logger.startInvocation(context("lambda-2"), { request_id: "http-2" });
      logger.info("second");
    });
    const [first, second, ...rest] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({
      level: "ERROR",
      message: "sluice http: internal error",
      service: "sluice-api",
      function_request_id: "lambda-1",
      function_name: "sluice-api",
      request_id: "http-1",
      errorId: "e-1",
      path: "/v3/clusters",
    });
    expect(typeof first!.timestamp).toBe("string");
    // Keys of the previous invocation do not leak into the next.
    expect(second).toMatchObject({ level: "INFO", function_request_id: "lambda-2", request_id: "http-2" });
    expect(second).not.toHaveProperty("errorId");
  });

  it("leaves out debug lines unless the level asks for them", () => {
    const quiet = new LambdaLogger({ service: "s" });
    const verbose = new LambdaLogger({ service: "s", level: "DEBUG" });
    const lines = captureOutput(() => {
      quiet.debug("hidden", {});
      verbose.debug("shown", { bytesRead: 12 });
    });
    expect(lines.map((line) => JSON.parse(line).message)).toEqual(["shown"]);
  });
});
