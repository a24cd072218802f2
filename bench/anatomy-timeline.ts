/**
 * Timelines for `npm run bench -- anatomy`, on the clock every process on the machine shares
 * (CLOCK_MONOTONIC, `process.hrtime.bigint()`), so the client's and the server's line up.
 *
 * Imported into the local server (`--import` after tsx, bench/anatomy.ts), this module times
 * each HTTP request there, from its `request` event to the call of `res.end` that answers it, and
 * writes those times, with the server's garbage collections, to `SLUICE_ANATOMY_SERVER_OUT` when
 * the server exits. The client side (bench/client-process.ts, kind `sluice-sdk-timeline`) records
 * its own with `recordCollections`.
 */
import { writeFileSync } from "node:fs";
import { type IncomingMessage, Server, type ServerResponse } from "node:http";
import { PerformanceObserver } from "node:perf_hooks";

/** A process's collections as [start ns, duration ns] pairs, on the shared clock. */
export type Collections = [number, number][];

/** Records this process's garbage collections (every kind) from now on, into the array returned. */
export function recordCollections(): Collections {
  // performance.now() and hrtime read the same monotonic clock; this is their offset in ns.
  const offsetNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
  const collections: Collections = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      collections.push([offsetNs + entry.startTime * 1e6, entry.duration * 1e6]);
    }
  }).observe({ entryTypes: ["gc"] });
  return collections;
}

/**
 * What each side writes: per request, [start ns, end ns] in order (the server: its `request` event
 * and its `res.end`; the client: its `produce` call and the settling), and its collections.
 */
export interface Timeline {
  requests: [number, number][];
  collections: Collections;
}

const out = process.env.SLUICE_ANATOMY_SERVER_OUT;
if (out) {
  const requests: [number, number][] = [];
  const collections = recordCollections();
  const emit = Server.prototype.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  // Wraps the one place every request passes through, before the app sees it.
  Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "request") {
      const timing: [number, number] = [Number(process.hrtime.bigint()), 0];
      requests.push(timing);
      const response = args[1] as ServerResponse<IncomingMessage>;
      const end = response.end;
      response.end = function (this: ServerResponse, ...endArgs: unknown[]) {
        timing[1] = Number(process.hrtime.bigint());
        return (end as (...a: unknown[]) => ServerResponse).apply(this, endArgs);
      } as typeof response.end;
    }
    return emit.call(this, event, ...args);
  } as typeof Server.prototype.emit;
  process.once("exit", () => writeFileSync(out, JSON.stringify({ requests, collections })));
}
