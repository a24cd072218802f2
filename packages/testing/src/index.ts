export { awsClientConfig, hasAwsEndpoint } from "./aws.js";
export * from "./delaying-store.js";
export * from "./history-checker.js";
export * from "./lease-checker.js";
export { uniqueName } from "./names.js";
export * from "./recording-store.js";
export * from "./replay.js";
export * from "./simulated-clock.js";
export * from "./store-wrappers.js";
