import { Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";

/** What the logger needs of a Lambda invocation's context (hono/aws-lambda passes the real one). */
export interface LambdaContextLike {
  awsRequestId: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  getRemainingTimeInMillis?: () => number;
}

export interface LambdaLoggerOptions {
  /** The `service` key of every line, e.g. `sluice-api`. */
  service: string;
  /** DEBUG, INFO (default), WARN or ERROR; Powertools also reads POWERTOOLS_LOG_LEVEL. */
  level?: "DEBUG" | "INFO" | "WARN" | "ERROR";
}

/**
 * Structured JSON logs in Lambda, through Powertools for AWS Lambda Logger: one JSON object per
 * line with `level`, `message`, `service`, `timestamp`, the invocation's `function_request_id`
 * and, per request, the HTTP request id (`request_id`), plus the details given. It has the shape
 * of the HTTP apps' logger (`error`, `debug`), so it plugs into `createApp({ logger })`.
 */
export class LambdaLogger {
  readonly powertools: PowertoolsLogger;

  constructor(options: LambdaLoggerOptions) {
    this.powertools = new PowertoolsLogger({
      serviceName: options.service,
      ...(options.level ? { logLevel: options.level } : {}),
    });
  }

  error(message: string, details: Record<string, unknown>): void {
    this.powertools.error(message, details);
  }

  debug(message: string, details: Record<string, unknown>): void {
    this.powertools.debug(message, details);
  }

  info(message: string, details: Record<string, unknown> = {}): void {
    this.powertools.info(message, details);
  }

  /**
   * Starts an invocation: every line until the next call carries its Lambda request id and the
   * keys given (the HTTP request id from the Function URL event).
   */
  startInvocation(context: LambdaContextLike, keys: Record<string, string> = {}): void {
    this.powertools.resetKeys();
    this.powertools.addContext(context as Parameters<PowertoolsLogger["addContext"]>[0]);
    if (Object.keys(keys).length > 0) this.powertools.appendKeys(keys);
  }
}
