import type { Topic } from "@sluice/engine";
import type { Context } from "hono";
import type { AppContext } from "./context.js";

/**
 * Confluent REST v3 resource shapes. `self` and `related` links are absolute URLs on the origin
 * the request came to, as Confluent's proxy writes them.
 */
export function clusterPath(clusterId: string): string {
  return `/v3/clusters/${encodeURIComponent(clusterId)}`;
}

export function topicPath(clusterId: string, topic: string): string {
  return `${clusterPath(clusterId)}/topics/${encodeURIComponent(topic)}`;
}

export function urlOf(c: Context, path: string): string {
  return `${new URL(c.req.url).origin}${path}`;
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
