import type { Clock } from "@sluice/core";
import { type ConsumedRecord, Engine } from "@sluice/engine";
import { defineProcessor, type Processor, type ProcessorHandler } from "@sluice/processor-sdk";
import type { MetadataStore, ObjectStore } from "@sluice/storage";
import { ProcessorAdmin } from "./admin.js";
import { Handlers } from "./handlers/invoker.js";
import { PartitionRunner, type ProcessorEvents, type RunResult } from "./runner.js";
import { ProcessorStore } from "./store.js";

/** Module handlers by name, for tests: `{ type: "module", module: name }`. */
export class ModuleTable {
  readonly handlers = new Map<string, Processor>();
  set(name: string, handle: ProcessorHandler): void {
    this.handlers.set(name, defineProcessor(handle));
  }
  invoker(): Handlers {
    return new Handlers({
      modules: async (module) => {
        const processor = this.handlers.get(module);
        if (!processor) throw new Error(`no test module ${module}`);
        return processor;
      },
    });
  }
}

export interface TestBed {
  engine: Engine;
  admin: ProcessorAdmin;
  modules: ModuleTable;
  runner(
    name: string,
    topic: string,
    partition: number,
    options?: Partial<RunnerTestOptions>,
  ): Promise<PartitionRunner>;
}

export interface RunnerTestOptions {
  runnerId: string;
  metadata: MetadataStore;
  objects: ObjectStore;
  leaseTtlMs: number;
  lingerMs: number;
  retryHoldMs: number;
  events: ProcessorEvents;
}

export function testBed(objects: ObjectStore, metadata: MetadataStore, clock: Clock): TestBed {
  const engine = new Engine({ objects, metadata, clock });
  const modules = new ModuleTable();
  const admin = new ProcessorAdmin({ engine, metadata, clock });
  let counter = 0;
  return {
    engine,
    admin,
    modules,
    async runner(name, topic, partition, options = {}) {
      const runnerMetadata = options.metadata ?? metadata;
      const store = new ProcessorStore(runnerMetadata);
      const definition = await store.get(name);
      if (!definition) throw new Error(`no processor ${name}`);
      return new PartitionRunner(
        {
          engine: new Engine({ objects: options.objects ?? objects, metadata: runnerMetadata, clock }),
          metadata: runnerMetadata,
          clock,
          handlers: modules.invoker(),
          store,
          runnerId: options.runnerId ?? `test-runner-${++counter}`,
          leaseTtlMs: options.leaseTtlMs ?? 30_000,
          lingerMs: options.lingerMs ?? 0,
          retryHoldMs: options.retryHoldMs ?? 600_000,
          ...(options.events ? { events: options.events } : {}),
        },
        definition,
        topic,
        partition,
      );
    },
  };
}

/** Runs the runner to its end while moving a simulated clock on, `stepMs` at a time. */
export async function runWithClock(
  runner: PartitionRunner,
  clock: { advance(ms: number): Promise<void> },
  stepMs = 100,
  maxSteps = 100_000,
): Promise<RunResult> {
  let settled: RunResult | undefined;
  let failure: unknown;
  const running = runner.run().then(
    (result) => {
      settled = result;
    },
    (error: unknown) => {
      failure = error;
    },
  );
  for (let step = 0; step < maxSteps && settled === undefined && failure === undefined; step++) {
    await clock.advance(stepMs);
  }
  await Promise.race([running, Promise.resolve()]);
  if (failure !== undefined) throw failure;
  if (settled === undefined)
    throw new Error(`the runner did not finish within ${maxSteps} steps of ${stepMs} ms`);
  return settled;
}

export async function readAll(
  engine: Engine,
  topic: string,
): Promise<(ConsumedRecord & { partition: number })[]> {
  const described = await engine.describeTopic(topic);
  const records: (ConsumedRecord & { partition: number })[] = [];
  for (let partition = 0; partition < described.partitions; partition++) {
    let offset = 0;
    for (;;) {
      const page = await engine.fetch({ topic, partition, offset });
      for (const record of page.records) records.push({ ...record, partition });
      if (page.records.length === 0 || page.nextOffset >= page.highWatermark) break;
      offset = page.nextOffset;
    }
  }
  return records;
}

export const text = (bytes: Uint8Array | null): string | null =>
  bytes === null ? null : new TextDecoder().decode(bytes);
export const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);
export function header(
  record: { headers: readonly { key: string; value: Uint8Array | null }[] },
  key: string,
): string | undefined {
  const found = record.headers.find((candidate) => candidate.key === key);
  return found ? (text(found.value) ?? undefined) : undefined;
}
