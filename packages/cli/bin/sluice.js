#!/usr/bin/env node
// Runs the CLI from its bundle (packages/cli/dist/sluice.mjs), which starts in a fraction of the
// time the TypeScript sources take through tsx. The bundle is built by `npm ci` (the root
// `prepare` script) and rebuilt here when a source has changed since; if it cannot be built
// (no esbuild, a read-only checkout), the sources run through tsx instead.
// SLUICE_CLI_DEBUG=1 says on stderr which of the two runs.
import { freshBundle } from "../bundle.mjs";

const bundle = await freshBundle();
if (process.env.SLUICE_CLI_DEBUG === "1") {
  process.stderr.write(
    `sluice: running ${bundle ? "the bundle dist/sluice.mjs" : "the sources through tsx"}\n`,
  );
}
if (bundle) {
  await import(bundle);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/main.ts");
}
