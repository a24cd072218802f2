import type { CounterSeries, HistogramSeries, LabelValue } from "./metrics.js";

/**
 * Counters and histograms kept by the Prometheus sink itself and handed to prom-client's registry
 * only to be rendered at a scrape. prom-client's own `inc` and `observe` check every label and
 * hash the label set on each call; inside the local server the dozen of them a single produce
 * makes took about 20 µs of its 230 (docs/benchmarks.md). Here a call finds its label set by its
 * values joined in the series' order, checks the names only the first time a set is seen, and
 * adds to plain numbers.
 */

type Labels = Readonly<Record<string, LabelValue>>;

/** What prom-client's registry reads from a metric to render it (its `MetricObject`). */
interface Rendered {
  name: string;
  help: string;
  type: "counter" | "histogram";
  aggregator: "sum";
  values: { labels: Record<string, LabelValue>; value: number; metricName?: string }[];
}

/** One label set's key: its values, in the series' label order, joined by a character labels never hold. */
function keyOf(names: readonly string[], labels: Labels): string {
  let key = names.length === 0 ? "" : String(labels[names[0]!]);
  for (let i = 1; i < names.length; i++) key += `\u0000${labels[names[i]!]}`;
  return key;
}

/** Throws unless `labels` names exactly the series' labels (checked once per label set). */
function checkedCopy(series: string, names: readonly string[], labels: Labels): Record<string, LabelValue> {
  const given = Object.keys(labels);
  const missing = names.filter((name) => labels[name] === undefined);
  const extra = given.filter((name) => !names.includes(name));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `series ${series} has the labels ${names.join(", ") || "(none)"}; given ${given.join(", ") || "(none)"}`,
    );
  }
  const copy: Record<string, LabelValue> = {};
  for (const name of names) copy[name] = labels[name]!;
  return copy;
}

/** Label sets by key, each with its values: the state both instruments keep. */
class LabelSets<T> {
  private readonly sets = new Map<string, { labels: Record<string, LabelValue>; state: T }>();

  constructor(
    private readonly series: string,
    private readonly names: readonly string[],
    private readonly create: () => T,
  ) {}

  of(labels: Labels): T {
    const key = keyOf(this.names, labels);
    let set = this.sets.get(key);
    if (!set) {
      set = { labels: checkedCopy(this.series, this.names, labels), state: this.create() };
      this.sets.set(key, set);
    }
    return set.state;
  }

  entries(): IterableIterator<{ labels: Record<string, LabelValue>; state: T }> {
    return this.sets.values();
  }

  clear(): void {
    this.sets.clear();
  }
}

/**
 * What both instruments share: the series' name and help as the registry reads them, the label
 * sets, and the rendering loop; each instrument says what one label set's samples are.
 */
abstract class SinkInstrument<T> {
  readonly aggregator = "sum";
  abstract readonly type: Rendered["type"];
  readonly name: string;
  readonly help: string;
  protected readonly sets: LabelSets<T>;

  constructor(series: CounterSeries<string> | HistogramSeries<string>, create: () => T) {
    this.name = series.name;
    this.help = series.help;
    this.sets = new LabelSets(series.name, series.labels, create);
  }

  /** Appends one label set's samples to `values`. */
  protected abstract samples(labels: Record<string, LabelValue>, state: T, values: Rendered["values"]): void;

  get(): Rendered {
    const values: Rendered["values"] = [];
    for (const { labels, state } of this.sets.entries()) this.samples(labels, state, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every label set (prom-client's `Registry.resetMetrics` calls it). */
  reset(): void {
    this.sets.clear();
  }
}

/** A counter rendered by prom-client's registry. */
export class FastCounter extends SinkInstrument<{ value: number }> {
  readonly type = "counter";

  constructor(series: CounterSeries<string>) {
    super(series, () => ({ value: 0 }));
  }

  add(value: number, labels: Labels): void {
    this.sets.of(labels).value += value;
  }

  protected samples(
    labels: Record<string, LabelValue>,
    state: { value: number },
    values: Rendered["values"],
  ): void {
    values.push({ labels, value: state.value });
  }
}

interface Observations {
  /** Per bucket (and one past the last, +Inf), the observations that fell in it and no lower one. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram rendered by prom-client's registry: cumulative buckets, `_sum` and `_count`. */
export class FastHistogram extends SinkInstrument<Observations> {
  readonly type = "histogram";
  private readonly bounds: readonly number[];

  constructor(series: HistogramSeries<string>) {
    const slots = series.buckets.length + 1;
    super(series, () => ({ counts: new Float64Array(slots), sum: 0, count: 0 }));
    this.bounds = [...series.buckets];
  }

  record(value: number, labels: Labels): void {
    const observations = this.sets.of(labels);
    let bucket = 0;
    while (bucket < this.bounds.length && value > this.bounds[bucket]!) bucket++;
    observations.counts[bucket]!++;
    observations.sum += value;
    observations.count++;
  }

  protected samples(
    labels: Record<string, LabelValue>,
    state: Observations,
    values: Rendered["values"],
  ): void {
    let cumulative = 0;
    for (let bucket = 0; bucket <= this.bounds.length; bucket++) {
      cumulative += state.counts[bucket]!;
      const le = bucket < this.bounds.length ? this.bounds[bucket]! : "+Inf";
      values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    values.push({ labels, value: state.sum, metricName: `${this.name}_sum` });
    values.push({ labels, value: state.count, metricName: `${this.name}_count` });
  }
}
