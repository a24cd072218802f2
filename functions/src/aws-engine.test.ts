import { Engine, INLINE_MAX_BYTES_LIMIT } from "@sluice/engine";
import { describe, expect, it } from "vitest";
import { createEngineFromEnv } from "./aws-engine.js";

describe("createEngineFromEnv", () => {
  it("names every missing variable", () => {
    expect(() => createEngineFromEnv({})).toThrow(
      /^missing environment variables SLUICE_BUCKET, SLUICE_TABLE, SLUICE_CLUSTER_ID: /,
    );
    expect(() => createEngineFromEnv({ SLUICE_BUCKET: "b", SLUICE_CLUSTER_ID: "c" })).toThrow(
      /^missing environment variable SLUICE_TABLE: /,
    );
    expect(() =>
      createEngineFromEnv({ SLUICE_BUCKET: "b", SLUICE_TABLE: "", SLUICE_CLUSTER_ID: "c" }),
    ).toThrow(/SLUICE_TABLE/);
  });

  it("builds an engine for the cluster from a complete environment, without calling AWS", () => {
    const built = createEngineFromEnv({
      SLUICE_BUCKET: "bucket",
      SLUICE_TABLE: "table",
      SLUICE_CLUSTER_ID: "prod",
      AWS_REGION: "eu-west-1",
    });
    expect(built.clusterId).toBe("prod");
    expect(built.engine).toBeInstanceOf(Engine);
  });

  it("refuses a SLUICE_PARALLEL_COMMIT or SLUICE_UPLOAD_HEDGE_MS it cannot read, naming it", () => {
    const env = { SLUICE_BUCKET: "b", SLUICE_TABLE: "t", SLUICE_CLUSTER_ID: "c", AWS_REGION: "eu-west-1" };
    expect(() => createEngineFromEnv({ ...env, SLUICE_PARALLEL_COMMIT: "yes" })).toThrow(
      /SLUICE_PARALLEL_COMMIT must be "true" or "false", got yes/,
    );
    expect(() => createEngineFromEnv({ ...env, SLUICE_UPLOAD_HEDGE_MS: "soon" })).toThrow(
      /SLUICE_UPLOAD_HEDGE_MS must be a number of milliseconds, got soon/,
    );
    expect(createEngineFromEnv({ ...env, SLUICE_PARALLEL_COMMIT: "true" }).engine).toBeInstanceOf(Engine);
  });

  it("refuses a SLUICE_INLINE_MAX_BYTES that is not a size up to the limit, naming it", () => {
    const env = { SLUICE_BUCKET: "b", SLUICE_TABLE: "t", SLUICE_CLUSTER_ID: "c", AWS_REGION: "eu-west-1" };
    for (const bad of ["small", "-1", "4k", String(INLINE_MAX_BYTES_LIMIT + 1)]) {
      expect(() => createEngineFromEnv({ ...env, SLUICE_INLINE_MAX_BYTES: bad })).toThrow(
        new RegExp(
          `SLUICE_INLINE_MAX_BYTES must be a whole number of bytes from 0 \\(off\\) to ${INLINE_MAX_BYTES_LIMIT}, got ${bad}`,
        ),
      );
    }
    expect(createEngineFromEnv({ ...env, SLUICE_INLINE_MAX_BYTES: "4096" }).engine).toBeInstanceOf(Engine);
  });
});
