import { randomBytes } from "node:crypto";
import { decodeRecordBatches } from "@sluice/core";
import { afterAll, describe, expect, it } from "vitest";
import { maintenanceCases } from "./maintenance-cases.js";
import { processorCases } from "./processors-suite.js";
import { produceRecordBatchCases } from "./record-batch-produce-cases.js";
import { shareGroupCases } from "./share-group-cases.js";

/**
 * The HTTP API's behaviour, written once and bound to every way the apps run: in-process over
 * memory adapters, in-process over the emulator's S3 and DynamoDB, over a local server, and
 * against a deployed stack. Cases share one cluster but never a topic, so they are independent
 * and can run against a long-lived deployment.
 */
export interface HttpSuiteOptions {
  /** Shown as `http [<name>]`. */
  name: string;
  /** Sends a request to the apps; `path` starts with `/`. */
  request: (path: string, init?: RequestInit) => Promise<Response>;
  /** The cluster id the deployment serves. */
  clusterId: () => string;
  /**
   * Writes made to the stores so far, when the binding can count them: bad input must write
   * nothing (ARCHITECTURE.md, invariant 7).
   */
  counters?: () => { objectWrites: number; metadataWrites: number } | undefined;
  /** Cases this binding cannot pass, by exact title, with the reason (shown in the skipped title). */
  skip?: { reason: string; tests: string[] }[];
  /** Runs maintenance on these topics as the binding deploys it; without it the maintenance cases cannot run. */
  runMaintenance?: (topics: string[]) => Promise<void>;
}

/** A `request` function for a server at a URL (a local server, a deployed stack). */
export function requestOverUrl(
  baseUrl: () => string,
): (path: string, init?: RequestInit) => Promise<Response> {
  return (path, init) => {
    const streamingBody = init?.body instanceof ReadableStream;
    // Node's fetch needs `duplex: "half"` to send a streamed body.
    const options = streamingBody ? ({ ...init, duplex: "half" } as RequestInit) : init;
    return fetch(`${baseUrl().replace(/\/+$/, "")}${path}`, options);
  };
}

const MIB = 1024 * 1024;

export function runHttpSuite(options: HttpSuiteOptions): void {
  describe(`http [${options.name}]`, () => {
    const registry = caseRegistry(options.skip ?? []);
    const api = apiFor(options);
    describe("clusters", () => clusterCases(api, registry.test));
    describe("topics", () => topicCases(api, registry.test));
    describe("configs", () => configCases(api, registry.test));
    describe("config values", () => configValueCases(api, registry.test));
    describe("partitions", () => partitionCases(api, registry.test));
    describe("produce", () => produceCases(api, registry.test));
    describe("idempotence", () => idempotenceCases(api, registry.test));
    describe("reads", () => readCases(api, registry.test));
    describe("bad input", () => badInputCases(api, registry.test));
    describe("openapi and docs", () => documentationCases(api, registry.test));
    describe("first contact", () => firstContactCases(api, registry.test));
    describe("consumer groups", () => consumerGroupCases(api, registry.test));
    describe("record batches", () => recordBatchCases(api, registry.test));
    describe("share groups", () => shareGroupCases(api, registry.test));
    describe("maintenance", () => maintenanceCases(api, registry.test, options.runMaintenance));
    describe("processors", () => processorCases(api, registry.test));
    describe("produce record batches", () => produceRecordBatchCases(api, registry.test));
    // After collection: a skip that names no case is a typo that would hide nothing.
    afterAll(() => registry.assertSkipsExist());
  });
}

export type Test = (title: string, body: () => Promise<void>) => void;

/** Registers cases, turning the listed ones into `it.skip` with the reason in the title. */
function caseRegistry(skips: { reason: string; tests: string[] }[]) {
  const reasons = new Map<string, string>();
  for (const { reason, tests } of skips) for (const title of tests) reasons.set(title, reason);
  const titles = new Set<string>();
  return {
    test(title: string, body: () => Promise<void>): void {
      if (titles.has(title)) throw new Error(`duplicate http case title: ${title}`);
      titles.add(title);
      const reason = reasons.get(title);
      if (reason === undefined) it(title, body);
      else it.skip(`${title} — skipped: ${reason}`, body);
    },
    assertSkipsExist(): void {
      const unknown = [...reasons.keys()].filter((title) => !titles.has(title));
      if (unknown.length > 0) throw new Error(`skip lists unknown http cases: ${unknown.join(" | ")}`);
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

interface JsonResponse {
  status: number;
  headers: Headers;
  body: Json;
}

interface DataInput {
  type: "BINARY" | "JSON" | "STRING";
  data: unknown;
}

function apiFor(options: HttpSuiteOptions) {
  const cluster = () => `/v3/clusters/${options.clusterId()}`;
  const topicPath = (topic: string) => `${cluster()}/topics/${topic}`;

  async function call(path: string, init: RequestInit = {}): Promise<JsonResponse> {
    const headers = new Headers(init.headers);
    if (init.body !== undefined && !headers.has("content-type"))
      headers.set("content-type", "application/json");
    const response = await options.request(path, { ...init, headers });
    const text = await response.text();
    let body: Json = text;
    if ((response.headers.get("content-type") ?? "").startsWith("application/json") && text.length > 0) {
      body = JSON.parse(text);
    }
    return { status: response.status, headers: response.headers, body };
  }

  const send = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    call(path, {
      method,
      ...(headers ? { headers } : {}),
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });

  async function createTopic(
    prefix: string,
    partitions = 1,
    configs: Record<string, string> = {},
  ): Promise<string> {
    const name = uniqueTopic(prefix);
    const response = await send("POST", `${cluster()}/topics`, {
      topic_name: name,
      partitions_count: partitions,
      configs: Object.entries(configs).map(([configName, value]) => ({ name: configName, value })),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return name;
  }

  /** Produces and expects success; returns the delivery report. */
  async function produce(topic: string, record: Json, headers?: Record<string, string>): Promise<Json> {
    const response = await send("POST", `${topicPath(topic)}/records`, record, headers);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  /** Produces several records concatenated (streaming mode); returns one parsed line per report. */
  async function produceStream(
    topic: string,
    body: string,
    headers?: Record<string, string>,
  ): Promise<Json[]> {
    const response = await send("POST", `${topicPath(topic)}/records`, body, headers);
    expect(response.status, String(response.body)).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    return String(response.body)
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line));
  }

  const read = (topic: string, partition: number, query = "") =>
    call(`${topicPath(topic)}/partitions/${partition}/records${query ? `?${query}` : ""}`);

  async function latestOffset(topic: string, partition: number): Promise<number> {
    const response = await call(`${topicPath(topic)}/partitions/${partition}`);
    expect(response.status).toBe(200);
    return response.body.latest_offset;
  }

  /** Runs `action` and checks that the stores saw no write meanwhile (when the binding counts). */
  async function expectNoWrites<T>(action: () => Promise<T>): Promise<T> {
    const before = options.counters?.();
    const result = await action();
    const after = options.counters?.();
    if (before && after) expect(after, "bad input must write nothing").toEqual(before);
    return result;
  }

  async function countWrites<T>(action: () => Promise<T>) {
    const before = options.counters?.();
    const result = await action();
    const after = options.counters?.();
    const delta =
      before && after
        ? {
            objectWrites: after.objectWrites - before.objectWrites,
            metadataWrites: after.metadataWrites - before.metadataWrites,
          }
        : undefined;
    return { result, delta };
  }

  return {
    options,
    cluster,
    topicPath,
    call,
    send,
    raw: options.request,
    createTopic,
    produce,
    produceStream,
    read,
    latestOffset,
    expectNoWrites,
    countWrites,
  };
}

export type Api = ReturnType<typeof apiFor>;

export function uniqueTopic(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

const base64 = (text: string) => Buffer.from(text).toString("base64");
const stringValue = (data: string): DataInput => ({ type: "STRING", data });

const TOPIC_KEYS = [
  "activity",
  "authorized_operations",
  "cluster_id",
  "configs",
  "is_internal",
  "kind",
  "metadata",
  "partition_reassignments",
  "partitions",
  "partitions_count",
  "replication_factor",
  "topic_name",
];

function clusterCases(api: Api, test: Test): void {
  test("lists the one cluster", async () => {
    const response = await api.call("/v3/clusters");
    expect(response.status).toBe(200);
    expect(response.body.kind).toBe("KafkaClusterList");
    expect(response.body.metadata.self).toMatch(/\/v3\/clusters$/);
    expect(response.body.data).toHaveLength(1);
    expect(response.body.data[0].cluster_id).toBe(api.options.clusterId());
  });

  test("gets the cluster with a link to its topics", async () => {
    const response = await api.call(api.cluster());
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      kind: "KafkaCluster",
      cluster_id: api.options.clusterId(),
      metadata: { resource_name: `crn:///kafka=${api.options.clusterId()}` },
    });
    expect(response.body.metadata.self).toMatch(new RegExp(`/v3/clusters/${api.options.clusterId()}$`));
    expect(response.body.topics.related).toMatch(
      new RegExp(`/v3/clusters/${api.options.clusterId()}/topics$`),
    );
  });

  test("an unknown cluster is 404 naming it", async () => {
    for (const path of ["/v3/clusters/no-such-cluster", "/v3/clusters/no-such-cluster/topics"]) {
      const response = await api.call(path);
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ error_code: 404, message: expect.stringContaining("no-such-cluster") });
    }
  });
}

function topicCases(api: Api, test: Test): void {
  test("creates a topic: 201 with the Topic", async () => {
    const name = uniqueTopic("create");
    const response = await api.send("POST", `${api.cluster()}/topics`, {
      topic_name: name,
      partitions_count: 3,
      replication_factor: 3,
      configs: [{ name: "retention.ms", value: "3600000" }],
    });
    expect(response.status).toBe(201);
    expect(Object.keys(response.body).sort()).toEqual(TOPIC_KEYS);
    expect(response.body).toMatchObject({
      kind: "KafkaTopic",
      cluster_id: api.options.clusterId(),
      topic_name: name,
      is_internal: false,
      replication_factor: 3,
      partitions_count: 3,
      authorized_operations: [],
      metadata: { resource_name: `crn:///kafka=${api.options.clusterId()}/topic=${name}` },
    });
    expect(response.body.metadata.self).toMatch(new RegExp(`${api.topicPath(name)}$`));
    expect(response.body.partitions.related).toMatch(new RegExp(`${api.topicPath(name)}/partitions$`));
    expect(response.body.configs.related).toMatch(new RegExp(`${api.topicPath(name)}/configs$`));
  });

  test("creating an existing topic is 409 naming it", async () => {
    const name = await api.createTopic("duplicate");
    const response = await api.send("POST", `${api.cluster()}/topics`, {
      topic_name: name,
      partitions_count: 3,
    });
    expect(response.status).toBe(409);
    expect(response.body).toEqual({ error_code: 409, message: `topic already exists: ${name}` });
    expect((await api.call(api.topicPath(name))).body.partitions_count).toBe(1);
  });

  test("partitions_count defaults to 1", async () => {
    const name = uniqueTopic("default-partitions");
    const response = await api.send("POST", `${api.cluster()}/topics`, { topic_name: name });
    expect(response.status).toBe(201);
    expect(response.body.partitions_count).toBe(1);
  });

  test("lists topics", async () => {
    const first = await api.createTopic("list-a");
    const second = await api.createTopic("list-b", 2);
    const response = await api.call(`${api.cluster()}/topics`);
    expect(response.status).toBe(200);
    expect(response.body.kind).toBe("KafkaTopicList");
    const names = response.body.data.map((topic: Json) => topic.topic_name);
    expect(names).toEqual(expect.arrayContaining([first, second]));
    const listed = response.body.data.find((topic: Json) => topic.topic_name === second);
    expect(listed.partitions_count).toBe(2);
    expect(Object.keys(listed).sort()).toEqual(TOPIC_KEYS);
  });

  test("gets a topic; an unknown topic is 404 naming it", async () => {
    const name = await api.createTopic("get", 2);
    const response = await api.call(api.topicPath(name));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ kind: "KafkaTopic", topic_name: name, partitions_count: 2 });
    const missing = await api.call(api.topicPath(`${name}-missing`));
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error_code: 404, message: expect.stringContaining(`${name}-missing`) });
  });

  test("PATCH increases partitions; fewer partitions is 409, a conflict with the topic's state", async () => {
    const name = await api.createTopic("patch", 2);
    const grown = await api.send("PATCH", api.topicPath(name), { partitions_count: 4 });
    expect(grown.status).toBe(200);
    expect(grown.body).toMatchObject({ kind: "KafkaTopic", topic_name: name, partitions_count: 4 });
    expect((await api.call(`${api.topicPath(name)}/partitions`)).body.data).toHaveLength(4);
    const report = await api.produce(name, { partition_id: 3, value: stringValue("in a new partition") });
    expect(report.partition_id).toBe(3);

    const shrunk = await api.expectNoWrites(() =>
      api.send("PATCH", api.topicPath(name), { partitions_count: 1 }),
    );
    expect(shrunk.status).toBe(409);
    expect(shrunk.body).toMatchObject({
      error_code: 409,
      message: expect.stringMatching(/4 partitions.*shrink to 1/),
    });
    const same = await api.send("PATCH", api.topicPath(name), { partitions_count: 4 });
    expect(same.status).toBe(200);
    expect((await api.call(api.topicPath(name))).body.partitions_count).toBe(4);
  });

  test("deletes a topic: 204, then 404", async () => {
    const name = await api.createTopic("delete");
    await api.produce(name, { value: stringValue("doomed") });
    const deleted = await api.call(api.topicPath(name), { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBe("");
    const after = await api.call(api.topicPath(name));
    expect(after.status).toBe(404);
    expect(after.body.message).toContain(name);
    const again = await api.call(api.topicPath(name), { method: "DELETE" });
    expect(again.status).toBe(404);
  });

  test("deleting a topic wakes its long-polls with 404", async () => {
    const name = await api.createTopic("delete-wakes-poll");
    const started = Date.now();
    const longPoll = api.read(name, 0, "offset=latest&timeout_ms=30000");
    expect((await api.call(api.topicPath(name), { method: "DELETE" })).status).toBe(204);
    const polled = await longPoll;
    expect(polled.status).toBe(404);
    expect(polled.body.message).toContain(name);
    // It waited 30 s before; woken (in this process at once, from another within a second), it
    // answers long before its timeout.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  test("deleting a topic ends its SSE streams with an error event", async () => {
    const name = await api.createTopic("delete-wakes-sse");
    const started = Date.now();
    const stream = await api.raw(
      `${api.topicPath(name)}/partitions/0/records?offset=latest&timeout_ms=30000`,
      {
        headers: { accept: "text/event-stream" },
      },
    );
    expect(stream.status).toBe(200);
    const streamed = readSse(stream, 1);
    expect((await api.call(api.topicPath(name), { method: "DELETE" })).status).toBe(204);
    const { events, ended } = await streamed;
    expect(ended).toBe(true);
    const errors = events.filter((event) => event.event === "error");
    expect(errors.map((event) => JSON.parse(event.data!).error_code)).toEqual([404]);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  test("a topic created again after delete starts empty", async () => {
    const name = await api.createTopic("recreate");
    await api.produce(name, { value: stringValue("old") });
    expect((await api.call(api.topicPath(name), { method: "DELETE" })).status).toBe(204);
    const created = await api.send("POST", `${api.cluster()}/topics`, { topic_name: name });
    expect(created.status).toBe(201);
    expect(await api.latestOffset(name, 0)).toBe(0);
    const read = await api.read(name, 0);
    expect(read.body.records).toEqual([]);
  });
}

function configCases(api: Api, test: Test): void {
  test("lists every config with its effective value", async () => {
    const name = await api.createTopic("configs", 1, { "retention.ms": "60000" });
    const response = await api.call(`${api.topicPath(name)}/configs`);
    expect(response.status).toBe(200);
    expect(response.body.kind).toBe("KafkaTopicConfigList");
    const byName = Object.fromEntries(response.body.data.map((config: Json) => [config.name, config]));
    expect(byName["retention.ms"]).toMatchObject({
      kind: "KafkaTopicConfig",
      cluster_id: api.options.clusterId(),
      topic_name: name,
      value: "60000",
      is_default: false,
      is_read_only: false,
      is_sensitive: false,
      source: "DYNAMIC_TOPIC_CONFIG",
      synonyms: [],
    });
    expect(byName["max.message.bytes"]).toMatchObject({
      value: "1048576",
      is_default: true,
      source: "DEFAULT_CONFIG",
    });
    expect(byName["cleanup.policy"]).toMatchObject({ value: "delete", is_default: true });
  });

  test("gets, sets and resets one config", async () => {
    const name = await api.createTopic("config-one");
    const path = `${api.topicPath(name)}/configs/retention.ms`;
    const initial = await api.call(path);
    expect(initial.status).toBe(200);
    expect(initial.body).toMatchObject({ name: "retention.ms", value: "604800000", is_default: true });
    expect(initial.body.metadata.self).toMatch(/\/configs\/retention\.ms$/);

    const put = await api.send("PUT", path, { value: "1000" });
    expect(put.status).toBe(204);
    expect((await api.call(path)).body).toMatchObject({
      value: "1000",
      is_default: false,
      source: "DYNAMIC_TOPIC_CONFIG",
    });

    const reset = await api.call(path, { method: "DELETE" });
    expect(reset.status).toBe(204);
    expect((await api.call(path)).body).toMatchObject({
      value: "604800000",
      is_default: true,
      source: "DEFAULT_CONFIG",
    });
  });

  test("configs:alter sets and resets several configs at once", async () => {
    const name = await api.createTopic("config-alter", 1, { "retention.ms": "5000" });
    const response = await api.send("POST", `${api.topicPath(name)}/configs:alter`, {
      data: [
        { name: "retention.ms", operation: "DELETE" },
        { name: "cleanup.policy", value: "compact" },
        { name: "max.message.bytes", value: "2048", operation: "SET" },
      ],
    });
    expect(response.status).toBe(204);
    const configs = (await api.call(`${api.topicPath(name)}/configs`)).body.data;
    const values = Object.fromEntries(
      configs.map((config: Json) => [config.name, [config.value, config.is_default]]),
    );
    expect(values["retention.ms"]).toEqual(["604800000", true]);
    expect(values["cleanup.policy"]).toEqual(["compact", false]);
    expect(values["max.message.bytes"]).toEqual(["2048", false]);
  });

  test("an invalid config value is 400 naming the config; nothing changes", async () => {
    const name = await api.createTopic("config-invalid");
    const path = `${api.topicPath(name)}/configs/retention.ms`;
    const put = await api.expectNoWrites(() => api.send("PUT", path, { value: "soon" }));
    expect(put.status).toBe(400);
    expect(put.body).toEqual({ error_code: 400, message: expect.stringMatching(/retention\.ms.*soon/) });

    const alter = await api.expectNoWrites(() =>
      api.send("POST", `${api.topicPath(name)}/configs:alter`, {
        data: [
          { name: "retention.ms", value: "1000" },
          { name: "compression.type", value: "brotli" },
        ],
      }),
    );
    expect(alter.status).toBe(400);
    expect(alter.body.message).toMatch(/compression\.type.*brotli/);
    expect((await api.call(path)).body.value).toBe("604800000");

    const created = await api.expectNoWrites(() =>
      api.send("POST", `${api.cluster()}/topics`, {
        topic_name: uniqueTopic("config-invalid-create"),
        configs: [{ name: "max.message.bytes", value: "-5" }],
      }),
    );
    expect(created.status).toBe(400);
    expect(created.body.message).toContain("max.message.bytes");
  });

  test("an unknown config is 404 naming it; SET without a value is 400", async () => {
    const name = await api.createTopic("config-unknown");
    const get = await api.call(`${api.topicPath(name)}/configs/segment.bytes`);
    expect(get.status).toBe(404);
    expect(get.body).toEqual({ error_code: 404, message: expect.stringContaining("segment.bytes") });
    const put = await api.expectNoWrites(() =>
      api.send("PUT", `${api.topicPath(name)}/configs/segment.bytes`, { value: "1" }),
    );
    expect(put.status).toBe(404);
    const alter = await api.expectNoWrites(() =>
      api.send("POST", `${api.topicPath(name)}/configs:alter`, { data: [{ name: "retention.ms" }] }),
    );
    expect(alter.status).toBe(400);
    expect(alter.body.message).toMatch(/retention\.ms needs a value/);
  });
}

function configValueCases(api: Api, test: Test): void {
  test("config values are checked per name as the document states them", async () => {
    const name = await api.createTopic("config-values");
    const configs = `${api.topicPath(name)}/configs`;
    for (const [config, value] of [
      ["retention.ms", ""],
      ["retention.ms", "0100"],
      ["max.message.bytes", "0"],
      ["cleanup.policy", "delete,"],
      ["compression.type", "brotli"],
    ]) {
      const put = await api.expectNoWrites(() => api.send("PUT", `${configs}/${config}`, { value }));
      expect(put.status, `${config}=${value}`).toBe(400);
      expect(put.body.message).toContain(
        `invalid value for topic config ${config}: ${JSON.stringify(value)}`,
      );
    }
    const policy = await api.send("PUT", `${configs}/cleanup.policy`, { value: "compact, delete" });
    expect(policy.status).toBe(204);
    const retention = await api.send("PUT", `${configs}/retention.ms`, { value: "-1" });
    expect(retention.status).toBe(204);
    const unknownName = await api.expectNoWrites(() =>
      api.send("POST", `${api.cluster()}/topics`, {
        topic_name: uniqueTopic("config-values-create"),
        configs: [{ name: "segment.bytes", value: "1" }],
      }),
    );
    expect(unknownName.status).toBe(400);
    expect(unknownName.body.message).toMatch(/configs\.0\.name: unknown topic config: segment\.bytes/);
    const deleteIgnoresValue = await api.send("POST", `${configs}:alter`, {
      data: [{ name: "retention.ms", operation: "DELETE", value: "not a number" }],
    });
    expect(deleteIgnoresValue.status).toBe(204);
  });

  test("the document gives each config its value schema", async () => {
    const document = (await api.call("/openapi.json")).body;
    const put = document.paths["/v3/clusters/{cluster_id}/topics/{topic_name}/configs/retention.ms"].put;
    const ref = put.requestBody.content["application/json"].schema.$ref.split("/").pop();
    const value = document.components.schemas[ref].properties.value;
    expect(new RegExp(value.pattern).test("86400000")).toBe(true);
    expect(new RegExp(value.pattern).test("soon")).toBe(false);
    const compression =
      document.paths["/v3/clusters/{cluster_id}/topics/{topic_name}/configs/compression.type"];
    const compressionRef = compression.put.requestBody.content["application/json"].schema.$ref
      .split("/")
      .pop();
    expect(document.components.schemas[compressionRef].properties.value.enum).toContain("zstd");
    expect(document.paths["/v3/clusters/{cluster_id}/topics/{topic_name}/configs/{name}"]).toBeUndefined();
    const alterItem = document.components.schemas.AlterConfigsRequest.properties.data.items;
    expect(alterItem.oneOf).toContainEqual(expect.objectContaining({ required: ["name", "operation"] }));
  });
}

function partitionCases(api: Api, test: Test): void {
  test("lists partitions with their earliest and latest offsets", async () => {
    const name = await api.createTopic("partitions", 3);
    await api.produceStream(
      name,
      [1, 2].map((n) => JSON.stringify({ partition_id: 1, value: stringValue(`r${n}`) })).join("\n"),
    );
    const response = await api.call(`${api.topicPath(name)}/partitions`);
    expect(response.status).toBe(200);
    expect(response.body.kind).toBe("KafkaPartitionList");
    expect(
      response.body.data.map((partition: Json) => [
        partition.partition_id,
        partition.earliest_offset,
        partition.latest_offset,
      ]),
    ).toEqual([
      [0, 0, 0],
      [1, 0, 2],
      [2, 0, 0],
    ]);
  });

  test("lists partitions in pages linked by metadata.next", async () => {
    const name = await api.createTopic("partition-pages", 5);
    const first = await api.call(`${api.topicPath(name)}/partitions?page_size=2`);
    expect(first.status).toBe(200);
    expect(first.body.data.map((partition: Json) => partition.partition_id)).toEqual([0, 1]);
    const seen = [...first.body.data.map((partition: Json) => partition.partition_id)];
    let next: string | null = first.body.metadata.next;
    for (let pages = 0; next !== null && pages < 5; pages++) {
      const url = new URL(next);
      const page = await api.call(`${url.pathname}${url.search}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((partition: Json) => partition.partition_id));
      next = page.body.metadata.next;
    }
    expect(next).toBeNull();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    const whole = await api.call(`${api.topicPath(name)}/partitions`);
    expect(whole.body.data).toHaveLength(5);
    expect(whole.body.metadata.next).toBeNull();
    for (const query of ["page_size=0", "page_size=1001", "page_token=x"]) {
      const bad = await api.call(`${api.topicPath(name)}/partitions?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.body.message).toMatch(/query parameter (page_size|page_token)/);
    }
  });

  test("gets one partition; an unknown partition is 404", async () => {
    const name = await api.createTopic("partition", 2);
    await api.produce(name, { partition_id: 1, value: stringValue("x") });
    const response = await api.call(`${api.topicPath(name)}/partitions/1`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      kind: "KafkaPartition",
      cluster_id: api.options.clusterId(),
      topic_name: name,
      partition_id: 1,
      leader: null,
      earliest_offset: 0,
      latest_offset: 1,
      metadata: { resource_name: `crn:///kafka=${api.options.clusterId()}/topic=${name}/partition=1` },
    });
    const missing = await api.call(`${api.topicPath(name)}/partitions/7`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error_code: 404, message: expect.stringMatching(/partition 7/) });
  });

  test("finds offsets by timestamp, as epoch ms or ISO-8601", async () => {
    const name = await api.createTopic("offsets-by-time", 2);
    await api.produceStream(
      name,
      [1000, 2000, 3000]
        .map((timestamp) =>
          JSON.stringify({ partition_id: 0, timestamp, value: stringValue(`at ${timestamp}`) }),
        )
        .join(""),
    );
    const byMillis = await api.call(`${api.topicPath(name)}/offsets?timestamp=1500`);
    expect(byMillis.status).toBe(200);
    expect(byMillis.body).toEqual({
      data: [
        { partition_id: 0, offset: 1 },
        { partition_id: 1, offset: null },
      ],
    });
    const byIso = await api.call(`${api.topicPath(name)}/offsets?timestamp=1970-01-01T00:00:03Z`);
    expect(byIso.body.data[0]).toEqual({ partition_id: 0, offset: 2 });
    const later = await api.call(`${api.topicPath(name)}/offsets?timestamp=3001`);
    expect(later.body.data[0]).toEqual({ partition_id: 0, offset: null });
    const bad = await api.call(`${api.topicPath(name)}/offsets?timestamp=yesterday`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/timestamp.*yesterday/);
  });
}

function produceCases(api: Api, test: Test): void {
  test("produces a BINARY record with headers, a timestamp and an explicit partition", async () => {
    const name = await api.createTopic("produce-binary", 3);
    const report = await api.produce(name, {
      partition_id: 2,
      key: { type: "BINARY", data: base64("key") },
      value: { type: "BINARY", data: base64("\u0000binary value") },
      headers: [
        { name: "trace", value: base64("abc") },
        { name: "empty", value: null },
      ],
      timestamp: "2024-05-01T12:00:00.250+02:00",
    });
    expect(report).toEqual({
      error_code: 200,
      cluster_id: api.options.clusterId(),
      topic_name: name,
      partition_id: 2,
      offset: 0,
      timestamp: "2024-05-01T10:00:00.250Z",
      key: { type: "BINARY", size: 3 },
      value: { type: "BINARY", size: 13 },
    });
    const read = await api.read(name, 2, "key_type=BINARY&value_type=BINARY");
    expect(read.body.records).toEqual([
      {
        offset: 0,
        timestamp: "2024-05-01T10:00:00.250Z",
        timestamp_ms: Date.UTC(2024, 4, 1, 10, 0, 0, 250),
        key: { type: "BINARY", data: base64("key") },
        value: { type: "BINARY", data: base64("\u0000binary value") },
        headers: [
          { name: "trace", value: base64("abc") },
          { name: "empty", value: null },
        ],
      },
    ]);
  });

  test("produces a JSON record with an epoch-ms timestamp", async () => {
    const name = await api.createTopic("produce-json", 2);
    const data = { order: 42, items: ["a", "b"], paid: true, note: null, ünï: "cödé" };
    const report = await api.produce(name, {
      partition_id: 1,
      key: { type: "JSON", data: 42 },
      value: { type: "JSON", data },
      headers: [{ name: "content-type", value: base64("application/json") }],
      timestamp: 1_700_000_000_123,
    });
    expect(report).toEqual({
      error_code: 200,
      cluster_id: api.options.clusterId(),
      topic_name: name,
      partition_id: 1,
      offset: 0,
      timestamp: "2023-11-14T22:13:20.123Z",
      key: { type: "JSON", size: 2 },
      value: { type: "JSON", size: Buffer.byteLength(JSON.stringify(data)) },
    });
    const read = await api.read(name, 1, "key_type=JSON&value_type=JSON");
    expect(read.body.records[0]).toMatchObject({
      offset: 0,
      timestamp_ms: 1_700_000_000_123,
      key: { type: "JSON", data: 42 },
      value: { type: "JSON", data },
      headers: [{ name: "content-type", value: base64("application/json") }],
    });
    const asString = await api.read(name, 1, "value_type=STRING");
    expect(asString.body.records[0].value).toEqual({ type: "STRING", data: JSON.stringify(data) });
  });

  test("produces a STRING record, keyed, to the partition of its key", async () => {
    const name = await api.createTopic("produce-string", 4);
    const first = await api.produce(name, { key: stringValue("customer-7"), value: stringValue("héllo ✓") });
    const second = await api.produce(name, { key: stringValue("customer-7"), value: stringValue("again") });
    expect(first).toEqual({
      error_code: 200,
      cluster_id: api.options.clusterId(),
      topic_name: name,
      partition_id: first.partition_id,
      offset: 0,
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      key: { type: "STRING", size: 10 },
      value: { type: "STRING", size: Buffer.byteLength("héllo ✓") },
    });
    expect(second.partition_id).toBe(first.partition_id);
    expect(second.offset).toBe(1);
    const read = await api.read(name, first.partition_id, "key_type=STRING&value_type=STRING");
    expect(read.body.records.map((record: Json) => [record.key.data, record.value.data])).toEqual([
      ["customer-7", "héllo ✓"],
      ["customer-7", "again"],
    ]);
    const binary = await api.read(name, first.partition_id, "value_type=BINARY");
    expect(binary.body.records[0].value).toEqual({ type: "BINARY", data: base64("héllo ✓") });
  });

  test("a record without key and value is a null record", async () => {
    const name = await api.createTopic("produce-null");
    const report = await api.produce(name, { value: null });
    expect(report).toMatchObject({ key: null, value: null, offset: 0 });
    const read = await api.read(name, 0);
    expect(read.body.records[0]).toMatchObject({ key: null, value: null, headers: [] });
  });

  test("streaming mode: 3 concatenated records get 3 reports in order", async () => {
    const name = await api.createTopic("stream");
    const records = ["one", "two", "three"].map((data) => ({ value: stringValue(data) }));
    const body = `${JSON.stringify(records[0])}${JSON.stringify(records[1])}\n  ${JSON.stringify(records[2])}\n`;
    const reports = await api.produceStream(name, body);
    expect(reports).toHaveLength(3);
    expect(reports.map((report) => [report.error_code, report.partition_id, report.offset])).toEqual([
      [200, 0, 0],
      [200, 0, 1],
      [200, 0, 2],
    ]);
    expect(reports[2]).toMatchObject({
      cluster_id: api.options.clusterId(),
      topic_name: name,
      value: { size: 5 },
    });
    const read = await api.read(name, 0, "value_type=STRING");
    expect(read.body.records.map((record: Json) => record.value.data)).toEqual(["one", "two", "three"]);
  });

  test("streaming mode writes 1,000 records as one object and one commit", async () => {
    const name = await api.createTopic("stream-1000", 2);
    const body = Array.from({ length: 1000 }, (_, n) =>
      JSON.stringify({ partition_id: n % 2, value: stringValue(`record ${n}`) }),
    ).join("\n");
    const { result: reports, delta } = await api.countWrites(() => api.produceStream(name, body));
    expect(reports).toHaveLength(1000);
    expect(reports.every((report) => report.error_code === 200)).toBe(true);
    expect(reports[999]).toMatchObject({ partition_id: 1, offset: 499 });
    if (delta) expect(delta).toEqual({ objectWrites: 1, metadataWrites: 1 });
    expect(await api.latestOffset(name, 0)).toBe(500);
  });

  test("streaming mode reports a rejected record and writes the others", async () => {
    const name = await api.createTopic("stream-partial", 1, { "max.message.bytes": "50" });
    const body = [
      { value: stringValue("first") },
      { value: { type: "BINARY", data: "not base64!" } },
      { value: stringValue("x".repeat(51)) },
      { value: stringValue("last") },
    ]
      .map((record) => JSON.stringify(record))
      .join("\n");
    const reports = await api.produceStream(name, body);
    expect(reports.map((report) => report.error_code)).toEqual([200, 400, 413, 200]);
    expect(reports[1].message).toMatch(/record 1: value\.data is not valid base64/);
    expect(reports[2].message).toMatch(/record 2 is 51 bytes.*max\.message\.bytes of 50/);
    expect([reports[0].offset, reports[3].offset]).toEqual([0, 1]);
    expect(await api.latestOffset(name, 0)).toBe(2);
  });

  test("streaming mode on a compacted topic: a record without a key is refused alone", async () => {
    const name = await api.createTopic("stream-compacted", 1, { "cleanup.policy": "compact" });
    const body = [
      { key: stringValue("k1"), value: stringValue("first") },
      { value: stringValue("no key") },
      { key: stringValue("k2"), value: stringValue("last") },
    ]
      .map((record) => JSON.stringify(record))
      .join("\n");
    const reports = await api.produceStream(name, body);
    expect(reports.map((report) => report.error_code)).toEqual([200, 400, 200]);
    expect(reports[1].message).toMatch(/^record 1 has no key; topic .* has cleanup\.policy compact/);
    expect([reports[0].offset, reports[2].offset]).toEqual([0, 1]);
    expect(await api.latestOffset(name, 0)).toBe(2);
  });

  test("streaming mode: a malformed record ends the stream, the records before it are written", async () => {
    const name = await api.createTopic("stream-malformed");
    const body = `${JSON.stringify({ value: stringValue("a") })}\n${JSON.stringify({ value: stringValue("b") })}\n{"value": {"type": "STRING", "data": "c"}]\n${JSON.stringify({ value: stringValue("never read") })}`;
    const reports = await api.produceStream(name, body);
    expect(reports).toHaveLength(3);
    expect(reports.map((report) => report.error_code)).toEqual([200, 200, 400]);
    expect(reports[2].message).toMatch(/^record 2: malformed JSON/);
    expect(await api.latestOffset(name, 0)).toBe(2);
  });

  test("records:batch answers 207 with successes and failures per entry", async () => {
    const name = await api.createTopic("batch", 2);
    const response = await api.send("POST", `${api.topicPath(name)}/records:batch`, {
      entries: [
        { id: "a", partition_id: 0, value: stringValue("first") },
        { id: "b", partition_id: 5, value: stringValue("no such partition") },
        { id: "c", partition_id: 0, key: { type: "JSON", data: { k: 1 } }, value: stringValue("second") },
        { id: "d", value: { type: "STRING" } },
      ],
    });
    expect(response.status).toBe(207);
    expect(response.body.successes).toEqual([
      {
        id: "a",
        error_code: 200,
        cluster_id: api.options.clusterId(),
        topic_name: name,
        partition_id: 0,
        offset: 0,
        timestamp: expect.any(String),
        key: null,
        value: { type: "STRING", size: 5 },
      },
      {
        id: "c",
        error_code: 200,
        cluster_id: api.options.clusterId(),
        topic_name: name,
        partition_id: 0,
        offset: 1,
        timestamp: expect.any(String),
        key: { type: "JSON", size: 7 },
        value: { type: "STRING", size: 6 },
      },
    ]);
    expect(response.body.failures).toEqual([
      {
        id: "b",
        error_code: 404,
        message: expect.stringMatching(/entries\.1 \(id "b"\): partition_id 5 does not exist/),
      },
      {
        id: "d",
        error_code: 400,
        message: expect.stringMatching(/entries\.3 \(id "d"\): value\.data: is required/),
      },
    ]);
    expect(await api.latestOffset(name, 0)).toBe(2);
  });
}

function idempotenceCases(api: Api, test: Test): void {
  test("a retry with the same Idempotency-Key returns the same reports and writes nothing", async () => {
    const name = await api.createTopic("idempotency", 2);
    const key = `retry-${randomBytes(6).toString("hex")}`;
    const single = { partition_id: 1, value: stringValue("once") };
    const first = await api.produce(name, single, { "Idempotency-Key": key });
    const latest = await api.latestOffset(name, 1);
    const { result: retry, delta } = await api.countWrites(() =>
      api.produce(name, single, { "Idempotency-Key": key }),
    );
    expect(retry).toEqual(first);
    if (delta) expect(delta).toEqual({ objectWrites: 0, metadataWrites: 0 });
    expect(await api.latestOffset(name, 1)).toBe(latest);

    const streamKey = `${key}-stream`;
    const body = ["x", "y", "z"]
      .map((data) => JSON.stringify({ partition_id: 0, value: stringValue(data) }))
      .join("");
    const reports = await api.produceStream(name, body, { "Idempotency-Key": streamKey });
    const again = await api.produceStream(name, body, { "Idempotency-Key": streamKey });
    expect(again).toEqual(reports);
    expect(await api.latestOffset(name, 0)).toBe(3);

    const other = await api.expectNoWrites(() =>
      api.send(
        "POST",
        `${api.topicPath(name)}/records`,
        { partition_id: 1, value: stringValue("different") },
        {
          "Idempotency-Key": key,
        },
      ),
    );
    expect(other.status).toBe(409);
    expect(other.body).toEqual({ error_code: 409, message: expect.stringContaining(key) });
  });

  test("producer headers: a duplicate sequence returns the same offset, a gap is 409", async () => {
    const name = await api.createTopic("producer", 2);
    const init = await api.send("POST", `${api.cluster()}/producers`);
    expect(init.status).toBe(200);
    expect(init.body).toEqual({ producer_id: expect.any(Number), producer_epoch: 0 });
    const headers = (sequence: number, epoch = init.body.producer_epoch) => ({
      "Sluice-Producer-Id": String(init.body.producer_id),
      "Sluice-Producer-Epoch": String(epoch),
      "Sluice-Producer-Sequence": String(sequence),
    });
    const record = (data: string) => ({ partition_id: 1, value: stringValue(data) });

    const first = await api.produce(name, record("seq 0"), headers(0));
    expect(first).toMatchObject({ partition_id: 1, offset: 0 });
    // A duplicate is recognised at commit (its object is uploaded first and left as garbage), so
    // the proof is that the partition does not grow.
    const duplicate = await api.produce(name, record("seq 0"), headers(0));
    expect(duplicate).toMatchObject({ partition_id: 1, offset: 0 });
    expect(await api.latestOffset(name, 1)).toBe(1);

    const gap = await api.send("POST", `${api.topicPath(name)}/records`, record("seq 5"), headers(5));
    expect(gap.status).toBe(409);
    expect(gap.body).toEqual({
      error_code: 409,
      code: "OUT_OF_ORDER_SEQUENCE",
      message: expect.stringMatching(/sequence 5 skips ahead/),
    });
    expect(await api.latestOffset(name, 1)).toBe(1);

    const stream = await api.produceStream(
      name,
      [record("seq 1"), record("seq 2")].map((r) => JSON.stringify(r)).join(""),
      headers(1),
    );
    expect(stream.map((report) => report.offset)).toEqual([1, 2]);
    expect(await api.latestOffset(name, 1)).toBe(3);
  });

  test("re-initialising a producer bumps its epoch and fences the old one", async () => {
    const name = await api.createTopic("producer-fenced");
    const first = await api.send("POST", `${api.cluster()}/producers`, {});
    const bumped = await api.send("POST", `${api.cluster()}/producers`, {
      producer_id: first.body.producer_id,
    });
    expect(bumped.status).toBe(200);
    expect(bumped.body).toEqual({ producer_id: first.body.producer_id, producer_epoch: 1 });
    const headers = (epoch: number) => ({
      "Sluice-Producer-Id": String(first.body.producer_id),
      "Sluice-Producer-Epoch": String(epoch),
      "Sluice-Producer-Sequence": "0",
    });
    expect((await api.produce(name, { partition_id: 0, value: null }, headers(1))).offset).toBe(0);
    const fenced = await api.send(
      "POST",
      `${api.topicPath(name)}/records`,
      { partition_id: 0, value: null },
      headers(0),
    );
    expect(fenced.status).toBe(409);
    expect(fenced.body).toEqual({
      error_code: 409,
      code: "INVALID_PRODUCER_EPOCH",
      message: expect.stringMatching(/epoch 0 is fenced by epoch 1/),
    });
    expect(await api.latestOffset(name, 0)).toBe(1);
    const unknown = await api.send("POST", `${api.cluster()}/producers`, { producer_id: 987_654_321 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain("987654321");
  });

  test("producer headers need one explicit partition and all three headers", async () => {
    const name = await api.createTopic("producer-bad", 2);
    const init = await api.send("POST", `${api.cluster()}/producers`);
    const headers = {
      "Sluice-Producer-Id": String(init.body.producer_id),
      "Sluice-Producer-Epoch": "0",
      "Sluice-Producer-Sequence": "0",
    };
    const noPartition = await api.expectNoWrites(() =>
      api.send("POST", `${api.topicPath(name)}/records`, { value: null }, headers),
    );
    expect(noPartition.status).toBe(400);
    expect(noPartition.body.message).toMatch(/partition_id/);
    const { "Sluice-Producer-Epoch": _epoch, ...partial } = headers;
    const missing = await api.expectNoWrites(() =>
      api.send("POST", `${api.topicPath(name)}/records`, { partition_id: 0, value: null }, partial),
    );
    expect(missing.status).toBe(400);
    expect(missing.body.message).toMatch(/Sluice-Producer-Epoch/);
    const mixed = await api.expectNoWrites(() =>
      api.send(
        "POST",
        `${api.topicPath(name)}/records`,
        `${JSON.stringify({ partition_id: 0, value: null })}${JSON.stringify({ partition_id: 1, value: null })}`,
        headers,
      ),
    );
    expect(mixed.status).toBe(400);
    expect(mixed.body.message).toMatch(/same partition_id/);
  });
}

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads server-sent events until `count` record events arrived or the stream ended, then disconnects. */
async function readSse(response: Response, count: number): Promise<{ events: SseEvent[]; ended: boolean }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = "";
  let ended = false;
  try {
    while (events.filter((event) => event.event === "record").length < count) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      for (let boundary = buffer.indexOf("\n\n"); boundary >= 0; boundary = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event: SseEvent = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) event.comment = line.slice(1).trim();
          else if (line.startsWith("id: ")) event.id = line.slice(4);
          else if (line.startsWith("event: ")) event.event = line.slice(7);
          else if (line.startsWith("data: "))
            event.data = event.data === undefined ? line.slice(6) : `${event.data}\n${line.slice(6)}`;
        }
        events.push(event);
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return { events, ended };
}

function readCases(api: Api, test: Test): void {
  test("reads a page: offset, max_records, next_offset, high_watermark", async () => {
    const name = await api.createTopic("read-page");
    await api.produceStream(
      name,
      Array.from({ length: 5 }, (_, n) => JSON.stringify({ value: stringValue(`r${n}`) })).join(""),
    );
    const page = await api.read(name, 0, "offset=1&max_records=2&value_type=STRING");
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({
      cluster_id: api.options.clusterId(),
      topic_name: name,
      partition_id: 0,
      next_offset: 3,
      high_watermark: 5,
      log_start_offset: 0,
    });
    expect(page.body.records.map((record: Json) => [record.offset, record.value.data])).toEqual([
      [1, "r1"],
      [2, "r2"],
    ]);
    const earliest = await api.read(name, 0, "max_records=1");
    expect(earliest.body.records.map((record: Json) => record.offset)).toEqual([0]);
    const latest = await api.read(name, 0, "offset=latest");
    expect(latest.body).toMatchObject({ records: [], next_offset: 5, high_watermark: 5 });
    const atEnd = await api.read(name, 0, "offset=5");
    expect(atEnd.body).toMatchObject({ records: [], next_offset: 5 });
  });

  test("a read without types gives back what was produced, each record naming its type", async () => {
    const name = await api.createTopic("read-back");
    await api.produce(name, {
      key: stringValue("customer-42"),
      value: { type: "JSON", data: { item: "tea", qty: 2 } },
    });
    await api.produceStream(
      name,
      [
        { value: stringValue("a") },
        { key: { type: "BINARY", data: base64("\u00ff\u00fe") }, value: { type: "BINARY", data: "//79" } },
        { value: { type: "JSON", data: "quoted" } },
        { value: null },
      ]
        .map((record) => JSON.stringify(record))
        .join(""),
    );
    const response = await api.read(name, 0);
    expect(response.status).toBe(200);
    expect(response.body.records.map((record: Json) => [record.key, record.value])).toEqual([
      [stringValue("customer-42"), { type: "JSON", data: { item: "tea", qty: 2 } }],
      [null, stringValue("a")],
      [
        { type: "STRING", data: "\u00ff\u00fe" },
        { type: "BINARY", data: "//79" },
      ],
      [null, { type: "JSON", data: "quoted" }],
      [null, null],
    ]);
  });

  test("a record not valid in the requested type falls back to STRING or BINARY, not a failed page", async () => {
    const name = await api.createTopic("read-type");
    await api.produceStream(
      name,
      [
        { value: stringValue("not json") },
        { value: { type: "BINARY", data: "//79" } },
        { value: stringValue("7") },
      ]
        .map((record) => JSON.stringify(record))
        .join(""),
    );
    const asJson = await api.read(name, 0, "value_type=JSON");
    expect(asJson.status).toBe(200);
    expect(asJson.body.records.map((record: Json) => record.value)).toEqual([
      stringValue("not json"),
      { type: "BINARY", data: "//79" },
      { type: "JSON", data: 7 },
    ]);
    const asString = await api.read(name, 0, "value_type=STRING&key_type=BINARY");
    expect(asString.body.records.map((record: Json) => record.value)).toEqual([
      stringValue("not json"),
      { type: "BINARY", data: "//79" },
      stringValue("7"),
    ]);
    const asBinary = await api.read(name, 0, "value_type=BINARY");
    expect(asBinary.body.records.map((record: Json) => record.value.type)).toEqual([
      "BINARY",
      "BINARY",
      "BINARY",
    ]);
  });

  test("a long-poll returns when a record is produced during the wait", async () => {
    const name = await api.createTopic("long-poll");
    await api.produce(name, { value: stringValue("before") });
    const offset = await api.latestOffset(name, 0);
    const started = Date.now();
    const pending = api.read(name, 0, `offset=${offset}&timeout_ms=10000&value_type=STRING`);
    await api.produce(name, { value: stringValue("during") });
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.body.records.map((record: Json) => [record.offset, record.value.data])).toEqual([
      [1, "during"],
    ]);
    expect(response.body.next_offset).toBe(2);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("a long-poll with nothing produced answers empty at its timeout", async () => {
    const name = await api.createTopic("long-poll-empty");
    const response = await api.read(name, 0, "offset=latest&timeout_ms=200");
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ records: [], next_offset: 0, high_watermark: 0 });
  });

  test("SSE streams records as events whose ids are their offsets", async () => {
    const name = await api.createTopic("sse");
    await api.produceStream(
      name,
      Array.from({ length: 4 }, (_, n) => JSON.stringify({ value: stringValue(`e${n}`) })).join(""),
    );
    const response = await api.raw(
      `${api.topicPath(name)}/partitions/0/records?offset=1&timeout_ms=10000&value_type=STRING`,
      {
        headers: { accept: "text/event-stream" },
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const { events } = await readSse(response, 3);
    const records = events.filter((event) => event.event === "record");
    expect(records.map((event) => event.id)).toEqual(["1", "2", "3"]);
    const data = records.map((event) => JSON.parse(event.data!));
    expect(data.map((record) => [record.offset, record.partition_id, record.value.data])).toEqual([
      [1, 0, "e1"],
      [2, 0, "e2"],
      [3, 0, "e3"],
    ]);
    expect(data[0]).toMatchObject({
      timestamp: expect.any(String),
      timestamp_ms: expect.any(Number),
      headers: [],
    });
  });

  test("SSE resumes after Last-Event-ID and tails new records", async () => {
    const name = await api.createTopic("sse-resume");
    await api.produceStream(
      name,
      ["a", "b", "c"].map((data) => JSON.stringify({ value: stringValue(data) })).join(""),
    );
    const response = await api.raw(
      `${api.topicPath(name)}/partitions/0/records?timeout_ms=10000&value_type=STRING`,
      {
        headers: { accept: "text/event-stream", "last-event-id": "1" },
      },
    );
    expect(response.status).toBe(200);
    const reading = readSse(response, 2);
    await api.produce(name, { value: stringValue("d") });
    const { events } = await reading;
    const records = events.filter((event) => event.event === "record");
    expect(records.map((event) => [event.id, JSON.parse(event.data!).value.data])).toEqual([
      ["2", "c"],
      ["3", "d"],
    ]);
  });

  test("an SSE stream ends after timeout_ms", async () => {
    const name = await api.createTopic("sse-timeout");
    const response = await api.raw(
      `${api.topicPath(name)}/partitions/0/records?offset=latest&timeout_ms=300`,
      {
        headers: { accept: "text/event-stream" },
      },
    );
    expect(response.status).toBe(200);
    const { events, ended } = await readSse(response, 1);
    expect(ended).toBe(true);
    expect(events.filter((event) => event.event === "record")).toEqual([]);
  });

  test("an SSE read at an offset out of range is 416 before the stream starts", async () => {
    const name = await api.createTopic("sse-range");
    const response = await api.call(`${api.topicPath(name)}/partitions/0/records?offset=3`, {
      headers: { accept: "text/event-stream" },
    });
    expect(response.status).toBe(416);
    expect(response.body).toEqual({
      error_code: 416,
      code: "OFFSET_OUT_OF_RANGE",
      message: expect.stringMatching(/offset 3 is out of range/),
    });
  });
}

function badInputCases(api: Api, test: Test): void {
  const records = (topic: string) => `${api.topicPath(topic)}/records`;

  test("malformed JSON is 400", async () => {
    const name = await api.createTopic("bad-json");
    const response = await api.expectNoWrites(() =>
      api.send("POST", records(name), '{"value": {"type": "STRING", "data": "x"'),
    );
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error_code: 400,
      message: expect.stringMatching(/malformed JSON.*body ends inside the record/),
    });
    const broken = await api.expectNoWrites(() => api.send("POST", records(name), '{"value": nope}'));
    expect(broken.status).toBe(400);
    expect(broken.body.message).toMatch(/malformed JSON/);
    const notObject = await api.expectNoWrites(() => api.send("POST", records(name), '["value"]'));
    expect(notObject.status).toBe(400);
    expect(notObject.body.message).toMatch(/malformed JSON.*'\['/);
    const empty = await api.expectNoWrites(() => api.send("POST", records(name), "  "));
    expect(empty.status).toBe(400);
    expect(empty.body.message).toMatch(/empty/);
    const admin = await api.expectNoWrites(() =>
      api.send("POST", `${api.cluster()}/topics`, '{"topic_name": '),
    );
    expect(admin.status).toBe(400);
    expect(admin.body.message).toMatch(/malformed JSON in request body/);
    expect(await api.latestOffset(name, 0)).toBe(0);
  });

  test("an unknown topic is 404", async () => {
    const name = uniqueTopic("never-created");
    const response = await api.expectNoWrites(() =>
      api.send("POST", records(name), { value: stringValue("x") }),
    );
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error_code: 404, message: `topic not found: ${name}` });
    const read = await api.read(name, 0);
    expect(read.status).toBe(404);
    expect(read.body.message).toContain(name);
  });

  test("an unknown cluster is 404", async () => {
    const name = await api.createTopic("bad-cluster");
    const response = await api.expectNoWrites(() =>
      api.send("POST", `/v3/clusters/not-this-one/topics/${name}/records`, { value: stringValue("x") }),
    );
    expect(response.status).toBe(404);
    expect(response.body).toEqual({
      error_code: 404,
      message: expect.stringContaining("cluster not found: not-this-one"),
    });
    const create = await api.expectNoWrites(() =>
      api.send("POST", "/v3/clusters/not-this-one/topics", { topic_name: uniqueTopic("nope") }),
    );
    expect(create.status).toBe(404);
  });

  test("a partition the topic does not have is 404 on produce and read; a malformed one 400", async () => {
    const name = await api.createTopic("bad-partition", 2);
    const produce = await api.expectNoWrites(() =>
      api.send("POST", records(name), { partition_id: 2, value: stringValue("x") }),
    );
    expect(produce.status).toBe(404);
    expect(produce.body.message).toMatch(
      /record 0: partition_id 2 does not exist; topic .* has 2 partitions/,
    );
    const batch = await api.send("POST", `${records(name)}:batch`, {
      entries: [{ id: "a", partition_id: 5, value: stringValue("x") }],
    });
    expect(batch.status).toBe(207);
    expect(batch.body.failures).toEqual([
      expect.objectContaining({ id: "a", error_code: 404, message: expect.stringMatching(/partition_id 5/) }),
    ]);
    const negative = await api.expectNoWrites(() =>
      api.send("POST", records(name), { partition_id: -1, value: stringValue("x") }),
    );
    expect(negative.status).toBe(400);
    expect(negative.body.message).toMatch(/record 0: partition_id/);
    const unknown = await api.read(name, 9);
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toMatch(/partition 9/);
    const notNumber = await api.call(`${api.topicPath(name)}/partitions/first/records`);
    expect(notNumber.status).toBe(400);
    expect(notNumber.body.message).toMatch(/path parameter partition_id/);
  });

  test("bad base64 is 400 naming the field and the record", async () => {
    const name = await api.createTopic("bad-base64");
    const cases: [Json, RegExp][] = [
      [{ value: { type: "BINARY", data: "aGVsbG8" } }, /record 0: value\.data is not valid base64: length 7/],
      [
        { value: { type: "BINARY", data: "aGVs bG8=" } },
        /record 0: value\.data is not valid base64: unexpected character " "/,
      ],
      [
        { key: { type: "BINARY", data: "_-8=" } },
        /record 0: key\.data is not valid base64: unexpected character "_"/,
      ],
      [
        { value: { type: "BINARY", data: "QR==" } },
        /record 0: value\.data is not valid base64: .*not canonical/,
      ],
      [
        { value: null, headers: [{ name: "h", value: "a=b=" }] },
        /record 0: headers\.0\.value is not valid base64/,
      ],
    ];
    for (const [record, message] of cases) {
      const response = await api.expectNoWrites(() => api.send("POST", records(name), record));
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(message);
    }
    const batch = await api.expectNoWrites(() =>
      api.send("POST", `${records(name)}:batch`, {
        entries: [{ id: "only", value: { type: "BINARY", data: "%%%%" } }],
      }),
    );
    expect(batch.status).toBe(207);
    expect(batch.body).toEqual({
      successes: [],
      failures: [
        { id: "only", error_code: 400, message: expect.stringMatching(/value\.data is not valid base64/) },
      ],
    });
  });

  test("a record over max.message.bytes is 413 naming the record and the limit", async () => {
    const name = await api.createTopic("too-large", 1, { "max.message.bytes": "100" });
    const response = await api.expectNoWrites(() =>
      api.send("POST", records(name), { key: stringValue("k"), value: stringValue("v".repeat(100)) }),
    );
    expect(response.status).toBe(413);
    expect(response.body).toEqual({
      error_code: 413,
      code: "RECORD_TOO_LARGE",
      message: expect.stringMatching(/record 0 is 101 bytes.*max\.message\.bytes of 100/),
    });
    const fits = await api.produce(name, { value: stringValue("v".repeat(100)) });
    expect(fits.offset).toBe(0);
  });

  test("a body over 6 MiB is 413", async () => {
    const name = await api.createTopic("body-too-large");
    const body = JSON.stringify({ value: stringValue("x".repeat(6 * MIB)) });
    const response = await api.expectNoWrites(() => api.send("POST", records(name), body));
    expect(response.status).toBe(413);
    expect(response.body).toEqual({
      error_code: 413,
      message: expect.stringMatching(/request body .*6291456 bytes \(6 MiB\)/),
    });
  });

  test("more than 10,000 records is 413", async () => {
    const name = await api.createTopic("too-many");
    const body = '{"value":null}\n'.repeat(10_001);
    const response = await api.expectNoWrites(() => api.send("POST", records(name), body));
    expect(response.status).toBe(413);
    expect(response.body.message).toMatch(/too many records.*10000/);
    const batch = await api.expectNoWrites(() =>
      api.send("POST", `${records(name)}:batch`, {
        entries: Array.from({ length: 10_001 }, (_, n) => ({ id: String(n), value: null })),
      }),
    );
    expect(batch.status).toBe(413);
    expect(batch.body.message).toMatch(/too many records in one request: 10001 \(at most 10000\)/);
    expect(await api.latestOffset(name, 0)).toBe(0);
  });

  test("an offset out of range is 416", async () => {
    const name = await api.createTopic("out-of-range");
    await api.produce(name, { value: null });
    const response = await api.expectNoWrites(() => api.read(name, 0, "offset=2&timeout_ms=1000"));
    expect(response.status).toBe(416);
    expect(response.body).toEqual({
      error_code: 416,
      code: "OFFSET_OUT_OF_RANGE",
      message: expect.stringMatching(/offset 2 is out of range .* valid offsets are 0 to 1/),
    });
  });

  test("bad query parameters are 400 naming them", async () => {
    const name = await api.createTopic("bad-query");
    const cases: [string, RegExp][] = [
      ["timeout_ms=30001", /query parameter timeout_ms: must be an integer from 0 to 30000/],
      ["timeout_ms=soon", /query parameter timeout_ms/],
      ["timeout_ms=-1", /query parameter timeout_ms/],
      ["offset=first", /query parameter offset: must be earliest, latest or a non-negative integer/],
      ["max_records=0", /query parameter max_records/],
      ["value_type=XML", /query parameter value_type/],
    ];
    for (const [query, message] of cases) {
      const response = await api.expectNoWrites(() => api.read(name, 0, query));
      expect(response.status, query).toBe(400);
      expect(response.body.message).toMatch(message);
    }
  });

  test("a request body violating the schema is 400 naming the field", async () => {
    const name = await api.createTopic("bad-schema");
    const create = await api.expectNoWrites(() =>
      api.send("POST", `${api.cluster()}/topics`, {
        topic_name: uniqueTopic("schema"),
        partitions_count: "three",
      }),
    );
    expect(create.status).toBe(400);
    expect(create.body.message).toMatch(/invalid request body: partitions_count/);
    const produce = await api.expectNoWrites(() =>
      api.send("POST", records(name), { value: { type: "TEXT", data: "x" } }),
    );
    expect(produce.status).toBe(400);
    expect(produce.body.message).toMatch(/record 0: value\.type/);
    const unknownField = await api.expectNoWrites(() =>
      api.send("POST", records(name), { vaule: stringValue("typo") }),
    );
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.message).toMatch(/vaule/);
    const timestamp = await api.expectNoWrites(() =>
      api.send("POST", records(name), { value: null, timestamp: "2024-02-30T00:00:00Z" }),
    );
    expect(timestamp.status).toBe(400);
    expect(timestamp.body.message).toMatch(/record 0: timestamp must be/);
    const sequence = await api.expectNoWrites(() =>
      api.send(
        "POST",
        records(name),
        { partition_id: 0, value: null },
        {
          "Sluice-Producer-Id": "1",
          "Sluice-Producer-Epoch": "99999",
          "Sluice-Producer-Sequence": "0",
        },
      ),
    );
    expect(sequence.status).toBe(400);
    expect(sequence.body.message).toMatch(/header sluice-producer-epoch: must be an integer from 0 to 32767/);
  });

  test("JSON data nested deeper than 512 levels is 400 on both produce routes; 512 is accepted", async () => {
    const name = await api.createTopic("deep-json");
    const nested = (depth: number) => JSON.parse("[".repeat(depth) + "]".repeat(depth));
    const accepted = await api.send("POST", records(name), { value: { type: "JSON", data: nested(512) } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    const batchAccepted = await api.send("POST", `${records(name)}:batch`, {
      entries: [{ id: "ok", value: { type: "JSON", data: nested(512) } }],
    });
    expect(batchAccepted.status).toBe(207);
    expect(batchAccepted.body.failures).toEqual([]);
    for (const depth of [513, 4_100]) {
      const single = await api.expectNoWrites(() =>
        api.send("POST", records(name), { key: { type: "JSON", data: nested(depth) } }),
      );
      expect(single.status, `depth ${depth}`).toBe(400);
      expect(single.body.message).toMatch(/record 0: key\.data is nested deeper than 512 levels/);
      const batch = await api.expectNoWrites(() =>
        api.send("POST", `${records(name)}:batch`, {
          entries: [{ id: "deep", value: { type: "JSON", data: nested(depth) } }],
        }),
      );
      expect(batch.status, `depth ${depth}`).toBe(207);
      expect(batch.body.failures).toEqual([
        {
          id: "deep",
          error_code: 400,
          message: expect.stringMatching(
            /entries\.0 \(id "deep"\): value\.data is nested deeper than 512 levels/,
          ),
        },
      ]);
    }
  });

  test("an offset past 2^53 is 416 quoting the offset exactly as sent", async () => {
    const name = await api.createTopic("huge-offset");
    for (const offset of ["9223372036854775807", "9007199254740993"]) {
      const response = await api.expectNoWrites(() => api.read(name, 0, `offset=${offset}`));
      expect(response.status).toBe(416);
      expect(response.body.message).toContain(`offset ${offset} is out of range`);
    }
  });

  test("a known path with another method is 405 with an Allow header", async () => {
    const name = await api.createTopic("method");
    const cases: [string, string, string][] = [
      ["DELETE", "/v3/clusters", "GET, HEAD"],
      ["PUT", api.topicPath(name), "DELETE, GET, HEAD, PATCH"],
      ["GET", records(name), "POST"],
      ["DELETE", `${records(name)}:batch`, "POST"],
      ["POST", `${api.topicPath(name)}/partitions/0/records`, "GET, HEAD"],
      ["POST", "/openapi.json", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await api.expectNoWrites(() => api.call(path, { method }));
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get("allow"), `${method} ${path}`).toBe(allow);
      expect(response.body).toEqual({
        error_code: 405,
        message: expect.stringContaining(`${method} is not allowed on ${path}`),
      });
    }
  });

  test("an unknown route is 404 pointing at the docs", async () => {
    const response = await api.call("/v3/nowhere");
    expect(response.status).toBe(404);
    expect(response.body).toEqual({
      error_code: 404,
      message: expect.stringMatching(/GET \/v3\/nowhere.*\/docs/),
    });
  });
}

/** Every route of the contract (docs/http-api-contract.md), as OpenAPI paths. */
const ROUTES: [string, string][] = [
  ["get", "/v3/clusters"],
  ["get", "/v3/clusters/{cluster_id}"],
  ["get", "/v3/clusters/{cluster_id}/topics"],
  ["post", "/v3/clusters/{cluster_id}/topics"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}"],
  ["patch", "/v3/clusters/{cluster_id}/topics/{topic_name}"],
  ["delete", "/v3/clusters/{cluster_id}/topics/{topic_name}"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}/configs"],
  ...["retention.ms", "retention.bytes", "cleanup.policy", "max.message.bytes", "compression.type"]
    .concat("message.timestamp.type")
    .flatMap((config): [string, string][] =>
      ["get", "put", "delete"].map((method) => [
        method,
        `/v3/clusters/{cluster_id}/topics/{topic_name}/configs/${config}`,
      ]),
    ),
  ["post", "/v3/clusters/{cluster_id}/topics/{topic_name}/configs:alter"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}/offsets"],
  ["post", "/v3/clusters/{cluster_id}/topics/{topic_name}/records"],
  ["post", "/v3/clusters/{cluster_id}/topics/{topic_name}/records:batch"],
  ["get", "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}/records"],
  ["post", "/v3/clusters/{cluster_id}/producers"],
];

/**
 * The structural rules of OpenAPI 3.1 that a generator can get wrong: version, info, operations
 * with responses that have descriptions, declared path parameters, and references that resolve.
 */
export function openApi31Problems(document: Json): string[] {
  const problems: string[] = [];
  if (typeof document?.openapi !== "string" || !/^3\.1\.\d+$/.test(document.openapi)) {
    problems.push(`openapi is ${JSON.stringify(document?.openapi)}, not 3.1.x`);
  }
  if (typeof document?.info?.title !== "string" || typeof document?.info?.version !== "string") {
    problems.push("info needs a title and a version");
  }
  for (const [path, item] of Object.entries<Json>(document?.paths ?? {})) {
    if (!path.startsWith("/")) problems.push(`path ${path} does not start with /`);
    for (const [method, operation] of Object.entries<Json>(item)) {
      if (!["get", "put", "post", "delete", "options", "head", "patch", "trace"].includes(method)) continue;
      const where = `${method.toUpperCase()} ${path}`;
      const responses = Object.entries<Json>(operation.responses ?? {});
      if (responses.length === 0) problems.push(`${where} has no responses`);
      for (const [status, response] of responses) {
        if (typeof response.description !== "string")
          problems.push(`${where} response ${status} has no description`);
      }
      const parameters: Json[] = operation.parameters ?? [];
      for (const parameter of parameters) {
        if (!["query", "header", "path", "cookie"].includes(parameter.in))
          problems.push(`${where}: parameter in ${parameter.in}`);
        if (parameter.in === "path" && parameter.required !== true)
          problems.push(`${where}: path parameter ${parameter.name} not required`);
      }
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        if (!parameters.some((parameter) => parameter.in === "path" && parameter.name === name)) {
          problems.push(`${where}: path parameter ${name} is not declared`);
        }
      }
    }
  }
  const visit = (node: Json) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      if (typeof node.$ref === "string") {
        const target = node.$ref
          .replace(/^#\//, "")
          .split("/")
          .reduce((at: Json, part: string) => at?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], document);
        if (target === undefined) problems.push(`unresolved $ref ${node.$ref}`);
      }
      Object.values(node).forEach(visit);
    }
  };
  visit(document);
  return problems;
}

function documentationCases(api: Api, test: Test): void {
  test("/openapi.json is valid OpenAPI 3.1 listing every route", async () => {
    const response = await api.call("/openapi.json");
    expect(response.status).toBe(200);
    expect(openApi31Problems(response.body)).toEqual([]);
    const listed = Object.entries<Json>(response.body.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => [method, path]),
    );
    expect(listed).toEqual(expect.arrayContaining(ROUTES));
    for (const [method, path] of ROUTES) {
      expect(response.body.paths[path][method].summary, `${method} ${path}`).toEqual(expect.any(String));
    }
    expect(response.body.components.schemas).toHaveProperty("ProduceRecord");
    expect(response.body.components.schemas).toHaveProperty("DeliveryReport");
  });

  test("/docs is a self-contained HTML page listing the routes", async () => {
    const response = await api.raw("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toMatch(/^<!doctype html>/i);
    for (const [, path] of ROUTES) expect(html).toContain(path);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i);
  });
}

function firstContactCases(api: Api, test: Test): void {
  test("GET / names the cluster and version and links to the docs, the spec and the clusters", async () => {
    const response = await api.call("/");
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      name: "Sluice",
      cluster_id: api.options.clusterId(),
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    for (const [link, path] of [
      ["docs", "/docs"],
      ["openapi", "/openapi.json"],
      ["clusters", "/v3/clusters"],
      ["health", "/health"],
    ] as [string, string][]) {
      expect(new URL(response.body.links[link]).pathname, link).toBe(path);
    }
    const html = await api.raw("/", { headers: { accept: "text/html,application/xhtml+xml" } });
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await html.text();
    expect(page).toContain(api.options.clusterId());
    for (const path of ["/docs", "/openapi.json", "/v3/clusters"]) expect(page).toContain(`href="${path}"`);
  });

  test("GET /health answers 200 for load balancers", async () => {
    const response = await api.call("/health");
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "ok" });
  });
}

// Consumer groups: the v2 consumer-instance flow, the v3 admin routes and the SDK's group protocol.
// Each case uses its own topic and group, so cases stay independent on a long-lived deployment.

const V2_TYPE = "application/vnd.kafka.v2+json";

function consumerGroupCases(api: Api, test: Test): void {
  const groups = () => `${api.cluster()}/consumer-groups`;
  const uniqueGroup = (prefix: string) => uniqueTopic(prefix);

  /** A call whose answer may be JSON of any `+json` type (the v2 routes answer in Confluent's). */
  async function v2(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await api.raw(path, {
      method,
      headers: {
        // Confluent's type for the v2 routes; the v3 routes take plain JSON.
        ...(body === undefined
          ? {}
          : { "content-type": path.startsWith("/consumers") ? V2_TYPE : "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const json =
      /\+json|\/json/.test(response.headers.get("content-type") ?? "") && text ? JSON.parse(text) : text;
    return { status: response.status, headers: response.headers, body: json as Json };
  }

  const instancePath = (group: string, name: string) => `/consumers/${group}/instances/${name}`;

  async function createInstance(group: string, name: string, config: Record<string, string> = {}) {
    const response = await v2("POST", `/consumers/${group}`, {
      name,
      "auto.offset.reset": "earliest",
      ...config,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/vnd\.kafka\.v2\+json/);
    expect(response.body.instance_id).toBe(name);
    expect(new URL(response.body.base_uri).pathname).toBe(instancePath(group, name));
  }

  async function subscribe(group: string, name: string, topics: string[]) {
    const response = await v2("POST", `${instancePath(group, name)}/subscription`, { topics });
    expect(response.status, JSON.stringify(response.body)).toBe(204);
  }

  async function poll(group: string, name: string, query = "timeout=0"): Promise<Json[]> {
    const response = await v2("GET", `${instancePath(group, name)}/records?${query}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  async function assigned(group: string, name: string): Promise<string[]> {
    const response = await v2("GET", `${instancePath(group, name)}/assignments`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.partitions.map((tp: Json) => `${tp.topic}-${tp.partition}`).sort();
  }

  const values = (records: Json[]) =>
    records.map((record) => Buffer.from(record.value, "base64").toString()).sort();

  async function produceTo(topic: string, partition: number, data: string[]): Promise<void> {
    for (const value of data)
      await api.produce(topic, { partition_id: partition, value: stringValue(value) });
  }

  async function heartbeat(group: string, body: Json) {
    return api.send("POST", `${groups()}/${group}/heartbeat`, body);
  }

  async function join(group: string, memberId: string, topics: string[]): Promise<Json> {
    const response = await heartbeat(group, {
      member_id: memberId,
      member_epoch: 0,
      subscribed_topic_names: topics,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  async function committedOffsets(group: string): Promise<string[]> {
    const response = await api.call(`${groups()}/${group}/offsets`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.data.map(
      (offset: Json) => `${offset.topic_name}-${offset.partition_id}@${offset.offset}`,
    );
  }

  test("v2: two instances of one group share a topic's partitions, never one partition in both", async () => {
    const topic = await api.createTopic("v2-share", 4);
    for (let partition = 0; partition < 4; partition++) await produceTo(topic, partition, [`p${partition}`]);
    const group = uniqueGroup("v2-share");
    await createInstance(group, "a");
    await createInstance(group, "b");
    await subscribe(group, "a", [topic]);
    await subscribe(group, "b", [topic]);
    // a gives b's share up at its poll, b takes it at its own.
    const fromA = await poll(group, "a");
    const fromB = await poll(group, "b");
    const a = await assigned(group, "a");
    const b = await assigned(group, "b");
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    expect(new Set([...a, ...b]).size).toBe(4);
    expect(fromA.every((record) => a.includes(`${record.topic}-${record.partition}`))).toBe(true);
    expect(fromB.every((record) => b.includes(`${record.topic}-${record.partition}`))).toBe(true);
    expect(values([...fromA, ...fromB])).toEqual(["p0", "p1", "p2", "p3"]);
    expect(fromA[0]).toEqual({
      topic,
      key: null,
      value: expect.any(String),
      partition: expect.any(Number),
      offset: 0,
    });
    const subscription = await v2("GET", `${instancePath(group, "a")}/subscription`);
    expect(subscription.body).toEqual({ topics: [topic] });
  });

  test("v2: commits and reads back offsets; seeks to an offset, the beginning and the end", async () => {
    const topic = await api.createTopic("v2-seek", 1);
    await produceTo(topic, 0, ["a", "b", "c", "d", "e"]);
    const group = uniqueGroup("v2-seek");
    await createInstance(group, "c", { "auto.commit.enable": "false", format: "json" });
    await subscribe(group, "c", [topic]);
    const first = await poll(group, "c");
    expect(first.map((record) => record.offset)).toEqual([0, 1, 2, 3, 4]);
    // json format: the value is the JSON value (here a string, as produced).
    expect(first.map((record) => record.value)).toEqual(["a", "b", "c", "d", "e"]);
    const offsets = `${instancePath(group, "c")}/offsets`;
    const commit = await v2("POST", offsets, { offsets: [{ topic, partition: 0, offset: 3 }] });
    expect(commit.status, JSON.stringify(commit.body)).toBe(200);
    expect((await v2("GET", offsets)).body).toEqual({
      offsets: [{ topic, partition: 0, offset: 3, metadata: "" }],
    });
    // No body: everything consumed so far.
    expect((await v2("POST", offsets)).status).toBe(200);
    expect(await committedOffsets(group)).toEqual([`${topic}-0@5`]);

    const seek = await v2("POST", `${instancePath(group, "c")}/positions`, {
      offsets: [{ topic, partition: 0, offset: 2 }],
    });
    expect(seek.status, JSON.stringify(seek.body)).toBe(204);
    expect((await poll(group, "c")).map((record) => record.offset)).toEqual([2, 3, 4]);
    const partitions = { partitions: [{ topic, partition: 0 }] };
    expect((await v2("POST", `${instancePath(group, "c")}/positions/beginning`, partitions)).status).toBe(
      204,
    );
    expect((await poll(group, "c")).map((record) => record.offset)).toEqual([0, 1, 2, 3, 4]);
    expect((await v2("POST", `${instancePath(group, "c")}/positions/end`, partitions)).status).toBe(204);
    expect(await poll(group, "c")).toEqual([]);
    await produceTo(topic, 0, ["f"]);
    expect((await poll(group, "c")).map((record) => record.offset)).toEqual([5]);
    // Auto-commit is off: what was read since is not committed.
    expect(await committedOffsets(group)).toEqual([`${topic}-0@5`]);
  });

  test("v2: auto-commit commits at the next poll what the previous poll returned", async () => {
    const topic = await api.createTopic("v2-auto", 1);
    await produceTo(topic, 0, ["a", "b", "c"]);
    const group = uniqueGroup("v2-auto");
    await createInstance(group, "c");
    await subscribe(group, "c", [topic]);
    expect(await poll(group, "c")).toHaveLength(3);
    expect(await committedOffsets(group)).toEqual([]);
    expect(await poll(group, "c")).toEqual([]);
    expect(await committedOffsets(group)).toEqual([`${topic}-0@3`]);
  });

  test("v2: deleting an instance moves its partitions to the others", async () => {
    const topic = await api.createTopic("v2-delete", 2);
    const group = uniqueGroup("v2-delete");
    await createInstance(group, "a");
    await createInstance(group, "b");
    await subscribe(group, "a", [topic]);
    await subscribe(group, "b", [topic]);
    await poll(group, "a");
    await poll(group, "b");
    expect(await assigned(group, "b")).toHaveLength(1);
    expect((await v2("DELETE", instancePath(group, "a"))).status).toBe(204);
    const gone = await v2("GET", `${instancePath(group, "a")}/assignments`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ error_code: 40403, message: expect.stringContaining("a") });
    await poll(group, "b");
    expect(await assigned(group, "b")).toEqual([`${topic}-0`, `${topic}-1`]);
  });

  test("v2: media types — records in the instance's format, 406 (40601) for the other one", async () => {
    const topic = await api.createTopic("v2-types", 1);
    await produceTo(topic, 0, ["x"]);
    const group = uniqueGroup("v2-types");
    await createInstance(group, "c");
    await subscribe(group, "c", [topic]);
    const refused = await v2("GET", `${instancePath(group, "c")}/records?timeout=0`, undefined, {
      accept: "application/vnd.kafka.json.v2+json",
    });
    expect(refused.status).toBe(406);
    expect(refused.body).toMatchObject({ error_code: 40601, message: expect.stringContaining("binary") });
    const records = await v2("GET", `${instancePath(group, "c")}/records?timeout=0`, undefined, {
      accept: "application/vnd.kafka.binary.v2+json",
    });
    expect(records.status).toBe(200);
    expect(records.headers.get("content-type")).toMatch(/^application\/vnd\.kafka\.binary\.v2\+json/);
    expect(values(records.body)).toEqual(["x"]);
    // Plain JSON bodies are accepted too.
    const plain = await api.send("POST", `/consumers/${group}`, { name: "plain" });
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
  });

  test("v3: list, describe, consumers, lags and lag summary, with exact numbers", async () => {
    const topic = await api.createTopic("v3-lag", 2);
    await produceTo(topic, 0, ["a", "b", "c"]);
    await produceTo(topic, 1, ["a", "b", "c", "d", "e"]);
    const group = uniqueGroup("v3-lag");
    const member = await join(group, "worker-1", [topic]);
    expect(member.assignment).toHaveLength(2);
    const commit = await api.send("POST", `${groups()}/${group}/offsets`, {
      member_id: "worker-1",
      offsets: [
        { topic_name: topic, partition_id: 0, offset: 1, metadata: "batch 7" },
        { topic_name: topic, partition_id: 1, offset: 5 },
      ],
    });
    expect(commit.status, JSON.stringify(commit.body)).toBe(200);
    expect(commit.body.data).toHaveLength(2);

    const list = await api.call(groups());
    expect(list.status).toBe(200);
    expect(list.body.kind).toBe("KafkaConsumerGroupList");
    expect(list.body.data.map((entry: Json) => entry.consumer_group_id)).toContain(group);
    const described = await api.call(`${groups()}/${group}`);
    expect(described.status).toBe(200);
    expect(described.body).toMatchObject({
      kind: "KafkaConsumerGroup",
      cluster_id: api.options.clusterId(),
      consumer_group_id: group,
      state: "STABLE",
      partition_assignor: "uniform",
      group_epoch: 1,
    });
    expect(described.body.lag_summary.related).toMatch(new RegExp(`/consumer-groups/${group}/lag-summary$`));

    const consumers = await api.call(`${groups()}/${group}/consumers`);
    expect(consumers.body.data).toHaveLength(1);
    expect(consumers.body.data[0]).toMatchObject({ consumer_id: "worker-1", member_epoch: 1 });
    const one = await api.call(`${groups()}/${group}/consumers/worker-1`);
    expect(one.body.assigned_partitions).toEqual([
      { topic_name: topic, partition_id: 0 },
      { topic_name: topic, partition_id: 1 },
    ]);
    const assignments = await api.call(`${groups()}/${group}/consumers/worker-1/assignments`);
    expect(assignments.body.data.map((entry: Json) => entry.partition_id)).toEqual([0, 1]);
    expect((await api.call(`${groups()}/${group}/consumers/nobody`)).status).toBe(404);

    const lags = await api.call(`${groups()}/${group}/lags`);
    expect(lags.status).toBe(200);
    expect(
      lags.body.data.map((lag: Json) => [
        lag.partition_id,
        lag.current_offset,
        lag.log_end_offset,
        lag.lag,
        lag.consumer_id,
      ]),
    ).toEqual([
      [0, 1, 3, 2, "worker-1"],
      [1, 5, 5, 0, "worker-1"],
    ]);
    const summary = await api.call(`${groups()}/${group}/lag-summary`);
    expect(summary.body).toMatchObject({
      max_lag: 2,
      total_lag: 2,
      max_lag_topic_name: topic,
      max_lag_partition_id: 0,
      max_lag_consumer_id: "worker-1",
    });
    const offsets = await api.call(`${groups()}/${group}/offsets`);
    expect(offsets.body.data[0]).toMatchObject({
      topic_name: topic,
      partition_id: 0,
      offset: 1,
      metadata: "batch 7",
      committed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  test("v3: offset reset is refused while members are active, then dry-runs and executes", async () => {
    const topic = await api.createTopic("v3-reset", 1);
    await produceTo(topic, 0, ["a", "b", "c"]);
    const group = uniqueGroup("v3-reset");
    await join(group, "m", [topic]);
    await api.send("POST", `${groups()}/${group}/offsets`, {
      member_id: "m",
      offsets: [{ topic_name: topic, partition_id: 0, offset: 1 }],
    });
    const reset = (body: Json) => api.send("POST", `${groups()}/${group}/offsets:reset`, body);
    const refused = await reset({ to: "earliest", dry_run: false });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      code: "NON_EMPTY_GROUP",
      message: expect.stringContaining("1 active member"),
    });
    expect(await committedOffsets(group)).toEqual([`${topic}-0@1`]);

    expect((await heartbeat(group, { member_id: "m", member_epoch: -1 })).status).toBe(200);
    expect((await api.call(`${groups()}/${group}`)).body.state).toBe("EMPTY");
    const dryRun = await reset({ to: "latest" });
    expect(dryRun.status, JSON.stringify(dryRun.body)).toBe(200);
    expect(dryRun.body).toEqual({
      dry_run: true,
      data: [{ topic_name: topic, partition_id: 0, previous_offset: 1, new_offset: 3 }],
    });
    expect(await committedOffsets(group)).toEqual([`${topic}-0@1`]);
    const executed = await reset({ to: "offset", offset: 2, dry_run: false });
    expect(executed.body.data[0]).toMatchObject({ previous_offset: 1, new_offset: 2 });
    expect(await committedOffsets(group)).toEqual([`${topic}-0@2`]);
    const shifted = await reset({ to: "shift-by", shift_by: -5, dry_run: false, topic_names: [topic] });
    expect(shifted.body.data[0]).toMatchObject({ previous_offset: 2, new_offset: 0 });
    const byTime = await reset({ to: "datetime", datetime: "2999-01-01T00:00:00Z" });
    expect(byTime.body.data[0]).toMatchObject({ previous_offset: 0, new_offset: 3 });
  });

  test("v3: deleting a group is refused while it has members, then done when it is empty", async () => {
    const topic = await api.createTopic("v3-delete", 1);
    const group = uniqueGroup("v3-delete");
    await join(group, "m", [topic]);
    const refused = await api.send("DELETE", `${groups()}/${group}`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("NON_EMPTY_GROUP");
    expect((await api.call(`${groups()}/${group}`)).status).toBe(200);
    await heartbeat(group, { member_id: "m", member_epoch: -1 });
    expect((await api.send("DELETE", `${groups()}/${group}`)).status).toBe(204);
    const gone = await api.call(`${groups()}/${group}`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe("GROUP_ID_NOT_FOUND");
  });

  test("heartbeat: join, revoke before assign, leave; stale epochs and unknown members are 409 with a code", async () => {
    const topic = await api.createTopic("hb", 2);
    const group = uniqueGroup("hb");
    let a = await join(group, "a-1", [topic]);
    expect(a).toMatchObject({ member_id: "a-1", member_epoch: 1, group_epoch: 1, revoking: [], pending: [] });
    expect(a.assignment).toHaveLength(2);
    const b = await join(group, "b-1", [topic]);
    expect(b.assignment).toEqual([]);
    expect(b.pending).toHaveLength(1);
    // a still reports both: one is revoking until it stops reporting it.
    a = (
      await heartbeat(group, {
        member_id: "a-1",
        member_epoch: a.member_epoch,
        owned_partitions: a.assignment,
      })
    ).body;
    expect(a.revoking).toHaveLength(1);
    expect(a.assignment).toHaveLength(1);
    a = (
      await heartbeat(group, {
        member_id: "a-1",
        member_epoch: a.member_epoch,
        owned_partitions: a.assignment,
      })
    ).body;
    expect(a.revoking).toEqual([]);
    const taken = (
      await heartbeat(group, { member_id: "b-1", member_epoch: b.member_epoch, owned_partitions: [] })
    ).body;
    expect(taken.assignment).toEqual(b.pending);
    expect(taken.member_epoch).toBe(taken.group_epoch);

    const stale = await heartbeat(group, { member_id: "a-1", member_epoch: 99 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: "FENCED_MEMBER_EPOCH", message: expect.stringContaining("99") });
    const unknown = await heartbeat(group, { member_id: "ghost", member_epoch: 1 });
    expect(unknown.status).toBe(409);
    expect(unknown.body.code).toBe("UNKNOWN_MEMBER_ID");
    const left = await heartbeat(group, { member_id: "b-1", member_epoch: -1 });
    expect(left.body.member_epoch).toBe(-1);
    expect(
      (await api.call(`${groups()}/${group}/consumers`)).body.data.map((entry: Json) => entry.consumer_id),
    ).toEqual(["a-1"]);
  });

  test("a commit for a partition the member does not own is 409 and writes nothing", async () => {
    const owned = await api.createTopic("commit-own", 1);
    const other = await api.createTopic("commit-other", 1);
    const group = uniqueGroup("commit");
    await join(group, "m", [owned]);
    const commit = (memberId: string, topic: string) =>
      api.send("POST", `${groups()}/${group}/offsets`, {
        member_id: memberId,
        offsets: [{ topic_name: topic, partition_id: 0, offset: 0 }],
      });
    const notMine = await commit("m", other);
    expect(notMine.status).toBe(409);
    expect(notMine.body).toMatchObject({
      code: "FENCED_MEMBER_EPOCH",
      message: expect.stringContaining(other),
    });
    const ghost = await commit("ghost", owned);
    expect(ghost.status).toBe(409);
    expect(ghost.body.code).toBe("UNKNOWN_MEMBER_ID");
    const missing = await commit("m", uniqueTopic("no-such-topic"));
    expect(missing.status).toBe(404);
    expect(await committedOffsets(group)).toEqual([]);
  });

  test("unknown groups are 404 GROUP_ID_NOT_FOUND and unknown instances 404 with error_code 40403", async () => {
    const group = uniqueGroup("nobody");
    for (const path of ["", "/consumers", "/lags", "/lag-summary", "/offsets"]) {
      const response = await api.call(`${groups()}/${group}${path}`);
      expect(response.status, path).toBe(404);
      expect(response.body, path).toMatchObject({
        code: "GROUP_ID_NOT_FOUND",
        message: expect.stringContaining(group),
      });
    }
    expect((await api.send("DELETE", `${groups()}/${group}`)).status).toBe(404);
    for (const [method, path] of [
      ["GET", "/records?timeout=0"],
      ["GET", "/subscription"],
      ["GET", "/assignments"],
      ["GET", "/offsets"],
      ["DELETE", ""],
    ] as const) {
      const response = await v2(method, `${instancePath(group, "nobody")}${path}`);
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.body, `${method} ${path}`).toMatchObject({ error_code: 40403 });
    }
    await createInstance(group, "twice");
    const again = await v2("POST", `/consumers/${group}`, { name: "twice" });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error_code: 40902, message: expect.stringContaining("twice") });
  });

  test("v2: a poll without a subscription, manual assignment and topic patterns are refused clearly", async () => {
    const topic = await api.createTopic("v2-refuse", 1);
    const group = uniqueGroup("v2-refuse");
    await createInstance(group, "c");
    const unsubscribed = await v2("GET", `${instancePath(group, "c")}/records?timeout=0`);
    expect(unsubscribed.status).toBe(409);
    expect(unsubscribed.body).toMatchObject({
      error_code: 40903,
      message: expect.stringContaining("not subscribed"),
    });
    const manual = await v2("POST", `${instancePath(group, "c")}/assignments`, {
      partitions: [{ topic, partition: 0 }],
    });
    expect(manual.status).toBe(409);
    expect(manual.body).toMatchObject({
      error_code: 40903,
      message: expect.stringContaining("subscribe instead"),
    });
    // With no body (or any partition list) the answer is the same.
    expect((await v2("POST", `${instancePath(group, "c")}/assignments`)).status).toBe(409);
    const pattern = await v2("POST", `${instancePath(group, "c")}/subscription`, {
      topic_pattern: "orders-.*",
    });
    expect(pattern.status).toBe(400);
    expect(pattern.body.message).toMatch(/topic_pattern.*not supported/);
    const missingTopic = await v2("POST", `${instancePath(group, "c")}/subscription`, {
      topics: [uniqueTopic("no-such-topic")],
    });
    expect(missingTopic.status).toBe(404);
    expect(missingTopic.body.error_code).toBe(40401);
    expect((await v2("GET", `${instancePath(group, "c")}/subscription`)).body).toEqual({ topics: [] });
    // Seeking a partition it does not own.
    await subscribe(group, "c", [topic]);
    const seek = await v2("POST", `${instancePath(group, "c")}/positions`, {
      offsets: [{ topic, partition: 5, offset: 0 }],
    });
    expect(seek.status).toBe(409);
    expect(seek.body.message).toContain("not assigned");
  });

  test("bad bodies and parameters of the group routes are 400 naming the field, and write nothing", async () => {
    const topic = await api.createTopic("group-bad", 1);
    const group = uniqueGroup("group-bad");
    await createInstance(group, "c");
    const cases: [string, string, Json, RegExp][] = [
      [
        "POST",
        `${groups()}/${group}/heartbeat`,
        { member_epoch: 0, subscribed_topic_names: [topic] },
        /member_id/,
      ],
      ["POST", `${groups()}/${group}/heartbeat`, { member_id: "m", member_epoch: "1" }, /member_epoch/],
      [
        "POST",
        `${groups()}/${group}/heartbeat`,
        { member_id: "m", member_epoch: 0 },
        /subscribed_topic_names/,
      ],
      ["POST", `${groups()}/${group}/heartbeat`, { member_id: "m m", member_epoch: 1 }, /member_id/],
      [
        "POST",
        `${groups()}/${group}/heartbeat`,
        { member_id: "m", member_epoch: 0, subscribed_topic_names: [topic], session_timeout_ms: 5 },
        /session_timeout_ms/,
      ],
      [
        "POST",
        `${groups()}/${group}/heartbeat`,
        { member_id: "m", member_epoch: 0, subscribed_topic_names: [topic], assignor: "sticky" },
        /assignor/,
      ],
      ["POST", `${groups()}/${group}/offsets`, { member_id: "m", offsets: [] }, /offsets/],
      [
        "POST",
        `${groups()}/${group}/offsets`,
        { member_id: "m", offsets: [{ topic_name: topic, partition_id: 0, offset: -1 }] },
        /offsets\.0\.offset/,
      ],
      ["POST", `${groups()}/${group}/offsets:reset`, { to: "yesterday" }, /\bto\b/],
      ["POST", `${groups()}/${group}/offsets:reset`, { to: "offset" }, /offset/],
      [
        "POST",
        `${groups()}/${group}/offsets:reset`,
        { to: "datetime", datetime: "last tuesday" },
        /datetime/,
      ],
      ["POST", `${groups()}/${group}/offsets:reset`, { to: "earliest", dry_run: "no" }, /dry_run/],
      ["POST", `/consumers/${group}`, { name: "x", format: "avro" }, /format/],
      ["POST", `/consumers/${group}`, { name: "x", "auto.commit.enable": true }, /auto\.commit\.enable/],
      ["POST", `/consumers/${group}`, { name: "x", "auto.offset.reset": "smallest" }, /auto\.offset\.reset/],
      ["POST", `/consumers/${group}`, { name: "no spaces" }, /name/],
      ["POST", `${instancePath(group, "c")}/subscription`, { topics: [] }, /topics/],
      [
        "POST",
        `${instancePath(group, "c")}/positions`,
        { offsets: [{ topic, partition: 0, offset: -3 }] },
        /offset/,
      ],
      [
        "POST",
        `${instancePath(group, "c")}/positions/end`,
        { partition: [{ topic, partition: 0 }] },
        /partitions/,
      ],
      [
        "POST",
        `${instancePath(group, "c")}/offsets`,
        { offsets: [{ topic, partition: 0 }] },
        /offsets\.0\.offset/,
      ],
      ["GET", `${instancePath(group, "c")}/records?timeout=soon`, undefined, /timeout/],
      ["GET", `${instancePath(group, "c")}/records?max_bytes=0`, undefined, /max_bytes/],
      ["GET", `${groups()}/bad%20group`, undefined, /group_id/],
    ];
    for (const [method, path, body, field] of cases) {
      const response = await api.expectNoWrites(() => v2(method, path, body));
      const label = `${method} ${path} ${JSON.stringify(body)}`;
      expect(response.status, label).toBe(400);
      expect(response.body.error_code, label).toBe(400);
      expect(response.body.message, label).toMatch(field);
    }
  });

  test("/openapi.json lists every consumer-group route", async () => {
    const document = await api.call("/openapi.json");
    const expected: [string, string][] = [
      ["get", "/v3/clusters/{cluster_id}/consumer-groups"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}"],
      ["delete", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/consumers"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/consumers/{consumer_id}"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/consumers/{consumer_id}/assignments"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/lags"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/lag-summary"],
      ["post", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/offsets:reset"],
      ["post", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/heartbeat"],
      ["post", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/offsets"],
      ["get", "/v3/clusters/{cluster_id}/consumer-groups/{group_id}/offsets"],
      ["post", "/consumers/{group_name}"],
      ["delete", "/consumers/{group_name}/instances/{instance}"],
      ["post", "/consumers/{group_name}/instances/{instance}/subscription"],
      ["get", "/consumers/{group_name}/instances/{instance}/subscription"],
      ["delete", "/consumers/{group_name}/instances/{instance}/subscription"],
      ["get", "/consumers/{group_name}/instances/{instance}/records"],
      ["post", "/consumers/{group_name}/instances/{instance}/offsets"],
      ["get", "/consumers/{group_name}/instances/{instance}/offsets"],
      ["post", "/consumers/{group_name}/instances/{instance}/positions"],
      ["post", "/consumers/{group_name}/instances/{instance}/positions/beginning"],
      ["post", "/consumers/{group_name}/instances/{instance}/positions/end"],
      ["get", "/consumers/{group_name}/instances/{instance}/assignments"],
      ["post", "/consumers/{group_name}/instances/{instance}/assignments"],
    ];
    for (const [method, path] of expected) {
      expect(document.body.paths[path]?.[method]?.summary, `${method} ${path}`).toEqual(expect.any(String));
    }
  });
}

const RECORD_BATCH = "application/vnd.kafka.record-batch.v2";

function recordBatchCases(api: Api, test: Test): void {
  /** A binary read: the response and its bytes. */
  async function readBatches(topic: string, query: string) {
    const response = await api.raw(`${api.topicPath(topic)}/partitions/0/records?${query}`, {
      headers: { accept: RECORD_BATCH },
    });
    return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
  }

  test("a read with Accept: record-batch answers the stored batches from the one holding the offset", async () => {
    const name = await api.createTopic("read-batches");
    // Two requests, two batches: offsets 0-2 and 3-4.
    await api.produceStream(
      name,
      [0, 1, 2]
        .map((n) => JSON.stringify({ key: stringValue(`k${n}`), value: stringValue(`v${n}`) }))
        .join(""),
    );
    await api.produceStream(
      name,
      [3, 4]
        .map((n) =>
          JSON.stringify({ value: stringValue(`v${n}`), headers: [{ name: "n", value: base64(String(n)) }] }),
        )
        .join(""),
    );
    const { response, bytes } = await readBatches(name, "offset=1");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(RECORD_BATCH);
    expect(response.headers.get("sluice-next-offset")).toBe("5");
    expect(response.headers.get("sluice-high-watermark")).toBe("5");
    expect(response.headers.get("sluice-log-start-offset")).toBe("0");
    const batches = await decodeRecordBatches(bytes);
    // Offset 1 is inside the first batch, which comes whole: the reader skips offset 0.
    expect(batches.map((batch) => [batch.baseOffset, batch.recordCount])).toEqual([
      [0, 3],
      [3, 2],
    ]);
    const text = new TextDecoder();
    const records = batches.flatMap((batch) => batch.records);
    expect(
      records.map((record) => [
        record.offset,
        record.key && text.decode(record.key),
        record.value && text.decode(record.value),
        record.headers.map((header) => `${header.key}=${header.value && text.decode(header.value)}`),
      ]),
    ).toEqual([
      [0, "k0", "v0", []],
      [1, "k1", "v1", []],
      [2, "k2", "v2", []],
      [3, null, "v3", ["n=3"]],
      [4, null, "v4", ["n=4"]],
    ]);
    // The JSON read of the same offset agrees on the records and carries the same headers.
    const json = await api.read(name, 0, "offset=1&value_type=STRING");
    expect(json.headers.get("sluice-next-offset")).toBe("5");
    expect(
      json.body.records.map((record: Json) => [record.offset, record.timestamp_ms, record.value.data]),
    ).toEqual(
      records.slice(1).map((record) => [record.offset, record.timestamp, text.decode(record.value!)]),
    );
    // From the second batch's own offset, only it comes.
    const second = await readBatches(name, "offset=3");
    expect((await decodeRecordBatches(second.bytes)).map((batch) => batch.baseOffset)).toEqual([3]);
  });

  test("a record-batch read at the end is empty, long-polls with timeout_ms, and answers 416 past the end", async () => {
    const name = await api.createTopic("read-batches-end");
    await api.produce(name, { value: stringValue("first") });
    const atEnd = await readBatches(name, "offset=latest");
    expect(atEnd.response.status).toBe(200);
    expect(atEnd.bytes.byteLength).toBe(0);
    expect(atEnd.response.headers.get("sluice-next-offset")).toBe("1");
    // A long-poll that a produce answers: whether the record lands before or during the wait, the
    // answer holds it.
    const waiting = readBatches(name, "offset=1&timeout_ms=20000");
    await api.produce(name, { value: stringValue("second") });
    const woken = await waiting;
    const records = (await decodeRecordBatches(woken.bytes)).flatMap((batch) => batch.records);
    expect(records.map((record) => [record.offset, new TextDecoder().decode(record.value!)])).toEqual([
      [1, "second"],
    ]);
    expect(woken.response.headers.get("sluice-next-offset")).toBe("2");
    const past = await api.raw(`${api.topicPath(name)}/partitions/0/records?offset=3`, {
      headers: { accept: RECORD_BATCH },
    });
    expect(past.status).toBe(416);
  });

  test("/openapi.json documents the record-batch form of the read and its offset headers", async () => {
    const document = await api.call("/openapi.json");
    const ok =
      document.body.paths["/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}/records"]
        .get.responses["200"];
    expect(ok.content[RECORD_BATCH].schema).toMatchObject({ type: "string", format: "binary" });
    expect(Object.keys(ok.headers).sort()).toEqual([
      "Sluice-High-Watermark",
      "Sluice-Log-Start-Offset",
      "Sluice-Next-Offset",
    ]);
  });
}
