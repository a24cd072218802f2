import { ConflictError, NotFoundError } from "@sluice/core";
import { PrometheusMetrics } from "@sluice/telemetry/prometheus";
import { parsePrometheusText, sampleValue } from "@sluice/testing";
import { describe, expect, it } from "vitest";
import { cond } from "./metadata-store/condition.js";
import { MemoryMetadataStore } from "./metadata-store/memory.js";
import { runMetadataStoreContract } from "./metadata-store/metadata-store.contract.js";
import { MeteredMetadataStore, MeteredObjectStore } from "./metered.js";
import { MemoryObjectStore } from "./object-store/memory.js";
import { runObjectStoreContract } from "./object-store/object-store.contract.js";

// Measuring changes nothing: the wrappers pass the ports' contracts.
runObjectStoreContract({
  name: "metered memory",
  create: async () => ({
    store: new MeteredObjectStore(new MemoryObjectStore(), new PrometheusMetrics(), "memory"),
  }),
});
runMetadataStoreContract({
  name: "metered memory",
  create: async () => ({
    store: new MeteredMetadataStore(new MemoryMetadataStore(), new PrometheusMetrics(), "memory"),
  }),
});

describe("metered stores", () => {
  it("count each call by operation and result, and time it", async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const objects = new MeteredObjectStore(new MemoryObjectStore(), metrics, "filesystem");
    const metadata = new MeteredMetadataStore(new MemoryMetadataStore(), metrics, "sqlite");
    await objects.put("a", new Uint8Array(3));
    await expect(objects.put("a", new Uint8Array(3), { condition: { ifNoneMatch: "*" } })).rejects.toThrow(
      ConflictError,
    );
    await objects.get("a");
    await expect(objects.get("missing")).rejects.toThrow(NotFoundError);
    await metadata.put({ pk: "p", sk: "s" });
    await expect(metadata.put({ pk: "p", sk: "s" }, { condition: cond.notExists("pk") })).rejects.toThrow(
      ConflictError,
    );
    await metadata.query({ pk: "p" });

    const samples = parsePrometheusText(await metrics.exposition());
    const requests = (backend: string, operation: string, result: string) =>
      sampleValue(samples, "sluice_storage_requests_total", { backend, operation, result });
    expect(requests("filesystem", "put", "ok")).toBe(1);
    expect(requests("filesystem", "put", "conflict")).toBe(1);
    expect(requests("filesystem", "get", "ok")).toBe(1);
    expect(requests("filesystem", "get", "not_found")).toBe(1);
    expect(requests("sqlite", "put", "ok")).toBe(1);
    expect(requests("sqlite", "put", "conflict")).toBe(1);
    expect(requests("sqlite", "query", "ok")).toBe(1);
    const latency = (backend: string, operation: string) =>
      sampleValue(samples, "sluice_storage_latency_seconds_count", { backend, operation });
    expect(latency("filesystem", "put")).toBe(2);
    expect(latency("filesystem", "get")).toBe(2);
    expect(latency("sqlite", "query")).toBe(1);
    expect(samples.filter((sample) => sample.name === "sluice_storage_requests_total")).toHaveLength(7);
  });
});
