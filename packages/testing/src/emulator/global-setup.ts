import { resolve } from "node:path";
import { type RunningEmulator, startMinistack } from "./ministack.js";

/**
 * Vitest global setup for the integration and e2e projects. With AWS_ENDPOINT_URL unset it runs
 * MiniStack on 127.0.0.1 for the whole run; with it set, the suites use that endpoint (LocalStack,
 * another MiniStack); with SLUICE_TEST_TARGET=aws they use real AWS. Workers inherit the
 * environment.
 */
let emulator: RunningEmulator | undefined;

export async function setup(): Promise<void> {
  const configured = process.env.AWS_ENDPOINT_URL;
  if (process.env.SLUICE_TEST_TARGET === "aws") {
    // Real AWS: the SDK's own endpoints, credentials and region; nothing is started.
    process.stderr.write(
      `[emulator] none: SLUICE_TEST_TARGET=aws, using real AWS in ${process.env.AWS_REGION ?? "the SDK's default region"}\n`,
    );
    return;
  }
  if (configured) {
    process.stderr.write(`[emulator] using AWS_ENDPOINT_URL=${configured}\n`);
  } else {
    const port = Number(process.env.SLUICE_EMULATOR_PORT ?? 4566);
    emulator = await startMinistack(resolve(import.meta.dirname, "../../../.."), port);
    process.env.AWS_ENDPOINT_URL = emulator.endpoint;
    process.stderr.write(`[emulator] started MiniStack at ${emulator.endpoint}\n`);
  }
  process.env.AWS_REGION ??= "us-east-1";
  if (!configured || isLocal(configured)) {
    // Emulators accept any credentials; real AWS uses the caller's own chain.
    process.env.AWS_ACCESS_KEY_ID ??= "test";
    process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  }
}

export async function teardown(): Promise<void> {
  await emulator?.stop();
}

function isLocal(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return (
    host === "127.0.0.1" ||
    host === "localhost" ||
    host === "::1" ||
    host.endsWith(".localhost.localstack.cloud")
  );
}
