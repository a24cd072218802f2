import { type Clock, NotFoundError, systemClock } from "@sluice/core";
import type { Engine } from "@sluice/engine";
import { type GaugeValue, type Metrics, series } from "@sluice/telemetry";
import type { ConsumerGroups, PartitionLag } from "./consumer-groups.js";

type LagLabels = "group" | "topic" | "partition";

/** One partition's lag in records and in time. */
export interface PartitionLagWithAge extends PartitionLag {
  /**
   * Now minus the timestamp of the first record the group has not consumed, in milliseconds
   * (0 when it has consumed everything). With CreateTime topics the timestamp is the producer's.
   */
  lagMs: number;
}

/** A group's lag per partition with its age (ConsumerGroups.lag plus the time dimension). */
export async function lagWithAge(
  groups: ConsumerGroups,
  engine: Engine,
  groupId: string,
  clock: Clock = systemClock,
): Promise<PartitionLagWithAge[]> {
  const lags = await groups.lag(groupId);
  const now = clock.now();
  return Promise.all(
    lags.map(async (lag) => {
      if (lag.lag === 0) return { ...lag, lagMs: 0 };
      const from = Math.max(lag.currentOffset ?? lag.logStartOffset, lag.logStartOffset);
      const timestamp = await engine.timestampAt(lag.topic, lag.partition, from);
      return { ...lag, lagMs: timestamp === null ? 0 : Math.max(0, now - timestamp) };
    }),
  );
}

/**
 * Reads every consumer group's lag from the store and sets the lag gauges
 * (`sluice_consumer_group_lag_records`, `_seconds`) to it, replacing what they held: a deleted
 * group or topic disappears. The local server runs it before each Prometheus scrape; in AWS a
 * scheduled function runs it and flushes the EMF sink. A group deleted while it is read is
 * skipped.
 */
export async function collectConsumerGroupLag(options: {
  groups: ConsumerGroups;
  engine: Engine;
  metrics: Metrics;
  clock?: Clock;
}): Promise<void> {
  const { groups, engine, metrics } = options;
  const records: GaugeValue<LagLabels>[] = [];
  const seconds: GaugeValue<LagLabels>[] = [];
  for (const { groupId } of await groups.list()) {
    let lags: PartitionLagWithAge[];
    try {
      lags = await lagWithAge(groups, engine, groupId, options.clock);
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      throw error;
    }
    for (const lag of lags) {
      const labels = { group: groupId, topic: lag.topic, partition: lag.partition };
      records.push({ labels, value: lag.lag });
      seconds.push({ labels, value: lag.lagMs / 1000 });
    }
  }
  metrics.gauge(series.consumerGroupLagRecords).replaceAll(records);
  metrics.gauge(series.consumerGroupLagSeconds).replaceAll(seconds);
}
