import { Engine } from "@sluice/engine";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { describe, expect, it } from "vitest";
import { createApp } from "./app.js";

function app(publicUrl?: string) {
  const metadata = new MemoryMetadataStore();
  return createApp({
    engine: new Engine({ objects: new MemoryObjectStore(), metadata }),
    metadata,
    clusterId: "c",
    ...(publicUrl === undefined ? {} : { publicUrl }),
  });
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

/** A request as a server builds it from the Host header a client chose. */
const fromHost = (host: string, path: string, init?: RequestInit) =>
  new Request(`http://${host}${path}`, init);

describe("links and the public URL", () => {
  it("ignores the request's host when a public URL is set", async () => {
    const served = app("https://sluice.example.com/");
    const clusters = (await (
      await served.fetch(fromHost("attacker.example", "/v3/clusters"))
    ).json()) as Json;
    expect(clusters.metadata.self).toBe("https://sluice.example.com/v3/clusters");
    expect(clusters.data[0].topics.related).toBe("https://sluice.example.com/v3/clusters/c/topics");
    const created = await served.fetch(
      fromHost("x", "/v3/clusters/c/topics", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic_name: "t" }),
      }),
    );
    expect(created.headers.get("location")).toBe("https://sluice.example.com/v3/clusters/c/topics/t");
  });

  it("keeps a public URL's path as a prefix", async () => {
    const response = await app("https://proxy.example/sluice").fetch(fromHost("x", "/v3/clusters"));
    const clusters = (await response.json()) as Json;
    expect(clusters.metadata.self).toBe("https://proxy.example/sluice/v3/clusters");
  });

  it("without one, uses the request's origin only when its host is a plain host[:port]", async () => {
    const served = app();
    const plain = (await (await served.fetch(fromHost("127.0.0.1:8080", "/v3/clusters"))).json()) as Json;
    expect(plain.metadata.self).toBe("http://127.0.0.1:8080/v3/clusters");
    const odd = (await (await served.fetch(fromHost("under_score.example", "/v3/clusters"))).json()) as Json;
    expect(odd.metadata.self).toBe("/v3/clusters");
  });

  it("refuses a public URL that is not http(s) or carries a query", () => {
    for (const bad of ["sluice.example.com", "ftp://x", "https://x/?a=1", "https://user@x"]) {
      expect(() => app(bad), bad).toThrow(/invalid public URL/);
    }
  });
});
