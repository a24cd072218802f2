export * from "./assignors/index.js";
export {
  type AutoOffsetReset,
  ConsumerGroups,
  type ConsumerGroupsOptions,
  describeState,
  type GroupDescription,
  type GroupStateName,
  type MemberDescription,
  type OffsetResetPlan,
  type OffsetResetSpec,
  type PartitionLag,
} from "./consumer-groups.js";
export {
  type CoordinatorOptions,
  decide,
  GroupCoordinator,
  type HeartbeatRequest,
  type HeartbeatResponse,
  JOIN_EPOCH,
  LEAVE_EPOCH,
  SESSION_TIMEOUT_MS_DEFAULT,
  STATIC_LEAVE_EPOCH,
} from "./coordinator.js";
export * from "./errors.js";
export * from "./keys.js";
export { collectConsumerGroupLag, lagWithAge, type PartitionLagWithAge } from "./lag-metrics.js";
export { type CommittedOffset, type OffsetCommit, OffsetStore } from "./offsets.js";
export {
  type CreateInstanceRequest,
  instanceNotFound,
  type PolledRecord,
  type PollOptions,
  partitionKey,
  REST_ERROR_CODES,
  REST_MAX_BYTES_DEFAULT,
  REST_REQUEST_TIMEOUT_MS_DEFAULT,
  REST_SESSION_TIMEOUT_MS_DEFAULT,
  type RestConsumerFormat,
  type RestConsumerInstance,
  type RestConsumerSettings,
  RestConsumers,
  type RestConsumersOptions,
  validateInstanceName,
} from "./rest-consumers.js";
export { type GroupMeta, type GroupState, loadGroupState, type MemberRecord, tpKey } from "./state.js";
