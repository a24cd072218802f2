import { createRoute, z } from "@hono/zod-openapi";
import type { AppContext, SluiceApp } from "../context.js";
import { urlOf } from "../resources.js";

const RootSchema = z
  .object({
    name: z.literal("Sluice"),
    version: z.string().openapi({ description: "The HTTP API's version" }),
    cluster_id: z.string(),
    links: z.object({
      docs: z.string().openapi({ description: "This API as a page" }),
      openapi: z.string().openapi({ description: "This API as OpenAPI 3.1" }),
      clusters: z.string().openapi({ description: "Where the v3 resources start" }),
      health: z.string(),
    }),
  })
  .openapi("Root");

const HealthSchema = z.object({ status: z.literal("ok") }).openapi("Health");

const root = createRoute({
  method: "get",
  path: "/",
  tags: ["Service"],
  summary: "What this is: the cluster, the version and where to start",
  description: "JSON, or a small HTML page for a client whose Accept header prefers text/html (a browser).",
  responses: {
    200: {
      description: "The cluster, the version and links",
      content: {
        "application/json": { schema: RootSchema },
        "text/html": { schema: { type: "string" } },
      },
    },
  },
});

const health = createRoute({
  method: "get",
  path: "/health",
  tags: ["Service"],
  summary: "Liveness, for load balancers",
  description:
    "200 while the process serves requests. It reads no storage, so probes cost nothing and a storage outage shows as 503s on the API rather than as a dead instance.",
  responses: {
    200: { description: "Serving", content: { "application/json": { schema: HealthSchema } } },
  },
});

/** Whether the client lists HTML before JSON: a browser does, curl and fetch ask for any type. */
function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = accept.indexOf("text/html");
  if (html < 0) return false;
  const json = accept.indexOf("application/json");
  return json < 0 || html < json;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

export function registerRootRoutes(app: SluiceApp, context: AppContext, version: string): void {
  app.openapi(root, (c) => {
    const body = {
      name: "Sluice" as const,
      version,
      cluster_id: context.clusterId,
      links: {
        docs: urlOf(c, "/docs"),
        openapi: urlOf(c, "/openapi.json"),
        clusters: urlOf(c, "/v3/clusters"),
        health: urlOf(c, "/health"),
      },
    };
    if (prefersHtml(c.req.header("accept"))) {
      const cluster = escapeHtml(context.clusterId);
      return c.html(
        [
          "<!doctype html>",
          '<html lang="en"><head><meta charset="utf-8"><title>Sluice</title></head><body>',
          `<h1>Sluice ${escapeHtml(version)}</h1>`,
          `<p>Cluster <code>${cluster}</code>: Kafka-style topics, partitions and offsets over HTTP.</p>`,
          "<ul>",
          '<li><a href="/docs">/docs</a>: the API, route by route</li>',
          '<li><a href="/openapi.json">/openapi.json</a>: the same as OpenAPI 3.1</li>',
          '<li><a href="/v3/clusters">/v3/clusters</a>: the Confluent REST v3 resources</li>',
          "</ul></body></html>",
        ].join("\n"),
        200,
      ) as never;
    }
    return c.json(body, 200);
  });
  app.openapi(health, (c) => c.json({ status: "ok" as const }, 200));
}
