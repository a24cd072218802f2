/**
 * Timelines for `npm run bench -- anatomy`, on the clock every process on the machine shares
 * (CLOCK_MONOTONIC, as `process.hrtime` reads it), so the client's and the server's line up.
 *
 * Imported into the local server (`--import` after tsx, bench/anatomy.ts), this module times
 * each HTTP request there, from its `request` event to the call of `res.end` that answers it, and
 * writes those times, with the server's garbage collections, to `SLUICE_ANATOMY_SERVER_OUT` when
 * the server exits. The client side (bench/client-process.ts, kind `sluice-sdk-timeline`) records
 * its own with the same `Spans` and `recordCollections`.
 *
 * Recording must not change what it records: the times go into a preallocated `Float64Array`
 * (no object per request, nothing for the collector to copy), read with `performance.now()`, and
 * are moved onto the shared clock only when written out.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { type IncomingMessage, Server, type ServerResponse } from "node:http";
import { PerformanceObserver } from "node:perf_hooks";

/** A process's collections as [start ns, duration ns] pairs, on the shared clock. */
export type Collections = [number, number][];

/**
 * What each side writes: per request [start ns, end ns] in order, its collections, and (for
 * bench/anatomy-sched.ts) its process id and its threads' ids.
 */
export interface Timeline {
  requests: [number, number][];
  collections: Collections;
  pid?: number;
  threads?: number[];
}

/** This process's thread ids, from /proc (Linux); none elsewhere. */
export function threadIds(): number[] {
  try {
    return readdirSync("/proc/self/task").map(Number);
  } catch {
    return [];
  }
}

/**
 * `performance.now()` (ms since this process's time origin) to the shared clock's ns. Both read
 * the same clock; a pause between the two reads can only make a sample smaller than the true
 * offset, so the largest of a few is it.
 */
function sharedClockOffsetNs(): number {
  let offset = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < 16; i++)
    offset = Math.max(offset, Number(process.hrtime.bigint()) - performance.now() * 1e6);
  return offset;
}

/** Start and end times of spans, in a growing `Float64Array`: no allocation per span. */
export class Spans {
  #times = new Float64Array(2 * 65_536);
  #count = 0;

  /** Starts a span now; returns its index for `end`. */
  start(): number {
    if (2 * this.#count === this.#times.length) {
      const grown = new Float64Array(2 * this.#times.length);
      grown.set(this.#times);
      this.#times = grown;
    }
    this.#times[2 * this.#count] = performance.now();
    return this.#count++;
  }

  end(index: number): void {
    this.#times[2 * index + 1] = performance.now();
  }

  /** Every span so far as [start ns, end ns] on the shared clock. */
  toShared(): [number, number][] {
    const offset = sharedClockOffsetNs();
    return Array.from({ length: this.#count }, (_, i) => [
      offset + this.#times[2 * i]! * 1e6,
      offset + this.#times[2 * i + 1]! * 1e6,
    ]);
  }
}

/** Records this process's garbage collections (every kind) from now on, into the array returned. */
export function recordCollections(): Collections {
  const offsetNs = sharedClockOffsetNs();
  const collections: Collections = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      collections.push([offsetNs + entry.startTime * 1e6, entry.duration * 1e6]);
    }
  }).observe({ entryTypes: ["gc"] });
  return collections;
}

const out = process.env.SLUICE_ANATOMY_SERVER_OUT;
if (out) {
  const spans = new Spans();
  const collections = recordCollections();
  const emit = Server.prototype.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  // Wraps the one place every request passes through, before the app sees it.
  Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "request") {
      const span = spans.start();
      const response = args[1] as ServerResponse<IncomingMessage>;
      const end = response.end;
      response.end = function (this: ServerResponse, ...endArgs: unknown[]) {
        spans.end(span);
        return (end as (...a: unknown[]) => ServerResponse).apply(this, endArgs);
      } as typeof response.end;
    }
    return emit.call(this, event, ...args);
  } as typeof Server.prototype.emit;
  process.once("exit", () => {
    const timeline: Timeline = {
      requests: spans.toShared(),
      collections,
      pid: process.pid,
      threads: threadIds(),
    };
    writeFileSync(out, JSON.stringify(timeline));
  });
}
