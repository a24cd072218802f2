import { deployProbeFunction, verdict } from "./cdk-repro-support.js";

/**
 * A nodejs22.x function must run on Node 22. MiniStack's local executor runs every nodejs*
 * runtime on the `node` found on its PATH (Node 20 on our machines), so code passing on the
 * emulator may still use an API Node 22 changed, and the reverse.
 */
const { report } = await deployProbeFunction("node-version", "x86_64");
verdict(
  "lambda-nodejs-runtime-version",
  report.version.startsWith("v22."),
  `nodejs22.x ran on Node ${report.version}`,
  "nodejs22.x runs Node v22.x",
);
