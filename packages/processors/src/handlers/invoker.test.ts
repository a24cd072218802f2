import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { defineProcessor, type ProcessorBatch, type ProcessorEvent } from "@sluice/processor-sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HandlerSpec } from "../definition.js";
import { type HandlerCall, Handlers, type LambdaInvokeClient } from "./invoker.js";
import { MalformedResultError } from "./result.js";

const encoder = new TextEncoder();
const batch: ProcessorBatch = {
  processor: "enrich",
  topic: "orders",
  partition: 2,
  attempt: 1,
  records: [
    {
      offset: 7,
      timestamp: 1_700_000_000_000,
      key: encoder.encode("c-42"),
      value: encoder.encode('{"qty":2}'),
      headers: [],
    },
    {
      offset: 8,
      timestamp: 1_700_000_000_001,
      key: null,
      value: Uint8Array.of(0xff, 0x00),
      headers: [{ key: "trace", value: encoder.encode("t1") }],
    },
  ],
};

function call(handler: HandlerSpec, signal = new AbortController().signal): HandlerCall {
  return { handler, batch, idempotencyKey: (offset) => `uid:topic:2:${offset}`, signal };
}

describe("module handlers", () => {
  it("get the batch and a context with a stable idempotency key, and their result is checked", async () => {
    const seen: string[] = [];
    const handlers = new Handlers({
      modules: async (module, exportName) => {
        expect([module, exportName]).toEqual(["./enrich.ts", "default"]);
        return defineProcessor((received, ctx) => {
          seen.push(...received.records.map((record) => ctx.idempotencyKey(record)));
          return { outputs: [{ key: "k", value: "v", sourceOffset: 7 }], failures: [8] };
        });
      },
    });
    const result = await handlers.invoke(
      call({ kind: "module", module: "./enrich.ts", exportName: "default" }),
    );
    expect(seen).toEqual(["uid:topic:2:7", "uid:topic:2:8"]);
    expect(result.failures).toEqual([8]);
    expect(result.errors).toEqual(new Map());
    expect(result.outputs).toEqual([
      { topic: undefined, sourceOffset: 7, record: { key: encoder.encode("k"), value: encoder.encode("v") } },
    ]);
  });

  it("refuse a result that is not one, and a module that exports no processor", async () => {
    const garbage = new Handlers({
      modules: async () => defineProcessor(() => ({ outputs: [{ value: 42 }] }) as never),
    });
    await expect(
      garbage.invoke(call({ kind: "module", module: "m", exportName: "default" })),
    ).rejects.toThrow(/outputs\[0\]\.value must be bytes, a string or null, got number 42/);
    const notProcessor = new Handlers({ modules: async () => ({ handle: () => undefined }) as never });
    await expect(notProcessor.invoke(call({ kind: "module", module: "m", exportName: "x" }))).rejects.toThrow(
      /m export x is not a processor/,
    );
    await expect(
      new Handlers().invoke(call({ kind: "module", module: "m", exportName: "default" })),
    ).rejects.toThrow(/module handlers run in the local server only/);
  });
});

describe("Lambda handlers", () => {
  const invoked: { functionName: string; event: ProcessorEvent }[] = [];
  const lambda = (answer: {
    statusCode?: number;
    functionError?: string;
    payload?: string;
  }): LambdaInvokeClient => ({
    async invoke({ functionName, payload }) {
      invoked.push({ functionName, event: JSON.parse(new TextDecoder().decode(payload)) as ProcessorEvent });
      return {
        statusCode: answer.statusCode ?? 200,
        functionError: answer.functionError,
        payload: answer.payload === undefined ? undefined : encoder.encode(answer.payload),
      };
    },
  });
  beforeEach(() => {
    invoked.length = 0;
  });

  it("receive the JSON event and answer outputs and failures, also as Lambda's batchItemFailures", async () => {
    const handlers = new Handlers({
      lambda: lambda({
        payload: JSON.stringify({
          outputs: [
            {
              key: { type: "STRING", data: "k" },
              value: { type: "JSON", data: { ok: true } },
              sourceOffset: 7,
            },
          ],
          batchItemFailures: [{ itemIdentifier: "8" }],
        }),
      }),
    });
    const result = await handlers.invoke(call({ kind: "lambda", functionName: "enrich-fn" }));
    expect(invoked[0]!.functionName).toBe("enrich-fn");
    expect(invoked[0]!.event).toEqual({
      processor: "enrich",
      topic: "orders",
      partition: 2,
      attempt: 1,
      records: [
        {
          offset: 7,
          timestamp: 1_700_000_000_000,
          key: { type: "STRING", data: "c-42" },
          value: { type: "JSON", data: { qty: 2 } },
          headers: [],
          idempotencyKey: "uid:topic:2:7",
        },
        {
          offset: 8,
          timestamp: 1_700_000_000_001,
          key: null,
          value: { type: "BINARY", data: "/wA=" },
          headers: [{ key: "trace", value: "dDE=" }],
          idempotencyKey: "uid:topic:2:8",
        },
      ],
    });
    expect(result.failures).toEqual([8]);
    expect(new TextDecoder().decode(result.outputs[0]!.record.value!)).toBe('{"ok":true}');
  });

  it("fail the batch on a function error, naming it, and on an answer that is not JSON", async () => {
    await expect(
      new Handlers({
        lambda: lambda({
          functionError: "Unhandled",
          payload: '{"errorType":"TypeError","errorMessage":"boom"}',
        }),
      }).invoke(call({ kind: "lambda", functionName: "f" })),
    ).rejects.toThrow(
      /Lambda function f failed \(Unhandled\): \{"errorType":"TypeError","errorMessage":"boom"\}/,
    );
    await expect(
      new Handlers({ lambda: lambda({ payload: "not json" }) }).invoke(
        call({ kind: "lambda", functionName: "f" }),
      ),
    ).rejects.toBeInstanceOf(MalformedResultError);
    // An empty answer: every record succeeded, nothing to append.
    await expect(
      new Handlers({ lambda: lambda({ payload: "null" }) }).invoke(
        call({ kind: "lambda", functionName: "f" }),
      ),
    ).resolves.toEqual({
      outputs: [],
      failures: [],
      errors: new Map(),
    });
  });
});

describe("webhook handlers", () => {
  let server: Server;
  let url: string;
  let respond: (request: IncomingMessage, body: string, response: ServerResponse) => void;
  const requests: { headers: IncomingMessage["headers"]; body: unknown }[] = [];

  beforeEach(async () => {
    requests.length = 0;
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      request.on("end", () => {
        requests.push({ headers: request.headers, body: JSON.parse(body) as unknown });
        respond(request, body, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const webhook = (headers: Record<string, string> = {}): HandlerSpec => ({ kind: "webhook", url, headers });

  it("POST the JSON event with the configured headers; a 2xx body is the result, an empty one means all done", async () => {
    respond = (_request, _body, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ outputs: [{ value: { type: "STRING", data: "seen" } }] }));
    };
    const result = await new Handlers().invoke(call(webhook({ authorization: "Bearer t" })));
    expect(requests[0]!.headers["content-type"]).toBe("application/json");
    expect(requests[0]!.headers.authorization).toBe("Bearer t");
    expect(requests[0]!.headers["sluice-processor"]).toBe("enrich");
    expect((requests[0]!.body as ProcessorEvent).records.map((record) => record.offset)).toEqual([7, 8]);
    expect(new TextDecoder().decode(result.outputs[0]!.record.value!)).toBe("seen");

    respond = (_request, _body, response) => {
      response.writeHead(204);
      response.end();
    };
    await expect(new Handlers().invoke(call(webhook()))).resolves.toEqual({
      outputs: [],
      failures: [],
      errors: new Map(),
    });
  });

  it("fail the batch on a non-2xx answer with its status and body, and when the answer never comes", async () => {
    respond = (_request, _body, response) => {
      response.writeHead(500, { "content-type": "text/plain" });
      response.end("database down");
    };
    await expect(new Handlers().invoke(call(webhook()))).rejects.toThrow(
      `webhook ${url} answered 500: database down`,
    );

    // A webhook that hangs: the call is aborted (at its timeout, by the runner) and fails.
    const controller = new AbortController();
    respond = () => controller.abort(new Error("the handler did not answer within 50 ms"));
    await expect(new Handlers().invoke(call(webhook(), controller.signal))).rejects.toThrow(
      "the handler did not answer within 50 ms",
    );
  });

  it("fail the batch when nothing listens", async () => {
    const closed = `http://127.0.0.1:1/hook`;
    await expect(new Handlers().invoke(call({ kind: "webhook", url: closed, headers: {} }))).rejects.toThrow(
      /webhook http:\/\/127.0.0.1:1\/hook unreachable/,
    );
  });
});
