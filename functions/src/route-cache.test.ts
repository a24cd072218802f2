import type { Result, Router } from "hono/router";
import { TrieRouter } from "hono/router/trie-router";
import { describe, expect, it } from "vitest";
import { CachedRouter } from "./route-cache.js";

const ROUTES: [string, string][] = [
  ["ALL", "/*"],
  ["GET", "/v3/clusters/:cluster_id/topics"],
  ["POST", "/v3/clusters/:cluster_id/topics/:topic_name/records"],
  ["GET", "/v3/clusters/:cluster_id/topics/:topic_name/configs/:name"],
  ["POST", "/v3/clusters/:cluster_id/topics/:topic_name/configs:alter"],
];

/** A trie router that counts its searches. */
class CountingRouter implements Router<string> {
  name = "counting";
  searches = 0;
  private readonly trie = new TrieRouter<string>();
  add(method: string, path: string, handler: string): void {
    this.trie.add(method, path, handler);
  }
  match(method: string, path: string): Result<string> {
    this.searches++;
    return this.trie.match(method, path);
  }
}

function routed<R extends Router<string>>(router: R): R {
  for (const [method, path] of ROUTES) router.add(method, path, `${method} ${path}`);
  return router;
}

describe("CachedRouter", () => {
  it("answers as the router it wraps, handlers and parameters alike", () => {
    const cached = routed(new CachedRouter<string>(new TrieRouter<string>()));
    const plain = routed(new TrieRouter<string>());
    const asked: [string, string][] = [
      ["POST", "/v3/clusters/c1/topics/orders/records"],
      ["POST", "/v3/clusters/c1/topics/payments/records"],
      ["GET", "/v3/clusters/c1/topics/orders/configs/retention.ms"],
      ["POST", "/v3/clusters/c1/topics/orders/configs:alter"],
      ["GET", "/v3/clusters/c1/topics"],
      ["DELETE", "/v3/clusters/c1/topics"],
      ["GET", "/nowhere"],
    ];
    for (let round = 0; round < 2; round++) {
      for (const [method, path] of asked)
        expect(cached.match(method, path)).toEqual(plain.match(method, path));
    }
  });

  it("searches once per method and path, and keeps each path's own parameters", () => {
    const inner = new CountingRouter();
    const cached = routed(new CachedRouter<string>(inner));
    const topicOf = (answer: Result<string>) => answer[0].at(-1)?.[1].topic_name;
    for (let i = 0; i < 5; i++) {
      expect(topicOf(cached.match("POST", "/v3/clusters/c1/topics/orders/records"))).toBe("orders");
      expect(topicOf(cached.match("POST", "/v3/clusters/c1/topics/payments/records"))).toBe("payments");
    }
    expect(inner.searches).toBe(2);
    cached.match("GET", "/v3/clusters/c1/topics/orders/records");
    expect(inner.searches).toBe(3);
  });

  it("forgets its answers when a route is added", () => {
    const cached = routed(new CachedRouter<string>(new TrieRouter<string>()));
    const path = "/v3/clusters/c1/brokers";
    expect(cached.match("GET", path)[0].map(([handler]) => handler)).toEqual(["ALL /*"]);
    cached.add("GET", "/v3/clusters/:cluster_id/brokers", "brokers");
    expect(cached.match("GET", path)[0].map(([handler]) => handler)).toEqual(["ALL /*", "brokers"]);
  });

  it("keeps at most its capacity of answers, however many paths are asked", () => {
    const inner = new CountingRouter();
    const cached = routed(new CachedRouter<string>(inner, 8));
    for (let i = 0; i < 100; i++) {
      cached.match("POST", `/v3/clusters/c1/topics/topic-${i}/records`);
      expect(cached.size).toBeLessThanOrEqual(8);
    }
    expect(inner.searches).toBe(100);
    // What is asked now is remembered again.
    cached.match("POST", "/v3/clusters/c1/topics/topic-99/records");
    expect(inner.searches).toBe(100);
  });
});
