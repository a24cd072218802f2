import { randomBytes } from "node:crypto";

/**
 * A unique, lowercase resource name valid for S3 buckets and DynamoDB tables, so concurrent runs
 * against one endpoint never collide: `sluice-test-<purpose>-<time>-<random>`.
 */
export function uniqueName(purpose: string): string {
  const clean = purpose
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 20);
  return `sluice-test-${clean}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}
