import { S3ServiceException } from "@aws-sdk/client-s3";
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  type SluiceError,
  UnavailableError,
} from "@sluice/core";
import { describe, expect, it } from "vitest";
import { type S3CallContext, toSluiceError } from "./s3-errors.js";

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message: `${name} from S3`,
  });
}

function networkError(code: string): Error {
  return Object.assign(new Error(`socket ${code}`), { code });
}

const GET: S3CallContext = { operation: "get", key: "k" };
const HEAD: S3CallContext = { operation: "head", key: "k" };
const PUT: S3CallContext = { operation: "put", key: "k" };
const CREATE: S3CallContext = { operation: "put", key: "k", condition: "ifNoneMatch" };
const REPLACE: S3CallContext = { operation: "put", key: "k", condition: "ifMatch" };
const LIST: S3CallContext = { operation: "list" };

type Kind = new (...args: never[]) => SluiceError;
const cases: [string, unknown, S3CallContext, Kind][] = [
  ["412 PreconditionFailed on create-only", s3Error("PreconditionFailed", 412), CREATE, ConflictError],
  ["412 PreconditionFailed on ifMatch", s3Error("PreconditionFailed", 412), REPLACE, ConflictError],
  ["409 ConditionalRequestConflict", s3Error("ConditionalRequestConflict", 409), CREATE, ConflictError],
  ["409 without a readable body on a conditional put", s3Error("Unknown", 409), REPLACE, ConflictError],
  ["404 NoSuchKey on ifMatch", s3Error("NoSuchKey", 404), REPLACE, ConflictError],
  ["404 NoSuchKey on get", s3Error("NoSuchKey", 404), GET, NotFoundError],
  ["404 NotFound on head (no body)", s3Error("NotFound", 404), HEAD, NotFoundError],
  ["bare 404 on head", s3Error("Unknown", 404), HEAD, NotFoundError],
  ["404 NoSuchBucket on get", s3Error("NoSuchBucket", 404), GET, InternalError],
  ["416 InvalidRange", s3Error("InvalidRange", 416), GET, InvalidArgumentError],
  ["400 KeyTooLongError", s3Error("KeyTooLongError", 400), PUT, InvalidArgumentError],
  ["503 SlowDown", s3Error("SlowDown", 503), PUT, UnavailableError],
  ["503 ServiceUnavailable", s3Error("ServiceUnavailable", 503), GET, UnavailableError],
  ["500 InternalError", s3Error("InternalError", 500), LIST, UnavailableError],
  ["502 without a name", s3Error("Unknown", 502), LIST, UnavailableError],
  ["400 RequestTimeout", s3Error("RequestTimeout", 400), PUT, UnavailableError],
  ["429 throttling", s3Error("TooManyRequestsException", 429), PUT, UnavailableError],
  ["SDK timeout", Object.assign(new Error("timed out"), { name: "TimeoutError" }), GET, UnavailableError],
  ["connection reset", networkError("ECONNRESET"), GET, UnavailableError],
  ["connection refused", networkError("ECONNREFUSED"), PUT, UnavailableError],
  ["DNS failure", networkError("EAI_AGAIN"), LIST, UnavailableError],
  ["403 AccessDenied", s3Error("AccessDenied", 403), GET, InternalError],
  ["501 NotImplemented", s3Error("NotImplemented", 501), PUT, InternalError],
  ["a plain bug", new TypeError("undefined is not a function"), GET, InternalError],
  ["a thrown string", "weird", GET, InternalError],
];

describe("S3 error mapping", () => {
  for (const [title, error, context, kind] of cases) {
    it(`maps ${title} to ${kind.name}`, () => {
      const mapped = toSluiceError(error, context);
      expect(mapped).toBeInstanceOf(kind);
      expect(mapped.cause).toBe(error);
      expect(mapped.details).toMatchObject({ operation: context.operation });
    });
  }

  it("passes errors that are already typed through unchanged", () => {
    const typed = new InvalidArgumentError("bad range");
    expect(toSluiceError(typed, GET)).toBe(typed);
  });
});
