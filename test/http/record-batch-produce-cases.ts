import { type Compression, crc32c, encodeRecordBatch } from "@sluice/core";
import { type KafkajsMessage, kafkajsBatch, kafkajsBatches } from "@sluice/testing";
import { expect } from "vitest";
import type { Api, Test } from "./http-suite.js";

/**
 * The binary produce route (`POST …/record-batches`, docs/http-api.md "Producing record batches"):
 * batches as kafkajs encodes them, for every codec, stored as sent; idempotent producers from the
 * batch header; and bad input, each a 4xx naming the problem with nothing written.
 */
const RECORD_BATCH = "application/vnd.kafka.record-batch.v2";
const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

const messages = (prefix: string, count: number): KafkajsMessage[] =>
  Array.from({ length: count }, (_, i) => ({
    key: `${prefix}-k${i}`,
    value: `${prefix}-v${i}`,
    headers: { n: String(i) },
    timestamp: 1_714_564_800_000 + i,
  }));

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

function withCrc(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(17, crc32c(bytes.subarray(21)));
  return bytes;
}

export function produceRecordBatchCases(api: Api, test: Test): void {
  const path = (topic: string) => `${api.topicPath(topic)}/record-batches`;

  async function post(topic: string, body: Uint8Array, headers: Record<string, string>) {
    const response = await api.raw(path(topic), {
      method: "POST",
      headers: { "content-type": RECORD_BATCH, ...headers },
      body,
    });
    const answer = await response.text();
    return { status: response.status, body: answer.length > 0 ? JSON.parse(answer) : undefined };
  }

  async function values(topic: string, partition: number): Promise<[number, string | null][]> {
    const response = await api.read(topic, partition, "offset=0&value_type=STRING");
    expect(response.status).toBe(200);
    return response.body.records.map((record: { offset: number; value: { data: string } | null }) => [
      record.offset,
      record.value?.data ?? null,
    ]);
  }

  test("record batches as kafkajs encodes them, every codec, are stored as sent", async () => {
    const name = await api.createTopic("batches-codecs", 5);
    for (const [partition, compression] of CODECS.entries()) {
      const batch = await kafkajsBatch(messages(compression, 3), { compression });
      const { status, body } = await post(name, batch, { "sluice-partitions": String(partition) });
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body).toEqual({
        cluster_id: api.options.clusterId(),
        topic_name: name,
        batches: [{ partition_id: partition, base_offset: 0, record_count: 3, duplicate: false }],
      });
      expect(await values(name, partition)).toEqual([
        [0, `${compression}-v0`],
        [1, `${compression}-v1`],
        [2, `${compression}-v2`],
      ]);
      // The binary read answers the very bytes sent, compressed as they were, offsets patched.
      const read = await api.raw(`${api.topicPath(name)}/partitions/${partition}/records?offset=0`, {
        headers: { accept: RECORD_BATCH },
      });
      const stored = new Uint8Array(await read.arrayBuffer());
      expect(stored.subarray(8)).toEqual(batch.subarray(8));
    }
  });

  test("one request carries batches for several partitions; offsets continue per partition", async () => {
    const name = await api.createTopic("batches-partitions", 3);
    const first = await kafkajsBatches([
      { partition: 2, messages: messages("a", 2) },
      { partition: 0, messages: messages("b", 1) },
    ]);
    const one = await post(name, concat(...first), { "sluice-partitions": "2,0" });
    expect(one.status).toBe(200);
    const second = await kafkajsBatches(
      [
        { partition: 0, messages: messages("c", 2) },
        { partition: 2, messages: messages("d", 1) },
      ],
      { compression: "gzip" },
    );
    const two = await post(name, concat(...second), { "sluice-partitions": "0,2" });
    expect(two.body.batches).toEqual([
      { partition_id: 0, base_offset: 1, record_count: 2, duplicate: false },
      { partition_id: 2, base_offset: 2, record_count: 1, duplicate: false },
    ]);
    expect(await values(name, 0)).toEqual([
      [0, "b-v0"],
      [1, "c-v0"],
      [2, "c-v1"],
    ]);
    expect(await values(name, 2)).toEqual([
      [0, "a-v0"],
      [1, "a-v1"],
      [2, "d-v0"],
    ]);
  });

  test("an idempotent producer's retried batch is answered with its original offsets", async () => {
    const name = await api.createTopic("batches-idempotent", 2);
    const init = await api.send("POST", `${api.cluster()}/producers`);
    expect(init.status).toBe(200);
    const { producer_id: producerId, producer_epoch: producerEpoch } = init.body;
    const batches = await kafkajsBatches(
      [
        { partition: 0, messages: messages("x", 2), firstSequence: 0 },
        { partition: 1, messages: messages("y", 3), firstSequence: 0 },
      ],
      { producerId, producerEpoch, compression: "lz4" },
    );
    const body = concat(...batches);
    const first = await post(name, body, { "sluice-partitions": "0,1" });
    expect(first.status).toBe(200);
    const { result: again, delta } = await api.countWrites(() =>
      post(name, body, { "sluice-partitions": "0,1" }),
    );
    expect(again.status).toBe(200);
    expect(again.body.batches).toEqual([
      { partition_id: 0, base_offset: 0, record_count: 2, duplicate: true },
      { partition_id: 1, base_offset: 0, record_count: 3, duplicate: true },
    ]);
    // The retry's upload happens before the commit can tell; the commit writes nothing.
    if (delta) expect(delta.metadataWrites).toBe(1);
    expect(await api.latestOffset(name, 0)).toBe(2);
    expect(await api.latestOffset(name, 1)).toBe(3);
    const gap = await kafkajsBatch(messages("z", 1), { producerId, producerEpoch, firstSequence: 9 });
    // A gap shows only at the commit: its upload is garbage, and no offset moves.
    const refused = await post(name, gap, { "sluice-partitions": "0" });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: "OUT_OF_ORDER_SEQUENCE" });
    expect(await api.latestOffset(name, 0)).toBe(2);
  });

  test("the same Idempotency-Key and bytes again write nothing", async () => {
    const name = await api.createTopic("batches-key");
    const batch = await kafkajsBatch(messages("k", 2));
    const headers = { "sluice-partitions": "0", "idempotency-key": "batches-key-1" };
    expect((await post(name, batch, headers)).status).toBe(200);
    const again = await api.expectNoWrites(() => post(name, batch, headers));
    expect(again.body.batches[0]).toMatchObject({ base_offset: 0, duplicate: true });
    expect(await api.latestOffset(name, 0)).toBe(2);
  });

  const good = () => kafkajsBatch(messages("g", 3));
  const badInput: [
    string,
    (topic: string) => Promise<{ body: Uint8Array; headers?: Record<string, string> }>,
    number,
    RegExp,
  ][] = [
    [
      "a bad CRC",
      async () => {
        const body = await good();
        body[body.length - 2] = body[body.length - 2]! ^ 0x01;
        return { body };
      },
      400,
      /batch 0 \(partition 0\) failed its CRC-32C check/,
    ],
    [
      "a bad magic byte",
      async () => {
        const body = await good();
        body[16] = 0;
        return { body };
      },
      400,
      /batch 0 \(partition 0\) has magic 0; only RecordBatch v2/,
    ],
    [
      "a truncated batch",
      async () => ({ body: (await good()).subarray(0, 80) }),
      400,
      /only 80 remain in the body \(truncated\)/,
    ],
    [
      "a record count that lies",
      async () => {
        const body = await good();
        const view = new DataView(body.buffer, body.byteOffset);
        view.setInt32(57, 2);
        view.setInt32(23, 1);
        return { body: withCrc(body) };
      },
      400,
      /left over after its 2 records \(its record count is wrong\)/,
    ],
    [
      "a record over max.message.bytes",
      async () => ({ body: await kafkajsBatch([{ value: "x".repeat(1_100) }], { compression: "zstd" }) }),
      413,
      /record 0 is 1100 bytes .* over the topic's max.message.bytes of 1000/,
    ],
    [
      "an idempotent producer id with a negative sequence",
      async () => ({
        body: await encodeRecordBatch([{ key: null, value: null, timestamp: 1 }], {
          compression: "none",
          producerId: 1,
          producerEpoch: 0,
          baseSequence: -1,
        }),
      }),
      400,
      /has producerId 1 but baseSequence -1/,
    ],
    [
      "more batches than partitions named",
      async () => ({ body: concat(await good(), await good()) }),
      400,
      /the body holds more than the 1 record batch named/,
    ],
    [
      "no Sluice-Partitions header",
      async () => ({ body: await good(), headers: { "sluice-partitions": "" } }),
      400,
      /sluice-partitions/i,
    ],
    [
      "a partition the topic does not have",
      async () => ({ body: await good(), headers: { "sluice-partitions": "7" } }),
      404,
      /partition 7 does not exist/,
    ],
    [
      "Sluice-Producer headers beside a batch",
      async () => ({ body: await good(), headers: { "sluice-producer-id": "1" } }),
      400,
      /sluice-producer-id does not apply here/,
    ],
    [
      "a JSON content type",
      async () => ({ body: await good(), headers: { "content-type": "application/json" } }),
      415,
      /unsupported Content-Type "application\/json": send application\/vnd.kafka.record-batch.v2/,
    ],
    ["an empty body", async () => ({ body: new Uint8Array(0) }), 400, /the body is empty/],
  ];
  for (const [title, build, status, message] of badInput) {
    test(`record batches: ${title} is ${status} with nothing written`, async () => {
      const name = await api.createTopic("batches-bad", 1, { "max.message.bytes": "1000" });
      const { body, headers } = await build(name);
      const response = await api.expectNoWrites(() =>
        post(name, body, { "sluice-partitions": "0", ...headers }),
      );
      expect(response.status, JSON.stringify(response.body)).toBe(status);
      expect(response.body.error_code).toBe(status);
      expect(response.body.message).toMatch(message);
      expect(await api.latestOffset(name, 0)).toBe(0);
    });
  }

  test("record batches: an unknown topic is 404", async () => {
    const response = await post("no-such-topic-for-batches", await good(), { "sluice-partitions": "0" });
    expect(response.status).toBe(404);
    expect(response.body.message).toMatch(/no-such-topic-for-batches/);
  });

  test("the OpenAPI document describes the record-batch produce route and its media type", async () => {
    const response = await api.call("/openapi.json");
    const operation =
      response.body.paths["/v3/clusters/{cluster_id}/topics/{topic_name}/record-batches"].post;
    expect(Object.keys(operation.requestBody.content)).toEqual([RECORD_BATCH]);
    expect(operation.parameters.map((parameter: { name: string }) => parameter.name)).toEqual(
      expect.arrayContaining(["sluice-partitions", "idempotency-key"]),
    );
    expect(Object.keys(operation.responses)).toEqual(
      expect.arrayContaining(["200", "400", "404", "409", "413", "415"]),
    );
  });
}
