export { type Clock, systemClock, type Timer } from "@sluice/core";
export * from "./append/append-types.js";
export { UPLOAD_FAILED_AFTER_COMMIT, UPLOAD_TOO_LATE, UploadTooLateError } from "./append/appender.js";
export { COMMIT_WINDOW_MS, CommitWindowClosedError } from "./append/commit-window.js";
export type { AppendBatchesRequest, AppendBatchesResult, AppendedBatch } from "./append/raw-batches.js";
export {
  type CallerConditionFailure,
  type TopicAppend,
  TransactionalAppender,
  type TransactionalAppendRequest,
  type TransactionalAppendResult,
} from "./append/transactional.js";
export {
  IDEMPOTENCY_KEY_PATTERN,
  type RecordLabels,
  recordPayloadBytes,
  validateIdempotencyKey,
  validateRecord,
} from "./append/validate-append.js";
export { Engine, type EngineOptions, INLINE_MAX_BYTES_LIMIT, type ProducerIdentity } from "./engine.js";
export * from "./errors.js";
export { IndexReader, storedIndexEntries } from "./fetch/index-entries.js";
export {
  entryEnd,
  type IndexEntry,
  indexEntryFromItem,
  indexEntryItem,
  readableEntries,
  type SegmentPiece,
  type StoredIndexEntry,
} from "./fetch/index-entry.js";
export {
  gapBatch,
  type MissingObjectState,
  mayBePending,
  PENDING_UPLOAD_MS,
  settleMissingObject,
} from "./fetch/missing-objects.js";
export type {
  ConsumedRecord,
  FetchBatchesResult,
  FetchRequest,
  FetchResult,
  PartitionOffsets,
} from "./fetch/reader.js";
export { StaleIndexError } from "./fetch/reader.js";
export { timeIndexStart } from "./fetch/time-index.js";
export * as keys from "./keys.js";
export { LruCache } from "./lru-cache.js";
export * from "./maintenance-state.js";
export type { TopicSettings } from "./topics/topic-configs.js";
export {
  COMPRESSION_TYPES,
  effectiveConfigs,
  TOPIC_CONFIG_DEFAULTS,
  type TopicConfigName,
  type TopicConfigs,
  validateTopicConfigs,
} from "./topics/topic-configs.js";
export {
  type CreateTopicRequest,
  PARTITIONS_MAX,
  type Topic,
  validateTopicName,
} from "./topics/topic-registry.js";
