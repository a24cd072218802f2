import { InvalidArgumentError } from "@sluice/core";

/**
 * Topic configuration, Kafka's names and meanings. Values travel as strings (as in Kafka's admin
 * API); they are validated here and parsed into `TopicSettings` for the engine.
 */
export const TOPIC_CONFIG_DEFAULTS = {
  "retention.ms": "604800000",
  "retention.bytes": "-1",
  "cleanup.policy": "delete",
  "delete.retention.ms": "86400000",
  "min.compaction.lag.ms": "0",
  "max.message.bytes": "1048576",
  "compression.type": "producer",
  "message.timestamp.type": "CreateTime",
} as const;

export type TopicConfigName = keyof typeof TOPIC_CONFIG_DEFAULTS;
export type TopicConfigs = Partial<Record<TopicConfigName, string>>;

export const COMPRESSION_TYPES = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] as const;
export type CompressionType = (typeof COMPRESSION_TYPES)[number];

/** Largest record we accept; also bounded by the HTTP request limit in front of it. */
export const MESSAGE_BYTES_LIMIT = 10 * 1024 * 1024;

export interface TopicSettings {
  retentionMs: number;
  retentionBytes: number;
  cleanupPolicy: { delete: boolean; compact: boolean };
  /** Key compaction: how long tombstones stay after the run that first cleaned them. */
  deleteRetentionMs: number;
  /** Key compaction: records newer than this are never compacted. */
  minCompactionLagMs: number;
  maxMessageBytes: number;
  compressionType: CompressionType;
  timestampType: "CreateTime" | "LogAppendTime";
}

export function isTopicConfigName(name: string): name is TopicConfigName {
  return Object.hasOwn(TOPIC_CONFIG_DEFAULTS, name);
}

/** Validates a set of overrides; throws InvalidArgumentError naming the config and the value. */
export function validateTopicConfigs(configs: Record<string, string>): TopicConfigs {
  const valid: TopicConfigs = {};
  for (const [name, value] of Object.entries(configs)) {
    if (!isTopicConfigName(name)) {
      throw new InvalidArgumentError(
        `unknown topic config: ${name} (supported: ${Object.keys(TOPIC_CONFIG_DEFAULTS).join(", ")})`,
        { details: { config: name } },
      );
    }
    if (typeof value !== "string") {
      throw new InvalidArgumentError(`topic config ${name} must be a string value`, {
        details: { config: name },
      });
    }
    checkValue(name, value);
    valid[name] = value;
  }
  return valid;
}

function checkValue(name: TopicConfigName, value: string): void {
  switch (name) {
    case "retention.ms":
    case "retention.bytes":
      integerIn(name, value, -1, Number.MAX_SAFE_INTEGER);
      return;
    case "max.message.bytes":
      integerIn(name, value, 1, MESSAGE_BYTES_LIMIT);
      return;
    case "delete.retention.ms":
    case "min.compaction.lag.ms":
      integerIn(name, value, 0, Number.MAX_SAFE_INTEGER);
      return;
    case "cleanup.policy": {
      const parts = value.split(",").map((part) => part.trim());
      if (parts.length === 0 || parts.some((part) => part !== "delete" && part !== "compact")) {
        throw invalid(name, value, "expected delete, compact or delete,compact");
      }
      return;
    }
    case "compression.type":
      if (!(COMPRESSION_TYPES as readonly string[]).includes(value)) {
        throw invalid(name, value, `expected one of ${COMPRESSION_TYPES.join(", ")}`);
      }
      return;
    case "message.timestamp.type":
      if (value !== "CreateTime" && value !== "LogAppendTime") {
        throw invalid(name, value, "expected CreateTime or LogAppendTime");
      }
      return;
  }
}

function integerIn(name: string, value: string, min: number, max: number): void {
  if (!/^-?\d+$/.test(value)) throw invalid(name, value, "expected an integer");
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw invalid(name, value, `expected an integer from ${min} to ${max}`);
  }
}

function invalid(name: string, value: string, expectation: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `invalid value for topic config ${name}: ${JSON.stringify(value)}; ${expectation}`,
    {
      details: { config: name, value },
    },
  );
}

/** Every config with its effective value and whether it is the default. */
export function effectiveConfigs(
  overrides: TopicConfigs,
): { name: TopicConfigName; value: string; isDefault: boolean }[] {
  return (Object.keys(TOPIC_CONFIG_DEFAULTS) as TopicConfigName[]).map((name) => ({
    name,
    value: overrides[name] ?? TOPIC_CONFIG_DEFAULTS[name],
    isDefault: overrides[name] === undefined,
  }));
}

export function topicSettings(overrides: TopicConfigs): TopicSettings {
  const value = (name: TopicConfigName) => overrides[name] ?? TOPIC_CONFIG_DEFAULTS[name];
  const policy = value("cleanup.policy")
    .split(",")
    .map((part) => part.trim());
  return {
    retentionMs: Number(value("retention.ms")),
    retentionBytes: Number(value("retention.bytes")),
    cleanupPolicy: { delete: policy.includes("delete"), compact: policy.includes("compact") },
    deleteRetentionMs: Number(value("delete.retention.ms")),
    minCompactionLagMs: Number(value("min.compaction.lag.ms")),
    maxMessageBytes: Number(value("max.message.bytes")),
    compressionType: value("compression.type") as CompressionType,
    timestampType: value("message.timestamp.type") as TopicSettings["timestampType"],
  };
}
