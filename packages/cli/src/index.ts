export { DEFAULT_URL, run } from "./cli.js";
export type { CliIO, Output } from "./io.js";
