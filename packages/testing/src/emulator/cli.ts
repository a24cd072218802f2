/**
 * `npm run emulator`: MiniStack on 127.0.0.1 (port SLUICE_EMULATOR_PORT, default 4566) until
 * Ctrl-C, for running the integration suites or `npm run deploy:local` against one long-lived
 * emulator (`AWS_ENDPOINT_URL=http://127.0.0.1:4566 npm run test:integration`).
 */
import { resolve } from "node:path";
import { startMinistack } from "./ministack.js";

const port = Number(process.env.SLUICE_EMULATOR_PORT ?? 4566);
const emulator = await startMinistack(resolve(import.meta.dirname, "../../../.."), port);
process.stderr.write(
  `[emulator] MiniStack at ${emulator.endpoint}; export AWS_ENDPOINT_URL=${emulator.endpoint} to use it. Ctrl-C stops it.\n`,
);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void emulator.stop().then(() => process.exit(0));
  });
}
