export {
  ACKNOWLEDGE_TYPES,
  type Acknowledgement,
  type AcknowledgementOutcome,
  type AcknowledgementResult,
  type AcknowledgeType,
} from "./acknowledge.js";
export { type AcquiredRecord, FRESH_BATCH_RECORDS_MAX } from "./acquire.js";
export * from "./configs.js";
export { DEAD_LETTER_HEADERS, type DeadLetterReason, deadLetterKey } from "./dead-letters.js";
export * from "./errors.js";
export * from "./keys.js";
export { collectShareGroupMetrics, ShareGroupMeter } from "./metrics.js";
export * from "./share-groups.js";
export {
  decodeRuns,
  encodeRuns,
  loadWindow,
  type SharePartition,
  type Slot,
  type SlotState,
  type Window,
} from "./window.js";
