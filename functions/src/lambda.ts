import { createLambdaHandler } from "./lambda-handler.js";

/**
 * The Lambda entry point (Function URL, payload format 2.0, buffered; and the monitoring
 * schedule's lag collection). Everything is built once per execution environment, so the
 * engine's caches (topics, heads, index entries, batches) outlive a single invocation. A missing
 * variable fails the cold start with a message naming it.
 */
export const handler = createLambdaHandler();
