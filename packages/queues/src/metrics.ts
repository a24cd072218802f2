import { NotFoundError } from "@sluice/core";
import { type GaugeValue, type Metrics, noopMetrics, series } from "@sluice/telemetry";
import type { AcknowledgeType } from "./acknowledge.js";
import type { ShareGroups } from "./share-groups.js";
import { type Batch, decodeRuns, type SharePartition, type SlotState } from "./window.js";

const ARCHIVED: ReadonlySet<SlotState> = new Set(["X", "L", "R"]);

/**
 * The share-group series of the catalogue (packages/telemetry, series.ts), counted from writes
 * that landed: a record archived or dead-lettered counts once, by the write that moved it there
 * from the state its batch was read in — whichever instance made it — so a resolution made in
 * memory and never written (a passed lock nobody wrote down yet) counts when it is written.
 */
export class ShareGroupMeter {
  private readonly acquiredRecords;
  private readonly acknowledgedRecords;
  private readonly archivedRecords;
  private readonly deadLettered;

  constructor(metrics: Metrics = noopMetrics) {
    this.acquiredRecords = metrics.counter(series.shareGroupRecordsAcquired);
    this.acknowledgedRecords = metrics.counter(series.shareGroupRecordsAcknowledged);
    this.archivedRecords = metrics.counter(series.shareGroupRecordsArchived);
    this.deadLettered = metrics.counter(series.shareGroupDeadLettered);
  }

  acquired(partition: SharePartition, count: number): void {
    if (count > 0) this.acquiredRecords.add(count, { group: partition.groupId, topic: partition.topic });
  }

  acknowledged(partition: SharePartition, type: AcknowledgeType, count: number): void {
    if (count > 0)
      this.acknowledgedRecords.add(count, {
        group: partition.groupId,
        topic: partition.topic,
        type: type.toLowerCase(),
      });
  }

  /**
   * Batches a landed write updated or deleted, as written: counts the records it archived (from
   * available or acquired) and, with a dead-letter topic, those it marked dead-lettered (only a
   * dead letter's write makes a record `X` then). `rejected`: offsets this write rejected; any
   * other record archived here ran out of deliveries.
   */
  written(
    partition: SharePartition,
    batches: readonly Batch[],
    deadLetter: boolean,
    rejected: ReadonlySet<number> = new Set(),
  ): void {
    let limit = 0;
    let rejects = 0;
    let dead = 0;
    for (const batch of batches) {
      if (batch.storedRuns === undefined) continue; // fresh: its records were never anything else
      const stored = decodeRuns(batch.storedRuns, batch.storedCount, `${batch.key.pk}/${batch.key.sk}`);
      stored.forEach((before, index) => {
        const after = batch.slots[index]?.state;
        if (after === undefined) return;
        if (!ARCHIVED.has(before.state) && before.state !== "K" && ARCHIVED.has(after)) {
          if (after === "R" || rejected.has(batch.base + index)) rejects++;
          else limit++;
        }
        if (deadLetter && before.state !== "X" && after === "X") dead++;
      });
    }
    const labels = { group: partition.groupId, topic: partition.topic };
    if (limit > 0) this.archivedRecords.add(limit, { ...labels, reason: "delivery-count-limit" });
    if (rejects > 0) this.archivedRecords.add(rejects, { ...labels, reason: "rejected" });
    if (dead > 0) this.deadLettered.add(dead, labels);
  }
}

/**
 * Reads every share group's windows and sets the in-flight and lag gauges
 * (`sluice_share_group_records_in_flight`, `sluice_share_group_lag_records`) to them, replacing
 * what they held, so a group or topic that is gone disappears. Run before a Prometheus scrape, or
 * on the monitoring schedule in AWS. A group deleted while it is read is skipped.
 */
export async function collectShareGroupMetrics(options: {
  shareGroups: ShareGroups;
  metrics: Metrics;
}): Promise<void> {
  type Labels = "group" | "topic" | "partition";
  const inFlight: GaugeValue<Labels>[] = [];
  const lag: GaugeValue<Labels>[] = [];
  for (const { groupId } of await options.shareGroups.list()) {
    let partitions: Awaited<ReturnType<ShareGroups["describe"]>>["partitions"];
    try {
      partitions = (await options.shareGroups.describe(groupId)).partitions;
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      throw error;
    }
    for (const partition of partitions) {
      const labels = { group: groupId, topic: partition.topic, partition: partition.partition };
      inFlight.push({ labels, value: partition.acquired });
      lag.push({ labels, value: partition.lag });
    }
  }
  options.metrics.gauge(series.shareGroupRecordsInFlight).replaceAll(inFlight);
  options.metrics.gauge(series.shareGroupLagRecords).replaceAll(lag);
}
