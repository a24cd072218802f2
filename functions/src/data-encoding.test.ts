import { InvalidArgumentError } from "@sluice/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBase64, decodeData, encodeBase64, encodeData } from "./data-encoding.js";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("decodeBase64", () => {
  it("decodes canonical base64 of every padding length", () => {
    expect(text(decodeBase64("", "f"))).toBe("");
    expect(text(decodeBase64("YQ==", "f"))).toBe("a");
    expect(text(decodeBase64("YWI=", "f"))).toBe("ab");
    expect(text(decodeBase64("YWJj", "f"))).toBe("abc");
    expect([...decodeBase64("+/8=", "f")]).toEqual([0xfb, 0xff]);
  });

  it.each([
    ["YQ", /length 2 is not a multiple of 4/],
    ["YQ=", /length 3 is not a multiple of 4/],
    ["Y Q==", /unexpected character " " at position 1/],
    ["YQ==\n", /unexpected character "\\n" at position 4/],
    ["-_8=", /unexpected character "-" at position 0/],
    ["Y=Q=", /unexpected padding '=' at position 1/],
    ["====", /unexpected padding '=' at position 0/],
    ["YR==", /padding bits are not zero/],
    ["YWJ=", /padding bits are not zero/],
    ["YE==", /padding bits are not zero/],
    ["YW9=", /padding bits are not zero/],
    ["é===", /unexpected character "é"/],
    ["YQ===", /unexpected padding '=' at position 2/],
    ["A===", /unexpected padding '=' at position 1/],
    ["YQ=a", /unexpected padding '=' at position 2/],
  ])("rejects %j", (input, message) => {
    expect(() => decodeBase64(input, "record 3: value.data")).toThrow(InvalidArgumentError);
    expect(() => decodeBase64(input, "record 3: value.data")).toThrow(message);
    expect(() => decodeBase64(input, "record 3: value.data")).toThrow(
      /^record 3: value\.data is not valid base64/,
    );
  });

  it("accepts exactly the text that base64 of its own bytes writes back", () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString("base64")),
          fc.string({
            unit: fc.constantFrom("A", "E", "Q", "g", "w", "8", "+", "/", "=", "-", " ", "é"),
            maxLength: 9,
          }),
        ),
        (input) => {
          const canonical = Buffer.from(input, "base64").toString("base64") === input;
          let decoded: Uint8Array | undefined;
          try {
            decoded = decodeBase64(input, "f");
          } catch (error) {
            expect(error, input).toBeInstanceOf(InvalidArgumentError);
            expect((error as Error).message, input).toMatch(/^f is not valid base64: /);
          }
          expect(decoded !== undefined, input).toBe(canonical);
          if (decoded === undefined) return;
          accepted++;
          expect(Buffer.from(decoded).toString("base64")).toBe(input);
        },
      ),
      { numRuns: 2_000 },
    );
    expect(accepted).toBeGreaterThan(500);
  });

  it("round-trips arbitrary bytes with encodeBase64", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, n) => n);
    expect([...decodeBase64(encodeBase64(bytes), "f")]).toEqual([...bytes]);
  });
});

describe("encodeData and decodeData", () => {
  it("stores BINARY as its bytes, STRING as UTF-8 and JSON as JSON text", () => {
    expect(text(encodeData({ type: "BINARY", data: "aGk=" }, "value"))).toBe("hi");
    expect(text(encodeData({ type: "STRING", data: "héllo ✓" }, "value"))).toBe("héllo ✓");
    expect(text(encodeData({ type: "JSON", data: { a: [1, "x"], b: null } }, "value"))).toBe(
      '{"a":[1,"x"],"b":null}',
    );
    expect(text(encodeData({ type: "JSON", data: null }, "value"))).toBe("null");
  });

  it("names the field when data does not fit the type", () => {
    expect(() => encodeData({ type: "BINARY", data: 5 }, "record 1: key")).toThrow(
      "record 1: key.data must be a base64 string for type BINARY",
    );
    expect(() => encodeData({ type: "STRING", data: ["x"] }, "record 1: value")).toThrow(
      "record 1: value.data must be a string for type STRING",
    );
    expect(() => encodeData({ type: "JSON", data: undefined }, "record 1: value")).toThrow(
      /record 1: value\.data is required for type JSON/,
    );
    expect(() => encodeData({ type: "STRING", data: "bad \ud800 surrogate" }, "record 0: value")).toThrow(
      /record 0: value\.data contains a lone UTF-16 surrogate/,
    );
  });

  it("reads bytes back in the preferred type", () => {
    const bytes = new TextEncoder().encode('{"n":1}');
    expect(decodeData(bytes, "BINARY")).toEqual({ type: "BINARY", data: encodeBase64(bytes) });
    expect(decodeData(bytes, "STRING")).toEqual({ type: "STRING", data: '{"n":1}' });
    expect(decodeData(bytes, "JSON")).toEqual({ type: "JSON", data: { n: 1 } });
    expect(decodeData(null, "JSON")).toBeNull();
  });

  it("falls back per record when the bytes do not fit the preferred type", () => {
    expect(decodeData(Uint8Array.of(0xff, 0xfe), "STRING")).toEqual({ type: "BINARY", data: "//4=" });
    expect(decodeData(Uint8Array.of(0xff, 0xfe), "JSON")).toEqual({ type: "BINARY", data: "//4=" });
    expect(decodeData(new TextEncoder().encode("plain"), "JSON")).toEqual({ type: "STRING", data: "plain" });
  });

  it("refuses JSON data nested deeper than 512 levels, without overflowing the stack", () => {
    const nested = (depth: number) => JSON.parse("[".repeat(depth) + "]".repeat(depth));
    expect(encodeData({ type: "JSON", data: nested(512) }, "record 0: value").byteLength).toBe(1024);
    for (const depth of [513, 100_000]) {
      expect(() => encodeData({ type: "JSON", data: nested(depth) }, "record 0: value")).toThrow(
        "record 0: value.data is nested deeper than 512 levels (arrays and objects)",
      );
    }
    expect(() => encodeData({ type: "JSON", data: { a: nested(512) } }, "v")).toThrow(/nested deeper/);
  });
});
