/**
 * The methods each known path answers, from the app's own route table, for 405 answers and their
 * `Allow` header. Hono's `:name` segments match any one segment; `records:batch` is a literal
 * segment (its colon is not at the start). Middleware (method ALL) says nothing about methods.
 */
export function allowedMethods(
  routes: readonly { method: string; path: string }[],
): (path: string) => string[] {
  const patterns = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const { method, path } of routes) {
    if (method === "ALL") continue;
    let entry = patterns.get(path);
    if (!entry) {
      entry = { pattern: patternOf(path), methods: new Set() };
      patterns.set(path, entry);
    }
    entry.methods.add(method);
    // Hono answers HEAD with the GET route, body left off.
    if (method === "GET") entry.methods.add("HEAD");
  }
  return (path) => {
    const methods = new Set<string>();
    for (const entry of patterns.values()) {
      if (entry.pattern.test(path)) for (const method of entry.methods) methods.add(method);
    }
    return [...methods].sort();
  };
}

function patternOf(path: string): RegExp {
  const segments = path
    .split("/")
    .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${segments.join("/")}/?$`);
}
