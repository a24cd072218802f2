export {
  type CreateOptions,
  describeStored,
  type PartitionDescription,
  ProcessorAdmin,
  type ProcessorAdminOptions,
  type ProcessorDescription,
  type ProcessorDetails,
  type ResetTarget,
} from "./admin.js";
export { DEAD_LETTER_HEADERS, deadLetter } from "./dead-letter.js";
export * from "./definition.js";
export { compileFilter } from "./filter.js";
export {
  type HandlerCall,
  type HandlerInvoker,
  Handlers,
  type InvokerOptions,
  type LambdaInvokeClient,
  type ModuleResolver,
} from "./handlers/invoker.js";
export { type HandlerOutput, type HandlerResult, MalformedResultError } from "./handlers/result.js";
export { fromEventResult, toEvent } from "./handlers/wire.js";
export * from "./keys.js";
export { combineEvents, processorMetrics } from "./metrics.js";
export {
  decodeOffsets,
  encodeOffsets,
  type Progress,
  progressFromItem,
  type RetryState,
} from "./progress.js";
export { isSpent, retryDelayMs, retryStallMs } from "./retry.js";
export {
  type CommittedEvent,
  type HandlerCalledEvent,
  LOOKAHEAD_RECORDS_MAX,
  PartitionRunner,
  type ProcessorEvents,
  type RecordFailedEvent,
  type RunnerOptions,
  type RunOutcome,
  type RunResult,
} from "./runner.js";
export { ProcessorRuntime, type ProcessorRuntimeOptions, type RuntimeEvents } from "./runtime.js";
export { type ProcessorState, ProcessorStore, type StoredProcessor } from "./store.js";
export { EventLoopTurns, type Turns } from "./turns.js";
