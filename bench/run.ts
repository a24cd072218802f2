/**
 * `npm run bench -- <name> [--json] [...]`: runs one benchmark. Each prints a table of figures
 * and ratios against its targets; with --json its last line is one JSON object.
 */
const benchmarks: Record<string, () => Promise<{ main: (args: string[]) => Promise<void> }>> = {
  anatomy: () => import("./anatomy.js"),
  aws: () => import("./aws-model.js"),
  engine: () => import("./engine.js"),
  groups: () => import("./groups.js"),
  http: () => import("./http.js"),
  maintenance: () => import("./maintenance.js"),
  peers: () => import("./peers.js"),
  queues: () => import("./queues.js"),
  processors: () => import("./processors.js"),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? benchmarks[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benchmarks).join("|")}> [--json]\n`);
  process.exit(2);
}
await (await load()).main(args);
