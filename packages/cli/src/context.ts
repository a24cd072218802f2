import type { SluiceClient } from "@sluice/client";
import type { OptionValues } from "./args.js";
import type { CliIO } from "./io.js";

export interface CommandContext {
  client: SluiceClient;
  io: CliIO;
  format: "text" | "json";
  values: OptionValues;
  /** The arguments after the command words. */
  args: string[];
  signal: AbortSignal;
}
