import { describe, expect, it } from "vitest";
import { anatomyOf } from "./anatomy.js";
import { Spans, type Timeline } from "./anatomy-timeline.js";

const US = 1000; // ns

/**
 * A client and a server timeline of `count` requests, 1 ms apart: in 20 µs, server 100 µs, out
 * 30 µs, except where `slow` says otherwise. The server also saw one request before them.
 */
function timelines(
  count: number,
  slow: Record<number, { in?: number; server?: number; out?: number }> = {},
): { client: Timeline; server: Timeline } {
  const client: Timeline = { requests: [], collections: [] };
  const server: Timeline = { requests: [[0, 50 * US]], collections: [] };
  for (let i = 0; i < count; i++) {
    const sent = (i + 1) * 1000 * US;
    const segments = { in: 20, server: 100, out: 30, ...slow[i] };
    const arrived = sent + segments.in * US;
    const answered = arrived + segments.server * US;
    client.requests.push([sent, answered + segments.out * US]);
    server.requests.push([arrived, answered]);
  }
  return { client, server };
}

describe("anatomyOf", () => {
  it("splits each request into its three segments, after the skipped ones", () => {
    const { client, server } = timelines(200, { 150: { server: 900 }, 10: { out: 5000 } });
    const anatomy = anatomyOf(client, server, 100);
    expect(anatomy.p50Us).toEqual({ in: 20, server: 100, out: 30, total: 150 });
    // 100 requests in the window: the p99 is the 99th smallest, still a usual one; the slow set
    // is everything at or over it. Request 10 (slow out) is in the skipped part.
    expect(anatomy.p99Us.server).toBe(100);
    expect(anatomy.slow).toBe(100);
  });

  it("names the segment that grew most, and counts collections in each process", () => {
    // The window is the last 100 of 300 requests; three slow ones at its end, one per segment.
    const { client, server } = timelines(300, {
      297: { in: 600 },
      298: { server: 700 },
      299: { out: 800 },
    });
    const start = (i: number) => client.requests[i]![0];
    server.collections.push([start(298) + 50 * US, 200 * US]); // during request 298
    client.collections.push([start(299) + 200 * US, 300 * US]); // during request 299
    client.collections.push([start(10), 1 * US]); // before the window
    const anatomy = anatomyOf(client, server, 200);
    // Nearest rank: the 99th of 100 totals, request 298's 20 + 700 + 30 µs.
    expect(anatomy.p99Us.total).toBe(750);
    expect(anatomy.slow).toBe(2);
    expect(anatomy.slowGrewMost).toEqual({ in: 0, server: 1, out: 1 });
    expect(anatomy.slowWithServerCollection).toBe(1);
    expect(anatomy.slowWithClientCollection).toBe(1);
    expect(anatomy.slowWithEither).toBe(2);
    expect(anatomy.serverCollections).toBe(1);
    expect(anatomy.clientCollections).toBe(1);
    expect(anatomy.clientCollectionMaxMs).toBe(0.3);
  });

  it("refuses timelines whose times do not nest", () => {
    const { client, server } = timelines(10);
    server.requests[5]![1] = client.requests[4]![1] + 10 * US; // answered after the client settled
    expect(() => anatomyOf(client, server, 0)).toThrow(/request 4: .* do not nest/);
  });

  it("refuses a server timeline shorter than the client's", () => {
    const { client, server } = timelines(10);
    server.requests.splice(0, 3);
    expect(() => anatomyOf(client, server, 0)).toThrow(/fewer than the client's/);
  });
});

describe("Spans", () => {
  it("keeps every span past its first capacity, in order, on the shared clock", () => {
    const spans = new Spans();
    const before = Number(process.hrtime.bigint());
    const indexes: number[] = [];
    for (let i = 0; i < 70_000; i++) indexes.push(spans.start()); // over the first 65,536
    for (const index of indexes.reverse()) spans.end(index);
    const after = Number(process.hrtime.bigint());
    const shared = spans.toShared();
    expect(shared).toHaveLength(70_000);
    // Within a microsecond of hrtime's reading: the two clocks agree to well under that.
    expect(shared[0]![0]).toBeGreaterThanOrEqual(before - 1000);
    expect(shared.at(-1)![1]).toBeLessThanOrEqual(after + 1000);
    for (let i = 1; i < shared.length; i++) expect(shared[i]![0]).toBeGreaterThanOrEqual(shared[i - 1]![0]);
    // Ended in reverse: the first span ended last.
    expect(shared[0]![1]).toBeGreaterThanOrEqual(shared.at(-1)![1]);
  });
});
