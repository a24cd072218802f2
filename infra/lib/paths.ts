import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The repository root: infra/lib/ sits two levels below it. */
export const REPO_ROOT = join(import.meta.dirname, "..", "..");

/** The Lambda entry of the HTTP apps: `export const handler = handle(app)` (hono/aws-lambda). */
export const DEFAULT_API_ENTRY = join(REPO_ROOT, "functions", "src", "lambda.ts");

export interface BundlingRoot {
  /** The directory esbuild resolves and bundles from; the entry must be inside it. */
  projectRoot: string;
  /** The lockfile whose content is part of the asset hash. */
  depsLockFilePath: string;
}

/**
 * The project an entry belongs to: the nearest directory above it holding a package-lock.json
 * (the repository root for every entry in this repository).
 */
export function bundlingRootOf(entry: string): BundlingRoot {
  let dir = dirname(resolve(entry));
  for (;;) {
    const lockFile = join(dir, "package-lock.json");
    if (existsSync(lockFile)) return { projectRoot: dir, depsLockFilePath: lockFile };
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return { projectRoot: REPO_ROOT, depsLockFilePath: join(REPO_ROOT, "package-lock.json") };
}
