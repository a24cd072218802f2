import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  COMPONENT_CHARS_MAX,
  componentsOf,
  escapeKey,
  readComponent,
  unescapeKey,
} from "./filesystem-layout.js";

const anyKey = fc.string({ unit: "binary", minLength: 1, maxLength: 400 });

describe("filesystem layout", () => {
  it("maps every key to safe path components and back", () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        const components = componentsOf(key);
        let escaped = "";
        for (const [index, name] of components.entries()) {
          expect(name).toMatch(/^[cdf][a-z0-9._%-]*$/);
          expect(name.length).toBeLessThanOrEqual(COMPONENT_CHARS_MAX + 1);
          const component = readComponent(name)!;
          expect(component.kind === "file").toBe(index === components.length - 1);
          escaped += component.escaped;
        }
        expect(unescapeKey(escaped)).toBe(key);
      }),
    );
  });

  it("keeps string prefixes as prefixes of the escaped form, so listing can prune", () => {
    fc.assert(
      fc.property(anyKey, anyKey, (key, prefix) => {
        expect(escapeKey(key).startsWith(escapeKey(prefix))).toBe(key.startsWith(prefix));
      }),
    );
  });

  it("gives keys differing only in case different names", () => {
    expect(componentsOf("Topic/A")).not.toEqual(componentsOf("topic/a"));
    expect(componentsOf("Topic/A").join("/")).toBe(componentsOf("Topic/A").join("/").toLowerCase());
  });

  it("does not read names it never writes", () => {
    expect(readComponent(".tmp-0011")).toBeUndefined();
    expect(unescapeKey("%zz")).toBeUndefined();
    expect(unescapeKey("UPPER")).toBeUndefined();
    // %c3 alone is not UTF-8; decoding it would invent U+FFFD.
    expect(unescapeKey("%c3")).toBeUndefined();
  });
});
