export { checkLoopPollOptions, LoopPoller, type LoopPollOptions } from "./loop-poller.js";
