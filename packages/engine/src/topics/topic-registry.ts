import type { Clock } from "@sluice/core";
import { ConflictError, InvalidArgumentError, NotFoundError } from "@sluice/core";
import { cond, type Item, type MetadataStore, TransactionCanceledError } from "@sluice/storage";
import { deletionKey, newTopicId, TOPICS_PK, topicKey } from "../keys.js";
import {
  isTopicConfigName,
  type TopicConfigs,
  type TopicSettings,
  topicSettings,
  validateTopicConfigs,
} from "./topic-configs.js";

export const PARTITIONS_MAX = 10_000;
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
/** How long a process trusts its cached copy of a topic before reading it again. */
const TOPIC_CACHE_TTL_MS = 5_000;

export interface Topic {
  name: string;
  topicId: string;
  partitions: number;
  configs: TopicConfigs;
  settings: TopicSettings;
  createdAt: number;
}

export interface CreateTopicRequest {
  name: string;
  partitions: number;
  configs?: Record<string, string>;
}

/** Topic metadata: one item per topic under pk `topics`, cached briefly per process. */
export class TopicRegistry {
  private readonly cache = new Map<string, { topic: Topic; readAt: number }>();

  constructor(
    private readonly metadata: MetadataStore,
    private readonly clock: Clock,
  ) {}

  async create(request: CreateTopicRequest): Promise<Topic> {
    validateTopicName(request.name);
    validatePartitionCount(request.partitions);
    const configs = validateTopicConfigs(request.configs ?? {});
    const topic: Topic = {
      name: request.name,
      topicId: newTopicId(),
      partitions: request.partitions,
      configs,
      settings: topicSettings(configs),
      createdAt: this.clock.now(),
    };
    try {
      await this.metadata.put(toItem(topic), { condition: cond.notExists("pk") });
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new ConflictError(`topic already exists: ${request.name}`, {
          cause: error,
          details: { topic: request.name },
        });
      }
      throw error;
    }
    this.remember(topic);
    return topic;
  }

  /** The topic as stored now (bypasses the cache). */
  async describe(name: string): Promise<Topic> {
    const item = await this.metadata.get(topicKey(name));
    if (!item) {
      this.cache.delete(name);
      throw new NotFoundError(`topic not found: ${name}`, { details: { topic: name } });
    }
    // A topic read again as it was keeps its cached object. The append path's optimised code knows
    // that object's shape; a new one at each refresh had V8 generalise Topic's field types at the
    // first refresh and deoptimise five of the path's functions (docs/benchmarks.md, "Where the
    // single-produce tail comes from").
    const cached = this.cache.get(name)?.topic;
    const topic = cached && storedAs(cached, item) ? cached : fromItem(item);
    this.remember(topic);
    return topic;
  }

  /** The topic, from the cache when fresh. Writers verify the topic id in their commit. */
  async get(name: string): Promise<Topic> {
    const cached = this.cache.get(name);
    if (cached && this.clock.now() - cached.readAt < TOPIC_CACHE_TTL_MS) return cached.topic;
    return this.describe(name);
  }

  async list(): Promise<Topic[]> {
    const topics: Topic[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: TOPICS_PK, cursor });
      for (const item of page.items) topics.push(fromItem(item));
      cursor = page.cursor;
    } while (cursor);
    return topics;
  }

  /** Sets (string value) or resets to default (null) configs; unknown names are rejected. */
  async updateConfigs(name: string, changes: Record<string, string | null>): Promise<Topic> {
    const current = await this.describe(name);
    const next: Record<string, string> = { ...(current.configs as Record<string, string>) };
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) {
        if (!isTopicConfigName(key)) validateTopicConfigs({ [key]: "" }); // throws "unknown topic config"
        delete next[key];
      } else {
        next[key] = value;
      }
    }
    const configs = validateTopicConfigs(next);
    await this.conditionalTopicUpdate(current, { configs: configs as Record<string, string> });
    return this.describe(name);
  }

  async increasePartitions(name: string, partitions: number): Promise<Topic> {
    validatePartitionCount(partitions);
    const current = await this.describe(name);
    if (partitions < current.partitions) {
      throw new InvalidArgumentError(
        `topic ${name} has ${current.partitions} partitions; the count can only grow, not shrink to ${partitions}`,
        { details: { topic: name, partitions } },
      );
    }
    if (partitions === current.partitions) return current;
    await this.conditionalTopicUpdate(current, { partitions });
    return this.describe(name);
  }

  /**
   * Removes the topic and, in the same transaction, records a deletion job naming its data: the
   * topic is gone at once, and the maintenance purge job deletes its items and objects in steps
   * that survive a crash (ARCHITECTURE.md, "Topic deletion as a resumable job").
   */
  async delete(name: string): Promise<Topic> {
    const topic = await this.describe(name);
    try {
      await this.metadata.transactWrite([
        { kind: "delete", key: topicKey(name), condition: cond.eq("topicId", topic.topicId) },
        {
          kind: "put",
          item: deletionItem(topic, this.clock.now()),
          condition: cond.notExists("pk"),
        },
      ]);
    } catch (error) {
      if (error instanceof TransactionCanceledError)
        throw new NotFoundError(`topic not found: ${name}`, { cause: error });
      throw error;
    }
    this.cache.delete(name);
    return topic;
  }

  forget(name: string): void {
    this.cache.delete(name);
  }

  private async conditionalTopicUpdate(
    current: Topic,
    set: Record<string, string | number | Record<string, string>>,
  ) {
    try {
      await this.metadata.update(
        topicKey(current.name),
        { set },
        { condition: cond.eq("topicId", current.topicId) },
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new NotFoundError(`topic not found: ${current.name}`, {
          cause: error,
          details: { topic: current.name },
        });
      }
      throw error;
    }
  }

  private remember(topic: Topic): void {
    this.cache.set(topic.name, { topic, readAt: this.clock.now() });
  }
}

export function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name) || name === "." || name === "..") {
    throw new InvalidArgumentError(
      `invalid topic name ${JSON.stringify(name)}: use 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-' (not "." or "..")`,
      { details: { topic: String(name) } },
    );
  }
}

function validatePartitionCount(partitions: unknown): void {
  if (
    typeof partitions !== "number" ||
    !Number.isInteger(partitions) ||
    partitions < 1 ||
    partitions > PARTITIONS_MAX
  ) {
    throw new InvalidArgumentError(
      `invalid partition count ${String(partitions)}: expected an integer from 1 to ${PARTITIONS_MAX}`,
      {
        details: { partitions: String(partitions) },
      },
    );
  }
}

/** The deletion job of a topic (keys.ts `deletionKey`): what the purge needs to find its data. */
function deletionItem(topic: Topic, nowMs: number): Item {
  return {
    ...deletionKey(topic.topicId),
    name: topic.name,
    topicId: topic.topicId,
    partitions: topic.partitions,
    deletedAt: nowMs,
    // The purge job's lease lives on this item (packages/leases: leaseEpoch starts at 0 here).
    leaseEpoch: 0,
  };
}

function toItem(topic: Topic): Item {
  return {
    ...topicKey(topic.name),
    name: topic.name,
    topicId: topic.topicId,
    partitions: topic.partitions,
    configs: topic.configs as Record<string, string>,
    createdAt: topic.createdAt,
  };
}

/** Whether `item` holds exactly what `topic` was read from (the item `toItem` would write). */
function storedAs(topic: Topic, item: Item): boolean {
  if (
    item.topicId !== topic.topicId ||
    item.partitions !== topic.partitions ||
    item.createdAt !== topic.createdAt ||
    item.name !== topic.name
  ) {
    return false;
  }
  const stored = (item.configs ?? {}) as Record<string, unknown>;
  const cached = topic.configs as Record<string, string>;
  const names = Object.keys(stored);
  return (
    names.length === Object.keys(cached).length && names.every((config) => stored[config] === cached[config])
  );
}

function fromItem(item: Item): Topic {
  const configs = (item.configs ?? {}) as TopicConfigs;
  return {
    name: String(item.name),
    topicId: String(item.topicId),
    partitions: Number(item.partitions),
    configs,
    settings: topicSettings(configs),
    createdAt: Number(item.createdAt),
  };
}
