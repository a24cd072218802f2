import { randomBytes } from "node:crypto";
import { ConditionFailedError, cond, type ItemKey, type MetadataStore } from "@sluice/storage";

/** Where the local server keeps its cluster id in the metadata store. */
export const CLUSTER_IDENTITY_KEY: ItemKey = { pk: "cluster", sk: "identity" };

/**
 * The cluster id stored in `metadata`, created on first use: 22 characters of base64url (128 random
 * bits, the shape of Kafka's cluster ids). Two processes starting at once on a fresh store agree,
 * because the id is written with a `not_exists` condition and the loser rereads the winner's.
 */
export async function loadClusterId(metadata: MetadataStore): Promise<string> {
  const existing = await metadata.get(CLUSTER_IDENTITY_KEY);
  if (typeof existing?.clusterId === "string") return existing.clusterId;
  const clusterId = randomBytes(16).toString("base64url");
  try {
    await metadata.put(
      { ...CLUSTER_IDENTITY_KEY, clusterId, createdAt: new Date().toISOString() },
      { condition: cond.notExists("pk") },
    );
    return clusterId;
  } catch (error) {
    if (error instanceof ConditionFailedError && typeof error.current?.clusterId === "string") {
      return error.current.clusterId;
    }
    throw error;
  }
}
