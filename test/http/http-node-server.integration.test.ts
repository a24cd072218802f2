import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { CountingMetadataStore, CountingObjectStore } from "@sluice/testing";
import { afterAll, beforeAll } from "vitest";
import { requestOverUrl, runHttpSuite } from "./http-suite.js";
import { maintenanceOver } from "./maintenance-cases.js";

/**
 * The HTTP apps behind a real socket (@hono/node-server on an ephemeral port), driven with fetch
 * through `requestOverUrl`: what in-process requests cannot show — Content-Length, chunked
 * uploads, early answers to large bodies, SSE over a connection the client closes.
 */
const CLUSTER_ID = "socket-cluster";
const objects = new CountingObjectStore(new MemoryObjectStore());
const metadata = new CountingMetadataStore(new MemoryMetadataStore());
let server: ReturnType<typeof serve> | undefined;
let baseUrl: string | undefined;

beforeAll(async () => {
  const app = createApp({ engine: new Engine({ objects, metadata }), metadata, clusterId: CLUSTER_ID });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      baseUrl = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server?.close((error) => (error ? reject(error) : resolve())));
});

runHttpSuite({
  name: "node server over a socket",
  request: requestOverUrl(() => {
    if (!baseUrl) throw new Error("the server did not start; see the beforeAll failure");
    return baseUrl;
  }),
  clusterId: () => CLUSTER_ID,
  counters: () => ({ objectWrites: objects.writes, metadataWrites: metadata.writes }),
  runMaintenance: maintenanceOver({ objects, metadata }),
});
