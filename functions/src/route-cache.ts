import type { Result, Router } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";

/** How many method-and-path answers the cache keeps before it starts again. */
export const ROUTE_CACHE_ENTRIES = 1024;

/**
 * Hono's router with its answers remembered by method and path. Our routes keep the trie router
 * (Hono's regular-expression router refuses `configs:alter` beside `configs/:name`), whose search
 * walks every pattern at each level of the path: about 20 µs of a single produce's 250 inside the
 * local server (docs/benchmarks.md). A producer sends the same method and path over and over, so
 * the same answer is looked up instead.
 *
 * An answer depends on the method, the path and the routes only, and Hono only reads it, so a
 * remembered one is the answer a search would give. Adding a route forgets them all. The paths
 * carry names users choose, so the cache is bounded: when full it is emptied and fills again with
 * what is asked now.
 */
export class CachedRouter<T> implements Router<T> {
  name = "CachedRouter";
  private readonly answers = new Map<string, Result<T>>();

  constructor(
    /** Hono's default: its regular-expression router where it takes the routes, else the trie. */
    private readonly inner: Router<T> = new SmartRouter<T>({
      routers: [new RegExpRouter<T>(), new TrieRouter<T>()],
    }),
    private readonly capacity = ROUTE_CACHE_ENTRIES,
  ) {}

  add(method: string, path: string, handler: T): void {
    this.answers.clear();
    this.inner.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    const key = `${method} ${path}`;
    const known = this.answers.get(key);
    if (known) return known;
    const answer = this.inner.match(method, path);
    if (this.answers.size >= this.capacity) this.answers.clear();
    this.answers.set(key, answer);
    return answer;
  }

  /** How many answers are remembered (for tests). */
  get size(): number {
    return this.answers.size;
  }
}
