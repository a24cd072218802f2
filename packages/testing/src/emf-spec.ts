/**
 * Checks a document against the structure the CloudWatch embedded metric format specification
 * requires, so a test can say exactly what is wrong before CloudWatch would silently drop it:
 *
 * - the root is an object with an `_aws` member: `Timestamp` (milliseconds since the epoch, a
 *   number) and `CloudWatchMetrics`, an array of metric directives;
 * - a directive has `Namespace` (a string of 1 to 255 characters), `Dimensions` (an array of
 *   dimension sets, each an array of at most 30 dimension keys) and `Metrics` (an array of at
 *   most 100 metric definitions);
 * - a metric definition has `Name` (1 to 255 characters), an optional `Unit` from CloudWatch's
 *   list and an optional `StorageResolution` of 1 or 60;
 * - every dimension key names a root member whose value is a string of 1 to 1024 characters;
 * - every metric name names a root member whose value is a number or an array of at most 100
 *   numbers.
 *
 * Returns the problems found; none means the document is valid.
 */
export function emfProblems(document: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(document)) return ["the document is not a JSON object"];
  const aws = document._aws;
  if (!isObject(aws)) return ["_aws is missing or not an object"];
  if (typeof aws.Timestamp !== "number" || !Number.isInteger(aws.Timestamp) || aws.Timestamp < 0) {
    problems.push("_aws.Timestamp must be a non-negative integer (milliseconds since the epoch)");
  }
  if (!Array.isArray(aws.CloudWatchMetrics)) {
    problems.push("_aws.CloudWatchMetrics must be an array");
    return problems;
  }
  aws.CloudWatchMetrics.forEach((directive: unknown, d: number) => {
    const where = `_aws.CloudWatchMetrics[${d}]`;
    if (!isObject(directive)) {
      problems.push(`${where} is not an object`);
      return;
    }
    if (typeof directive.Namespace !== "string" || !between(directive.Namespace.length, 1, 255)) {
      problems.push(`${where}.Namespace must be a string of 1 to 255 characters`);
    }
    if (!Array.isArray(directive.Dimensions)) problems.push(`${where}.Dimensions must be an array`);
    else {
      directive.Dimensions.forEach((set: unknown, s: number) => {
        if (!Array.isArray(set)) {
          problems.push(`${where}.Dimensions[${s}] must be an array of dimension keys`);
          return;
        }
        if (set.length > 30) problems.push(`${where}.Dimensions[${s}] has ${set.length} keys (at most 30)`);
        for (const key of set) {
          if (typeof key !== "string") problems.push(`${where}.Dimensions[${s}] holds a non-string key`);
          else {
            const value = document[key];
            if (typeof value !== "string" || !between(value.length, 1, 1024)) {
              problems.push(
                `dimension ${key} must name a root member holding a string of 1 to 1024 characters`,
              );
            }
          }
        }
      });
    }
    if (!Array.isArray(directive.Metrics)) {
      problems.push(`${where}.Metrics must be an array`);
      return;
    }
    if (directive.Metrics.length > 100)
      problems.push(`${where}.Metrics has ${directive.Metrics.length} (at most 100)`);
    directive.Metrics.forEach((metric: unknown, m: number) => {
      const at = `${where}.Metrics[${m}]`;
      if (!isObject(metric)) {
        problems.push(`${at} is not an object`);
        return;
      }
      if (typeof metric.Name !== "string" || !between(metric.Name.length, 1, 255)) {
        problems.push(`${at}.Name must be a string of 1 to 255 characters`);
        return;
      }
      if (metric.Unit !== undefined && !CLOUDWATCH_UNITS.has(metric.Unit as string)) {
        problems.push(`${at}.Unit ${String(metric.Unit)} is not a CloudWatch unit`);
      }
      if (
        metric.StorageResolution !== undefined &&
        metric.StorageResolution !== 1 &&
        metric.StorageResolution !== 60
      ) {
        problems.push(`${at}.StorageResolution must be 1 or 60`);
      }
      const value = document[metric.Name];
      const numbers = Array.isArray(value) ? value : [value];
      if (
        numbers.length === 0 ||
        numbers.length > 100 ||
        !numbers.every((n) => typeof n === "number" && Number.isFinite(n))
      ) {
        problems.push(`metric ${metric.Name} must name a root member holding a number or 1 to 100 numbers`);
      }
    });
  });
  return problems;
}

const CLOUDWATCH_UNITS = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function between(value: number, low: number, high: number): boolean {
  return value >= low && value <= high;
}
