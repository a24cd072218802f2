import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildBundle, bundleIsFresh, freshBundle } from "../bundle.mjs";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sluice-bundle-"));
  await writeFile(
    join(dir, "entry.ts"),
    'import { word } from "./part.js";\nexport const said: string = word;\n',
  );
  await writeFile(join(dir, "part.ts"), 'export const word: string = "one";\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(outfile: string, version: number): Promise<unknown> {
  const module = (await import(`${pathToFileURL(outfile).href}?v=${version}`)) as { said: unknown };
  return module.said;
}

describe("the CLI bundle", () => {
  it("is fresh until one of its sources changes, and is rebuilt from the new sources", async () => {
    const outfile = join(dir, "dist", "out.mjs");
    expect(bundleIsFresh(outfile)).toBe(false); // no bundle yet
    expect(await buildBundle({ entry: join(dir, "entry.ts"), outfile })).toBe(2);
    expect(bundleIsFresh(outfile)).toBe(true);
    expect(await load(outfile, 1)).toBe("one");

    await writeFile(join(dir, "part.ts"), 'export const word: string = "two";\n');
    expect(bundleIsFresh(outfile)).toBe(false);
    await buildBundle({ entry: join(dir, "entry.ts"), outfile });
    expect(bundleIsFresh(outfile)).toBe(true);
    expect(await load(outfile, 2)).toBe("two");

    await rm(join(dir, "part.ts"));
    expect(bundleIsFresh(outfile)).toBe(false); // a source that is gone
  });

  it("is stale when it does not record its sources", async () => {
    const outfile = join(dir, "plain.mjs");
    await writeFile(outfile, "export const said = 1;\n");
    expect(bundleIsFresh(outfile)).toBe(false);
  });

  it("builds the CLI itself: one module with no import but node built-ins", async () => {
    const outfile = join(dir, "sluice.mjs");
    expect(await freshBundle(outfile)).toBe(pathToFileURL(outfile).href);
    expect(bundleIsFresh(outfile)).toBe(true);
    const code = await readFile(outfile, "utf8");
    const imports = [...code.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
    expect(imports.filter((specifier) => !specifier?.startsWith("node:"))).toEqual([]);
    // The client's code is inside (the bundle may import nothing at all).
    expect(code).toContain("/record-batches");
  });
});
