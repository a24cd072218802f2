export {
  type CloudWatchShape,
  type Counter,
  type CounterSeries,
  fanOut,
  type Gauge,
  type GaugeSeries,
  type GaugeValue,
  type Histogram,
  type HistogramSeries,
  type Labels,
  type LabelValue,
  type Metrics,
  noopMetrics,
  type Series,
  type SeriesUnit,
  secondsSince,
} from "./metrics.js";
export {
  ACTIVITY_WINDOW_SECONDS,
  type ActivityClock,
  type ActivityRates,
  RecentActivity,
  type TopicActivity,
} from "./recent-activity.js";
export * as series from "./series.js";
export {
  ALL_SERIES,
  CLOUDWATCH_NAMESPACE,
  HANDLER_SECONDS_BUCKETS,
  LATENCY_SECONDS_BUCKETS,
  RECORD_COUNT_BUCKETS,
  SIZE_BYTES_BUCKETS,
} from "./series.js";
