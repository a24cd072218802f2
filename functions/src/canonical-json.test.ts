import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { anyJsonEnd, canonicalJsonEnd, spacedCanonicalJsonEnd, withoutWhitespace } from "./canonical-json.js";

/** A request's bytes as the scanner reads them: Latin-1 text of the UTF-8. */
const latin1 = (json: string) => Buffer.from(json, "utf8").toString("latin1");

describe("canonical JSON", () => {
  it("says a text is canonical only when JSON.stringify(JSON.parse(text)) writes it back as it is", () => {
    let canonical = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
          // The same text with one character replaced: most are not JSON, some not canonical.
          fc
            .tuple(
              fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
              fc.nat(),
              fc.constantFrom(" ", "\\", '"', "0", ".", "e", "-", ",", "}", "]", "1", "/"),
            )
            .map(([text, at, character]) => {
              const index = at % text.length;
              return text.slice(0, index) + character + text.slice(index + 1);
            }),
        ),
        (text) => {
          const end = canonicalJsonEnd(latin1(text), 0);
          if (end !== latin1(text).length) return;
          canonical++;
          expect(JSON.stringify(JSON.parse(text)), text).toBe(text);
        },
      ),
      { numRuns: 3_000 },
    );
    expect(canonical).toBeGreaterThan(500);
  });

  it("ends where the value ends, and refuses what JSON.stringify would write otherwise", () => {
    const cases: [string, number][] = [
      ['{"a":1}', 7],
      ['{"a":1},"b":2', 7],
      ["[1,2]}", 5],
      ["true}", 4],
      ["-7", 2],
      ["0.5", 3],
      ["1e-7", 4],
      ["1e+21", 5],
      ['"a\\"b\\n\\u001f"', 14],
      ["1.0", -1],
      ["1e3", -1],
      ["-0", -1],
      ["1234567890123456789", -1],
      ['"\\/"', -1],
      ['"\\u0041"', -1],
      ['"\\u001F"', -1],
      ['{"a":1,"a":2}', -1],
      ['{"1":1}', -1],
      ['{ "a":1}', -1],
      ["[1,]", -1],
      ["tru", -1],
      ["[".repeat(64) + "]".repeat(64), 128],
      ["[".repeat(65) + "]".repeat(65), -1],
    ];
    for (const [text, end] of cases) expect(canonicalJsonEnd(text, 0), text).toBe(end);
  });

  it("finds where any JSON value ends from its strings and brackets, and takes out only the whitespace between tokens", () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 4 }),
        fc.constantFrom(0, 1, 2, "\t"),
        fc.constantFrom("}", ",", "]", " }"),
        (value, indent, after) => {
          const compact = JSON.stringify(value);
          const spaced = latin1(JSON.stringify(value, null, indent));
          // Where the value ends, followed by what a record puts after it.
          expect(anyJsonEnd(spaced + after, 0), spaced).toBe(spaced.length);
          // Spaced text is taken exactly when its compact form would be.
          const canonical = canonicalJsonEnd(latin1(compact), 0) === latin1(compact).length;
          expect(spacedCanonicalJsonEnd(spaced + after, 0), spaced).toBe(canonical ? spaced.length : -1);
          // Strings keep their spaces; what JSON.stringify writes is what is left.
          const bytes = Buffer.from(JSON.stringify(value, null, indent));
          expect(Buffer.from(withoutWhitespace(bytes)).toString(), spaced).toBe(compact);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("takes spaced text only when, without its whitespace, it is what JSON.stringify writes", () => {
    let taken = 0;
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 3 }),
        fc.constantFrom(1, "\t", " "),
        fc.nat(),
        fc.constantFrom(" ", "\n", "\\", '"', "0", ".", "e", "-", ",", ":", "}", "]", "1", "/"),
        (value, indent, at, character) => {
          // Python's separators, or an indent; then one character replaced.
          const written =
            indent === " "
              ? JSON.stringify(value).replace(
                  /("(?:[^"\\]|\\.)*")|([,:])/g,
                  (token, string) => string ?? `${token} `,
                )
              : JSON.stringify(value, null, indent);
          const index = at % written.length;
          const text = written.slice(0, index) + character + written.slice(index + 1);
          if (spacedCanonicalJsonEnd(latin1(text), 0) !== latin1(text).length) return;
          taken++;
          const stored = Buffer.from(withoutWhitespace(Buffer.from(text))).toString();
          expect(stored, text).toBe(JSON.stringify(JSON.parse(text)));
        },
      ),
      { numRuns: 3_000 },
    );
    expect(taken).toBeGreaterThan(500);
  });

  it("refuses to join tokens when it takes whitespace out, and ends only values it can end", () => {
    for (const joined of [
      "1 2",
      "- 1",
      "7. 5",
      "1e 3",
      "tr ue",
      "[1, 2 3]",
      '{"a": nu ll}',
      '{"a" "b": 1}',
    ]) {
      expect(spacedCanonicalJsonEnd(joined, 0), joined).not.toBe(joined.length);
    }
    expect(spacedCanonicalJsonEnd('{ "a b" : [ 1 , "c d" ] }', 0)).toBe(25);
    expect(spacedCanonicalJsonEnd('{ "a": 1.0 }', 0)).toBe(-1);
    expect(spacedCanonicalJsonEnd('{ "a": 1, "a": 2 }', 0)).toBe(-1);
    expect(spacedCanonicalJsonEnd("[ 1 , 2 ] ,", 0)).toBe(9);
    const stored = (text: string) => Buffer.from(withoutWhitespace(Buffer.from(text))).toString();
    expect(stored('{ "a b" : [ 1 , "c d" ] }')).toBe('{"a b":[1,"c d"]}');
    expect(stored('[ "\\\\", " \\" ", "é x" ]')).toBe('["\\\\"," \\" ","é x"]');
    expect(stored('"x"')).toBe('"x"');
    const cases: [string, number][] = [
      ['{"a": "}"}', 10],
      ['["]", "\\"]"]]', 12],
      ["[1, [2, {}]] ]", 12],
      ["12.5e3,", 6],
      ["nul}", 3],
      ['"open', -1],
      ["[1, 2", -1],
      ["[1}", -1],
      ["}", -1],
      [",", -1],
      ["[".repeat(64) + "]".repeat(64), 128],
      ["[".repeat(65) + "]".repeat(65), -1],
    ];
    for (const [text, end] of cases) expect(anyJsonEnd(text, 0), text).toBe(end);
  });
});
