import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { App, AssetStaging } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { afterAll, describe, expect, it } from "vitest";
import { nativeBinaries } from "./native-binaries.js";
import { DEFAULT_API_ENTRY, REPO_ROOT } from "./paths.js";
import { SluiceStack } from "./sluice-stack.js";
import { TEMPLATE_TEST_ENTRY } from "./test-support.js";

/** Real bundling, as `cdk synth` does it (esbuild); the rest of the unit suite skips it. */
const outdir = join(REPO_ROOT, "cdk.out", `bundling-test-${process.pid}`);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function stagedPath(fn: Construct): string {
  const staging = fn.node.findChild("Code").node.findChild("Stage");
  if (!(staging instanceof AssetStaging)) throw new Error(`no staged asset under ${fn.node.path}`);
  return staging.absoluteStagedPath;
}

function bundle(entry: string): { api: string; provider: string } {
  const stack = new SluiceStack(new App({ outdir }), "Bundled", {
    platform: { entry },
    topics: [{ topicName: "t" }],
  });
  return {
    api: stagedPath(stack.platform.api),
    provider: stagedPath(stack.platform.node.findChild("TopicProvider").node.findChild("Function")),
  };
}

describe("bundling", () => {
  it("bundles the topic provider small, leaving the AWS SDK to the runtime", () => {
    const { provider } = bundle(TEMPLATE_TEST_ENTRY);
    const code = readFileSync(join(provider, "index.js"), "utf8");
    expect(statSync(join(provider, "index.js")).size).toBeLessThan(30_000);
    expect(code).toContain("@aws-sdk/client-lambda");
    expect(code).not.toMatch(/class \w*LambdaClient/);
  }, 60_000);

  it.skipIf(!existsSync(DEFAULT_API_ENTRY))(
    "bundles the HTTP apps (functions/src/lambda.ts; skipped until it exists) with their native codecs",
    () => {
      const { api } = bundle(DEFAULT_API_ENTRY);
      expect(existsSync(join(api, "index.js"))).toBe(true);
      expect(existsSync(join(api, "index.js.map"))).toBe(true);
      // The AWS SDK is bundled, not left to the runtime (only the optional CRT signer stays out).
      const external =
        readFileSync(join(api, "index.js"), "utf8").match(/require\("@aws-sdk\/[^"]+"\)/g) ?? [];
      expect(external.filter((r) => !r.includes("signature-v4-crt"))).toEqual([]);
      // Every native binary in the bundle loads on the function's default architecture.
      for (const binary of nativeBinaries(api)) expect(binary.architecture).toBe("x86_64");
    },
    120_000,
  );
});
