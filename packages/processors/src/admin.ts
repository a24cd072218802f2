import { randomBytes } from "node:crypto";
import { type Clock, ConflictError, InvalidArgumentError, NotFoundError, systemClock } from "@sluice/core";
import type { Engine, Topic } from "@sluice/engine";
import { isHeld, LEASE_EPOCH, LEASE_EXPIRES_AT, LEASE_OWNER, leaseStateOf } from "@sluice/leases";
import { ShareGroups, shareGroupListKey, shareGroupPk, sharePartitionPk } from "@sluice/queues";
import { type AttributeValue, cond, type Item, type MetadataStore } from "@sluice/storage";
import { type ProcessorJson, type ProcessorSpec, parseProcessorJson, toProcessorJson } from "./definition.js";
import { definitionKey, parseProgressSortKey, progressKey, progressPk } from "./keys.js";
import { encodeOffsets, newCommitId, progressFromItem, type RetryState } from "./progress.js";
import { sharedGroupConfigs, sharedGroupId } from "./shared-group.js";
import { ProcessorStore, processorItem, type StoredProcessor } from "./store.js";

export interface ProcessorAdminOptions {
  engine: Engine;
  metadata: MetadataStore;
  clock?: Clock;
  /** Where shared processors' groups live; default one over `engine` and `metadata`. */
  shareGroups?: ShareGroups;
}

/** One share-partition of a shared processor's group (ARCHITECTURE.md, "Shared processors"). */
export interface SharedPartitionDescription {
  topic: string;
  partition: number;
  /** Every record below it is settled: accepted with its outputs, or dead-lettered. */
  startOffset: number;
  /** Records from here on were never handed out. */
  endOffset: number;
  highWatermark: number;
  /** Records locked to a runtime now (a handler call, or waiting for a retry). */
  inFlight: number;
  /** Records given back, waiting for another delivery. */
  available: number;
  /** Records not settled: the window's unsettled ones and everything past its end. */
  lag: number;
}

export interface SharedDescription {
  /** The processor's own share group. */
  groupId: string;
  /** Runtimes taking records now (a server process, a dispatcher instance). */
  members: number;
  partitions: SharedPartitionDescription[];
}

export interface PartitionDescription {
  topic: string;
  partition: number;
  /** Every offset below it is done; null before the processor first ran on a partition added later. */
  checkpoint: number | null;
  highWatermark: number;
  /** highWatermark − checkpoint. */
  lag: number;
  /** Records above the checkpoint not done yet (per-key ordering: behind a blocked key). */
  pending: number;
  /** Blocked ordering keys: the first not-done record of each, with its retry state. */
  retries: (RetryState & { offset: number })[];
  lastError: { message: string; offset: number; atMs: number } | null;
  /** The runner holding the partition's lease now, if any. */
  owner: string | null;
  processed: number;
  deadLettered: number;
  filtered: number;
}

export interface ProcessorDescription {
  name: string;
  uid: string;
  state: "running" | "paused";
  definition: ReturnType<typeof toProcessorJson>;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface ProcessorDetails extends ProcessorDescription {
  lag: number;
  /** Per source partition: checkpoint and counters. Empty for a shared processor (see `shared`). */
  partitions: PartitionDescription[];
  /** A shared processor's group: start offset, in-flight records and lag per share-partition. */
  shared?: SharedDescription;
}

export type ResetTarget =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "timestamp"; timestampMs: number }
  | { to: "offsets"; offsets: { topic: string; partition: number; offset: number }[] };

export interface CreateOptions {
  /**
   * Module handlers are code on the server's disk, declared in the local server's config file;
   * the HTTP API refuses them. Default false.
   */
  allowModuleHandlers?: boolean;
}

const WRITE_CONCURRENCY = 16;

/**
 * Creating, changing and removing processors (ARCHITECTURE.md, "Processors", "Managing
 * processors"). Everything is checked before the first write; a bad definition is an
 * InvalidArgumentError naming the field.
 */
export class ProcessorAdmin {
  readonly store: ProcessorStore;
  private readonly clock: Clock;
  private readonly shareGroups: ShareGroups;

  constructor(private readonly options: ProcessorAdminOptions) {
    this.clock = options.clock ?? systemClock;
    this.store = new ProcessorStore(options.metadata);
    this.shareGroups =
      options.shareGroups ??
      new ShareGroups({ engine: options.engine, metadata: options.metadata, clock: this.clock });
  }

  async create(json: unknown, options: CreateOptions = {}): Promise<ProcessorDescription> {
    const spec = parseProcessorJson(json);
    const topics = await this.checkTopics(spec, options);
    if (await this.store.get(spec.name)) throw exists(spec.name);
    const now = this.clock.now();
    const processor: StoredProcessor = {
      uid: randomBytes(9).toString("base64url"),
      spec,
      state: "running",
      partitionCounts: Object.fromEntries(spec.topics.map((topic) => [topic, topics.get(topic)!.partitions])),
      createdAtMs: now,
      updatedAtMs: now,
      version: 1,
      resets: 0,
    };
    // Progress (or the share group) first, at the starting position as of now; the definition
    // last makes it run.
    if (spec.ordering.kind === "shared") await this.startSharedGroup(processor);
    else await this.startPartitions(processor, spec.topics, topics);
    try {
      await this.options.metadata.put(processorItem(processor), { condition: cond.notExists("pk") });
    } catch (error) {
      if (error instanceof ConflictError) throw exists(spec.name);
      throw error;
    }
    return describeStored(processor);
  }

  /**
   * Creates the processor, or brings an existing one to this definition (keeping its progress and
   * state; partitions of new source topics start at its starting position). For the local
   * server's config file, read at every start.
   */
  async apply(json: unknown, options: CreateOptions = {}): Promise<"created" | "updated" | "unchanged"> {
    const spec = parseProcessorJson(json);
    const existing = await this.store.get(spec.name);
    if (!existing) {
      await this.create(json, options);
      return "created";
    }
    if (JSON.stringify(toProcessorJson(existing.spec)) === JSON.stringify(toProcessorJson(spec)))
      return "unchanged";
    const topics = await this.checkTopics(spec, options);
    refuseSharedChange(existing.spec, spec);
    const added = spec.topics.filter((topic) => !existing.spec.topics.includes(topic));
    const updated: StoredProcessor = {
      ...existing,
      spec,
      partitionCounts: {
        ...existing.partitionCounts,
        ...Object.fromEntries(added.map((topic) => [topic, topics.get(topic)!.partitions])),
      },
      updatedAtMs: this.clock.now(),
      version: existing.version + 1,
    };
    if (spec.ordering.kind !== "shared") await this.startPartitions(updated, added, topics);
    await this.replace(existing, updated);
    return "updated";
  }

  async list(): Promise<ProcessorDescription[]> {
    return (await this.store.list()).map(describeStored);
  }

  async describe(name: string): Promise<ProcessorDetails> {
    const processor = await this.get(name);
    if (processor.spec.ordering.kind === "shared") return this.describeShared(processor);
    const items = await this.progressItems(name);
    const now = this.clock.now();
    const partitions: PartitionDescription[] = [];
    for (const topic of processor.spec.topics) {
      let count: number;
      try {
        count = (await this.options.engine.describeTopic(topic)).partitions;
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      const offsets = await Promise.all(
        Array.from({ length: count }, (_, partition) =>
          this.options.engine.partitionOffsets(topic, partition),
        ),
      );
      for (let partition = 0; partition < count; partition++) {
        const item = items.get(`${topic}\u0000${partition}`);
        const progress = progressFromItem(item);
        const started = progress.uid === processor.uid;
        const lease = leaseStateOf(progressKey(name, topic, partition), item);
        const highWatermark = offsets[partition]!.highWatermark;
        partitions.push({
          topic,
          partition,
          checkpoint: started ? progress.checkpoint : null,
          highWatermark,
          lag: Math.max(
            0,
            highWatermark - (started ? progress.checkpoint : offsets[partition]!.logStartOffset),
          ),
          pending: started ? progress.pending.length : 0,
          retries: started ? [...progress.retries].map(([offset, state]) => ({ offset, ...state })) : [],
          lastError: started ? (progress.lastError ?? null) : null,
          owner: isHeld(lease, now) ? lease!.owner! : null,
          processed: started ? progress.processed : 0,
          deadLettered: started ? progress.deadLettered : 0,
          filtered: started ? progress.filtered : 0,
        });
      }
    }
    return {
      ...describeStored(processor),
      lag: partitions.reduce((total, partition) => total + partition.lag, 0),
      partitions,
    };
  }

  async pause(name: string): Promise<ProcessorDescription> {
    return this.setState(name, "paused");
  }

  async resume(name: string): Promise<ProcessorDescription> {
    return this.setState(name, "running");
  }

  /**
   * Moves every partition's checkpoint (dropping pending records and retries). Only a paused
   * processor whose runners have let go of every partition: each write takes the next lease epoch,
   * so a runner that kept going unseen can no longer commit.
   */
  async reset(name: string, target: ResetTarget): Promise<PartitionDescription[]> {
    const processor = await this.get(name);
    if (processor.state !== "paused") {
      throw new ConflictError(`processor ${name} is running: pause it before resetting its checkpoints`, {
        details: { processor: name },
      });
    }
    if (processor.spec.ordering.kind === "shared") {
      await this.resetShared(processor, target);
      return [];
    }
    const items = await this.progressItems(name);
    const now = this.clock.now();
    const writes: { topic: string; partition: number; offset: number; item: Item | undefined }[] = [];
    const requested = new Map<string, number>();
    if (target.to === "offsets") {
      for (const entry of target.offsets)
        requested.set(`${entry.topic}\u0000${entry.partition}`, entry.offset);
    }
    for (const topic of processor.spec.topics) {
      const source = await this.options.engine.describeTopic(topic);
      for (let partition = 0; partition < source.partitions; partition++) {
        const id = `${topic}\u0000${partition}`;
        const item = items.get(id);
        const lease = leaseStateOf(progressKey(name, topic, partition), item);
        if (isHeld(lease, now)) {
          throw new ConflictError(
            `partition ${partition} of ${topic} is still held by runner ${lease!.owner}; try again once it has stopped`,
            { details: { topic, partition, owner: lease!.owner } },
          );
        }
        const offsets = await this.options.engine.partitionOffsets(topic, partition);
        let offset: number;
        switch (target.to) {
          case "earliest":
            offset = offsets.logStartOffset;
            break;
          case "latest":
            offset = offsets.highWatermark;
            break;
          case "timestamp":
            offset =
              (await this.options.engine.offsetForTimestamp(topic, partition, target.timestampMs)) ??
              offsets.highWatermark;
            break;
          case "offsets": {
            const asked = requested.get(id);
            if (asked === undefined) continue;
            if (
              !Number.isSafeInteger(asked) ||
              asked < offsets.logStartOffset ||
              asked > offsets.highWatermark
            ) {
              throw new InvalidArgumentError(
                `offset ${asked} is out of range for partition ${partition} of ${topic}: valid offsets are ${offsets.logStartOffset} to ${offsets.highWatermark}`,
                { details: { field: "offsets", topic, partition } },
              );
            }
            offset = asked;
            requested.delete(id);
            break;
          }
        }
        writes.push({ topic, partition, offset, item });
      }
    }
    if (target.to === "offsets" && requested.size > 0) {
      const [unknown] = [...requested.keys()];
      const [topic, partition] = unknown!.split("\u0000");
      throw new InvalidArgumentError(
        `processor ${name} does not read partition ${partition} of topic ${topic}`,
        {
          details: { field: "offsets", topic, partition: Number(partition) },
        },
      );
    }
    for (const write of writes) {
      const key = progressKey(name, write.topic, write.partition);
      const lease = leaseStateOf(key, write.item);
      const topicId = (await this.options.engine.describeTopic(write.topic)).topicId;
      try {
        await this.options.metadata.update(
          key,
          {
            set: {
              uid: processor.uid,
              topicId,
              checkpoint: write.offset,
              frontier: write.offset,
              pending: new Uint8Array(0),
              retries: {},
              version: Number(write.item?.version ?? 0) + 1,
              commitId: `reset-${newCommitId()}`,
              [LEASE_EPOCH]: (lease?.epoch ?? 0) + 1,
              [LEASE_EXPIRES_AT]: 0,
            },
            remove: [LEASE_OWNER, "lastError"],
          },
          {
            condition: write.item
              ? cond.and(
                  cond.eq(LEASE_EPOCH, lease?.epoch ?? 0),
                  cond.or(cond.notExists(LEASE_OWNER), cond.compare(LEASE_EXPIRES_AT, "<", now)),
                )
              : cond.notExists("pk"),
          },
        );
      } catch (error) {
        if (error instanceof ConflictError) {
          throw new ConflictError(
            `partition ${write.partition} of ${write.topic} was taken by a runner during the reset; pause, wait and try again`,
            { cause: error, details: { topic: write.topic, partition: write.partition } },
          );
        }
        throw error;
      }
    }
    return (await this.describe(name)).partitions;
  }

  /**
   * Removes the definition, then every partition's progress (a runner still going fails its next
   * commit) — or a shared processor's share group (its runtimes see the definition gone and stop).
   */
  async delete(name: string): Promise<void> {
    const processor = await this.store.get(name);
    try {
      await this.options.metadata.delete(definitionKey(name), { condition: cond.exists("pk") });
    } catch (error) {
      if (error instanceof ConflictError) throw notFound(name);
      throw error;
    }
    const keys: { pk: string; sk: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.options.metadata.query({ pk: progressPk(name), ...(cursor ? { cursor } : {}) });
      for (const item of page.items) keys.push({ pk: item.pk, sk: item.sk });
      cursor = page.cursor;
    } while (cursor);
    await inBatches(keys, (key) => this.options.metadata.delete(key));
    if (processor?.spec.ordering.kind === "shared") await this.deleteSharedGroup(processor);
  }

  /**
   * A shared processor's group is its own (named by its uid, never joined again once the
   * definition is gone): its items — the list entry, meta, members, topics and every window of
   * its topics as they are now — are deleted, so it does not linger in the list of share groups.
   */
  private async deleteSharedGroup(processor: StoredProcessor): Promise<void> {
    const groupId = sharedGroupId(processor.uid);
    const pks = [shareGroupPk(groupId)];
    for (const topic of processor.spec.topics) {
      try {
        const described = await this.options.engine.describeTopic(topic);
        for (let partition = 0; partition < described.partitions; partition++)
          pks.push(sharePartitionPk(groupId, described.topicId, partition));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    const keys: { pk: string; sk: string }[] = [];
    for (const pk of pks) {
      let cursor: string | undefined;
      do {
        const page = await this.options.metadata.query({ pk, ...(cursor ? { cursor } : {}) });
        for (const item of page.items) keys.push({ pk: item.pk, sk: item.sk });
        cursor = page.cursor;
      } while (cursor);
    }
    await inBatches(keys, (key) => this.options.metadata.delete(key));
    await this.options.metadata.delete(shareGroupListKey(groupId));
  }

  /**
   * A shared processor's group starts where the processor does: a member joins once (creating the
   * group with the processor's configs and its windows at earliest or latest as of now) and
   * leaves; a timestamp start then moves the empty group's start offsets.
   */
  private async startSharedGroup(processor: StoredProcessor): Promise<void> {
    const groupId = sharedGroupId(processor.uid);
    const memberId = `create.${processor.uid}`;
    await this.shareGroups.join({
      groupId,
      memberId,
      topics: processor.spec.topics,
      configs: sharedGroupConfigs(processor.spec),
      clientId: `processor ${processor.spec.name} (creating)`,
    });
    await this.shareGroups.leave(groupId, memberId);
    const start = processor.spec.startingPosition;
    if (start.kind === "timestamp") {
      await this.shareGroups.resetStartOffsets(
        groupId,
        { to: "datetime", timestampMs: start.timestampMs },
        { dryRun: false },
      );
    }
  }

  private async describeShared(processor: StoredProcessor): Promise<ProcessorDetails> {
    const groupId = sharedGroupId(processor.uid);
    const group = await this.shareGroups.describe(groupId);
    const partitions: SharedPartitionDescription[] = group.partitions.map((partition) => ({
      topic: partition.topic,
      partition: partition.partition,
      startOffset: partition.startOffset,
      endOffset: partition.endOffset,
      highWatermark: partition.highWatermark,
      inFlight: partition.acquired,
      available: partition.available,
      lag: partition.lag,
    }));
    return {
      ...describeStored(processor),
      lag: partitions.reduce((total, partition) => total + partition.lag, 0),
      partitions: [],
      shared: { groupId, members: group.members.length, partitions },
    };
  }

  /** Moves the group's start offsets; the group must have no members (its runtimes let go on pause). */
  private async resetShared(processor: StoredProcessor, target: ResetTarget): Promise<void> {
    if (target.to === "offsets") {
      throw new InvalidArgumentError(
        `offsets: processor ${processor.spec.name} is SHARED; reset it to earliest, latest or a timestamp`,
        { details: { field: "offsets" } },
      );
    }
    await this.shareGroups.resetStartOffsets(
      sharedGroupId(processor.uid),
      target.to === "timestamp" ? { to: "datetime", timestampMs: target.timestampMs } : target,
      { dryRun: false },
    );
    // Records handled again must not meet the idempotency keys of their first handling.
    for (;;) {
      const current = await this.get(processor.spec.name);
      const updated = {
        ...current,
        resets: current.resets + 1,
        updatedAtMs: this.clock.now(),
        version: current.version + 1,
      };
      try {
        await this.replace(current, updated);
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  private async get(name: string): Promise<StoredProcessor> {
    const processor = await this.store.get(name);
    if (!processor) throw notFound(name);
    return processor;
  }

  private async setState(name: string, state: "running" | "paused"): Promise<ProcessorDescription> {
    for (;;) {
      const processor = await this.get(name);
      if (processor.state === state) return describeStored(processor);
      const updated = { ...processor, state, updatedAtMs: this.clock.now(), version: processor.version + 1 };
      try {
        await this.replace(processor, updated);
        return describeStored(updated);
      } catch (error) {
        // Changed meanwhile (another pause, an update): look again.
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  private async replace(current: StoredProcessor, next: StoredProcessor): Promise<void> {
    await this.options.metadata.put(processorItem(next), {
      condition: cond.and(cond.eq("uid", current.uid), cond.eq("version", current.version)),
    });
  }

  /** Every topic the definition names must exist; the field that names a missing one is the 400's. */
  private async checkTopics(spec: ProcessorSpec, options: CreateOptions): Promise<Map<string, Topic>> {
    if (spec.handler.kind === "module" && !options.allowModuleHandlers) {
      throw new InvalidArgumentError(
        "handler.type: module handlers are declared in the local server's processor config file (SLUICE_PROCESSORS), not through the API; use lambda or webhook",
        { details: { field: "handler.type" } },
      );
    }
    const topics = new Map<string, Topic>();
    const check = async (name: string, field: string) => {
      try {
        topics.set(name, await this.options.engine.describeTopic(name));
      } catch (error) {
        if (error instanceof NotFoundError) {
          throw new InvalidArgumentError(`${field}: topic ${name} does not exist`, {
            details: { field, topic: name },
          });
        }
        throw error;
      }
    };
    for (const [index, topic] of spec.topics.entries()) await check(topic, `topics[${index}]`);
    for (const [index, topic] of spec.outputTopics.entries()) await check(topic, `output_topics[${index}]`);
    if (spec.deadLetterTopic !== null) await check(spec.deadLetterTopic, "dead_letter_topic");
    return topics;
  }

  /** Writes each partition's progress at the starting position, fencing any leftover of an earlier incarnation. */
  private async startPartitions(
    processor: StoredProcessor,
    topics: string[],
    described: Map<string, Topic>,
  ): Promise<void> {
    const spec = processor.spec;
    const writes: { topic: string; partition: number }[] = [];
    for (const topic of topics) {
      for (let partition = 0; partition < described.get(topic)!.partitions; partition++)
        writes.push({ topic, partition });
    }
    await inBatches(writes, async ({ topic, partition }) => {
      const engine = this.options.engine;
      const offsets = await engine.partitionOffsets(topic, partition);
      const start =
        spec.startingPosition.kind === "earliest"
          ? offsets.logStartOffset
          : spec.startingPosition.kind === "latest"
            ? offsets.highWatermark
            : ((await engine.offsetForTimestamp(topic, partition, spec.startingPosition.timestampMs)) ??
              offsets.highWatermark);
      const key = progressKey(spec.name, topic, partition);
      const leftover = leaseStateOf(key, await this.options.metadata.get(key));
      const item: Item = {
        ...key,
        uid: processor.uid,
        topicId: described.get(topic)!.topicId,
        checkpoint: start,
        frontier: start,
        pending: encodeOffsets([], start),
        retries: {} as AttributeValue,
        version: 0,
        processed: 0,
        deadLettered: 0,
        filtered: 0,
        [LEASE_EPOCH]: (leftover?.epoch ?? 0) + 1,
        [LEASE_EXPIRES_AT]: 0,
      };
      await this.options.metadata.put(item);
    });
  }

  private async progressItems(name: string): Promise<Map<string, Item>> {
    const items = new Map<string, Item>();
    let cursor: string | undefined;
    do {
      const page = await this.options.metadata.query({ pk: progressPk(name), ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        const { topic, partition } = parseProgressSortKey(item.sk);
        items.set(`${topic}\u0000${partition}`, item);
      }
      cursor = page.cursor;
    } while (cursor);
    return items;
  }
}

/**
 * A shared processor's group takes its configs once, when the processor is created; a change to
 * them (or to its topics, or to or from SHARED) is refused rather than silently not applied.
 */
function refuseSharedChange(existing: ProcessorSpec, next: ProcessorSpec): void {
  const wasShared = existing.ordering.kind === "shared";
  if (wasShared !== (next.ordering.kind === "shared")) {
    throw new InvalidArgumentError(
      "ordering: a processor cannot change to or from SHARED; delete it and create it again",
      { details: { field: "ordering" } },
    );
  }
  if (!wasShared) return;
  const fixed = (spec: ProcessorSpec) =>
    JSON.stringify([sharedGroupConfigs(spec), [...spec.topics].sort(), spec.startingPosition]);
  if (fixed(existing) !== fixed(next)) {
    throw new InvalidArgumentError(
      "a SHARED processor's topics, starting position, retry.max_attempts, retry.timeout_ms and dead_letter_topic are fixed when it is created; delete it and create it again",
      { details: { field: "ordering" } },
    );
  }
}

export function describeStored(processor: StoredProcessor): ProcessorDescription {
  return {
    name: processor.spec.name,
    uid: processor.uid,
    state: processor.state,
    definition: toProcessorJson(processor.spec),
    createdAtMs: processor.createdAtMs,
    updatedAtMs: processor.updatedAtMs,
  };
}

function notFound(name: string): NotFoundError {
  return new NotFoundError(`processor not found: ${name}`, { details: { processor: name } });
}

function exists(name: string): ConflictError {
  return new ConflictError(`processor already exists: ${name}`, { details: { processor: name } });
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += WRITE_CONCURRENCY) {
    await Promise.all(items.slice(start, start + WRITE_CONCURRENCY).map(work));
  }
}

export type { ProcessorJson };
