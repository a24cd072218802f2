/**
 * One metrics interface for every package (ARCHITECTURE.md, "Observability"). Libraries take a
 * `Metrics` and record into the series of the catalogue (series.ts); they never pick a backend.
 * Entry points choose the sink: Prometheus for the local server, CloudWatch EMF in Lambda, or
 * nothing — `noopMetrics`, the default everywhere, records nothing and costs a function call.
 *
 * Guarantees every sink gives:
 * - A series is identified by its definition's `name`; asking for it twice returns an instrument
 *   that records into the same series.
 * - Labels must name exactly the series' label names (extra or missing names are a bug, and sinks
 *   may throw); values are strings or numbers and are recorded as their text.
 * - Recording never throws for a valid call and never waits: sinks buffer, and export on their
 *   own schedule (a Prometheus scrape, an EMF flush at the end of an invocation).
 * - Counters only go up: `add` with a negative or non-finite value is ignored.
 */
export interface Metrics {
  counter<L extends string>(series: CounterSeries<L>): Counter<L>;
  gauge<L extends string>(series: GaugeSeries<L>): Gauge<L>;
  histogram<L extends string>(series: HistogramSeries<L>): Histogram<L>;
}

export type LabelValue = string | number;
export type Labels<L extends string> = { readonly [name in L]: LabelValue };

export interface Counter<L extends string> {
  add(value: number, labels: Labels<L>): void;
}

export interface Gauge<L extends string> {
  set(value: number, labels: Labels<L>): void;
  /**
   * Replaces every value of the series at once: label sets not given are dropped. For gauges
   * read from state at collection time (lag), so a group or partition that is gone disappears.
   */
  replaceAll(values: readonly GaugeValue<L>[]): void;
}

export interface GaugeValue<L extends string> {
  labels: Labels<L>;
  value: number;
}

export interface Histogram<L extends string> {
  /** One observation, in the series' unit. */
  record(value: number, labels: Labels<L>): void;
}

/**
 * The unit of a series' values. Durations are recorded in seconds (Prometheus' base unit); the
 * EMF sink sends them to CloudWatch in milliseconds.
 */
export type SeriesUnit = "count" | "records" | "bytes" | "seconds" | "requests";

/** How CloudWatch sees a series (the EMF sink): its metric name and dimensions. */
export interface CloudWatchShape<L extends string> {
  /** The CloudWatch metric name, e.g. `ProduceRecords`. */
  metric: string;
  /**
   * The dimension sets every datapoint is sent under (each also carries `service`): e.g.
   * `[["topic"], []]` gives a metric per topic and the service-wide total. Labels no set names
   * are folded away — counters summed, histogram values kept, gauges combined by
   * `gaugeAggregate`. Fewer dimensions cost less: CloudWatch bills each distinct combination.
   */
  dimensions: readonly (readonly L[])[];
  /** How gauge values of label sets that collapse into one dimension set combine. Default sum. */
  gaugeAggregate?: "sum" | "max";
}

interface SeriesBase<L extends string> {
  /** The Prometheus name, e.g. `sluice_produce_records_total`. */
  name: string;
  help: string;
  unit: SeriesUnit;
  labels: readonly L[];
  cloudwatch: CloudWatchShape<L>;
}

export interface CounterSeries<L extends string> extends SeriesBase<L> {
  kind: "counter";
}

export interface GaugeSeries<L extends string> extends SeriesBase<L> {
  kind: "gauge";
}

export interface HistogramSeries<L extends string> extends SeriesBase<L> {
  kind: "histogram";
  /** Upper bounds of the Prometheus buckets, ascending, in the series' unit. */
  buckets: readonly number[];
}

export type Series<L extends string = string> = CounterSeries<L> | GaugeSeries<L> | HistogramSeries<L>;

const noopCounter: Counter<never> = { add: () => undefined };
const noopGauge: Gauge<never> = { set: () => undefined, replaceAll: () => undefined };
const noopHistogram: Histogram<never> = { record: () => undefined };

/** Records nothing: the default of every library. */
export const noopMetrics: Metrics = {
  counter: <L extends string>() => noopCounter as Counter<L>,
  gauge: <L extends string>() => noopGauge as Gauge<L>,
  histogram: <L extends string>() => noopHistogram as Histogram<L>,
};

/** Records into every sink given (Prometheus and the recent-activity window, say). */
export function fanOut(...sinks: readonly Metrics[]): Metrics {
  const active = sinks.filter((sink) => sink !== noopMetrics);
  if (active.length === 0) return noopMetrics;
  if (active.length === 1) return active[0]!;
  return {
    counter: (series) => {
      const all = active.map((sink) => sink.counter(series));
      return {
        add: (value, labels) => {
          for (const one of all) one.add(value, labels);
        },
      };
    },
    gauge: (series) => {
      const all = active.map((sink) => sink.gauge(series));
      return {
        set: (value, labels) => {
          for (const one of all) one.set(value, labels);
        },
        replaceAll: (values) => {
          for (const one of all) one.replaceAll(values);
        },
      };
    },
    histogram: (series) => {
      const all = active.map((sink) => sink.histogram(series));
      return {
        record: (value, labels) => {
          for (const one of all) one.record(value, labels);
        },
      };
    },
  };
}

/** Seconds since `startedMs` (a `performance.now()` reading). */
export function secondsSince(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}
