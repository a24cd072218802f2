import type { Topic } from "@sluice/engine";
import type { TopicActivity } from "@sluice/telemetry";
import type { Context } from "hono";
import { partitionActivity, topicActivity } from "./activity.js";
import type { AppContext } from "./context.js";

/**
 * Confluent REST v3 resource shapes. `self` and `related` links are absolute URLs, as Confluent's
 * proxy writes them, on the deployment's public URL (see `baseUrlFor`).
 */
export function clusterPath(clusterId: string): string {
  return `/v3/clusters/${encodeURIComponent(clusterId)}`;
}

export function topicPath(clusterId: string, topic: string): string {
  return `${clusterPath(clusterId)}/topics/${encodeURIComponent(topic)}`;
}

/** A host name or address with an optional port, and nothing else (no user info, no path). */
const HOST_AND_PORT =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * Checks a configured public URL (`createApp({ publicUrl })`): http or https, no query or
 * fragment; a path is kept as a prefix (a proxy serving the API under `/sluice`). Returned without
 * a trailing slash.
 */
export function normalisePublicUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`invalid public URL ${JSON.stringify(text)}: expected e.g. https://sluice.example.com`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || url.username) {
    throw new Error(
      `invalid public URL ${JSON.stringify(text)}: expected http(s)://host[:port][/path], without credentials, query or fragment`,
    );
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/**
 * What links start with. A configured public URL always wins: the Host header is the client's to
 * choose, and echoing it lets anyone who can reach the server behind a proxy plant links to a host
 * of their own. Without one, the request's origin is used when its host is a plain host[:port];
 * otherwise links are paths on this server.
 */
export function baseUrlFor(request: Request, publicUrl: string | undefined): string {
  if (publicUrl !== undefined) return publicUrl;
  const url = new URL(request.url);
  return HOST_AND_PORT.test(url.host) ? url.origin : "";
}

const BASE_URL = "sluiceBaseUrl";

type BaseUrlVariables = { Variables: { [BASE_URL]?: string | (() => string) } };

/**
 * Set once per request by the app (see app.ts), read by every link. Given a function, it is
 * called at the first link only: most answers (a produce's) carry none, and parsing the request's
 * URL was about 1% of a single produce's server time.
 */
export function setBaseUrl(c: Context, baseUrl: string | (() => string)): void {
  (c as Context<BaseUrlVariables>).set(BASE_URL, baseUrl);
}

export function urlOf(c: Context, path: string): string {
  let base = (c as Context<BaseUrlVariables>).get(BASE_URL);
  if (typeof base === "function") {
    base = base();
    setBaseUrl(c, base);
  }
  return `${base ?? new URL(c.req.url).origin}${path}`;
}

export function clusterResource(c: Context, clusterId: string) {
  const self = urlOf(c, clusterPath(clusterId));
  return {
    kind: "KafkaCluster" as const,
    metadata: { self, resource_name: `crn:///kafka=${clusterId}` },
    cluster_id: clusterId,
    topics: { related: `${self}/topics` },
  };
}

export function topicResource(c: Context, context: AppContext, topic: Topic) {
  const self = urlOf(c, topicPath(context.clusterId, topic.name));
  return {
    kind: "KafkaTopic" as const,
    metadata: { self, resource_name: `crn:///kafka=${context.clusterId}/topic=${topic.name}` },
    cluster_id: context.clusterId,
    topic_name: topic.name,
    is_internal: false,
    replication_factor: context.replicationFactor,
    partitions_count: topic.partitions,
    partitions: { related: `${self}/partitions` },
    configs: { related: `${self}/configs` },
    partition_reassignments: { related: `${self}/partitions/-/reassignment` },
    authorized_operations: [] as string[],
    activity: topicActivity(context.engine.activity.topic(topic.name)),
  };
}

export function topicConfigResource(
  c: Context,
  clusterId: string,
  topic: string,
  config: { name: string; value: string; isDefault: boolean },
) {
  return {
    kind: "KafkaTopicConfig" as const,
    metadata: {
      self: urlOf(c, `${topicPath(clusterId, topic)}/configs/${encodeURIComponent(config.name)}`),
      resource_name: `crn:///kafka=${clusterId}/topic=${topic}/config=${config.name}`,
    },
    cluster_id: clusterId,
    topic_name: topic,
    name: config.name,
    value: config.value,
    is_default: config.isDefault,
    is_read_only: false,
    is_sensitive: false,
    source: config.isDefault ? ("DEFAULT_CONFIG" as const) : ("DYNAMIC_TOPIC_CONFIG" as const),
    synonyms: [] as { name: string; value: string; source: string }[],
  };
}

export function partitionResource(
  c: Context,
  clusterId: string,
  topic: string,
  partition: number,
  offsets: { logStartOffset: number; highWatermark: number },
  activity: TopicActivity,
) {
  return {
    kind: "KafkaPartition" as const,
    metadata: {
      self: urlOf(c, `${topicPath(clusterId, topic)}/partitions/${partition}`),
      resource_name: `crn:///kafka=${clusterId}/topic=${topic}/partition=${partition}`,
    },
    cluster_id: clusterId,
    topic_name: topic,
    partition_id: partition,
    leader: null,
    earliest_offset: offsets.logStartOffset,
    latest_offset: offsets.highWatermark,
    activity: partitionActivity(activity, partition),
  };
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the order of results. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
