import { InvalidArgumentError } from "@sluice/core";
import { COMPRESSION_TYPES, TOPIC_CONFIG_DEFAULTS, type TopicConfigName } from "@sluice/engine";
import { anchored, unsignedUpTo } from "./patterns.js";

/**
 * The values the HTTP API accepts for each topic config, as the OpenAPI document states them:
 * integers in decimal without leading zeros, the lists and words Kafka uses. The engine checks
 * meaning (ranges, names); these add the written form, so that a client or fuzzer reading the
 * document sends only values the server takes, and the server takes every value it documents.
 */
export interface ConfigValueRule {
  /** A JSON Schema for the value (a string with a pattern or an enum). */
  schema: { type: "string"; pattern?: string; enum?: string[]; example: string; description: string };
  /** For the error message: what a valid value looks like. */
  expected: string;
  test(value: string): boolean;
}

function patternRule(pattern: string, expected: string, example: string): ConfigValueRule {
  const regex = new RegExp(pattern);
  return {
    schema: { type: "string", pattern, example, description: expected },
    expected,
    test: (value) => regex.test(value),
  };
}

function enumRule(values: readonly string[], example: string): ConfigValueRule {
  const expected = `one of ${values.join(", ")}`;
  return {
    schema: { type: "string", enum: [...values], example, description: expected },
    expected,
    test: (value) => values.includes(value),
  };
}

/** The engine's largest max.message.bytes (config-values.test.ts holds the two together). */
export const MESSAGE_BYTES_LIMIT = 10 * 1024 * 1024;

const RETENTION = anchored(`(?:-1|${unsignedUpTo(Number.MAX_SAFE_INTEGER)})`);
const RETENTION_EXPECTED = `-1 (no limit) or an integer from 0 to ${Number.MAX_SAFE_INTEGER}, without leading zeros`;

export const CONFIG_VALUE_RULES: Record<TopicConfigName, ConfigValueRule> = {
  "retention.ms": patternRule(RETENTION, RETENTION_EXPECTED, "86400000"),
  "retention.bytes": patternRule(RETENTION, RETENTION_EXPECTED, "1073741824"),
  "cleanup.policy": patternRule(
    "^(?:delete|compact)(?: *, *(?:delete|compact))*$",
    "delete, compact or both separated by a comma (delete,compact)",
    "compact",
  ),
  "delete.retention.ms": patternRule(
    anchored(unsignedUpTo(Number.MAX_SAFE_INTEGER)),
    `an integer from 0 to ${Number.MAX_SAFE_INTEGER}, without leading zeros`,
    "86400000",
  ),
  "min.compaction.lag.ms": patternRule(
    anchored(unsignedUpTo(Number.MAX_SAFE_INTEGER)),
    `an integer from 0 to ${Number.MAX_SAFE_INTEGER}, without leading zeros`,
    "0",
  ),
  "max.message.bytes": patternRule(
    anchored(unsignedUpTo(MESSAGE_BYTES_LIMIT, 1)),
    `an integer from 1 to ${MESSAGE_BYTES_LIMIT}, without leading zeros`,
    "1048576",
  ),
  "compression.type": enumRule(COMPRESSION_TYPES, "zstd"),
  "message.timestamp.type": enumRule(["CreateTime", "LogAppendTime"], "LogAppendTime"),
};

export const CONFIG_NAMES = Object.keys(TOPIC_CONFIG_DEFAULTS) as TopicConfigName[];

export function isConfigName(name: string): name is TopicConfigName {
  return Object.hasOwn(CONFIG_VALUE_RULES, name);
}

/** Why `value` is not one the API accepts for `name` (the engine's wording), or undefined. */
export function configValueProblem(name: TopicConfigName, value: string): string | undefined {
  const rule = CONFIG_VALUE_RULES[name];
  if (rule.test(value)) return undefined;
  return `invalid value for topic config ${name}: ${JSON.stringify(value)}; expected ${rule.expected}`;
}

export function checkConfigValue(name: TopicConfigName, value: string): void {
  const problem = configValueProblem(name, value);
  if (problem !== undefined) throw new InvalidArgumentError(problem, { details: { config: name, value } });
}

/**
 * `{name, value}` pairs as the document states them: one alternative per config name, each with
 * that config's value schema (create topic's `configs`, a SET in `configs:alter`).
 */
export function configPairAlternatives(extra: Record<string, unknown> = {}): Record<string, unknown>[] {
  return CONFIG_NAMES.map((name) => ({
    type: "object",
    properties: { name: { const: name }, value: CONFIG_VALUE_RULES[name].schema, ...extra },
    required: ["name", "value"],
  }));
}
