// The CLI as one bundled ES module, so a command starts without compiling TypeScript.
// Plain JavaScript: it runs before anything can load TypeScript (from bin/sluice.js and from the
// root package's `prepare` script, which npm runs after `npm ci`).
//
// The bundle's first line records a hash of every source file it was built from; the bundle is
// fresh while each of those files still has that hash. Writes go through a temporary file and a
// rename, so concurrent runs never see half a bundle.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, extname, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_ENTRY = resolve(HERE, "src/main.ts");
export const DEFAULT_OUTFILE = resolve(HERE, "dist/sluice.mjs");
const MARK = "// sluice-bundle-inputs ";

function sha1(content) {
  return createHash("sha1").update(content).digest("hex");
}

/**
 * The source hashes recorded in `outfile` (paths relative to its directory), or undefined when
 * there is no bundle or it does not carry them.
 */
function recordedInputs(outfile) {
  let text;
  try {
    text = readFileSync(outfile, "utf8");
  } catch {
    return undefined;
  }
  const end = text.indexOf("\n");
  if (!text.startsWith(MARK) || end === -1) return undefined;
  try {
    return JSON.parse(text.slice(MARK.length, end));
  } catch {
    return undefined;
  }
}

/** Whether `outfile` exists and every source it was built from is unchanged. */
export function bundleIsFresh(outfile = DEFAULT_OUTFILE) {
  const inputs = recordedInputs(outfile);
  if (!inputs || typeof inputs !== "object" || Object.keys(inputs).length === 0) return false;
  const base = dirname(outfile);
  for (const [path, hash] of Object.entries(inputs)) {
    try {
      if (sha1(readFileSync(resolve(base, path))) !== hash) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Bundles `entry` and what it imports (node built-ins stay imports) into `outfile`. Returns the
 * number of source files, or throws when esbuild is not installed or the build fails.
 */
export async function buildBundle({ entry = DEFAULT_ENTRY, outfile = DEFAULT_OUTFILE } = {}) {
  const { build } = await import("esbuild");
  const base = dirname(outfile);
  const inputs = {};
  // Every file is read here, so the hashes are of exactly the bytes that went into the bundle
  // (a file saved during the build makes the bundle stale rather than wrongly fresh).
  const recordInputs = {
    name: "record-inputs",
    setup(plugin) {
      plugin.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, (args) => {
        const contents = readFileSync(args.path);
        inputs[relative(base, args.path)] = sha1(contents);
        // .ts .mts .cts → ts, .js .mjs .cjs → js, .tsx → tsx, .jsx → jsx
        return { contents, loader: extname(args.path).replace(/^\.[cm]?/, "") };
      });
    },
  };
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    outfile,
    logLevel: "silent",
    legalComments: "none",
    plugins: [recordInputs],
  });
  const code = result.outputFiles.find((file) => file.path === outfile)?.text;
  if (code === undefined) throw new Error(`esbuild wrote no ${outfile}`);
  mkdirSync(base, { recursive: true });
  const temporary = `${outfile}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(temporary, `${MARK}${JSON.stringify(inputs)}\n${code}`);
    renameSync(temporary, outfile);
  } finally {
    rmSync(temporary, { force: true });
  }
  return Object.keys(inputs).length;
}

/**
 * The bundle's URL, built first when it is missing or stale; undefined when it cannot be built
 * (esbuild absent, a read-only checkout), so the caller runs the sources instead.
 */
export async function freshBundle(outfile = DEFAULT_OUTFILE) {
  if (!bundleIsFresh(outfile)) {
    try {
      await buildBundle({ outfile });
    } catch {
      return undefined;
    }
  }
  return pathToFileURL(outfile).href;
}

// `node packages/cli/bundle.mjs`: build now (npm's `prepare` after `npm ci`). Without esbuild
// (a production-only install) it says so and succeeds: the CLI then runs its sources.
if (resolve(process.argv[1] ?? "") === fileURLToPath(import.meta.url)) {
  try {
    const count = await buildBundle();
    console.log(`sluice CLI bundled from ${count} sources into ${relative(process.cwd(), DEFAULT_OUTFILE)}`);
  } catch (error) {
    console.log(`sluice CLI not bundled (it will run from its sources): ${error?.message ?? error}`);
  }
}
