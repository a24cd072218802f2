import { type Clock, InvalidArgumentError } from "@sluice/core";
import { LEASE_OWNER } from "@sluice/leases";
import {
  cond,
  type Item,
  type MetadataStore,
  TRANSACTION_OPERATIONS_MAX,
  TransactionCanceledError,
  type TransactOperation,
} from "@sluice/storage";
import type { TopicPartition } from "./assignors/assignor.js";
import { groupNotEmpty, groupNotFound, notAssigned, unknownMember, validateGroupId } from "./errors.js";
import {
  groupPk,
  memberKey,
  metaKey,
  OFFSET_PREFIX,
  offsetKey,
  parsePartitionSortKey,
  partitionLeaseKey,
} from "./keys.js";
import { metaFromItem } from "./state.js";

export interface OffsetCommit extends TopicPartition {
  /** The next offset to consume (Kafka's convention: last processed + 1). */
  offset: number;
  metadata?: string;
}

export interface CommittedOffset extends TopicPartition {
  offset: number;
  metadata: string;
  committedAtMs: number;
}

export const OFFSET_METADATA_BYTES_MAX = 4096;

/** Each partition costs a lease check and an offset put; two more for the member and the group. */
const PARTITIONS_PER_TRANSACTION = Math.floor((TRANSACTION_OPERATIONS_MAX - 2) / 2);

export interface OffsetStoreOptions {
  metadata: MetadataStore;
  clock: Clock;
  /** The current id of a topic, or undefined when it does not exist. */
  topicId: (topic: string) => Promise<string | undefined>;
}

/**
 * Committed offsets (ARCHITECTURE.md, "Consumer groups"): written only under the partition's
 * lease by its owner, or by an operator while the group is empty.
 */
export class OffsetStore {
  constructor(private readonly options: OffsetStoreOptions) {}

  /**
   * Commits as `memberId`, which must be a member owning every partition named; otherwise a
   * FencedError (UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH) and nothing of that transaction is
   * written. More than 49 partitions commit in several transactions, each all-or-nothing.
   */
  async commitAsMember(groupId: string, memberId: string, offsets: OffsetCommit[]): Promise<void> {
    validateGroupId(groupId);
    validateCommits(offsets);
    const uid = await this.groupUid(groupId);
    for (let start = 0; start < offsets.length; start += PARTITIONS_PER_TRANSACTION) {
      const chunk = offsets.slice(start, start + PARTITIONS_PER_TRANSACTION);
      const operations: TransactOperation[] = [
        { kind: "condition_check", key: metaKey(groupId), condition: cond.eq("uid", uid) },
        { kind: "condition_check", key: memberKey(groupId, memberId), condition: cond.exists("pk") },
      ];
      for (const commit of chunk) {
        operations.push({
          kind: "condition_check",
          key: partitionLeaseKey(groupId, commit.topic, commit.partition),
          condition: cond.eq(LEASE_OWNER, memberId),
        });
        operations.push({ kind: "put", item: await this.offsetItem(groupId, uid, commit, memberId) });
      }
      try {
        await this.options.metadata.transactWrite(operations);
      } catch (error) {
        if (!(error instanceof TransactionCanceledError)) throw error;
        for (const failure of error.failures) {
          if (failure.index === 0) throw groupNotFound(groupId);
          if (failure.index === 1) throw unknownMember(groupId, memberId);
          const commit = chunk[Math.floor((failure.index - 2) / 2)]!;
          const owner = failure.current?.[LEASE_OWNER];
          throw notAssigned(
            groupId,
            memberId,
            commit.topic,
            commit.partition,
            typeof owner === "string" ? owner : undefined,
          );
        }
        throw error;
      }
    }
  }

  /** An operator's commit (offset reset): only while the group has no members. */
  async commitAsAdmin(groupId: string, offsets: OffsetCommit[], action = "reset offsets of"): Promise<void> {
    validateGroupId(groupId);
    validateCommits(offsets);
    const uid = await this.groupUid(groupId);
    for (let start = 0; start < offsets.length; start += TRANSACTION_OPERATIONS_MAX - 1) {
      const chunk = offsets.slice(start, start + TRANSACTION_OPERATIONS_MAX - 1);
      const operations: TransactOperation[] = [
        {
          kind: "condition_check",
          key: metaKey(groupId),
          condition: cond.and(cond.eq("uid", uid), cond.eq("memberCount", 0)),
        },
      ];
      for (const commit of chunk)
        operations.push({ kind: "put", item: await this.offsetItem(groupId, uid, commit, "") });
      try {
        await this.options.metadata.transactWrite(operations);
      } catch (error) {
        if (!(error instanceof TransactionCanceledError)) throw error;
        const current = error.failures.find((failure) => failure.index === 0)?.current;
        if (!current) throw groupNotFound(groupId);
        throw groupNotEmpty(groupId, Number(current.memberCount), action);
      }
    }
  }

  /** The group's committed offsets, leaving out those of deleted topics (or an older topic of the same name). */
  async committed(groupId: string): Promise<CommittedOffset[]> {
    validateGroupId(groupId);
    const meta = await this.options.metadata.get(metaKey(groupId));
    if (!meta) return [];
    const uid = String(meta.uid);
    const items: Item[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.options.metadata.query({
        pk: groupPk(groupId),
        sk: { kind: "begins_with", prefix: OFFSET_PREFIX },
        cursor,
      });
      items.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    const topicIds = new Map<string, string | undefined>();
    const offsets: CommittedOffset[] = [];
    for (const item of items) {
      if (item.groupUid !== uid) continue;
      const { topic, partition } = parsePartitionSortKey(item.sk, OFFSET_PREFIX);
      if (!topicIds.has(topic)) topicIds.set(topic, await this.options.topicId(topic));
      if (topicIds.get(topic) !== item.topicId) continue;
      offsets.push({
        topic,
        partition,
        offset: Number(item.offset),
        metadata: String(item.metadata ?? ""),
        committedAtMs: Number(item.committedAtMs),
      });
    }
    return offsets;
  }

  private async groupUid(groupId: string): Promise<string> {
    const meta = await this.options.metadata.get(metaKey(groupId));
    if (!meta) throw groupNotFound(groupId);
    return metaFromItem(meta).uid;
  }

  private async offsetItem(
    groupId: string,
    uid: string,
    commit: OffsetCommit,
    memberId: string,
  ): Promise<Item> {
    const topicId = await this.options.topicId(commit.topic);
    if (topicId === undefined) {
      throw new InvalidArgumentError(
        `cannot commit an offset of topic ${commit.topic}: the topic does not exist`,
        {
          code: "UNKNOWN_TOPIC_OR_PARTITION",
        },
      );
    }
    return {
      ...offsetKey(groupId, commit.topic, commit.partition),
      offset: commit.offset,
      metadata: commit.metadata ?? "",
      topicId,
      groupUid: uid,
      committedAtMs: this.options.clock.now(),
      committedBy: memberId,
    };
  }
}

function validateCommits(offsets: OffsetCommit[]): void {
  if (!Array.isArray(offsets) || offsets.length === 0)
    throw new InvalidArgumentError("a commit names at least one partition");
  const seen = new Set<string>();
  offsets.forEach((commit, index) => {
    if (typeof commit.topic !== "string" || commit.topic.length === 0) {
      throw new InvalidArgumentError(`offsets.${index}: topic is required`);
    }
    if (!Number.isInteger(commit.partition) || commit.partition < 0) {
      throw new InvalidArgumentError(`offsets.${index}: invalid partition ${commit.partition}`);
    }
    if (!Number.isSafeInteger(commit.offset) || commit.offset < 0) {
      throw new InvalidArgumentError(
        `offsets.${index}: invalid offset ${commit.offset}: a non-negative integer`,
      );
    }
    if (commit.metadata !== undefined && Buffer.byteLength(commit.metadata) > OFFSET_METADATA_BYTES_MAX) {
      throw new InvalidArgumentError(`offsets.${index}: metadata is over ${OFFSET_METADATA_BYTES_MAX} bytes`);
    }
    const key = `${commit.topic}\u0000${commit.partition}`;
    if (seen.has(key)) {
      throw new InvalidArgumentError(
        `offsets.${index}: partition ${commit.partition} of ${commit.topic} is named twice`,
      );
    }
    seen.add(key);
  });
}
