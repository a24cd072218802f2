import { partitionForKey } from "@sluice/core";
import { type ProduceRecord, recordPayloadBytes, type Topic, validateRecord } from "@sluice/engine";
import type { HandlerOutput } from "./handlers/result.js";

/** An output with its topic and partition decided. */
export interface RoutedOutput extends HandlerOutput {
  topic: string;
  record: ProduceRecord & { partition: number };
}

/**
 * Decides an output's topic and partition and checks it against the topic (ARCHITECTURE.md,
 * "Processors"): the topic must be one of the processor's output topics (it may be left out when
 * there is exactly one) and exist; the partition is the record's own, else its key's (Kafka's
 * partitioner), else the source partition modulo the topic's partitions, so outputs of unkeyed
 * records keep their source partition's order. Size and partition limits are the engine's.
 *
 * The output is the handler result's own copy (built by the invoker for this call), so it is
 * routed in place and returned as it is; a problem comes back as its message. It runs for every
 * output, so it makes no object of its own.
 */
export function routeOutput(
  output: HandlerOutput,
  index: number,
  outputTopics: readonly string[],
  topics: ReadonlyMap<string, Topic | undefined>,
  sourcePartition: number,
): RoutedOutput | string {
  const name = output.topic ?? (outputTopics.length === 1 ? outputTopics[0] : undefined);
  if (name === undefined) {
    return outputTopics.length === 0
      ? `outputs[${index}]: the processor has no output topics`
      : `outputs[${index}] names no topic, and the processor has ${outputTopics.length} output topics (${outputTopics.join(", ")})`;
  }
  if (!outputTopics.includes(name)) {
    return `outputs[${index}] goes to topic ${name}, which is not one of the processor's output topics (${outputTopics.join(", ") || "none"})`;
  }
  const topic = topics.get(name);
  if (!topic) return `outputs[${index}] goes to topic ${name}, which does not exist`;
  const routed = output.record as ProduceRecord & { partition: number };
  routed.partition ??=
    routed.key !== null ? partitionForKey(routed.key, topic.partitions) : sourcePartition % topic.partitions;
  // The common case is checked inline; anything unusual goes through the engine's rules, for their message.
  const usual =
    routed.partition < topic.partitions &&
    (routed.timestamp === undefined || (Number.isSafeInteger(routed.timestamp) && routed.timestamp >= 0)) &&
    recordPayloadBytes(routed) <= topic.settings.maxMessageBytes;
  if (!usual) {
    try {
      validateRecord(routed, topic, { label: `outputs[${index}]` });
    } catch (error) {
      return `${error instanceof Error ? error.message : String(error)} (topic ${name})`;
    }
  }
  output.topic = name;
  return output as RoutedOutput;
}
