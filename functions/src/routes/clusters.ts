import { createRoute, z } from "@hono/zod-openapi";
import type { AppContext, SluiceApp } from "../context.js";
import { clusterResource, urlOf } from "../resources.js";
import {
  ClusterParamsSchema,
  COMMON_ERRORS,
  errorResponses,
  ListMetadataSchema,
  RelatedSchema,
  ResourceMetadataSchema,
} from "../schemas.js";

export const ClusterSchema = z
  .object({
    kind: z.literal("KafkaCluster"),
    metadata: ResourceMetadataSchema,
    cluster_id: z.string(),
    topics: RelatedSchema,
  })
  .openapi("Cluster");

const ClusterListSchema = z
  .object({ kind: z.literal("KafkaClusterList"), metadata: ListMetadataSchema, data: z.array(ClusterSchema) })
  .openapi("ClusterList");

const listClusters = createRoute({
  method: "get",
  path: "/v3/clusters",
  tags: ["Clusters"],
  summary: "List clusters",
  description: "One deployment serves one cluster, so the list has one entry.",
  responses: {
    200: { description: "The clusters", content: { "application/json": { schema: ClusterListSchema } } },
    ...errorResponses(500),
  },
});

const getCluster = createRoute({
  method: "get",
  path: "/v3/clusters/{cluster_id}",
  tags: ["Clusters"],
  summary: "Get a cluster",
  request: { params: ClusterParamsSchema },
  responses: {
    200: { description: "The cluster", content: { "application/json": { schema: ClusterSchema } } },
    ...errorResponses(...COMMON_ERRORS),
  },
});

export function registerClusterRoutes(app: SluiceApp, context: AppContext): void {
  app.openapi(listClusters, (c) =>
    c.json(
      {
        kind: "KafkaClusterList" as const,
        metadata: { self: urlOf(c, "/v3/clusters"), next: null },
        data: [clusterResource(c, context.clusterId)],
      },
      200,
    ),
  );
  app.openapi(getCluster, (c) => c.json(clusterResource(c, context.clusterId), 200));
}
