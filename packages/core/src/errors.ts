/**
 * The public error taxonomy. Every failure that crosses a module boundary is one of these kinds;
 * adapters translate backend errors at their edge, and the HTTP layer maps kinds to status codes
 * in one place. `retryable` tells a caller whether the same call may succeed later unchanged.
 */
export type ErrorKind =
  | "conflict"
  | "fenced"
  | "not_found"
  | "invalid_argument"
  | "unavailable"
  | "data_corruption"
  | "internal";

export interface SluiceErrorOptions {
  cause?: unknown;
  /** Structured context (`key=value` in logs); never secrets. */
  details?: Record<string, unknown>;
  /**
   * A stable machine-readable name for the exact condition, in Kafka's vocabulary where it has
   * one (`FENCED_MEMBER_EPOCH`, `UNKNOWN_MEMBER_ID`, `OUT_OF_ORDER_SEQUENCE`): clients branch on
   * it, so it never changes once published.
   */
  code?: string;
  /** Confluent REST Proxy's five-digit error_code where its API defines one (40403: no such consumer instance). */
  restErrorCode?: number;
}

export abstract class SluiceError extends Error {
  abstract readonly kind: ErrorKind;
  abstract readonly retryable: boolean;
  readonly details: Record<string, unknown>;
  readonly code: string | undefined;
  readonly restErrorCode: number | undefined;

  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? {};
    this.code = options.code;
    this.restErrorCode = options.restErrorCode;
  }
}

/** A condition did not hold (create-only put of an existing key, a stale expected value, …). */
export class ConflictError extends SluiceError {
  override readonly name: string = "ConflictError";
  readonly kind: ErrorKind = "conflict";
  readonly retryable: boolean = false;
}

/** The caller lost the lease (or epoch) it wrote under; it must stop, not retry. */
export class FencedError extends SluiceError {
  override readonly name: string = "FencedError";
  readonly kind = "fenced";
  readonly retryable = false;
}

export class NotFoundError extends SluiceError {
  override readonly name: string = "NotFoundError";
  readonly kind = "not_found";
  readonly retryable = false;
}

/** The request itself is wrong; retrying it unchanged fails the same way. */
export class InvalidArgumentError extends SluiceError {
  override readonly name: string = "InvalidArgumentError";
  readonly kind = "invalid_argument";
  readonly retryable = false;
}

/** A transient backend failure (throttling, 5xx, timeout, connection reset): retry with backoff. */
export class UnavailableError extends SluiceError {
  override readonly name: string = "UnavailableError";
  readonly kind = "unavailable";
  readonly retryable = true;
}

/** Stored bytes failed verification (CRC, framing). Never returned as data. */
export class DataCorruptionError extends SluiceError {
  override readonly name: string = "DataCorruptionError";
  readonly kind = "data_corruption";
  readonly retryable = false;
}

/** A bug or an unexpected backend answer. */
export class InternalError extends SluiceError {
  override readonly name: string = "InternalError";
  readonly kind = "internal";
  readonly retryable = false;
}

export function isSluiceError(error: unknown): error is SluiceError {
  return error instanceof SluiceError;
}
