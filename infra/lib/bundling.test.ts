import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compress as nativeZstdCompress } from "@mongodb-js/zstd";
import { emfProblems } from "@sluice/testing";
import { App, AssetStaging } from "aws-cdk-lib";
import { Architecture } from "aws-cdk-lib/aws-lambda";
import type { Construct } from "constructs";
import { afterAll, describe, expect, it } from "vitest";
import { nativeBinaries } from "./native-binaries.js";
import { DEFAULT_API_ENTRY, REPO_ROOT } from "./paths.js";
import { NATIVE_MODULES, type SluicePlatformProps, ZSTD_WASM_FILE } from "./sluice-platform.js";
import { SluiceStack } from "./sluice-stack.js";
import { TEMPLATE_TEST_ENTRY } from "./test-support.js";

const CODEC_PROBE_ENTRY = join(import.meta.dirname, "bundling-fixtures", "codec-probe.ts");

/** Real bundling, as `cdk synth` does it (esbuild); the rest of the unit suite skips it. */
const outdir = join(REPO_ROOT, "cdk.out", `bundling-test-${process.pid}`);
/** Copies of bundles run from outside the repository, where no node_modules can be found. */
const runDir = mkdtempSync(join(tmpdir(), "sluice-bundle-run-"));
afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
});

function stagedPath(fn: Construct): string {
  const staging = fn.node.findChild("Code").node.findChild("Stage");
  if (!(staging instanceof AssetStaging)) throw new Error(`no staged asset under ${fn.node.path}`);
  return staging.absoluteStagedPath;
}

function bundle(entry: string, platform: SluicePlatformProps = {}): { api: string; provider: string } {
  const stack = new SluiceStack(new App({ outdir }), "Bundled", {
    platform: { entry, ...platform },
    topics: [{ topicName: "t" }],
  });
  return {
    api: stagedPath(stack.platform.api),
    provider: stagedPath(stack.platform.node.findChild("TopicProvider").node.findChild("Function")),
  };
}

/** A copy of a bundle outside the repository, where `require` finds no node_modules. */
function copyOut(bundleDir: string, name: string): string {
  const dir = join(runDir, name);
  cpSync(bundleDir, dir, { recursive: true });
  return dir;
}

async function zstdFrame(text: string): Promise<string> {
  return Buffer.from(await nativeZstdCompress(Buffer.from(text))).toString("base64");
}

interface ProbeResult {
  backends: Record<string, string>;
  crc32cIsNative: boolean;
  roundTrips: Record<string, string>;
  zstdDecompressed?: string;
}

/** Runs the codec probe's handler from a bundle directory in a fresh node process. */
function probe(dir: string, zstdFrame: string): ProbeResult {
  const script = `require("./index.js").handler({ zstdFrame: "${zstdFrame}" }).then((r) => console.log(JSON.stringify(r)))`;
  return JSON.parse(
    execFileSync(process.execPath, ["-e", script], { cwd: dir, encoding: "utf8" }),
  ) as ProbeResult;
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
    "bundles the HTTP apps (functions/src/lambda.ts; skipped until it exists) for arm64 without native binaries",
    () => {
      const { api } = bundle(DEFAULT_API_ENTRY);
      expect(existsSync(join(api, "index.js"))).toBe(true);
      expect(existsSync(join(api, "index.js.map"))).toBe(true);
      const code = readFileSync(join(api, "index.js"), "utf8");
      // The AWS SDK is bundled, not left to the runtime (only the optional CRT signer stays out).
      const external = code.match(/require\("@aws-sdk\/[^"]+"\)/g) ?? [];
      expect(external.filter((r) => !r.includes("signature-v4-crt"))).toEqual([]);
      // The native packages stay external: their require fails in the function and the
      // portable codecs run. No binary of any architecture is in the bundle.
      for (const name of NATIVE_MODULES) expect(code).toContain(`require("${name}")`);
      expect(nativeBinaries(api)).toEqual([]);
      expect(existsSync(join(api, ZSTD_WASM_FILE))).toBe(true);
      // Adapters have their own entry points: the function carries no embedded backend.
      expect(code).not.toContain("better-sqlite3");
      expect(code).not.toContain("class SqliteMetadataStore");
      expect(code).not.toContain("class FilesystemObjectStore");
    },
    120_000,
  );

  it.skipIf(!existsSync(DEFAULT_API_ENTRY))(
    "the arm64 HTTP bundle runs without node_modules and writes its metrics as EMF and its logs as JSON",
    () => {
      const dir = copyOut(bundle(DEFAULT_API_ENTRY).api, "api-arm64");
      // A Function URL event for a route that reads no storage, and one for no route at all.
      const event = (path: string) => ({
        version: "2.0",
        routeKey: "$default",
        rawPath: path,
        rawQueryString: "",
        headers: { host: "x.lambda-url.eu-west-1.on.aws" },
        requestContext: { requestId: `http-${path}`, http: { method: "GET", path, sourceIp: "127.0.0.1" } },
        isBase64Encoded: false,
      });
      const context = {
        awsRequestId: "lambda-1",
        functionName: "api",
        functionVersion: "1",
        invokedFunctionArn: "arn",
        memoryLimitInMB: "1024",
      };
      const script = [
        `const { handler } = require("./index.js");`,
        `(async () => {`,
        `  const health = await handler(${JSON.stringify(event("/health"))}, ${JSON.stringify(context)});`,
        `  const missing = await handler(${JSON.stringify(event("/nowhere"))}, ${JSON.stringify(context)});`,
        `  console.log(JSON.stringify({ statuses: [health.statusCode, missing.statusCode] }));`,
        `})();`,
      ].join("\n");
      const output = execFileSync(process.execPath, ["-e", script], {
        cwd: dir,
        encoding: "utf8",
        env: {
          PATH: process.env.PATH,
          AWS_REGION: "eu-west-1",
          SLUICE_BUCKET: "b",
          SLUICE_TABLE: "t",
          SLUICE_CLUSTER_ID: "c",
        },
      });
      const lines = output
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.at(-1)).toEqual({ statuses: [200, 404] });
      const emf = lines.filter((line) => "_aws" in line);
      for (const doc of emf) expect(emfProblems(doc)).toEqual([]);
      expect(emf.filter((doc) => "HttpRequests" in doc).map((doc) => doc.HttpRequests)).toEqual([1, 1]);
      expect(emf.find((doc) => "HttpErrors" in doc)).toMatchObject({
        status: "404",
        class: "client",
        code: "404",
      });
    },
    120_000,
  );

  it.skipIf(!existsSync(DEFAULT_API_ENTRY))(
    "bundles the HTTP apps for x86_64 with their native codecs, every binary built for x86_64",
    () => {
      const { api } = bundle(DEFAULT_API_ENTRY, { architecture: Architecture.X86_64 });
      const code = readFileSync(join(api, "index.js"), "utf8");
      for (const name of NATIVE_MODULES) expect(code).not.toContain(`require("${name}")`);
      const binaries = nativeBinaries(api);
      // snappy, lz4-napi, @mongodb-js/zstd and @node-rs/crc32: one binary each.
      expect(binaries).toHaveLength(4);
      for (const binary of binaries) expect(binary.architecture).toBe("x86_64");
    },
    120_000,
  );

  it.skipIf(process.platform !== "linux" || process.arch !== "x64")(
    "refuses to synthesize an arm64 function whose bundle holds this x64 machine's binaries",
    () => {
      expect(() =>
        bundle(CODEC_PROBE_ENTRY, { architecture: Architecture.ARM_64, bundleNativeCodecs: true }),
      ).toThrow(/native modules a Linux arm64 function cannot load: .*\(x86_64\)/);
    },
    120_000,
  );

  it("runs the arm64 bundle's codecs without node_modules: portable backends, zstd through WebAssembly", async () => {
    const { api } = bundle(CODEC_PROBE_ENTRY);
    expect(nativeBinaries(api)).toEqual([]);
    const frame = await zstdFrame("zstd from the native module");

    const result = probe(copyOut(api, "arm64"), frame);
    expect(result.backends).toEqual({
      none: "native",
      gzip: "native",
      snappy: "portable",
      lz4: "portable",
      zstd: "portable",
    });
    expect(result.crc32cIsNative).toBe(false);
    for (const codec of ["gzip", "snappy", "lz4", "zstd"])
      expect(result.roundTrips[codec]).toMatch(/^ok \d+$/);
    expect(result.zstdDecompressed).toBe("zstd from the native module");

    // Without zstd.wasm beside the bundle, zstd compression alone fails, with a message saying why.
    const noWasm = copyOut(api, "arm64-no-wasm");
    rmSync(join(noWasm, ZSTD_WASM_FILE));
    const degraded = probe(noWasm, frame);
    expect(degraded.backends.zstd).toBe("unavailable");
    expect(degraded.roundTrips.zstd).toMatch(/^InternalError: zstd compression is unavailable here/);
    expect(degraded.roundTrips.lz4).toMatch(/^ok/);
    expect(degraded.zstdDecompressed).toBe("zstd from the native module");
  }, 120_000);

  it.skipIf(process.platform !== "linux" || process.arch !== "x64")(
    "runs the x86_64 bundle's native codecs and CRC from the bundle itself",
    async () => {
      const { api } = bundle(CODEC_PROBE_ENTRY, { architecture: Architecture.X86_64 });
      const result = probe(copyOut(api, "x86_64"), await zstdFrame("native zstd"));
      expect(result.backends).toEqual({
        none: "native",
        gzip: "native",
        snappy: "native",
        lz4: "native",
        zstd: "native",
      });
      expect(result.crc32cIsNative).toBe(true);
      for (const codec of ["gzip", "snappy", "lz4", "zstd"])
        expect(result.roundTrips[codec]).toMatch(/^ok \d+$/);
      expect(result.zstdDecompressed).toBe("native zstd");
    },
    120_000,
  );
});
