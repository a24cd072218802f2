import { handle } from "hono/aws-lambda";
import { createApp } from "./app.js";
import { createEngineFromEnv } from "./aws-engine.js";

/**
 * The Lambda entry point (Function URL, payload format 2.0, buffered). The engine is built once
 * per execution environment, so its caches (topics, heads, index entries, batches) outlive a
 * single invocation. A missing variable fails the cold start with a message naming it.
 */
const { engine, metadata, clusterId } = createEngineFromEnv();

// Without SLUICE_PUBLIC_URL, links use the Function URL's domain, which AWS sets, not the Host header.
const publicUrl = process.env.SLUICE_PUBLIC_URL || undefined;
export const handler = handle(
  createApp({ engine, metadata, clusterId, ...(publicUrl ? { publicUrl } : {}) }),
);
