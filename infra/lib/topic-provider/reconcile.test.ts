import { describe, expect, it } from "vitest";
import {
  type ApiResponse,
  type CallApi,
  onTopicEvent,
  type TopicEvent,
  type TopicResourceProperties,
} from "./reconcile.js";

interface FakeTopic {
  partitions_count: number;
  configs: Map<string, string>;
}

/** The admin routes of the HTTP apps, in memory, recording every call. */
function fakeApi(options: { alreadyExistsStatus?: 400 | 409 } = {}) {
  const topics = new Map<string, FakeTopic>();
  const calls: string[] = [];
  const callApi: CallApi = async (method, path, body): Promise<ApiResponse> => {
    calls.push(`${method} ${path}`);
    const match = /^\/v3\/clusters\/([^/]+)\/topics(?:\/([^/]+?)(\/partitions|\/configs:alter)?)?$/.exec(
      path,
    );
    if (!match) return { status: 404, body: { error_code: 404, message: "no route" } };
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const topic = name === undefined ? undefined : topics.get(name);
    const input = body as Record<string, unknown> | undefined;
    if (method === "POST" && name === undefined) {
      const topicName = String(input?.topic_name);
      if (topics.has(topicName)) {
        return options.alreadyExistsStatus === 409
          ? { status: 409, body: { error_code: 409, message: `topic ${topicName} exists` } }
          : { status: 400, body: { error_code: 40002, message: `Topic '${topicName}' already exists.` } };
      }
      const configs = ((input?.configs ?? []) as { name: string; value: string }[]).map(
        (c) => [c.name, c.value] as const,
      );
      topics.set(topicName, { partitions_count: Number(input?.partitions_count), configs: new Map(configs) });
      return { status: 201, body: { topic_name: topicName } };
    }
    if (!topic || name === undefined)
      return { status: 404, body: { error_code: 40403, message: "unknown topic" } };
    if (method === "GET" && !match[3]) {
      return { status: 200, body: { topic_name: name, partitions_count: topic.partitions_count } };
    }
    if (method === "DELETE" && !match[3]) {
      topics.delete(name);
      return { status: 204, body: undefined };
    }
    if (method === "PATCH" && match[3] === "/partitions") {
      topic.partitions_count = Number(input?.partitions_count);
      return { status: 200, body: {} };
    }
    if (method === "POST" && match[3] === "/configs:alter") {
      for (const entry of (input?.data ?? []) as { name: string; value?: string; operation?: string }[]) {
        if (entry.operation === "DELETE") topic.configs.delete(entry.name);
        else topic.configs.set(entry.name, entry.value ?? "");
      }
      return { status: 204, body: undefined };
    }
    return { status: 405, body: { error_code: 405, message: "method not allowed" } };
  };
  return { topics, calls, callApi };
}

function props(overrides: Partial<TopicResourceProperties> = {}): TopicResourceProperties {
  // CloudFormation delivers primitives as strings.
  return { ClusterId: "c1", TopicName: "orders", PartitionsCount: "3", Configs: [], ...overrides };
}

function event(
  requestType: TopicEvent["RequestType"],
  properties: TopicResourceProperties,
  extra: Partial<TopicEvent> = {},
): TopicEvent {
  return { RequestType: requestType, ResourceProperties: properties, ...extra };
}

describe("the topic provider's logic", () => {
  it("creates a topic through POST /v3/clusters/{cluster}/topics and names it cluster/topic", async () => {
    const api = fakeApi();
    const result = await onTopicEvent(
      event("Create", props({ Configs: [{ name: "retention.ms", value: "1000" }] })),
      api.callApi,
    );
    expect(api.calls).toEqual(["POST /v3/clusters/c1/topics"]);
    expect(result).toEqual({
      physicalResourceId: "c1/orders",
      data: { ClusterId: "c1", TopicName: "orders", PartitionsCount: "3" },
    });
    expect(api.topics.get("orders")).toEqual({
      partitions_count: 3,
      configs: new Map([["retention.ms", "1000"]]),
    });
  });

  it.each([400, 409] as const)(
    "adopts a topic that exists already (answered %i) and brings it to shape",
    async (status) => {
      const api = fakeApi({ alreadyExistsStatus: status });
      api.topics.set("orders", { partitions_count: 1, configs: new Map([["retention.ms", "5"]]) });
      await onTopicEvent(
        event("Create", props({ Configs: [{ name: "retention.ms", value: "1000" }] })),
        api.callApi,
      );
      expect(api.topics.get("orders")).toEqual({
        partitions_count: 3,
        configs: new Map([["retention.ms", "1000"]]),
      });
    },
  );

  it("adds partitions and alters configs on update, resetting configs no longer declared", async () => {
    const api = fakeApi();
    const old = props({ Configs: [{ name: "cleanup.policy", value: "compact" }] });
    await onTopicEvent(event("Create", old), api.callApi);
    api.calls.length = 0;
    const next = props({ PartitionsCount: "5", Configs: [{ name: "retention.ms", value: "1000" }] });
    await onTopicEvent(
      event("Update", next, { PhysicalResourceId: "c1/orders", OldResourceProperties: old }),
      api.callApi,
    );
    expect(api.calls).toEqual([
      "GET /v3/clusters/c1/topics/orders",
      "PATCH /v3/clusters/c1/topics/orders/partitions",
      "POST /v3/clusters/c1/topics/orders/configs:alter",
    ]);
    expect(api.topics.get("orders")).toEqual({
      partitions_count: 5,
      configs: new Map([["retention.ms", "1000"]]),
    });
  });

  it("calls nothing but GET when an update changes nothing the topic holds", async () => {
    const api = fakeApi();
    await onTopicEvent(event("Create", props()), api.callApi);
    api.calls.length = 0;
    await onTopicEvent(
      event("Update", props(), { PhysicalResourceId: "c1/orders", OldResourceProperties: props() }),
      api.callApi,
    );
    expect(api.calls).toEqual(["GET /v3/clusters/c1/topics/orders"]);
  });

  it("refuses to remove partitions", async () => {
    const api = fakeApi();
    await onTopicEvent(event("Create", props({ PartitionsCount: "6" })), api.callApi);
    const update = event("Update", props({ PartitionsCount: "2" }), {
      PhysicalResourceId: "c1/orders",
      OldResourceProperties: props({ PartitionsCount: "6" }),
    });
    await expect(onTopicEvent(update, api.callApi)).rejects.toThrow(/never removed.*current=6 declared=2/);
    expect(api.topics.get("orders")?.partitions_count).toBe(6);
  });

  it("re-creates a declared topic that was deleted behind the stack's back", async () => {
    const api = fakeApi();
    await onTopicEvent(
      event("Update", props(), { PhysicalResourceId: "c1/orders", OldResourceProperties: props() }),
      api.callApi,
    );
    expect(api.topics.get("orders")?.partitions_count).toBe(3);
  });

  it("creates a new topic when the name changes (CloudFormation then deletes or retains the old one)", async () => {
    const api = fakeApi();
    await onTopicEvent(event("Create", props()), api.callApi);
    const renamed = props({ TopicName: "orders-v2" });
    const result = await onTopicEvent(
      event("Update", renamed, { PhysicalResourceId: "c1/orders", OldResourceProperties: props() }),
      api.callApi,
    );
    expect(result.physicalResourceId).toBe("c1/orders-v2");
    expect([...api.topics.keys()].sort()).toEqual(["orders", "orders-v2"]);
  });

  it("deletes through DELETE, and treats an already missing topic as deleted", async () => {
    const api = fakeApi();
    await onTopicEvent(event("Create", props()), api.callApi);
    await onTopicEvent(event("Delete", props(), { PhysicalResourceId: "c1/orders" }), api.callApi);
    expect(api.topics.has("orders")).toBe(false);
    await onTopicEvent(event("Delete", props(), { PhysicalResourceId: "c1/orders" }), api.callApi);
  });

  it("deletes nothing for a resource whose create failed", async () => {
    const api = fakeApi();
    api.topics.set("orders", { partitions_count: 1, configs: new Map() });
    await onTopicEvent(event("Delete", props(), { PhysicalResourceId: "failed-request-1" }), api.callApi);
    expect(api.calls).toEqual([]);
    expect(api.topics.has("orders")).toBe(true);
  });

  it("reports the API's refusal with the status and message", async () => {
    const refusing: CallApi = async () => ({
      status: 400,
      body: { error_code: 40002, message: "bad config x" },
    });
    await expect(onTopicEvent(event("Create", props()), refusing)).rejects.toThrow(
      "create topic failed: cluster=c1 topic=orders status=400 message=bad config x",
    );
  });

  it("rejects properties that are not a topic", async () => {
    const api = fakeApi();
    await expect(onTopicEvent(event("Create", props({ PartitionsCount: "0" })), api.callApi)).rejects.toThrow(
      /PartitionsCount/,
    );
    await expect(onTopicEvent(event("Create", props({ TopicName: "" })), api.callApi)).rejects.toThrow(
      /TopicName/,
    );
    expect(api.calls).toEqual([]);
  });
});
