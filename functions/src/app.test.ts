import { DataCorruptionError, UnavailableError } from "@sluice/core";
import { Engine, PENDING_UPLOAD_MS } from "@sluice/engine";
import type { MetadataStore } from "@sluice/storage";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingMetadataStore, CountingObjectStore, SimulatedClock, withPut } from "@sluice/testing";
import { describe, expect, it, vi } from "vitest";
import { runHttpSuite } from "../../test/http/http-suite.js";
import { maintenanceOver } from "../../test/http/maintenance-cases.js";
import { type CreateAppOptions, createApp } from "./app.js";
import type { Logger } from "./http-errors.js";

const objects = new CountingObjectStore(new MemoryObjectStore());
const metadata = new CountingMetadataStore(new MemoryMetadataStore());
const app = createApp({ engine: new Engine({ objects, metadata }), metadata, clusterId: "unit-cluster" });

runHttpSuite({
  name: "in-process memory",
  request: async (path, init) => app.request(path, init),
  clusterId: () => "unit-cluster",
  counters: () => ({ objectWrites: objects.writes, metadataWrites: metadata.writes }),
  runMaintenance: maintenanceOver({ objects, metadata }),
});

/** A fresh app over memory stores, for cases that need their own engine, limits or store. */
function isolatedApp(options: Partial<CreateAppOptions> & { metadata?: MetadataStore } = {}) {
  const counted = {
    objects: new CountingObjectStore(new MemoryObjectStore()),
    metadata: new CountingMetadataStore(options.metadata ?? new MemoryMetadataStore()),
  };
  const engine = options.engine ?? new Engine({ objects: counted.objects, metadata: counted.metadata });
  const lines: { message: string; details: Record<string, unknown> }[] = [];
  const logger: Logger = { error: (message, details) => lines.push({ message, details }) };
  const instance = createApp({ clusterId: "c", logger, ...options, engine, metadata: counted.metadata });
  const json = (body: unknown) => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { app: instance, engine, counted, lines, json };
}

const topicBody = (name: string, partitions = 1) => ({ topic_name: name, partitions_count: partitions });

/** A POST whose body arrives as these chunks, one after another. */
function streamedPost(chunks: Uint8Array[]): RequestInit {
  return {
    method: "POST",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    }),
    duplex: "half",
  } as RequestInit;
}

/** `text`'s UTF-8 in chunks of `size` bytes (a character may be cut between two). */
function inChunks(text: string, size: number): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let position = 0; position < bytes.length; position += size)
    chunks.push(bytes.slice(position, position + size));
  return chunks;
}

describe("produce, beyond the suite", () => {
  it("parses records split across request chunks at any byte", async () => {
    const { app, json } = isolatedApp();
    expect((await app.request("/v3/clusters/c/topics", json(topicBody("t")))).status).toBe(201);
    const text = ["ünï", "{brace}", 'quote "q"']
      .map((data) => JSON.stringify({ value: { type: "STRING", data } }))
      .join("");
    const response = await app.request("/v3/clusters/c/topics/t/records", streamedPost(inChunks(text, 3)));
    expect(response.status).toBe(200);
    const reports = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports.map((report) => report.offset)).toEqual([0, 1, 2]);
    const read = (await (
      await app.request("/v3/clusters/c/topics/t/partitions/0/records?value_type=STRING")
    ).json()) as {
      records: { value: { data: string } }[];
    };
    expect(read.records.map((record) => record.value.data)).toEqual(["ünï", "{brace}", 'quote "q"']);
  });

  it("writes a stream larger than one engine append as one append per 10,000 records", async () => {
    const { app, json, counted } = isolatedApp({ limits: { recordsPerRequestMax: 25_000 } });
    await app.request("/v3/clusters/c/topics", json(topicBody("big")));
    counted.objects.reset();
    counted.metadata.reset();
    const response = await app.request(
      "/v3/clusters/c/topics/big/records",
      json('{"value":null}'.repeat(12_000)),
    );
    expect(response.status).toBe(200);
    const reports = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports).toHaveLength(12_000);
    expect(reports[11_999]).toMatchObject({ error_code: 200, offset: 11_999 });
    expect(counted.objects.calls.put).toBe(2);
    expect(counted.metadata.calls.transactWrite).toBe(2);
  });

  it("reads records of the common form split across request chunks, and answers as for any other", async () => {
    const { app, json } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t", 2)));
    const records = ["ünï", "b", "c"].map((data, index) => ({
      partition_id: index % 2,
      value: { type: "STRING", data },
    }));
    const text = records.map((record) => JSON.stringify(record)).join("\n");
    const response = await app.request("/v3/clusters/c/topics/t/records", streamedPost(inChunks(text, 5)));
    const reports = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports.map((report) => [report.partition_id, report.offset, report.value])).toEqual([
      [0, 0, { type: "STRING", size: 5 }],
      [1, 0, { type: "STRING", size: 1 }],
      [0, 1, { type: "STRING", size: 1 }],
    ]);
  });

  it("answers a body that grows past its byte limit for what came before, as read record by record", async () => {
    const { app, json } = isolatedApp({ limits: { recordsPerRequestMax: 3, requestBytesMax: 200 } });
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const streamed = (...chunks: string[]) =>
      streamedPost(chunks.map((chunk) => new TextEncoder().encode(chunk)));
    const tooMany = await app.request(
      "/v3/clusters/c/topics/t/records",
      streamed('{"value":null}'.repeat(4), " ".repeat(300)),
    );
    expect(tooMany.status).toBe(413);
    expect(await tooMany.json()).toMatchObject({
      message: "too many records in one request: over the limit of 3",
    });
    const malformed = await app.request(
      "/v3/clusters/c/topics/t/records",
      streamed('{"value":null} nope', " ".repeat(300)),
    );
    expect(malformed.status, await malformed.clone().text()).toBe(200);
    const lines = (await malformed.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      expect.objectContaining({ error_code: 200, offset: 0 }),
      expect.objectContaining({
        error_code: 400,
        message: expect.stringMatching(/^record 1: malformed JSON/),
      }),
    ]);
    const tooLarge = await app.request(
      "/v3/clusters/c/topics/t/records",
      streamed('{"value":null}', " ".repeat(300)),
    );
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ message: expect.stringMatching(/limit of 200 bytes/) });
  });

  it("applies a configured record limit", async () => {
    const { app, json } = isolatedApp({ limits: { recordsPerRequestMax: 3 } });
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const response = await app.request("/v3/clusters/c/topics/t/records", json('{"value":null}'.repeat(4)));
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      error_code: 413,
      message: "too many records in one request: over the limit of 3",
    });
  });

  it("writes a producer's stream whole or not at all", async () => {
    const { app, json, counted } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const producer = (await (await app.request("/v3/clusters/c/producers", { method: "POST" })).json()) as {
      producer_id: number;
    };
    counted.objects.reset();
    const records = [
      { partition_id: 0, value: { type: "STRING", data: "fine" } },
      { partition_id: 0, value: { type: "BINARY", data: "bad!" } },
    ];
    const response = await app.request("/v3/clusters/c/topics/t/records", {
      ...json(records.map((record) => JSON.stringify(record)).join("")),
      headers: {
        "Sluice-Producer-Id": String(producer.producer_id),
        "Sluice-Producer-Epoch": "0",
        "Sluice-Producer-Sequence": "0",
      },
    });
    expect(response.status).toBe(200);
    const reports = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(reports).toEqual([
      {
        error_code: 400,
        message:
          "record 0 not written: record 1 was rejected, and a request with Sluice-Producer-* headers is written whole or not at all",
      },
      { error_code: 400, message: expect.stringMatching(/^record 1: value\.data is not valid base64/) },
    ]);
    expect(counted.objects.writes).toBe(0);
  });
});

describe("many producers at once", () => {
  type Report = { partition_id: number; offset: number };
  const produceAll = async (headers: (index: number) => Record<string, string>) => {
    const { app, json } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t", 3)));
    const answers = await Promise.all(
      Array.from({ length: 6 }, async (_, index) => {
        const response = await app.request("/v3/clusters/c/topics/t/records", {
          method: "POST",
          headers: { "content-type": "application/json", ...headers(index) },
          body: JSON.stringify({ value: { type: "STRING", data: `r${index}` } }),
        });
        expect(response.status).toBe(200);
        return (await response.json()) as Report;
      }),
    );
    return answers;
  };
  /** How many answers each partition got, largest first. */
  const perPartition = (answers: Report[]) => {
    const counts = new Map<number, Report[]>();
    for (const answer of answers)
      counts.set(answer.partition_id, [...(counts.get(answer.partition_id) ?? []), answer]);
    return [...counts.values()].sort((a, b) => b.length - a.length);
  };

  it("appends requests that arrive together as one: their unkeyed records share a partition, each answered for its own", async () => {
    const answers = await produceAll(() => ({}));
    // The first is appended at once; the five that came beside it, together.
    const groups = perPartition(answers);
    expect(groups.map((group) => group.length)).toEqual([5, 1]);
    const offsets = groups[0]!.map((answer) => answer.offset).sort((a, b) => a - b);
    expect(offsets).toEqual([0, 1, 2, 3, 4].map((step) => offsets[0]! + step));
  });

  it("appends requests with an idempotency key on their own", async () => {
    const answers = await produceAll((index) => ({ "idempotency-key": `key-${index}` }));
    // Six appends, each moving the unkeyed partition on: every partition gets two.
    expect(perPartition(answers).map((group) => group.length)).toEqual([2, 2, 2]);
  });
});

describe("errors, beyond the suite", () => {
  it("answers 503 with Retry-After when the store is unavailable, and logs the cause", async () => {
    const failing = new MemoryMetadataStore();
    failing.get = async () => {
      throw new UnavailableError("throttled by the backend");
    };
    const { app, lines } = isolatedApp({ metadata: failing });
    const response = await app.request("/v3/clusters/c/topics/t");
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    const body = await response.json();
    expect(body).toEqual({
      error_code: 503,
      message: expect.stringMatching(/temporarily unavailable; retry/),
    });
    expect(lines[0]!.details).toMatchObject({ method: "GET", path: "/v3/clusters/c/topics/t" });
  });

  it("answers 500 with a generic message for data corruption, logging the cause under the error id", async () => {
    const corrupt = new MemoryMetadataStore();
    corrupt.query = async () => {
      throw new DataCorruptionError("item failed to decode: pk=topics");
    };
    const { app, lines } = isolatedApp({ metadata: corrupt });
    const response = await app.request("/v3/clusters/c/topics");
    expect(response.status).toBe(500);
    const body = (await response.json()) as { message: string };
    expect(body.message).toMatch(
      /^internal error \(error id [0-9a-f-]{36}\); the cause is in the server log$/,
    );
    expect(body.message).not.toContain("pk=topics");
    expect(lines).toHaveLength(1);
    expect(body.message).toContain(String(lines[0]!.details.errorId));
    expect(lines[0]!.details.error).toMatchObject({ name: "DataCorruptionError" });
  });
});

describe("Server-Timing", () => {
  it("tells the caller how long the app took, on answers and on errors", async () => {
    const { app: instance } = isolatedApp();
    const timing = (response: Response) => {
      const match = /^app;dur=(\d+\.\d{2})$/.exec(response.headers.get("server-timing") ?? "");
      expect(match, `Server-Timing of a ${response.status}`).not.toBeNull();
      return Number(match![1]);
    };
    expect(timing(await instance.request("/v3/clusters"))).toBeGreaterThanOrEqual(0);
    const missing = await instance.request("/v3/clusters/c/topics/nope");
    expect(missing.status).toBe(404);
    expect(timing(missing)).toBeGreaterThanOrEqual(0);
  });
});

describe("reads, beyond the suite", () => {
  it("with parallel commit, answers a produce whose upload failed after its commit with a 503 naming the offsets, and reads past the gap", async () => {
    const clock = new SimulatedClock();
    const objects = new MemoryObjectStore();
    let failUpload = false;
    const failing = withPut(objects, async (key, body, options) => {
      if (failUpload && body.byteLength > 0) throw new UnavailableError("upload timed out (test)");
      return objects.put(key, body, options);
    });
    const metadata = new MemoryMetadataStore();
    const engine = new Engine({ objects: failing, metadata, clock, parallelCommit: true });
    const { app, json } = isolatedApp({ engine, metadata });
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const produce = (data: string) =>
      app.request(
        "/v3/clusters/c/topics/t/records",
        json({ partition_id: 0, value: { type: "STRING", data } }),
      );
    expect((await produce("first")).status).toBe(200);
    failUpload = true;
    const failed = await produce("lost");
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { message: string }).message).toMatch(
      /committed \(partition 0 offsets 1 to 1\) but their upload failed/,
    );
    failUpload = false;
    expect((await produce("after")).status).toBe(200);

    const read = async (offset: number) =>
      (await (
        await app.request(`/v3/clusters/c/topics/t/partitions/0/records?offset=${offset}&value_type=STRING`)
      ).json()) as { records: { offset: number; value: { data: string } }[]; next_offset: number };
    // Waiting for the upload: nothing past offset 1 yet, and nothing skipped.
    expect(await read(1)).toMatchObject({ records: [], next_offset: 1 });
    await clock.advance(PENDING_UPLOAD_MS);
    const past = await read(1);
    expect(past.records.map((record) => [record.offset, record.value.data])).toEqual([[2, "after"]]);
    expect(past.next_offset).toBe(3);
  });

  it("stops waiting when an SSE client disconnects", async () => {
    const { app, json, engine } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    let waitSignal: AbortSignal | undefined;
    let waitTimeout: number | undefined;
    let announceWait!: () => void;
    const waiting = new Promise<void>((resolve) => {
      announceWait = resolve;
    });
    vi.spyOn(engine, "waitForRecords").mockImplementation(
      async (_topic, _partition, offset, timeoutMs, signal) => {
        waitSignal = signal;
        waitTimeout = timeoutMs;
        announceWait();
        await new Promise((resolve) => signal?.addEventListener("abort", resolve));
        return offset;
      },
    );
    const response = await app.request("/v3/clusters/c/topics/t/partitions/0/records?offset=latest", {
      headers: { accept: "text/event-stream" },
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await waiting;
    expect(waitTimeout).toBe(15_000);
    expect(waitSignal?.aborted).toBe(false);
    await reader.cancel();
    expect(waitSignal?.aborted).toBe(true);
  });

  it("stops a long-poll when the request is aborted", async () => {
    const { app, json, engine } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    let announceWait!: () => void;
    const waiting = new Promise<void>((resolve) => {
      announceWait = resolve;
    });
    const wait = engine.waitForRecords.bind(engine);
    vi.spyOn(engine, "waitForRecords").mockImplementation((...args) => {
      announceWait();
      return wait(...args);
    });
    const controller = new AbortController();
    const pending = app.request("/v3/clusters/c/topics/t/partitions/0/records?timeout_ms=30000", {
      signal: controller.signal,
    });
    await waiting;
    controller.abort();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ records: [], next_offset: 0 });
  });

  it("sends keep-alive comments while an SSE stream is idle", async () => {
    const { app, json } = isolatedApp({ limits: { keepAliveIntervalMs: 20 } });
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const response = await app.request("/v3/clusters/c/topics/t/partitions/0/records?timeout_ms=150", {
      headers: { accept: "text/event-stream" },
    });
    const text = await response.text();
    expect(text).toMatch(/^(: keep-alive\n\n)+$/);
  });

  it("ends an SSE stream with an error event when its topic is deleted", async () => {
    const { app, json } = isolatedApp();
    await app.request("/v3/clusters/c/topics", json(topicBody("t")));
    const response = await app.request("/v3/clusters/c/topics/t/partitions/0/records?offset=latest", {
      headers: { accept: "text/event-stream" },
    });
    expect(response.status).toBe(200);
    const text = response.text();
    expect((await app.request("/v3/clusters/c/topics/t", { method: "DELETE" })).status).toBe(204);
    // Whether the delete lands before or during the wait, the stream ends with one 404 event.
    expect(await text).toMatch(
      /^event: error\ndata: \{"error_code":404,"message":"topic not found: t[^\n]*"\}\n\n$/,
    );
  });
});

describe("the Lambda entry point", () => {
  it("serves a Function URL event with the engine built from the environment", async () => {
    vi.stubEnv("SLUICE_BUCKET", "bucket");
    vi.stubEnv("SLUICE_TABLE", "table");
    vi.stubEnv("SLUICE_CLUSTER_ID", "lambda-cluster");
    const { handler } = await import("./lambda.js");
    vi.unstubAllEnvs();
    const event = {
      version: "2.0",
      routeKey: "$default",
      rawPath: "/v3/clusters",
      rawQueryString: "",
      headers: { host: "abc.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https" },
      requestContext: {
        domainName: "abc.lambda-url.us-east-1.on.aws",
        http: {
          method: "GET",
          path: "/v3/clusters",
          protocol: "HTTP/1.1",
          sourceIp: "127.0.0.1",
          userAgent: "test",
        },
        requestId: "id",
        routeKey: "$default",
        stage: "$default",
        time: "01/Jan/2024:00:00:00 +0000",
        timeEpoch: 0,
      },
      isBase64Encoded: false,
    };
    // biome-ignore lint/suspicious/noExplicitAny: a hand-written Function URL event
    const result = (await handler(event as any, {} as any)) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body).data[0]).toMatchObject({
      cluster_id: "lambda-cluster",
      metadata: { self: "https://abc.lambda-url.us-east-1.on.aws/v3/clusters/lambda-cluster" },
    });
  });
});
