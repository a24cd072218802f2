import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidArgumentError, isSluiceError, repeatEvery, systemClock } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { isProcessor, type Processor } from "@sluice/processor-sdk";
import {
  combineEvents,
  EventLoopTurns,
  Handlers,
  ProcessorAdmin,
  ProcessorRuntime,
  processorMetrics,
} from "@sluice/processors";
import type { MetadataStore } from "@sluice/storage";
import { type Metrics, noopMetrics } from "@sluice/telemetry";

export interface LocalProcessorsOptions {
  engine: Engine;
  metadata: MetadataStore;
  /**
   * A JSON file `{ "processors": [definition, …] }` of processors to declare at start (the HTTP
   * API's definition shape; module handlers' paths are relative to the file).
   */
  configFile?: string;
  /** Default 1 s. */
  sweepIntervalMs?: number;
  /** Told of processors declared, waiting for a topic, failing; default nowhere. */
  log?: (line: string) => void;
  /** Start the runtime (default); false: definitions are declared and managed, nothing runs them. */
  run?: boolean;
  /** Where the processors' series go (the server's Prometheus sink). Default nowhere. */
  metrics?: Metrics;
}

export interface LocalProcessors {
  admin: ProcessorAdmin;
  runtime: ProcessorRuntime;
  /** Names declared by the config file, in its order. */
  declared: string[];
  stop(): Promise<void>;
}

/** How long a drained runner keeps its lease locally, so a steady stream pays no acquisition per record. */
const LOCAL_LINGER_MS = 1_000;

/**
 * Processors inside the local server (ARCHITECTURE.md, "Processors", "Triggering"): the runtime
 * runs them on every commit of this process and on a sweep every second; module handlers are
 * imported from the config file's directory. A definition of the config file whose topics do not
 * exist yet is declared at a later sweep, once they do.
 */
export async function startLocalProcessors(options: LocalProcessorsOptions): Promise<LocalProcessors> {
  const log = options.log ?? (() => {});
  const configDir = options.configFile ? dirname(resolve(options.configFile)) : process.cwd();
  const handlers = new Handlers({
    modules: (module, exportName) => importProcessor(configDir, module, exportName),
  });
  const admin = new ProcessorAdmin({ engine: options.engine, metadata: options.metadata });
  const runtime = new ProcessorRuntime({
    engine: options.engine,
    metadata: options.metadata,
    handlers,
    lingerMs: LOCAL_LINGER_MS,
    // The runners share the event loop with the HTTP server: they take turns with its I/O.
    turns: new EventLoopTurns(),
    ...(options.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: options.sweepIntervalMs }),
    events: combineEvents(processorMetrics(options.metrics ?? noopMetrics), {
      recordFailed: (event) => {
        if (event.spent) {
          log(
            `processor ${event.processor}: ${event.topic}/${event.partition} offset ${event.offset} dead-lettered after ${event.attempts} attempt(s): ${event.error}`,
          );
        }
      },
      runnerError: (event) =>
        log(`processor ${event.processor}: ${event.topic}/${event.partition}: ${errorText(event.error)}`),
      sweepError: (error) => log(`processors: sweep failed: ${errorText(error)}`),
    }),
  });
  const definitions = options.configFile ? await readConfig(options.configFile) : [];
  const pending = new Map(definitions.map((definition) => [definition.name, definition.json]));
  const waiting = new Set<string>();
  const declare = async () => {
    for (const [name, json] of pending) {
      try {
        const outcome = await admin.apply(json, { allowModuleHandlers: true });
        pending.delete(name);
        log(
          `processor ${name}: ${outcome === "unchanged" ? "declared" : outcome} from ${options.configFile}`,
        );
      } catch (error) {
        const missingTopic = error instanceof InvalidArgumentError && typeof error.details.topic === "string";
        if (!missingTopic) throw new Error(`${options.configFile}: processor ${name}: ${errorText(error)}`);
        if (!waiting.has(name))
          log(`processor ${name}: waiting for topic ${String(error.details.topic)} to exist`);
        waiting.add(name);
      }
    }
  };
  await declare();
  if (options.run !== false) runtime.start();
  let stopped = false;
  const retry = repeatEvery(systemClock, options.sweepIntervalMs ?? 1_000, () => {
    if (pending.size === 0 || stopped) return;
    declare()
      .then(() => runtime.refresh())
      .catch((error: unknown) => log(errorText(error)));
  });
  return {
    admin,
    runtime,
    declared: definitions.map((definition) => definition.name),
    async stop() {
      stopped = true;
      retry.cancel();
      await runtime.stop();
    },
  };
}

async function readConfig(file: string): Promise<{ name: string; json: unknown }[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new Error(`processor config ${file}: ${errorText(error)}`);
  }
  const list = (parsed as { processors?: unknown }).processors;
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(list)) {
    throw new Error(`processor config ${file}: expected {"processors": [definition, …]}`);
  }
  return list.map((json, index) => {
    const name = (json as { name?: unknown }).name;
    if (typeof name !== "string")
      throw new Error(`processor config ${file}: processors[${index}] has no name`);
    return { name, json };
  });
}

async function importProcessor(configDir: string, module: string, exportName: string): Promise<Processor> {
  const specifier =
    module.startsWith(".") || isAbsolute(module) ? pathToFileURL(resolve(configDir, module)).href : module;
  const loaded = (await import(specifier)) as Record<string, unknown>;
  const candidate = loaded[exportName];
  if (!isProcessor(candidate)) {
    throw new Error(
      `${module} has no processor export ${exportName}: export default defineProcessor(...) from @sluice/processor-sdk`,
    );
  }
  return candidate;
}

function errorText(error: unknown): string {
  if (isSluiceError(error) || error instanceof Error) return error.message;
  return String(error);
}
