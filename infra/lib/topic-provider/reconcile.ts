/**
 * The topic custom resource's logic, kept apart from Lambda and CloudFormation plumbing so it can
 * be tested with a fake API. It owns no engine logic: every change goes through the HTTP apps'
 * Confluent REST v3 admin routes, so a declared topic is validated and created exactly as a
 * `POST /v3/clusters/{cluster_id}/topics` from any client would be.
 */

export interface TopicConfig {
  name: string;
  value: string;
}

/** The custom resource's properties as CloudFormation delivers them: primitives arrive as strings. */
export interface TopicResourceProperties {
  ClusterId: string;
  TopicName: string;
  PartitionsCount: string | number;
  Configs?: TopicConfig[];
}

export interface TopicEvent {
  RequestType: "Create" | "Update" | "Delete";
  PhysicalResourceId?: string;
  ResourceProperties: TopicResourceProperties;
  OldResourceProperties?: TopicResourceProperties;
}

export interface TopicResult {
  physicalResourceId: string;
  data: { ClusterId: string; TopicName: string; PartitionsCount: string };
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** Calls one route of the HTTP apps; `path` starts with `/v3/`. */
export type CallApi = (
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
) => Promise<ApiResponse>;

interface DesiredTopic {
  clusterId: string;
  topicName: string;
  partitionsCount: number;
  configs: TopicConfig[];
}

export class TopicProviderError extends Error {
  override readonly name = "TopicProviderError";
}

export function physicalIdOf(topic: { clusterId: string; topicName: string }): string {
  return `${topic.clusterId}/${topic.topicName}`;
}

export async function onTopicEvent(event: TopicEvent, callApi: CallApi): Promise<TopicResult> {
  const desired = parseProperties(event.ResourceProperties);
  const physicalResourceId = physicalIdOf(desired);
  const result: TopicResult = {
    physicalResourceId,
    data: {
      ClusterId: desired.clusterId,
      TopicName: desired.topicName,
      PartitionsCount: String(desired.partitionsCount),
    },
  };
  switch (event.RequestType) {
    case "Create":
      await create(desired, callApi);
      return result;
    case "Update": {
      // A new cluster or topic name is a new resource: CloudFormation then deletes the old one,
      // unless its removal policy retains it.
      if (event.PhysicalResourceId !== physicalResourceId) {
        await create(desired, callApi);
        return result;
      }
      const old = event.OldResourceProperties ? parseProperties(event.OldResourceProperties) : undefined;
      await reconcile(desired, old, callApi);
      return result;
    }
    case "Delete":
      // A failed create reports another id; there is nothing to delete then.
      if (event.PhysicalResourceId === physicalResourceId) await remove(desired, callApi);
      return result;
  }
}

function parseProperties(props: TopicResourceProperties): DesiredTopic {
  const partitionsCount = Number(props.PartitionsCount);
  if (!props.ClusterId) throw new TopicProviderError("ClusterId is required");
  if (!props.TopicName) throw new TopicProviderError("TopicName is required");
  if (!Number.isInteger(partitionsCount) || partitionsCount < 1) {
    throw new TopicProviderError(
      `PartitionsCount must be a positive integer: value=${props.PartitionsCount}`,
    );
  }
  const configs = (props.Configs ?? []).map((c) => ({ name: String(c.name), value: String(c.value) }));
  return { clusterId: props.ClusterId, topicName: props.TopicName, partitionsCount, configs };
}

function topicsPath(topic: DesiredTopic): string {
  return `/v3/clusters/${encodeURIComponent(topic.clusterId)}/topics`;
}

function topicPath(topic: DesiredTopic): string {
  return `${topicsPath(topic)}/${encodeURIComponent(topic.topicName)}`;
}

async function create(topic: DesiredTopic, callApi: CallApi): Promise<void> {
  const response = await callApi("POST", topicsPath(topic), createBody(topic));
  if (isSuccess(response)) return;
  if (isAlreadyExists(response)) {
    // Adopt a topic that exists already (a retried create, or one retained by an earlier stack):
    // bring it to the declared shape instead of failing the deployment.
    await reconcile(topic, undefined, callApi);
    return;
  }
  throw apiError("create topic", topic, response);
}

function createBody(topic: DesiredTopic): object {
  return { topic_name: topic.topicName, partitions_count: topic.partitionsCount, configs: topic.configs };
}

async function reconcile(
  topic: DesiredTopic,
  old: DesiredTopic | undefined,
  callApi: CallApi,
): Promise<void> {
  const current = await callApi("GET", topicPath(topic));
  if (current.status === 404 && old !== undefined) {
    // Deleted behind the stack's back: a declared topic exists after every deploy.
    const created = await callApi("POST", topicsPath(topic), createBody(topic));
    if (!isSuccess(created)) throw apiError("create topic", topic, created);
    return;
  }
  if (!isSuccess(current)) throw apiError("describe topic", topic, current);
  const currentPartitions = partitionsCountOf(current.body) ?? old?.partitionsCount;
  if (currentPartitions !== undefined && topic.partitionsCount < currentPartitions) {
    throw new TopicProviderError(
      `partitions can only be added, never removed: topic=${topic.topicName} current=${currentPartitions} declared=${topic.partitionsCount}`,
    );
  }
  if (currentPartitions === undefined || topic.partitionsCount > currentPartitions) {
    const response = await callApi("PATCH", `${topicPath(topic)}/partitions`, {
      partitions_count: topic.partitionsCount,
    });
    if (!isSuccess(response)) throw apiError("add partitions", topic, response);
  }
  const declared = new Set(topic.configs.map((c) => c.name));
  const removed = (old?.configs ?? []).filter((c) => !declared.has(c.name));
  const changed = old === undefined || removed.length > 0 || !sameConfigs(topic.configs, old.configs);
  if (changed && (topic.configs.length > 0 || removed.length > 0)) {
    const response = await callApi("POST", `${topicPath(topic)}/configs:alter`, {
      data: [
        ...topic.configs.map((c) => ({ name: c.name, value: c.value })),
        // A config no longer declared goes back to its default.
        ...removed.map((c) => ({ name: c.name, operation: "DELETE" })),
      ],
    });
    if (!isSuccess(response)) throw apiError("alter configs", topic, response);
  }
}

async function remove(topic: DesiredTopic, callApi: CallApi): Promise<void> {
  const response = await callApi("DELETE", topicPath(topic));
  if (isSuccess(response) || response.status === 404) return;
  throw apiError("delete topic", topic, response);
}

function sameConfigs(a: TopicConfig[], b: TopicConfig[]): boolean {
  if (a.length !== b.length) return false;
  const values = new Map(b.map((c) => [c.name, c.value]));
  return a.every((c) => values.get(c.name) === c.value);
}

function isSuccess(response: ApiResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

function isAlreadyExists(response: ApiResponse): boolean {
  if (response.status === 409) return true;
  // Confluent REST Proxy answers 400 with error_code 40002 "Topic 'x' already exists."
  return response.status === 400 && /already exists/i.test(messageOf(response.body) ?? "");
}

function partitionsCountOf(body: unknown): number | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const value = (body as { partitions_count?: unknown }).partitions_count;
  return typeof value === "number" ? value : undefined;
}

function messageOf(body: unknown): string | undefined {
  if (typeof body === "string") return body;
  if (typeof body !== "object" || body === null) return undefined;
  const message = (body as { message?: unknown }).message;
  return typeof message === "string" ? message : undefined;
}

function apiError(action: string, topic: DesiredTopic, response: ApiResponse): TopicProviderError {
  const message = messageOf(response.body) ?? JSON.stringify(response.body);
  return new TopicProviderError(
    `${action} failed: cluster=${topic.clusterId} topic=${topic.topicName} status=${response.status} message=${message}`,
  );
}
