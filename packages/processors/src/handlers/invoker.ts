import {
  isProcessor,
  type Processor,
  type ProcessorBatch,
  type ProcessorContext,
} from "@sluice/processor-sdk";
import type { HandlerSpec } from "../definition.js";
import { checkModuleResult, type HandlerResult, MalformedResultError } from "./result.js";
import { fromEventResult, toEvent } from "./wire.js";

/** One handler call: the batch, and what its context needs. */
export interface HandlerCall {
  handler: HandlerSpec;
  batch: ProcessorBatch;
  idempotencyKey: (offset: number) => string;
  /** Aborted at the call's timeout or when the runner stops. */
  signal: AbortSignal;
}

/**
 * Calls handlers. Whatever goes wrong — a throw, a rejection, a non-2xx answer, an error of the
 * Lambda function, an answer that is not a result — rejects, and the runner treats it as a
 * failure of the whole batch; the message ends up in `sluice-error`.
 */
export interface HandlerInvoker {
  invoke(call: HandlerCall): Promise<HandlerResult>;
}

/** Finds the module handler a definition names (the local server imports it from disk). */
export type ModuleResolver = (module: string, exportName: string) => Promise<Processor>;

/** The slice of the AWS SDK's Lambda client the invoker uses. */
export interface LambdaInvokeClient {
  invoke(input: { functionName: string; payload: Uint8Array; signal: AbortSignal }): Promise<{
    statusCode: number | undefined;
    functionError: string | undefined;
    payload: Uint8Array | undefined;
  }>;
}

export interface InvokerOptions {
  /** Module handlers; without it a module handler fails with a message saying where they run. */
  modules?: ModuleResolver;
  /** Lambda handlers; default the AWS SDK's client, loaded on first use. */
  lambda?: LambdaInvokeClient;
  /** Webhooks; default the global fetch. */
  fetch?: typeof fetch;
  /** Longest answer read from a webhook or a Lambda function. Default 64 MiB. */
  answerBytesMax?: number;
}

const ERROR_TEXT_MAX = 300;

export class Handlers implements HandlerInvoker {
  private readonly loaded = new Map<string, Promise<Processor>>();
  private lambda: LambdaInvokeClient | undefined;

  constructor(private readonly options: InvokerOptions = {}) {
    this.lambda = options.lambda;
  }

  invoke(call: HandlerCall): Promise<HandlerResult> {
    switch (call.handler.kind) {
      case "module":
        return this.invokeModule(call, call.handler);
      case "lambda":
        return this.invokeLambda(call, call.handler.functionName);
      case "webhook":
        return this.invokeWebhook(call, call.handler);
    }
  }

  private async invokeModule(
    call: HandlerCall,
    spec: Extract<HandlerSpec, { kind: "module" }>,
  ): Promise<HandlerResult> {
    const resolver = this.options.modules;
    if (!resolver) {
      throw new Error(
        `module handlers run in the local server only (declared in its processor config file); this runtime cannot load ${spec.module}`,
      );
    }
    const cacheKey = `${spec.module}#${spec.exportName}`;
    let loading = this.loaded.get(cacheKey);
    if (!loading) {
      loading = resolver(spec.module, spec.exportName).then((processor) => {
        if (!isProcessor(processor)) {
          throw new Error(
            `${spec.module} export ${spec.exportName} is not a processor: export defineProcessor(...) from @sluice/processor-sdk`,
          );
        }
        return processor;
      });
      // A module that failed to load is tried again next time (it may have been fixed).
      loading.catch(() => this.loaded.delete(cacheKey));
      this.loaded.set(cacheKey, loading);
    }
    const processor = await loading;
    const ctx: ProcessorContext = {
      idempotencyKey: (record) => call.idempotencyKey(record.offset),
      signal: call.signal,
    };
    return checkModuleResult(await processor.handle(call.batch, ctx));
  }

  private async invokeLambda(call: HandlerCall, functionName: string): Promise<HandlerResult> {
    this.lambda ??= await sdkLambdaClient();
    const payload = new TextEncoder().encode(JSON.stringify(toEvent(call.batch, call.idempotencyKey)));
    const answer = await this.lambda.invoke({ functionName, payload, signal: call.signal });
    const text = answer.payload ? new TextDecoder().decode(answer.payload) : "";
    if (answer.functionError) {
      throw new Error(`Lambda function ${functionName} failed (${answer.functionError}): ${errorText(text)}`);
    }
    if (answer.statusCode !== undefined && (answer.statusCode < 200 || answer.statusCode >= 300)) {
      throw new Error(`Lambda function ${functionName} answered status ${answer.statusCode}`);
    }
    return fromEventResult(parseAnswer(text, `Lambda function ${functionName}`));
  }

  private async invokeWebhook(
    call: HandlerCall,
    spec: Extract<HandlerSpec, { kind: "webhook" }>,
  ): Promise<HandlerResult> {
    const fetchFn = this.options.fetch ?? fetch;
    let response: Response;
    try {
      response = await fetchFn(spec.url, {
        method: "POST",
        headers: {
          ...spec.headers,
          "content-type": "application/json",
          accept: "application/json",
          "user-agent": "sluice-processor",
          "sluice-processor": call.batch.processor,
        },
        body: JSON.stringify(toEvent(call.batch, call.idempotencyKey)),
        signal: call.signal,
        redirect: "manual",
      });
    } catch (error) {
      if (call.signal.aborted) throw call.signal.reason;
      const cause =
        error instanceof Error
          ? error.cause instanceof Error
            ? error.cause.message
            : error.message
          : String(error);
      throw new Error(`webhook ${spec.url} unreachable: ${cause}`);
    }
    const text = await readText(response, this.options.answerBytesMax ?? 64 * 1024 * 1024);
    if (response.status < 200 || response.status >= 300) {
      throw new Error(`webhook ${spec.url} answered ${response.status}${text ? `: ${errorText(text)}` : ""}`);
    }
    return fromEventResult(parseAnswer(text, `webhook ${spec.url}`));
  }
}

function parseAnswer(text: string, who: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new MalformedResultError(`${who} answered something that is not JSON: ${errorText(text)}`);
  }
}

function errorText(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > ERROR_TEXT_MAX ? `${flat.slice(0, ERROR_TEXT_MAX)}…` : flat;
}

async function readText(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new MalformedResultError(`the answer is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The AWS SDK's Lambda client, imported on first use so runtimes without Lambda handlers never load it. */
async function sdkLambdaClient(): Promise<LambdaInvokeClient> {
  const { LambdaClient, InvokeCommand } = await import("@aws-sdk/client-lambda");
  const client = new LambdaClient({});
  return {
    async invoke({ functionName, payload, signal }) {
      const output = await client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: "RequestResponse",
          Payload: payload,
        }),
        { abortSignal: signal },
      );
      return { statusCode: output.StatusCode, functionError: output.FunctionError, payload: output.Payload };
    },
  };
}
