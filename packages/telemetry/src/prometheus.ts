import { collectDefaultMetrics, type Metric, Gauge as PromGauge, Registry } from "prom-client";
import type {
  Counter,
  CounterSeries,
  Gauge,
  GaugeSeries,
  Histogram,
  HistogramSeries,
  Labels,
  Metrics,
  Series,
} from "./metrics.js";
import { FastCounter, FastHistogram } from "./prometheus-instruments.js";
import { telemetryCollectFailures } from "./series.js";

/** What the sink keeps per series: its own counters and histograms, prom-client's gauges. */
type Instrument = FastCounter | FastHistogram | Metric;

/** Something that reads state into gauges before each scrape (consumer-group lag). */
export type Collector = () => Promise<void>;

export interface PrometheusMetricsOptions {
  /**
   * Also expose the process' own metrics (CPU, memory, event-loop lag, GC) under their standard
   * names (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`, ...). Default true.
   */
  processMetrics?: boolean;
  /** Told when a collector fails; the scrape still answers, with that collector's gauges as they were. */
  onCollectError?: (name: string, error: unknown) => void;
}

/**
 * The Prometheus sink (prom-client): every series in one registry of its own, exposed in the
 * text format by `exposition()` — the local server's `GET /metrics`.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly instruments = new Map<string, { series: Series; metric: Instrument }>();
  private readonly collectors = new Map<string, Collector>();
  private readonly onCollectError: ((name: string, error: unknown) => void) | undefined;

  constructor(options: PrometheusMetricsOptions = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.onCollectError = options.onCollectError;
  }

  /** The Content-Type of `exposition()`: the Prometheus text format, version 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  counter<L extends string>(series: CounterSeries<L>): Counter<L> {
    const counter = this.instrument(series, () => new FastCounter(series)) as FastCounter;
    return {
      add(value: number, labels: Labels<L>): void {
        if (value >= 0 && Number.isFinite(value)) counter.add(value, labels);
      },
    };
  }

  gauge<L extends string>(series: GaugeSeries<L>): Gauge<L> {
    const gauge = this.instrument(
      series,
      () => new PromGauge({ name: series.name, help: series.help, labelNames: series.labels, registers: [] }),
    ) as PromGauge<L>;
    return {
      set(value, labels) {
        if (Number.isFinite(value)) gauge.set(labels, value);
      },
      replaceAll(values) {
        gauge.reset();
        for (const { labels, value } of values) if (Number.isFinite(value)) gauge.set(labels, value);
      },
    };
  }

  histogram<L extends string>(series: HistogramSeries<L>): Histogram<L> {
    const histogram = this.instrument(series, () => new FastHistogram(series)) as FastHistogram;
    return {
      record(value, labels) {
        if (Number.isFinite(value)) histogram.record(value, labels);
      },
    };
  }

  /**
   * Runs `collect` before every scrape (replacing an earlier collector of the same name). A
   * failing collector is counted in `sluice_telemetry_collect_failures_total` and leaves its
   * gauges as they were.
   */
  addCollector(name: string, collect: Collector): void {
    this.collectors.set(name, collect);
  }

  /** Runs the collectors, then renders every series in the Prometheus text format. */
  async exposition(): Promise<string> {
    const failures = this.counter(telemetryCollectFailures);
    await Promise.all(
      [...this.collectors].map(async ([name, collect]) => {
        try {
          await collect();
        } catch (error) {
          failures.add(1, { collector: name });
          this.onCollectError?.(name, error);
        }
      }),
    );
    return this.registry.metrics();
  }

  private instrument(series: Series, create: () => Instrument): Instrument {
    const existing = this.instruments.get(series.name);
    if (existing) {
      if (existing.series.kind !== series.kind) {
        throw new Error(`series ${series.name} is a ${existing.series.kind}, not a ${series.kind}`);
      }
      return existing.metric;
    }
    const metric = create();
    // The registry renders what `get()` returns; the sink's own instruments give it that shape.
    this.registry.registerMetric(metric as Metric);
    this.instruments.set(series.name, { series, metric });
    return metric;
  }
}
