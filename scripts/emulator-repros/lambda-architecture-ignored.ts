import { deployProbeFunction, verdict } from "./cdk-repro-support.js";

/**
 * An arm64 function must run on arm64. MiniStack's local executor runs every function on the
 * host's CPU, so an arm64 function whose bundle holds x86_64 native modules (our codecs) works on
 * the emulator and fails every cold start on AWS. The CDK construct guards against that at
 * synthesis (infra/lib/native-binaries.ts); this repro tracks the emulator.
 */
const { report } = await deployProbeFunction("arch", "arm64");
verdict(
  "lambda-architecture-ignored",
  report.arch === "arm64",
  `an arm64 function reported process.arch=${report.arch}`,
  "an arm64 function reports process.arch=arm64",
);
