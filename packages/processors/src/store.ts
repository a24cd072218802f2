import type { AttributeValue, Item, MetadataStore } from "@sluice/storage";
import { type ProcessorSpec, parseProcessorJson, toProcessorJson } from "./definition.js";
import { definitionKey, PROCESSORS_PK } from "./keys.js";

export type ProcessorState = "running" | "paused";

/** A processor's definition as stored (item `processors`/`{name}`). */
export interface StoredProcessor {
  /** Random per incarnation: a processor deleted and created again starts afresh. */
  uid: string;
  spec: ProcessorSpec;
  state: ProcessorState;
  /** Each source topic's partition count at creation: partitions added later start at earliest. */
  partitionCounts: Record<string, number>;
  createdAtMs: number;
  updatedAtMs: number;
  /** Grows with every change of the item; changes are conditioned on it. */
  version: number;
  /**
   * Resets of a SHARED processor so far: part of its dead letters' and outputs' idempotency keys,
   * so records handled again after a reset are written again.
   */
  resets: number;
}

export function processorItem(processor: StoredProcessor): Item {
  return {
    ...definitionKey(processor.spec.name),
    uid: processor.uid,
    definition: toProcessorJson(processor.spec) as unknown as AttributeValue,
    state: processor.state,
    partitionCounts: processor.partitionCounts,
    createdAt: processor.createdAtMs,
    updatedAt: processor.updatedAtMs,
    version: processor.version,
    ...(processor.resets > 0 ? { resets: processor.resets } : {}),
  };
}

export function processorFromItem(item: Item): StoredProcessor {
  return {
    uid: String(item.uid),
    spec: parseProcessorJson(item.definition),
    state: item.state === "paused" ? "paused" : "running",
    partitionCounts: Object.fromEntries(
      Object.entries((item.partitionCounts as Record<string, AttributeValue> | undefined) ?? {}).map(
        ([topic, count]) => [topic, Number(count)],
      ),
    ),
    createdAtMs: Number(item.createdAt),
    updatedAtMs: Number(item.updatedAt ?? item.createdAt),
    version: Number(item.version ?? 0),
    resets: Number(item.resets ?? 0),
  };
}

/** Reads definitions. */
export class ProcessorStore {
  constructor(private readonly metadata: MetadataStore) {}

  async get(name: string): Promise<StoredProcessor | undefined> {
    const item = await this.metadata.get(definitionKey(name));
    return item ? processorFromItem(item) : undefined;
  }

  async list(): Promise<StoredProcessor[]> {
    const processors: StoredProcessor[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.metadata.query({ pk: PROCESSORS_PK, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) processors.push(processorFromItem(item));
      cursor = page.cursor;
    } while (cursor);
    return processors;
  }
}
