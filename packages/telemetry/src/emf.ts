import { MetricUnit, Metrics as PowertoolsMetrics } from "@aws-lambda-powertools/metrics";
import type {
  Counter,
  CounterSeries,
  Gauge,
  GaugeSeries,
  GaugeValue,
  Histogram,
  HistogramSeries,
  Labels,
  Metrics,
  Series,
  SeriesUnit,
} from "./metrics.js";
import { CLOUDWATCH_NAMESPACE } from "./series.js";

export interface EmfMetricsOptions {
  /** The `service` dimension on every metric, e.g. `sluice-api`. */
  service: string;
  /** Default `Sluice`. */
  namespace?: string;
  /** Where each EMF document goes, one JSON line each. Default: standard output (Lambda sends it to CloudWatch Logs). */
  write?: (line: string) => void;
  /** Milliseconds since the epoch, for the documents' timestamps. Default Date.now. */
  now?: () => number;
}

/**
 * EMF allows at most 100 values of one metric in a document, and Powertools publishes on its own
 * (to standard output, past our writer) the moment a metric reaches 100: stay one below.
 */
const VALUES_PER_DOCUMENT_MAX = 99;

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

function cloudWatchUnit(unit: SeriesUnit): { unit: Unit; scale: number } {
  switch (unit) {
    case "bytes":
      return { unit: MetricUnit.Bytes, scale: 1 };
    case "seconds":
      // Dashboards read latencies in milliseconds; CloudWatch keeps the unit with the value.
      return { unit: MetricUnit.Milliseconds, scale: 1000 };
    default:
      return { unit: MetricUnit.Count, scale: 1 };
  }
}

/** One metric's values within one document: a dimension set's values and its CloudWatch name. */
interface Pending {
  series: Series;
  dimensionValues: Record<string, string>;
  values: number[];
}

/**
 * The CloudWatch sink: embedded metric format (EMF) documents written through Powertools for AWS
 * Lambda Metrics, which CloudWatch turns into metrics when they reach its logs. Values are kept in
 * memory and written by `flush()` — at the end of each invocation — one document per set of
 * dimension values, holding every metric of that set: counters summed, histogram observations as
 * value arrays (CloudWatch computes percentiles from them), gauges combined per the series'
 * `gaugeAggregate`. Labels that are not dimensions of a series are folded away (see series.ts),
 * so per-partition series cost one CloudWatch metric per topic, not per partition.
 */
export class EmfMetrics implements Metrics {
  private readonly powertools: PowertoolsMetrics;
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  private pending = new Map<string, Pending>();

  constructor(options: EmfMetricsOptions) {
    this.powertools = new PowertoolsMetrics({
      namespace: options.namespace ?? CLOUDWATCH_NAMESPACE,
      serviceName: options.service,
    });
    this.write = options.write ?? ((line) => process.stdout.write(`${line}\n`));
    this.now = options.now ?? Date.now;
  }

  counter<L extends string>(series: CounterSeries<L>): Counter<L> {
    return {
      add: (value, labels) => {
        if (!(value >= 0) || !Number.isFinite(value)) return;
        const entry = this.entry(series, labels);
        if (entry.values.length === 0) entry.values.push(0);
        entry.values[0]! += value;
      },
    };
  }

  gauge<L extends string>(series: GaugeSeries<L>): Gauge<L> {
    const combine = (entry: Pending, value: number) => {
      if (entry.values.length === 0) entry.values.push(value);
      else if (series.cloudwatch.gaugeAggregate === "max")
        entry.values[0] = Math.max(entry.values[0]!, value);
      else entry.values[0]! += value;
    };
    return {
      set: (value, labels) => {
        if (Number.isFinite(value)) combine(this.entry(series, labels), value);
      },
      replaceAll: (values: readonly GaugeValue<L>[]) => {
        for (const [key, entry] of this.pending)
          if (entry.series.name === series.name) this.pending.delete(key);
        for (const { labels, value } of values)
          if (Number.isFinite(value)) combine(this.entry(series, labels), value);
      },
    };
  }

  histogram<L extends string>(series: HistogramSeries<L>): Histogram<L> {
    return {
      record: (value, labels) => {
        if (Number.isFinite(value)) this.entry(series, labels).values.push(value);
      },
    };
  }

  /** True when a flush would write something. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Writes everything recorded since the last flush as EMF documents and forgets it. Call it at
   * the end of each invocation: Lambda may freeze the process right after the handler returns.
   */
  flush(): void {
    const pending = this.pending;
    this.pending = new Map();
    const documents = new Map<string, Pending[]>();
    for (const entry of pending.values()) {
      const key = documentKey(entry);
      const list = documents.get(key);
      if (list) list.push(entry);
      else documents.set(key, [entry]);
    }
    const timestamp = this.now();
    for (const entries of documents.values()) this.writeDocuments(entries, timestamp);
  }

  /** As many documents as the values need, VALUES_PER_DOCUMENT_MAX per metric in each. */
  private writeDocuments(entries: Pending[], timestamp: number): void {
    const first = entries[0]!;
    for (let start = 0; ; start += VALUES_PER_DOCUMENT_MAX) {
      const slice = entries.filter((entry) => entry.values.length > start);
      if (slice.length === 0) return;
      for (const dimensions of first.series.cloudwatch.dimensions) {
        this.powertools.addDimensions(
          Object.fromEntries(dimensions.map((name) => [name, first.dimensionValues[name]!])),
        );
      }
      for (const entry of slice) {
        const { unit, scale } = cloudWatchUnit(entry.series.unit);
        for (const value of entry.values.slice(start, start + VALUES_PER_DOCUMENT_MAX)) {
          this.powertools.addMetric(entry.series.cloudwatch.metric, unit, value * scale);
        }
      }
      this.powertools.setTimestamp(timestamp);
      try {
        this.write(JSON.stringify(this.powertools.serializeMetrics()));
      } finally {
        this.powertools.clearMetrics();
        this.powertools.clearDimensions();
      }
    }
  }

  private entry(series: Series, labels: Labels<string>): Pending {
    const kept = keptLabels(series);
    const dimensionValues: Record<string, string> = {};
    for (const name of kept) dimensionValues[name] = String(labels[name]);
    const key = `${series.name}\u0000${kept.map((name) => dimensionValues[name]).join("\u0000")}`;
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { series, dimensionValues, values: [] };
      this.pending.set(key, entry);
    }
    return entry;
  }
}

/** Entries share a document when they have the same dimension sets and the same values for them. */
function documentKey(entry: Pending): string {
  const sets = entry.series.cloudwatch.dimensions.map((set) => set.join(",")).join("|");
  const kept = keptLabels(entry.series);
  return `${sets}\u0000${kept.map((name) => `${name}=${entry.dimensionValues[name]}`).join("\u0000")}`;
}

const keptCache = new WeakMap<Series, string[]>();

/** The labels any of the series' dimension sets names: the values a document must carry. */
function keptLabels(series: Series): string[] {
  let kept = keptCache.get(series);
  if (!kept) {
    kept = [...new Set(series.cloudwatch.dimensions.flat())];
    keptCache.set(series, kept);
  }
  return kept;
}
