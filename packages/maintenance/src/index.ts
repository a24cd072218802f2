export { type CompactionOutcome, compactPartition, planSegments } from "./compaction.js";
export { collectGarbage, type GarbageOutcome } from "./garbage-collection.js";
export { HeldLease, type JobContext, tryAcquire } from "./job-context.js";
export { compactKeys } from "./key-compaction.js";
export { type PartitionLog, readPartitionLog, sizeOf } from "./partition-log.js";
export { type DeletionJob, listDeletionJobs, type PurgeOutcome, purgeTopic } from "./purge.js";
export { applyRetention, expiredPrefix, type RetentionOutcome } from "./retention.js";
export {
  emptyReport,
  type JobFailure,
  MaintenanceRunner,
  type MaintenanceRunnerOptions,
  PARTITION_JOBS,
  type PartitionJobName,
  type RunOptions,
  type RunReport,
} from "./runner.js";
export {
  type MaintenanceSchedule,
  type MaintenanceScheduleOptions,
  startMaintenanceSchedule,
} from "./schedule.js";
export { type SegmentContent, segmentFromBatches } from "./segment.js";
export { DEFAULT_MAINTENANCE_SETTINGS, type MaintenanceSettings, maintenanceSettings } from "./settings.js";
export { buildTimeIndex, type TimeIndexOutcome } from "./time-index.js";
