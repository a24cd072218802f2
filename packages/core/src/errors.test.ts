import { describe, expect, it } from "vitest";
import { ConflictError, InvalidArgumentError, isSluiceError, UnavailableError } from "./errors.js";

describe("error taxonomy", () => {
  it("carries kind, retryability, details and cause", () => {
    const cause = new Error("socket reset");
    const error = new UnavailableError("metadata store unavailable", { cause, details: { table: "t" } });
    expect(error.kind).toBe("unavailable");
    expect(error.retryable).toBe(true);
    expect(error.details).toEqual({ table: "t" });
    expect(error.cause).toBe(cause);
    expect(error.name).toBe("UnavailableError");
    expect(isSluiceError(error)).toBe(true);
    expect(isSluiceError(new Error("plain"))).toBe(false);
  });

  it("marks conflicts and bad input as not retryable", () => {
    expect(new ConflictError("x").retryable).toBe(false);
    expect(new InvalidArgumentError("x").kind).toBe("invalid_argument");
  });
});
