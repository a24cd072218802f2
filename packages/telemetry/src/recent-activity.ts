/**
 * What a topic did over the last few seconds, as this process saw it: records and bytes in and
 * out per partition, errors, and p99 latencies. The topic resources and `sluice top` read it, so
 * rates need no Prometheus. It keeps one slot per second for the last `windowSeconds` seconds:
 * memory is bounded by topics × partitions, and recording is a few array writes.
 *
 * Rates are counts in the window divided by the time the window covers: from the start of its
 * oldest second, or from when this tracker started if that is later, to now.
 */
export interface ActivityClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface ActivityRates {
  recordsInPerSecond: number;
  bytesInPerSecond: number;
  recordsOutPerSecond: number;
  bytesOutPerSecond: number;
}

export interface TopicActivity extends ActivityRates {
  /** The window the figures cover, in seconds (shorter while the process is younger). */
  windowSeconds: number;
  /** Errors answered for the topic in the window, and per second. */
  errors: number;
  errorsPerSecond: number;
  /** The 99th percentile of produce acknowledgement latency in the window; null without appends. */
  produceLatencyP99Seconds: number | null;
  /** The 99th percentile of fetch latency in the window; null without fetches. */
  fetchLatencyP99Seconds: number | null;
  /** Per partition that saw traffic in the window. */
  partitions: ReadonlyMap<number, ActivityRates>;
}

export const ACTIVITY_WINDOW_SECONDS = 10;

const systemActivityClock: ActivityClock = { now: () => Date.now() };

/** Latency buckets: 2^(k/4) microseconds, k = 0..111 — 1 µs to about 30 minutes, 19 % apart. */
const LATENCY_BUCKETS = 112;
const BUCKET_STEPS_PER_DOUBLING = 4;

function latencyBucket(seconds: number): number {
  const micros = seconds * 1e6;
  if (!(micros > 1)) return 0;
  const index = Math.ceil(Math.log2(micros) * BUCKET_STEPS_PER_DOUBLING);
  return Math.min(LATENCY_BUCKETS - 1, index);
}

function bucketUpperSeconds(index: number): number {
  return 2 ** (index / BUCKET_STEPS_PER_DOUBLING) / 1e6;
}

/** Counters in one slot per second; a slot is cleared when its second comes round again. */
class SecondRing {
  readonly seconds: Float64Array;
  readonly values: Float64Array;

  constructor(private readonly size: number) {
    this.seconds = new Float64Array(size).fill(-1);
    this.values = new Float64Array(size);
  }

  add(second: number, value: number): void {
    const slot = second % this.size;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.values[slot] = 0;
    }
    this.values[slot]! += value;
  }

  sumSince(firstSecond: number): number {
    let sum = 0;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.seconds[slot]! >= firstSecond) sum += this.values[slot]!;
    }
    return sum;
  }
}

class LatencyRing {
  private readonly seconds: Float64Array;
  private readonly counts: Uint32Array;

  constructor(private readonly size: number) {
    this.seconds = new Float64Array(size).fill(-1);
    this.counts = new Uint32Array(size * LATENCY_BUCKETS);
  }

  record(second: number, valueSeconds: number): void {
    const slot = second % this.size;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts.fill(0, slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS);
    }
    this.counts[slot * LATENCY_BUCKETS + latencyBucket(valueSeconds)]!++;
  }

  /** The upper bound of the bucket holding the 99th percentile, or null with no observations. */
  p99Since(firstSecond: number): number | null {
    const merged = new Float64Array(LATENCY_BUCKETS);
    let total = 0;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.seconds[slot]! < firstSecond) continue;
      for (let bucket = 0; bucket < LATENCY_BUCKETS; bucket++) {
        const count = this.counts[slot * LATENCY_BUCKETS + bucket]!;
        merged[bucket]! += count;
        total += count;
      }
    }
    if (total === 0) return null;
    const rank = Math.ceil(total * 0.99);
    let seen = 0;
    for (let bucket = 0; bucket < LATENCY_BUCKETS; bucket++) {
      seen += merged[bucket]!;
      if (seen >= rank) return bucketUpperSeconds(bucket);
    }
    return bucketUpperSeconds(LATENCY_BUCKETS - 1);
  }
}

class PartitionRings {
  readonly recordsIn: SecondRing;
  readonly bytesIn: SecondRing;
  readonly recordsOut: SecondRing;
  readonly bytesOut: SecondRing;

  constructor(size: number) {
    this.recordsIn = new SecondRing(size);
    this.bytesIn = new SecondRing(size);
    this.recordsOut = new SecondRing(size);
    this.bytesOut = new SecondRing(size);
  }
}

class TopicRings {
  readonly partitions = new Map<number, PartitionRings>();
  readonly errors: SecondRing;
  readonly produceLatency: LatencyRing;
  readonly fetchLatency: LatencyRing;

  constructor(private readonly size: number) {
    this.errors = new SecondRing(size);
    this.produceLatency = new LatencyRing(size);
    this.fetchLatency = new LatencyRing(size);
  }

  partition(partition: number): PartitionRings {
    let rings = this.partitions.get(partition);
    if (!rings) {
      rings = new PartitionRings(this.size);
      this.partitions.set(partition, rings);
    }
    return rings;
  }
}

export class RecentActivity {
  readonly windowSeconds: number;
  private readonly clock: ActivityClock;
  private readonly startedMs: number;
  private readonly topics = new Map<string, TopicRings>();

  constructor(options: { clock?: ActivityClock; windowSeconds?: number } = {}) {
    this.clock = options.clock ?? systemActivityClock;
    this.windowSeconds = options.windowSeconds ?? ACTIVITY_WINDOW_SECONDS;
    this.startedMs = this.clock.now();
  }

  produced(topic: string, partition: number, records: number, bytes: number): void {
    const second = this.second();
    const rings = this.rings(topic).partition(partition);
    rings.recordsIn.add(second, records);
    rings.bytesIn.add(second, bytes);
  }

  fetched(topic: string, partition: number, records: number, bytes: number): void {
    const second = this.second();
    const rings = this.rings(topic).partition(partition);
    rings.recordsOut.add(second, records);
    rings.bytesOut.add(second, bytes);
  }

  produceLatency(topic: string, seconds: number): void {
    this.rings(topic).produceLatency.record(this.second(), seconds);
  }

  fetchLatency(topic: string, seconds: number): void {
    this.rings(topic).fetchLatency.record(this.second(), seconds);
  }

  error(topic: string): void {
    this.rings(topic).errors.add(this.second(), 1);
  }

  /** Drops a deleted topic's figures, so one created again under its name starts from nothing. */
  forget(topic: string): void {
    this.topics.delete(topic);
  }

  /** The topic's figures over the window (zeros when it saw nothing). */
  topic(name: string): TopicActivity {
    const now = this.clock.now();
    const currentSecond = Math.floor(now / 1000);
    const firstSecond = currentSecond - this.windowSeconds + 1;
    const coveredMs = now - Math.max(this.startedMs, firstSecond * 1000);
    // At least one millisecond, so the very first reading of a fresh tracker is not a division by 0.
    const span = Math.max(coveredMs, 1) / 1000;
    const rings = this.topics.get(name);
    const partitions = new Map<number, ActivityRates>();
    const totals: ActivityRates = {
      recordsInPerSecond: 0,
      bytesInPerSecond: 0,
      recordsOutPerSecond: 0,
      bytesOutPerSecond: 0,
    };
    let errors = 0;
    if (rings) {
      for (const [partition, ring] of [...rings.partitions].sort((a, b) => a[0] - b[0])) {
        const rates: ActivityRates = {
          recordsInPerSecond: ring.recordsIn.sumSince(firstSecond) / span,
          bytesInPerSecond: ring.bytesIn.sumSince(firstSecond) / span,
          recordsOutPerSecond: ring.recordsOut.sumSince(firstSecond) / span,
          bytesOutPerSecond: ring.bytesOut.sumSince(firstSecond) / span,
        };
        if (Object.values(rates).every((rate) => rate === 0)) continue;
        partitions.set(partition, rates);
        totals.recordsInPerSecond += rates.recordsInPerSecond;
        totals.bytesInPerSecond += rates.bytesInPerSecond;
        totals.recordsOutPerSecond += rates.recordsOutPerSecond;
        totals.bytesOutPerSecond += rates.bytesOutPerSecond;
      }
      errors = rings.errors.sumSince(firstSecond);
    }
    return {
      windowSeconds: span,
      ...totals,
      errors,
      errorsPerSecond: errors / span,
      produceLatencyP99Seconds: rings?.produceLatency.p99Since(firstSecond) ?? null,
      fetchLatencyP99Seconds: rings?.fetchLatency.p99Since(firstSecond) ?? null,
      partitions,
    };
  }

  private second(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  private rings(topic: string): TopicRings {
    let rings = this.topics.get(topic);
    if (!rings) {
      rings = new TopicRings(this.windowSeconds);
      this.topics.set(topic, rings);
    }
    return rings;
  }
}
