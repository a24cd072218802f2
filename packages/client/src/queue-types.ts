import type { ConsumedRecord } from "./types.js";

/** ACCEPT: processed. RELEASE: deliver again. REJECT: archive (and dead-letter). RENEW: extend the lock. */
export type AcknowledgeType = "ACCEPT" | "RELEASE" | "REJECT" | "RENEW";

/** A share group's settings, given when a join creates it. */
export interface ShareGroupConfigs {
  /** `delivery.count.limit`: deliveries before a record is archived. Server default 5. */
  deliveryCountLimit?: number;
  /** `record.lock.duration.ms`. Server default 30,000. */
  lockDurationMs?: number;
  /** `auto.offset.reset`: where the group starts reading. Server default "latest". */
  autoOffsetReset?: "earliest" | "latest";
  /** `dead.letter.topic.name`: where archived records are copied. */
  deadLetterTopic?: string;
}

export interface ShareGroupJoinRequest {
  memberId: string;
  topics: string[];
  configs?: ShareGroupConfigs;
  sessionTimeoutMs?: number;
  clientId?: string;
}

export interface ShareGroupJoinResponse {
  memberId: string;
  topics: string[];
  sessionTimeoutMs: number;
  sessionRemainingMs: number;
  groupCreated: boolean;
  configs: Record<string, string>;
}

/** A record acquired under a lock, as the API hands it out. */
export interface AcquiredRecord extends ConsumedRecord {
  deliveryCount: number;
  /** How long the lock lasts from when the server answered. */
  lockRemainingMs: number;
}

export interface RecordAcknowledgement {
  topicName: string;
  partitionId: number;
  offset: number;
  type: AcknowledgeType;
}

export interface AcknowledgementResult extends RecordAcknowledgement {
  acknowledged: boolean;
  /** Why not: INVALID_RECORD_STATE (the lock passed, another member holds it, settled) or UNKNOWN_TOPIC_OR_PARTITION. */
  code: string | null;
  message: string | null;
  /** RENEW: how long the renewed lock lasts from when the server answered. */
  lockRemainingMs: number | null;
}

export interface AcquireOptions {
  maxRecords?: number;
  maxBytes?: number;
  /** Long-poll: wait up to this long for records. */
  timeoutMs?: number;
  keyType?: "BINARY" | "JSON" | "STRING";
  valueType?: "BINARY" | "JSON" | "STRING";
  /** Sent first, applied before records are acquired. */
  acknowledgements?: RecordAcknowledgement[];
  signal?: AbortSignal;
}

export interface AcquireResponse {
  records: AcquiredRecord[];
  sessionRemainingMs: number;
  acknowledgements: AcknowledgementResult[];
}

export interface ShareGroupInfo {
  groupId: string;
  /** EMPTY or STABLE. */
  state: string;
  memberCount: number;
  topicNames: string[];
  configs: Record<string, string>;
}

export interface ShareGroupMember {
  memberId: string;
  clientId: string | null;
  topicNames: string[];
  acquiredRecords: number;
}

export interface SharePartitionInfo {
  topicName: string;
  partitionId: number;
  initialized: boolean;
  startOffset: number;
  endOffset: number;
  highWatermark: number;
  acquiredRecords: number;
  availableRecords: number;
  acknowledgedRecords: number;
  archivedRecords: number;
  deadLettersDue: number;
  lag: number;
}

export type StartOffsetResetTarget =
  | { to: "earliest" }
  | { to: "latest" }
  | { to: "offset"; offset: number }
  | { to: "datetime"; datetime: Date | string | number };

export interface StartOffsetResetResult {
  dryRun: boolean;
  data: {
    topicName: string;
    partitionId: number;
    previousStartOffset: number | null;
    newStartOffset: number;
  }[];
}
