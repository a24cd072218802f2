import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { Api, Test } from "./http-suite.js";

// Share groups (queues): Sluice's own v3-style routes. Each case uses its own topics and group,
// so cases stay independent on a long-lived deployment.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

const SHARE_ROUTES: [string, string][] = [
  ["get", "/v3/clusters/{cluster_id}/share-groups"],
  ["get", "/v3/clusters/{cluster_id}/share-groups/{group_id}"],
  ["get", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members"],
  ["post", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members"],
  ["get", "/v3/clusters/{cluster_id}/share-groups/{group_id}/partitions"],
  ["post", "/v3/clusters/{cluster_id}/share-groups/{group_id}/start-offsets:reset"],
  ["post", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members/{member_id}/heartbeat"],
  ["delete", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members/{member_id}"],
  ["post", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members/{member_id}/records:acquire"],
  ["post", "/v3/clusters/{cluster_id}/share-groups/{group_id}/members/{member_id}/records:acknowledge"],
];

const uniqueGroup = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
const text = (value: string) => ({ type: "STRING", data: value });
const fromBase64 = (value: string) => Buffer.from(value, "base64").toString();

export function shareGroupCases(api: Api, test: Test): void {
  const groupPath = (group: string) => `${api.cluster()}/share-groups/${group}`;
  const memberPath = (group: string, member: string) => `${groupPath(group)}/members/${member}`;

  async function join(group: string, member: string, topics: string[], configs: Record<string, string> = {}) {
    const response = await api.send("POST", `${groupPath(group)}/members`, {
      member_id: member,
      topic_names: topics,
      configs: Object.entries({ "auto.offset.reset": "earliest", ...configs }).map(([name, value]) => ({
        name,
        value,
      })),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  async function acquire(group: string, member: string, body: Json = {}): Promise<Json> {
    const response = await api.send("POST", `${memberPath(group, member)}/records:acquire`, {
      value_type: "STRING",
      ...body,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  async function acknowledge(group: string, member: string, acknowledgements: Json[]): Promise<Json[]> {
    const response = await api.send("POST", `${memberPath(group, member)}/records:acknowledge`, {
      acknowledgements,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.data;
  }

  async function produceValues(topic: string, partition: number, values: string[]): Promise<void> {
    for (const value of values) await api.produce(topic, { partition_id: partition, value: text(value) });
  }

  test("share groups: three members split a topic's records, each record to one of them, and acknowledged ones never come back", async () => {
    const topic = await api.createTopic("queue", 2);
    const group = uniqueGroup("workers");
    const joined = await join(group, "w1", [topic]);
    expect(joined).toMatchObject({
      share_group_id: group,
      member_id: "w1",
      topic_names: [topic],
      group_created: true,
      session_timeout_ms: 45_000,
    });
    expect(joined.configs).toEqual(
      expect.arrayContaining([
        { name: "delivery.count.limit", value: "5" },
        { name: "record.lock.duration.ms", value: "30000" },
        { name: "auto.offset.reset", value: "earliest" },
        { name: "dead.letter.topic.name", value: "" },
      ]),
    );
    expect((await join(group, "w2", [topic])).group_created).toBe(false);
    await join(group, "w3", [topic]);
    await produceValues(topic, 0, ["a", "b", "c"]);
    await produceValues(topic, 1, ["d", "e", "f"]);

    const seen: Json[] = [];
    for (const member of ["w1", "w2", "w3"]) {
      const answer = await acquire(group, member, { max_records: 2 });
      expect(answer.records).toHaveLength(2);
      for (const record of answer.records) {
        expect(record).toMatchObject({ topic_name: topic, delivery_count: 1, value: { type: "STRING" } });
        expect(record.lock_remaining_ms).toBeGreaterThan(20_000);
        expect(record.lock_remaining_ms).toBeLessThanOrEqual(30_000);
        seen.push({ member, ...record });
      }
      expect(answer.session_remaining_ms).toBeGreaterThan(0);
    }
    expect(seen.map((record) => record.value.data).sort()).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(await acquire(group, "w1")).toMatchObject({ records: [] });

    const members = await api.call(`${groupPath(group)}/members`);
    expect(members.status).toBe(200);
    expect(members.body.kind).toBe("KafkaShareGroupMemberList");
    expect(members.body.data.map((member: Json) => [member.member_id, member.acquired_records])).toEqual([
      ["w1", 2],
      ["w2", 2],
      ["w3", 2],
    ]);

    for (const member of ["w1", "w2", "w3"]) {
      const mine = seen.filter((record) => record.member === member);
      const results = await acknowledge(
        group,
        member,
        mine.map((record) => ({
          topic_name: topic,
          partition_id: record.partition_id,
          offsets: [record.offset],
          type: "ACCEPT",
        })),
      );
      expect(results.every((result: Json) => result.acknowledged && result.code === null)).toBe(true);
    }
    // The next poll finds nothing (and tidies the settled windows away).
    expect((await acquire(group, "w2")).records).toEqual([]);
    const partitions = await api.call(`${groupPath(group)}/partitions`);
    expect(partitions.status).toBe(200);
    expect(
      partitions.body.data.map((partition: Json) => [
        partition.partition_id,
        partition.start_offset,
        partition.end_offset,
        partition.high_watermark,
        partition.lag,
      ]),
    ).toEqual([
      [0, 3, 3, 3, 0],
      [1, 3, 3, 3, 0],
    ]);
    const described = await api.call(groupPath(group));
    expect(described.status).toBe(200);
    expect(described.body).toMatchObject({
      kind: "KafkaShareGroup",
      share_group_id: group,
      state: "STABLE",
      member_count: 3,
      topic_names: [topic],
    });
    expect(described.body.members.related).toMatch(new RegExp(`/share-groups/${group}/members$`));
    const listed = await api.call(`${api.cluster()}/share-groups`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((entry: Json) => entry.share_group_id)).toContain(group);
  });

  test("share groups: acknowledgements ride on an acquire; a release comes back with its count raised; rejected and exhausted records go to the dead-letter topic with headers naming their origin", async () => {
    const topic = await api.createTopic("queue-dl", 1);
    const deadLetters = await api.createTopic("queue-dl-dead", 1);
    const group = uniqueGroup("dl");
    await join(group, "w", [topic], { "delivery.count.limit": "2", "dead.letter.topic.name": deadLetters });
    await produceValues(topic, 0, ["poison", "bad", "good"]);
    const first = await acquire(group, "w", { max_records: 3 });
    expect(first.records.map((record: Json) => record.offset)).toEqual([0, 1, 2]);
    const second = await acquire(group, "w", {
      acknowledgements: [
        { topic_name: topic, partition_id: 0, offsets: [0], type: "RELEASE" },
        { topic_name: topic, partition_id: 0, offsets: [1], type: "REJECT" },
        { topic_name: topic, partition_id: 0, offsets: [2], type: "ACCEPT" },
      ],
    });
    expect(
      second.acknowledgements.map((result: Json) => [result.offset, result.type, result.acknowledged]),
    ).toEqual([
      [0, "RELEASE", true],
      [1, "REJECT", true],
      [2, "ACCEPT", true],
    ]);
    expect(second.records.map((record: Json) => [record.offset, record.delivery_count])).toEqual([[0, 2]]);
    // Its second delivery was its last: released again, it is archived and dead-lettered.
    const third = await acquire(group, "w", {
      acknowledgements: [{ topic_name: topic, partition_id: 0, offsets: [0], type: "RELEASE" }],
    });
    expect(third.records).toEqual([]);
    const dead = await api.read(deadLetters, 0, "offset=0&value_type=STRING");
    expect(dead.status).toBe(200);
    const letters = dead.body.records.map((record: Json) => {
      const headers = Object.fromEntries(
        record.headers.map((header: Json) => [header.name, fromBase64(header.value)]),
      );
      return { value: record.value.data, ...headers };
    });
    expect(
      letters.sort((a: Json, b: Json) => Number(a["sluice.dlq.offset"]) - Number(b["sluice.dlq.offset"])),
    ).toEqual([
      {
        value: "poison",
        "sluice.dlq.group": group,
        "sluice.dlq.topic": topic,
        "sluice.dlq.partition": "0",
        "sluice.dlq.offset": "0",
        "sluice.dlq.delivery.count": "2",
        "sluice.dlq.reason": "delivery-count-limit",
      },
      {
        value: "bad",
        "sluice.dlq.group": group,
        "sluice.dlq.topic": topic,
        "sluice.dlq.partition": "0",
        "sluice.dlq.offset": "1",
        "sluice.dlq.delivery.count": "1",
        "sluice.dlq.reason": "rejected",
      },
    ]);
    const partitions = await api.call(`${groupPath(group)}/partitions`);
    expect(partitions.body.data[0]).toMatchObject({
      start_offset: 3,
      end_offset: 3,
      lag: 0,
      dead_letters_due: 0,
    });
  });

  test("share groups: an acknowledgement is refused, saying why, unless the member holds the record; RENEW answers the new lock", async () => {
    const topic = await api.createTopic("queue-refuse", 1);
    const group = uniqueGroup("refuse");
    await join(group, "a", [topic]);
    await join(group, "b", [topic]);
    await produceValues(topic, 0, ["x", "y"]);
    const held = await acquire(group, "a", { max_records: 1 });
    expect(held.records.map((record: Json) => record.offset)).toEqual([0]);
    const results = await acknowledge(group, "b", [
      { topic_name: topic, partition_id: 0, offsets: [0], type: "ACCEPT" },
      { topic_name: topic, partition_id: 0, offsets: [1, 7], type: "REJECT" },
      { topic_name: topic, partition_id: 9, offsets: [0], type: "ACCEPT" },
    ]);
    expect(results.map((result: Json) => [result.offset, result.acknowledged, result.code])).toEqual([
      [0, false, "INVALID_RECORD_STATE"],
      [1, false, "INVALID_RECORD_STATE"],
      [7, false, "INVALID_RECORD_STATE"],
      [0, false, "UNKNOWN_TOPIC_OR_PARTITION"],
    ]);
    expect(results[0].message).toMatch(/acquired by another member/);
    expect(results[1].message).toMatch(/never handed out/);
    const renewed = await acknowledge(group, "a", [
      { topic_name: topic, partition_id: 0, offsets: [0], type: "RENEW" },
    ]);
    expect(renewed[0]).toMatchObject({ acknowledged: true, type: "RENEW" });
    expect(renewed[0].lock_remaining_ms).toBeGreaterThan(20_000);
    // Accepting twice (a retry after a lost answer) is accepted twice.
    for (let attempt = 0; attempt < 2; attempt++) {
      const accepted = await acknowledge(group, "a", [
        { topic_name: topic, partition_id: 0, offsets: [0], type: "ACCEPT" },
      ]);
      expect(accepted[0].acknowledged).toBe(true);
    }
  });

  test("share groups: an acquire with timeout_ms waits for a record produced meanwhile", async () => {
    const topic = await api.createTopic("queue-wait", 1);
    const group = uniqueGroup("wait");
    await join(group, "w", [topic]);
    const waiting = acquire(group, "w", { timeout_ms: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await produceValues(topic, 0, ["late"]);
    const answer = await waiting;
    expect(answer.records.map((record: Json) => record.value.data)).toEqual(["late"]);
  });

  test("share groups: leaving releases the member's records; the start offset resets only while the group is empty, as a dry run unless told", async () => {
    const topic = await api.createTopic("queue-reset", 1);
    const group = uniqueGroup("reset");
    await join(group, "a", [topic]);
    await join(group, "b", [topic]);
    await produceValues(topic, 0, ["1", "2", "3"]);
    expect((await acquire(group, "a", { max_records: 3 })).records).toHaveLength(3);
    const gone = await api.send("DELETE", memberPath(group, "a"));
    expect(gone.status).toBe(204);
    const taken = await acquire(group, "b", { max_records: 3 });
    expect(taken.records.map((record: Json) => [record.offset, record.delivery_count])).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    const refused = await api.send("POST", `${groupPath(group)}/start-offsets:reset`, {
      to: "latest",
      dry_run: false,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("NON_EMPTY_GROUP");
    expect((await api.send("DELETE", memberPath(group, "b"))).status).toBe(204);
    const plan = await api.send("POST", `${groupPath(group)}/start-offsets:reset`, {
      to: "offset",
      offset: 2,
    });
    expect(plan.status).toBe(200);
    expect(plan.body).toEqual({
      dry_run: true,
      data: [{ topic_name: topic, partition_id: 0, previous_start_offset: 0, new_start_offset: 2 }],
    });
    const applied = await api.send("POST", `${groupPath(group)}/start-offsets:reset`, {
      to: "offset",
      offset: 2,
      dry_run: false,
    });
    expect(applied.status).toBe(200);
    await join(group, "c", [topic]);
    const after = await acquire(group, "c", { max_records: 5 });
    expect(after.records.map((record: Json) => [record.offset, record.delivery_count])).toEqual([[2, 1]]);
    expect((await api.call(groupPath(group))).body.state).toBe("STABLE");
  });

  test("share groups: bad input and unknown names are clear 4xx and write nothing", async () => {
    const topic = await api.createTopic("queue-bad", 1);
    const group = uniqueGroup("bad");
    await join(group, "w", [topic], { "delivery.count.limit": "3" });
    const cases: [string, string, Json, number, RegExp | string][] = [
      [
        "POST",
        `${groupPath(group)}/members`,
        { topic_names: [topic], configs: [{ name: "delivery.count.limit", value: "4" }] },
        409,
        "INVALID_CONFIG",
      ],
      [
        "POST",
        `${groupPath(uniqueGroup("x"))}/members`,
        { topic_names: [topic], configs: [{ name: "delivery.count.limit", value: "0" }] },
        400,
        /configs.0.value: must be an integer from 1 to 100/,
      ],
      [
        "POST",
        `${groupPath(uniqueGroup("x"))}/members`,
        { topic_names: [topic], configs: [{ name: "max.poll", value: "1" }] },
        400,
        /configs.0/,
      ],
      [
        "POST",
        `${groupPath(uniqueGroup("x"))}/members`,
        { topic_names: ["no-such-topic-here"] },
        404,
        /no-such-topic-here/,
      ],
      ["POST", `${groupPath(group)}/members`, { topic_names: [] }, 400, /topic_names/],
      ["POST", `${memberPath(group, "stranger")}/records:acquire`, {}, 409, "UNKNOWN_MEMBER_ID"],
      ["POST", `${memberPath(uniqueGroup("none"), "w")}/records:acquire`, {}, 404, "GROUP_ID_NOT_FOUND"],
      ["POST", `${memberPath(group, "w")}/records:acquire`, { timeout_ms: 9_999_999 }, 400, /timeout_ms/],
      ["POST", `${memberPath(group, "w")}/records:acquire`, { max_records: 0 }, 400, /max_records/],
      [
        "POST",
        `${memberPath(group, "w")}/records:acknowledge`,
        { acknowledgements: [{ topic_name: topic, partition_id: 0, offsets: [1, 1], type: "ACCEPT" }] },
        400,
        /offsets must be unique/,
      ],
      [
        "POST",
        `${memberPath(group, "w")}/records:acknowledge`,
        {
          acknowledgements: [
            { topic_name: topic, partition_id: 0, offsets: [1], type: "ACCEPT" },
            { topic_name: topic, partition_id: 0, offsets: [1], type: "RELEASE" },
          ],
        },
        400,
        /acknowledged twice/,
      ],
      [
        "POST",
        `${memberPath(group, "w")}/records:acknowledge`,
        { acknowledgements: [{ topic_name: topic, partition_id: 0, offsets: [1], type: "MAYBE" }] },
        400,
        /type/,
      ],
      ["POST", `${memberPath(group, "w")}/heartbeat`, undefined, 200, ""],
      ["POST", `${memberPath(group, "ghost")}/heartbeat`, undefined, 409, "UNKNOWN_MEMBER_ID"],
      ["POST", `${groupPath(group)}/start-offsets:reset`, { to: "sideways" }, 400, /to/],
    ];
    for (const [method, path, body, status, expected] of cases) {
      const response = await api.expectNoWrites(() => api.send(method, path, body));
      expect(
        response.status,
        `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`,
      ).toBe(status);
      if (expected instanceof RegExp) expect(response.body.message).toMatch(expected);
      else if (expected !== "") expect(response.body.code).toBe(expected);
    }
  });

  test("share groups: every route is in the OpenAPI document", async () => {
    const response = await api.call("/openapi.json");
    expect(response.status).toBe(200);
    for (const [method, path] of SHARE_ROUTES) {
      expect(response.body.paths[path]?.[method]?.summary, `${method} ${path}`).toEqual(expect.any(String));
    }
    expect(response.body.components.schemas).toHaveProperty("ShareAcquireResponse");
  });
}
