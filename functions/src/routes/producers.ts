import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody } from "../body.js";
import type { AppContext, SluiceApp } from "../context.js";
import { ClusterParamsSchema, COMMON_ERRORS, errorResponses } from "../schemas.js";

const InitProducerSchema = z
  .object({
    producer_id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().openapi({
      description: "An existing producer id: bumps its epoch, fencing every earlier incarnation",
    }),
  })
  .openapi("InitProducerRequest");

const ProducerSchema = z
  .object({ producer_id: z.number().int(), producer_epoch: z.number().int() })
  .openapi("Producer");

export function registerProducerRoutes(app: SluiceApp, context: AppContext): void {
  const initProducer = createRoute({
    method: "post",
    path: "/v3/clusters/{cluster_id}/producers",
    tags: ["Producers"],
    summary: "Start an idempotent producer (a Sluice extension)",
    description: [
      "Without a body (or with {}), hands out a new producer id with epoch 0. With a producer_id, bumps that",
      "producer's epoch. Send the id, the epoch and each request's first sequence number in the",
      "Sluice-Producer-Id, Sluice-Producer-Epoch and Sluice-Producer-Sequence headers of produce requests:",
      "a retried request is answered with its original offsets, a gap in the sequence is 409.",
    ].join(" "),
    middleware: [jsonBody({ bytesMax: context.limits.requestBytesMax, required: false })] as const,
    request: {
      params: ClusterParamsSchema,
      body: { required: false, content: { "application/json": { schema: InitProducerSchema } } },
    },
    responses: {
      200: {
        description: "The producer's id and epoch",
        content: { "application/json": { schema: ProducerSchema } },
      },
      ...errorResponses(...COMMON_ERRORS, 413),
    },
  });

  app.openapi(initProducer, async (c) => {
    const { producer_id } = c.req.valid("json");
    const identity = await context.engine.initProducer(producer_id);
    return c.json({ producer_id: identity.producerId, producer_epoch: identity.producerEpoch }, 200);
  });
}
