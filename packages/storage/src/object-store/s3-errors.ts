import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  isSluiceError,
  NotFoundError,
  type SluiceError,
  UnavailableError,
} from "@sluice/core";

/** What the failed call was, so one S3 answer can mean different things (404 on get vs ifMatch put). */
export interface S3CallContext {
  operation: "get" | "head" | "put" | "list" | "delete" | "deleteMany" | "bucket";
  key?: string;
  condition?: "ifNoneMatch" | "ifMatch";
  details?: Record<string, unknown>;
}

/** 412 is S3's "condition did not hold"; 409 ConditionalRequestConflict is a concurrent conditional write that lost. */
const CONFLICT_NAMES = new Set(["PreconditionFailed", "ConditionalRequestConflict"]);
const MISSING_KEY_NAMES = new Set(["NoSuchKey", "NotFound"]);
const INVALID_RANGE_NAMES = new Set(["InvalidRange"]);
/** The request itself is wrong: resending it fails the same way. */
const INVALID_REQUEST_NAMES = new Set(["KeyTooLongError", "EntityTooLarge"]);
const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "OperationAborted",
  "TimeoutError",
]);
/** Socket-level failures from Node and undici: the request may not have reached S3 at all. */
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/**
 * Translates whatever the S3 client threw into the typed set of @sluice/core, keeping the original
 * as `cause`. Errors that already are typed (thrown by our own checks) pass through unchanged.
 */
export function toSluiceError(error: unknown, context: S3CallContext): SluiceError {
  if (isSluiceError(error)) return error;
  const name = errorName(error);
  const status = httpStatus(error);
  const code = errorCode(error);
  const options = {
    cause: error,
    details: { ...context.details, operation: context.operation, key: context.key, name, status, code },
  };
  const what = `S3 ${context.operation}${context.key === undefined ? "" : ` of ${JSON.stringify(context.key)}`}`;

  // A 409 on a conditional put whose body the client could not parse is still the lost race.
  const conditionalConflict = status === 409 && context.condition !== undefined;
  if (CONFLICT_NAMES.has(name) || status === 412 || conditionalConflict) {
    return new ConflictError(`${what}: condition did not hold (${name})`, options);
  }
  if (name === "NoSuchBucket") return new InternalError(`${what}: bucket does not exist`, options);
  if (MISSING_KEY_NAMES.has(name) || (status === 404 && isObjectRead(context))) {
    // S3 answers an ifMatch put on a missing key with 404: for the caller the expectation failed.
    if (context.condition === "ifMatch") {
      return new ConflictError(`${what}: ifMatch on a missing object`, options);
    }
    return new NotFoundError(`${what}: object not found`, options);
  }
  if (INVALID_RANGE_NAMES.has(name) || status === 416) {
    return new InvalidArgumentError(`${what}: range starts at or past the end`, options);
  }
  if (INVALID_REQUEST_NAMES.has(name))
    return new InvalidArgumentError(`${what}: rejected (${name})`, options);
  if (isTransient(name, status, code))
    return new UnavailableError(`${what}: temporarily failed (${name})`, options);
  return new InternalError(`${what}: unexpected failure (${name})`, options);
}

function isObjectRead(context: S3CallContext): boolean {
  return context.operation === "get" || context.operation === "head" || context.condition === "ifMatch";
}

function isTransient(name: string, status: number | undefined, code: string | undefined): boolean {
  if (TRANSIENT_NAMES.has(name) || (code !== undefined && NETWORK_CODES.has(code))) return true;
  if (status === 429) return true;
  // 501 Not Implemented is a permanent answer, not an outage.
  return status !== undefined && status >= 500 && status !== 501;
}

function errorName(error: unknown): string {
  const value = error as { name?: unknown; Code?: unknown } | null;
  if (typeof value?.name === "string" && value.name !== "Error") return value.name;
  return typeof value?.Code === "string" ? value.Code : "Error";
}

function httpStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

function errorCode(error: unknown): string | undefined {
  const value = error as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = value?.code ?? value?.cause?.code;
  return typeof code === "string" ? code : undefined;
}
