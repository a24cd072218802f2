export { LoopPoller, type LoopPollOptions } from "./loop-poller.js";
