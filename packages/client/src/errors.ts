/**
 * An HTTP error answer from the Sluice API: `status` is the HTTP status, `errorCode`, `message` and
 * `code` come from the JSON error body (`{"error_code", "message", "code"?}`), or are derived from
 * the status when the body is not one. `code` is the condition's stable name where it has one
 * (Kafka's: `UNKNOWN_MEMBER_ID`, `FENCED_MEMBER_EPOCH`, `NON_EMPTY_GROUP`, …), for branching on;
 * `errorCode` is the HTTP status or the REST Proxy's five-digit code (`40403`).
 */
export class SluiceHttpError extends Error {
  override readonly name = "SluiceHttpError";
  readonly status: number;
  readonly errorCode: number;
  /** The condition's stable name from the body's `code`, when the server gave one. */
  readonly code: string | undefined;
  /** From a Retry-After header, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    status: number,
    errorCode: number,
    message: string,
    options: { retryAfterMs?: number; code?: string } = {},
  ) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** True for answers where the same request may succeed later: 429, 502, 503, 504. */
  get retryable(): boolean {
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** The server could not be reached, or the connection failed before an answer arrived. */
export class SluiceConnectionError extends Error {
  override readonly name = "SluiceConnectionError";
  readonly url: string;

  constructor(url: string, cause: unknown) {
    super(`cannot reach ${url}: ${describeCause(cause)}`, { cause });
    this.url = url;
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // fetch wraps the socket error: "fetch failed" with the interesting part in `cause`.
  const inner = cause.cause;
  if (inner instanceof Error) {
    const code = (inner as { code?: unknown }).code;
    return typeof code === "string" && !inner.message.includes(code)
      ? `${code} ${inner.message}`
      : inner.message;
  }
  return cause.message;
}

/** Builds the error for a non-2xx response, reading its body. */
export async function errorFromResponse(response: Response): Promise<SluiceHttpError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The body could not be read; the status still tells what happened.
  }
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
  const options = retryAfterMs === undefined ? {} : { retryAfterMs };
  const body = parseErrorBody(text);
  if (body) {
    return new SluiceHttpError(response.status, body.errorCode ?? response.status, body.message, {
      ...options,
      ...(body.code === undefined ? {} : { code: body.code }),
    });
  }
  const fallback = text.trim().slice(0, 200) || response.statusText || "request failed";
  return new SluiceHttpError(
    response.status,
    response.status,
    `HTTP ${response.status}: ${fallback}`,
    options,
  );
}

/** `{"error_code", "message", "code"?}`, or undefined when `text` is not such a body. */
export function parseErrorBody(
  text: string,
): { errorCode: number | undefined; message: string; code?: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (
      parsed &&
      typeof parsed === "object" &&
      typeof (parsed as { message?: unknown }).message === "string"
    ) {
      const { message, error_code, code } = parsed as {
        message: string;
        error_code?: unknown;
        code?: unknown;
      };
      return {
        errorCode: typeof error_code === "number" ? error_code : undefined,
        message,
        ...(typeof code === "string" ? { code } : {}),
      };
    }
  } catch {
    // not JSON
  }
  return undefined;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Whether a failed request may succeed if made again: the server could not be reached, or it
 * answered 429, 502, 503 or 504. The consumers retry these and give up on the rest.
 */
export function isTransientError(error: unknown): boolean {
  return error instanceof SluiceConnectionError || (error instanceof SluiceHttpError && error.retryable);
}
