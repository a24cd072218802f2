import { invalidConfig } from "./errors.js";

/**
 * A share group's settings, given when it is created (Kafka's share group configs, named without
 * their `group.share.` prefix). Every one is enforced; unknown names are refused.
 */
export interface ShareGroupConfigs {
  /** Deliveries a record gets before it is archived (and dead-lettered). Default 5. */
  deliveryCountLimit: number;
  /** How long an acquired record stays locked to its member without a renewal. Default 30 s. */
  lockDurationMs: number;
  /** Where a share-partition's window starts the first time: the log's start or its end. Default latest. */
  autoOffsetReset: "earliest" | "latest";
  /** Where archived records are copied (KIP-1191); none by default. */
  deadLetterTopic: string | null;
}

export const DELIVERY_COUNT_LIMIT = "delivery.count.limit";
export const RECORD_LOCK_DURATION_MS = "record.lock.duration.ms";
export const AUTO_OFFSET_RESET = "auto.offset.reset";
export const DEAD_LETTER_TOPIC = "dead.letter.topic.name";

export const SHARE_GROUP_CONFIG_NAMES = [
  DELIVERY_COUNT_LIMIT,
  RECORD_LOCK_DURATION_MS,
  AUTO_OFFSET_RESET,
  DEAD_LETTER_TOPIC,
] as const;

export const DEFAULT_SHARE_GROUP_CONFIGS: ShareGroupConfigs = {
  deliveryCountLimit: 5,
  lockDurationMs: 30_000,
  autoOffsetReset: "latest",
  deadLetterTopic: null,
};

export const DELIVERY_COUNT_LIMIT_MAX = 100;
export const LOCK_DURATION_MS_MIN = 1_000;
export const LOCK_DURATION_MS_MAX = 60 * 60_000;
const TOPIC_NAME = /^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$/;

/** Parses configs given by name (strings, as the v3 API carries them); unknown or bad ones throw. */
export function parseShareGroupConfigs(given: Record<string, string>): Partial<ShareGroupConfigs> {
  const parsed: Partial<ShareGroupConfigs> = {};
  for (const [name, value] of Object.entries(given)) {
    switch (name) {
      case DELIVERY_COUNT_LIMIT:
        parsed.deliveryCountLimit = integerIn(name, value, 1, DELIVERY_COUNT_LIMIT_MAX);
        break;
      case RECORD_LOCK_DURATION_MS:
        parsed.lockDurationMs = integerIn(name, value, LOCK_DURATION_MS_MIN, LOCK_DURATION_MS_MAX);
        break;
      case AUTO_OFFSET_RESET:
        if (value !== "earliest" && value !== "latest")
          throw invalidConfig(`invalid ${name} ${JSON.stringify(value)}: expected earliest or latest`);
        parsed.autoOffsetReset = value;
        break;
      case DEAD_LETTER_TOPIC:
        if (value === "") parsed.deadLetterTopic = null;
        else if (!TOPIC_NAME.test(value))
          throw invalidConfig(`invalid ${name} ${JSON.stringify(value)}: expected a topic name`);
        else parsed.deadLetterTopic = value;
        break;
      default:
        throw invalidConfig(
          `unknown share group config ${JSON.stringify(name)}; known: ${SHARE_GROUP_CONFIG_NAMES.join(", ")}`,
        );
    }
  }
  return parsed;
}

/** The configs as name → string, as the v3 API shows them. */
export function configEntries(configs: ShareGroupConfigs): Record<string, string> {
  return {
    [DELIVERY_COUNT_LIMIT]: String(configs.deliveryCountLimit),
    [RECORD_LOCK_DURATION_MS]: String(configs.lockDurationMs),
    [AUTO_OFFSET_RESET]: configs.autoOffsetReset,
    [DEAD_LETTER_TOPIC]: configs.deadLetterTopic ?? "",
  };
}

/** Names of the given configs that differ from the group's, as `name=ours (given)`. */
export function configDifferences(current: ShareGroupConfigs, given: Partial<ShareGroupConfigs>): string[] {
  const ours = configEntries(current);
  const theirs = configEntries({ ...current, ...given });
  return Object.keys(ours)
    .filter((name) => ours[name] !== theirs[name])
    .map((name) => `${name}=${ours[name] || "(none)"}, not ${theirs[name] || "(none)"}`);
}

function integerIn(name: string, value: string, min: number, max: number): number {
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max)
    throw invalidConfig(
      `invalid ${name} ${JSON.stringify(value)}: expected an integer from ${min} to ${max}`,
    );
  return number;
}
