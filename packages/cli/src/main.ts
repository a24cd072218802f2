import { isBrokenPipe, run } from "./cli.js";

const controller = new AbortController();
let interrupts = 0;
process.on("SIGINT", () => {
  interrupts++;
  // The first Ctrl-C lets produce flush and consume stop cleanly; a second one does not wait.
  if (interrupts > 1) process.exit(130);
  controller.abort();
});
// `sluice consume … | head` closes stdout early: stop quietly.
process.stdout.on("error", (error) => {
  if (isBrokenPipe(error)) process.exit(0);
});

const code = await run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
// Exit once stdout has been flushed (pipes may be asynchronous); stdin or idle keep-alive sockets
// must not keep the process alive.
process.stdout.write("", () => process.exit(code));
