export { awsClientConfig, hasAwsEndpoint } from "./aws.js";
export { uniqueName } from "./names.js";
export * from "./simulated-clock.js";
export * from "./store-wrappers.js";
