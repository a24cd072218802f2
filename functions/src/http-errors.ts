import type { Hook } from "@hono/zod-openapi";
import { isSluiceError, type SluiceError } from "@sluice/core";
import {
  OffsetOutOfRangeError,
  RecordTooLargeError,
  UPLOAD_FAILED_AFTER_COMMIT,
  UPLOAD_TOO_LATE,
} from "@sluice/engine";
import type { Context, Env, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { noteErrorCode } from "./http-meter.js";

/**
 * Confluent's error body: the HTTP status again (or the REST Proxy's five-digit code where its
 * API defines one), a message that names the problem, and — where the condition has a stable
 * name — `code`, for clients to branch on (`FENCED_MEMBER_EPOCH`, `REBALANCE_IN_PROGRESS`).
 */
export interface ErrorBody {
  error_code: number;
  message: string;
  code?: string;
}

/** Where the apps report failures that are not the caller's fault. */
export interface Logger {
  error(message: string, details: Record<string, unknown>): void;
  /** Routine events worth a line when debugging (a client that hung up mid-request). Optional. */
  debug?(message: string, details: Record<string, unknown>): void;
}

/**
 * The request body could not be read to its end: the client closed the connection (or the
 * network dropped it) mid-upload. The client's doing, and nobody is left to answer: it is counted
 * and logged at debug level, never as an internal error.
 */
export class ClientDisconnectedError extends Error {
  override readonly name = "ClientDisconnectedError";

  constructor(
    /** Bytes of body read before the connection went. */
    readonly bytesRead: number,
    options?: { cause?: unknown },
  ) {
    super(`the client closed the connection after ${bytesRead} bytes of the request body`, options);
  }
}

/** Told of each request whose client went away mid-body (the local server counts them). */
export type ClientDisconnectListener = (request: { method: string; path: string; bytesRead: number }) => void;

export const consoleLogger: Logger = {
  error: (message, details) => console.error(message, details),
};

/** An error raised by the HTTP layer itself (limits, media types): a status and a message. */
export function httpError(status: ContentfulStatusCode, message: string): HTTPException {
  return new HTTPException(status, { message });
}

export interface DescribedError {
  status: ContentfulStatusCode;
  message: string;
  /** The stable name of the condition, when it has one. */
  code?: string;
  /** The body's error_code when it is not the status itself. */
  errorCode?: number;
  /** Seconds a client should wait before retrying, for 503. */
  retryAfterSeconds?: number;
}

/**
 * The one mapping from errors to HTTP (ARCHITECTURE.md, "Errors"). Messages of caller errors pass
 * through, since the engine writes them for callers; server-side failures get a generic message
 * and an error id, and the cause is logged under that id.
 */
export function describeError(
  error: unknown,
  logger: Logger,
  context: Record<string, unknown> = {},
): DescribedError {
  if (error instanceof HTTPException) {
    return { status: error.status as ContentfulStatusCode, message: error.message || "request failed" };
  }
  if (isSluiceError(error)) {
    const named = {
      ...(error.code === undefined ? {} : { code: error.code }),
      ...(error.restErrorCode === undefined ? {} : { errorCode: error.restErrorCode }),
    };
    const described = describeSluiceError(error, logger, context);
    return described.status >= 500 ? described : { ...described, ...named };
  }
  const id = logFailure(logger, "internal error", error, context);
  return { status: 500, message: `internal error (error id ${id}); the cause is in the server log` };
}

function describeSluiceError(
  error: SluiceError,
  logger: Logger,
  context: Record<string, unknown>,
): DescribedError {
  if (error instanceof RecordTooLargeError) return { status: 413, message: error.message };
  if (error instanceof OffsetOutOfRangeError) return { status: 416, message: error.message };
  if (isUnknownPartition(error)) return { status: 404, message: error.message };
  switch (error.kind) {
    case "invalid_argument":
      return { status: 400, message: error.message };
    case "not_found":
      return { status: 404, message: error.message };
    case "conflict":
    case "fenced":
      return { status: 409, message: error.message };
    case "unavailable": {
      const id = logFailure(logger, "unavailable", error, context);
      // Parallel commit's failures say which offsets were committed: the client's to know.
      const own = error.code === UPLOAD_FAILED_AFTER_COMMIT || error.code === UPLOAD_TOO_LATE;
      return {
        status: 503,
        message: own
          ? `${error.message} (error id ${id})`
          : `the storage backend is temporarily unavailable; retry with backoff (error id ${id})`,
        retryAfterSeconds: 1,
      };
    }
    case "data_corruption":
    case "internal":
      break;
  }
  const id = logFailure(logger, "internal error", error, context);
  return { status: 500, message: `internal error (error id ${id}); the cause is in the server log` };
}

/**
 * A record sent to a partition the topic does not have. The engine calls it an invalid argument;
 * over HTTP it is a resource that does not exist (Confluent's 404 "partition not found"), and
 * whether it exists depends on the topic's current partition count, not on the request's form.
 */
function isUnknownPartition(error: SluiceError): boolean {
  const { partition, partitions } = error.details;
  return (
    error.kind === "invalid_argument" &&
    typeof partition === "number" &&
    typeof partitions === "number" &&
    partition >= partitions
  );
}

function logFailure(logger: Logger, what: string, error: unknown, context: Record<string, unknown>): string {
  const id = crypto.randomUUID();
  logger.error(`sluice http: ${what}`, { errorId: id, ...context, error: errorDetails(error) });
  return id;
}

function errorDetails(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) return error;
  return {
    name: error.name,
    message: error.message,
    ...(isSluiceError(error) ? { kind: error.kind, details: error.details } : {}),
    stack: error.stack,
    ...(error.cause !== undefined && depth < 5 ? { cause: errorDetails(error.cause, depth + 1) } : {}),
  };
}

/** A response for any error: status, Confluent body, and Retry-After for retryable failures. */
export function errorResponse(c: Context, error: unknown, logger: Logger): Response {
  const described = describeError(error, logger, { method: c.req.method, path: c.req.path });
  if (described.retryAfterSeconds !== undefined) c.header("Retry-After", String(described.retryAfterSeconds));
  const body: ErrorBody = { error_code: described.errorCode ?? described.status, message: described.message };
  if (described.code !== undefined) body.code = described.code;
  noteErrorCode(c, body.code ?? String(body.error_code));
  return c.json(body, described.status);
}

export function createErrorHandler(
  logger: Logger,
  onClientDisconnect?: ClientDisconnectListener,
): ErrorHandler {
  return (error, c) => {
    if (error instanceof ClientDisconnectedError) {
      const request = { method: c.req.method, path: c.req.path, bytesRead: error.bytesRead };
      logger.debug?.("sluice http: client disconnected before the request body ended", request);
      onClientDisconnect?.(request);
      noteErrorCode(c, "CLIENT_DISCONNECTED");
      // Nobody reads this answer; it is a 400 so that no layer counts it as a server failure.
      return c.json({ error_code: 400, message: error.message } satisfies ErrorBody, 400);
    }
    return errorResponse(c, error, logger);
  };
}

export const notFoundHandler: NotFoundHandler = (c) =>
  c.json(
    {
      error_code: 404,
      message: `no such route: ${c.req.method} ${c.req.path} (the routes are listed at /docs)`,
    },
    404,
  );

const TARGET_NAMES: Record<string, string> = {
  json: "request body",
  query: "query parameter",
  param: "path parameter",
  header: "header",
  cookie: "cookie",
  form: "form field",
};

/** Names each failing field: `invalid query parameter timeout_ms: must be an integer from 0 to 30000`. */
export function describeZodError(target: string, error: ZodError): string {
  const where = TARGET_NAMES[target] ?? target;
  const problems = error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (target === "json") return path ? `${path}: ${issue.message}` : issue.message;
    return path ? `${where} ${path}: ${issue.message}` : issue.message;
  });
  const prefix = target === "json" ? "invalid request body: " : "invalid ";
  return `${prefix}${problems.join("; ")}`;
}

/** The validation hook of every route: zod failures become 400 with a message naming the field. */
// biome-ignore lint/suspicious/noExplicitAny: the hook is shared by routes of every input type
export const validationHook: Hook<any, Env, any, Response | undefined> = (result, c) => {
  if (result.success) return undefined;
  return c.json(
    { error_code: 400, message: describeZodError(result.target, result.error) } satisfies ErrorBody,
    400,
  );
};
