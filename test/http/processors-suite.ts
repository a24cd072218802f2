import { expect } from "vitest";
import type { Api, Test } from "./http-suite.js";
import { uniqueTopic } from "./http-suite.js";

/**
 * The processor routes (docs/processors.md): create, list, describe, pause, resume, reset and
 * delete, and definitions refused with a 400 naming the field. Sources are never produced to, so
 * no handler runs even where a dispatcher does (a deployed stack).
 */
export function processorCases(api: Api, test: Test): void {
  const processors = () => `${api.cluster()}/processors`;
  // A port nothing listens on: the handler is never called by these cases.
  const webhook = { type: "webhook", url: "http://127.0.0.1:9/hook" };

  test("creates a processor, lists and describes it with each partition's progress", async () => {
    const source = await api.createTopic("proc-src", 2);
    const output = await api.createTopic("proc-out");
    const name = uniqueTopic("proc");
    const created = await api.send("POST", processors(), {
      name,
      topics: [source],
      handler: webhook,
      output_topics: [output],
      ordering: "KEY",
      retry: { max_attempts: 5 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(new URL(created.headers.get("location")!, "http://x").pathname).toBe(`${processors()}/${name}`);
    expect(created.body).toMatchObject({
      kind: "SluiceProcessor",
      processor_name: name,
      state: "RUNNING",
      definition: {
        topics: [source],
        handler: webhook,
        batch_size: 100,
        starting_position: "LATEST",
        ordering: "KEY",
        parallelism: 4,
        retry: {
          max_attempts: 5,
          backoff_ms: 1000,
          max_backoff_ms: 60000,
          max_record_age_ms: null,
          timeout_ms: 30000,
        },
        output_topics: [output],
        dead_letter_topic: null,
      },
    });
    const listed = await api.call(processors());
    expect(listed.status).toBe(200);
    expect(
      listed.body.data.map((processor: { processor_name: string }) => processor.processor_name),
    ).toContain(name);
    const described = await api.call(`${processors()}/${name}`);
    expect(described.status).toBe(200);
    expect(described.body.lag).toBe(0);
    expect(described.body.partitions).toEqual(
      [0, 1].map((partition) => ({
        topic_name: source,
        partition_id: partition,
        checkpoint: 0,
        high_watermark: 0,
        lag: 0,
        pending: 0,
        blocked_keys: [],
        last_error: null,
        owner: null,
        processed: 0,
        dead_lettered: 0,
        filtered: 0,
      })),
    );
    const again = await api.send("POST", processors(), { name, topics: [source], handler: webhook });
    expect(again.status).toBe(409);
    expect(again.body.message).toBe(`processor already exists: ${name}`);
  });

  test("refuses a definition naming a topic that does not exist or settings that do not fit, naming the field, writing nothing", async () => {
    const source = await api.createTopic("proc-bad");
    const name = uniqueTopic("proc-bad");
    const cases: [unknown, number, RegExp][] = [
      [
        { name, topics: ["no-such-topic"], handler: webhook },
        400,
        /^topics\[0\]: topic no-such-topic does not exist$/,
      ],
      [
        { name, topics: [source], handler: webhook, dead_letter_topic: "no-such-dlq" },
        400,
        /^dead_letter_topic: topic no-such-dlq does not exist$/,
      ],
      [
        { name, topics: [source], handler: webhook, parallelism: 3 },
        400,
        /^parallelism: applies to ordering KEY or SHARED only/,
      ],
      [
        { name, topics: [source], handler: webhook, output_topics: [source] },
        400,
        /^output_topics\[0\]: .* is a source topic/,
      ],
      [
        { name, topics: [source], handler: webhook, retry: { backoff_ms: 5000, max_backoff_ms: 10 } },
        400,
        /^retry\.max_backoff_ms: must be between 5000/,
      ],
      [{ name, topics: [source], handler: { type: "module", module: "./x.ts" } }, 400, /handler/],
      [{ name, topics: [source], handler: webhook, batch_size: 0 }, 400, /batch_size/],
      [{ name, topics: [source], handler: webhook, colour: "blue" }, 400, /colour/],
      [
        { name, topics: [source], handler: webhook, starting_position: "AT_TIMESTAMP" },
        400,
        /^starting_timestamp: required with AT_TIMESTAMP/,
      ],
      [
        {
          name,
          topics: [source],
          handler: webhook,
          starting_position: "AT_TIMESTAMP",
          starting_timestamp: "last tuesday",
        },
        400,
        /starting_timestamp: must be milliseconds since the epoch or an ISO-8601 date-time/,
      ],
    ];
    for (const [body, status, message] of cases) {
      const response = await api.expectNoWrites(() => api.send("POST", processors(), body));
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(response.body.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await api.call(`${processors()}/${name}`)).status).toBe(404);
  });

  test("pauses, resumes and resets a processor; a reset needs a paused one", async () => {
    const source = await api.createTopic("proc-reset");
    const name = uniqueTopic("proc-reset");
    expect((await api.send("POST", processors(), { name, topics: [source], handler: webhook })).status).toBe(
      201,
    );
    const refused = await api.send("POST", `${processors()}/${name}/reset`, { to: "earliest" });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/pause it before resetting/);
    const paused = await api.send("POST", `${processors()}/${name}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.state).toBe("PAUSED");
    const reset = await api.send("POST", `${processors()}/${name}/reset`, {
      to: "offsets",
      offsets: [{ topic_name: source, partition_id: 0, offset: 0 }],
    });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    expect(reset.body.partitions[0].checkpoint).toBe(0);
    const outOfRange = await api.send("POST", `${processors()}/${name}/reset`, {
      to: "offsets",
      offsets: [{ topic_name: source, partition_id: 0, offset: 5 }],
    });
    expect(outOfRange.status).toBe(400);
    expect(outOfRange.body.message).toMatch(/offset 5 is out of range for partition 0/);
    const resumed = await api.send("POST", `${processors()}/${name}/resume`);
    expect(resumed.body.state).toBe("RUNNING");
  });

  test("creates a SHARED processor, describes its share group, and keeps the queue routes off it", async () => {
    const source = await api.createTopic("proc-shared", 1);
    const name = uniqueTopic("proc-shared");
    const created = await api.send("POST", processors(), {
      name,
      topics: [source],
      handler: webhook,
      ordering: "SHARED",
      parallelism: 8,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.definition).toMatchObject({ ordering: "SHARED", parallelism: 8 });
    const described = await api.call(`${processors()}/${name}`);
    expect(described.status).toBe(200);
    expect(described.body.partitions).toEqual([]);
    expect(described.body.shared).toEqual({
      share_group_id: expect.stringMatching(/^__processor\./),
      members: 0,
      partitions: [
        {
          topic_name: source,
          partition_id: 0,
          start_offset: 0,
          end_offset: 0,
          high_watermark: 0,
          in_flight: 0,
          available: 0,
          lag: 0,
        },
      ],
    });
    const group = `${api.cluster()}/share-groups/${described.body.shared.share_group_id}`;
    const joined = await api.expectNoWrites(() =>
      api.send("POST", `${group}/members`, { topic_names: [source] }),
    );
    expect(joined.status).toBe(400);
    expect(joined.body.message).toMatch(/belong to shared processors/);
    const refused = await api.send("POST", processors(), {
      name: uniqueTopic("proc-shared-bad"),
      topics: [source],
      handler: webhook,
      ordering: "SHARED",
      bisect_on_error: true,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/^bisect_on_error: does not apply with ordering SHARED/);
    expect((await api.send("DELETE", `${processors()}/${name}`)).status).toBe(204);
    expect((await api.call(group)).status).toBe(404);
  });

  test("PUT creates a processor, then replaces its definition keeping its progress and state", async () => {
    const source = await api.createTopic("proc-put");
    const name = uniqueTopic("proc-put");
    const definition = { name, topics: [source], handler: webhook };
    const created = await api.send("PUT", `${processors()}/${name}`, definition);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const uid = created.body.uid;
    expect((await api.send("POST", `${processors()}/${name}/pause`)).status).toBe(200);
    const same = await api.send("PUT", `${processors()}/${name}`, definition);
    expect(same.status).toBe(200);
    const replaced = await api.send("PUT", `${processors()}/${name}`, { ...definition, batch_size: 7 });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ uid, state: "PAUSED", definition: { batch_size: 7 } });
    const mismatch = await api.send("PUT", `${processors()}/${name}`, {
      ...definition,
      name: `${name}-other`,
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.message).toMatch(/^name: must be the processor named in the path/);
  });

  test("refuses a reset body that names no target, or an impossible one, naming the field", async () => {
    const source = await api.createTopic("proc-reset-bad");
    const name = uniqueTopic("proc-reset-bad");
    expect((await api.send("POST", processors(), { name, topics: [source], handler: webhook })).status).toBe(
      201,
    );
    expect((await api.send("POST", `${processors()}/${name}/pause`)).status).toBe(200);
    const cases: [unknown, RegExp][] = [
      [{ to: "yesterday" }, /to: .*'earliest' \| 'latest' \| 'datetime' \| 'offsets'/],
      [{ to: "datetime" }, /datetime: .*expected string/],
      [
        { to: "datetime", datetime: "last tuesday" },
        /datetime: must be an ISO-8601 date-time with a zone, e\.g\. 2024-05-01T12:00:00Z$/,
      ],
      [{ to: "offsets", offsets: [{ topic_name: source, partition_id: 7, offset: 0 }] }, /partition 7/],
      [{ to: "offsets", offsets: [{ topic_name: source, partition_id: 0, offset: -1 }] }, /offset/],
      [{ to: "earliest", colour: "blue" }, /colour/],
    ];
    for (const [body, message] of cases) {
      const response = await api.expectNoWrites(() =>
        api.send("POST", `${processors()}/${name}/reset`, body),
      );
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.message, JSON.stringify(body)).toMatch(message);
    }
  });

  test("/openapi.json lists every processor route", async () => {
    const document = await api.call("/openapi.json");
    const base = "/v3/clusters/{cluster_id}/processors";
    const expected: [string, string][] = [
      ["post", base],
      ["get", base],
      ["get", `${base}/{processor_name}`],
      ["put", `${base}/{processor_name}`],
      ["delete", `${base}/{processor_name}`],
      ["post", `${base}/{processor_name}/pause`],
      ["post", `${base}/{processor_name}/resume`],
      ["post", `${base}/{processor_name}/reset`],
    ];
    for (const [method, path] of expected) {
      expect(document.body.paths[path]?.[method]?.summary, `${method} ${path}`).toEqual(expect.any(String));
    }
  });

  test("deletes a processor; it is gone afterwards", async () => {
    const source = await api.createTopic("proc-del");
    const name = uniqueTopic("proc-del");
    expect((await api.send("POST", processors(), { name, topics: [source], handler: webhook })).status).toBe(
      201,
    );
    expect((await api.send("DELETE", `${processors()}/${name}`)).status).toBe(204);
    expect((await api.call(`${processors()}/${name}`)).status).toBe(404);
    const again = await api.send("DELETE", `${processors()}/${name}`);
    expect(again.status).toBe(404);
    expect(again.body.message).toBe(`processor not found: ${name}`);
    expect((await api.send("POST", `${processors()}/${name}/pause`)).status).toBe(404);
  });
}
