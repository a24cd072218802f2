import { z } from "@hono/zod-openapi";

/** Schemas shared by the route modules: errors, path parameters, resource metadata. */

export const ErrorBodySchema = z
  .object({
    error_code: z.number().int().openapi({ description: "The HTTP status again", example: 404 }),
    message: z.string().openapi({ description: "What is wrong, naming the field, record or limit" }),
  })
  .openapi("Error");

/** One response entry per error status a route can answer with. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Bad input: malformed JSON, a schema violation, bad base64 or a bad query parameter",
    404: "Unknown cluster, topic, partition, config or producer",
    409: "Conflict with the current state: the topic exists or has more partitions than asked, the idempotency key was used for another request, or the producer is fenced or out of sequence",
    413: "Too large: a record over max.message.bytes, a body over 6 MiB, or more than 10,000 records",
    415: "The body's Content-Type is not the one the route reads",
    416: "The offset is outside [log start offset, high watermark]",
    500: "Internal error or data corruption (the cause is logged under the error id in the message)",
    503: "Temporarily unavailable; retry after the Retry-After header",
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: descriptions[status] ?? "Error",
        content: { "application/json": { schema: ErrorBodySchema } },
      },
    ]),
  ) as Record<
    number,
    { description: string; content: { "application/json": { schema: typeof ErrorBodySchema } } }
  >;
}

/** The errors every route under /v3/clusters/{cluster_id} can give. */
export const COMMON_ERRORS = [400, 404, 500, 503] as const;

/**
 * An integer in a path, query or header parameter: decimal digits (an optional minus) within
 * [min, max], nothing else (no spaces, exponents or hex, which Number() would take). Documented as
 * an integer with its range, so that clients and fuzzers send what is accepted.
 */
export function integerText(min: number, max: number) {
  return z
    .string()
    .refine((text) => /^-?\d+$/.test(text) && Number(text) >= min && Number(text) <= max, {
      message: `must be an integer from ${min} to ${max}`,
    })
    .transform(Number)
    .openapi({ type: "integer", minimum: min, maximum: max });
}

/** Topic names as the engine accepts them (Kafka's rule). */
export const TOPIC_NAME_PATTERN = "^(?!\\.\\.?$)[a-zA-Z0-9._-]{1,249}$";

export const ClusterParamsSchema = z.object({
  cluster_id: z
    .string()
    .min(1)
    .openapi({ param: { name: "cluster_id", in: "path" }, example: "sluice" }),
});

export const TopicParamsSchema = ClusterParamsSchema.extend({
  topic_name: z
    .string()
    .min(1)
    .openapi({ param: { name: "topic_name", in: "path" }, example: "orders" }),
});

export const PartitionParamsSchema = TopicParamsSchema.extend({
  partition_id: integerText(0, 2_147_483_647).openapi({
    param: { name: "partition_id", in: "path" },
    example: 0,
  }),
});

export const ResourceMetadataSchema = z
  .object({
    self: z.string().openapi({ description: "This resource's URL" }),
    resource_name: z.string().optional().openapi({ description: "Confluent resource name (CRN)" }),
  })
  .openapi("ResourceMetadata");

export const ListMetadataSchema = z
  .object({ self: z.string(), next: z.string().nullable() })
  .openapi("ListMetadata");

export const RelatedSchema = z.object({ related: z.string() }).openapi("Related");
