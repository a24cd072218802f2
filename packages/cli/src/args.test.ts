import { describe, expect, it } from "vitest";
import { integerOption, keyValue, type OptionSpec, parseArgs, UsageError, unescapeText } from "./args.js";
import { parseStartSpec } from "./offsets.js";

const SPECS: OptionSpec[] = [
  { name: "offset", short: "o", type: "string" },
  { name: "header", short: "H", type: "string", multiple: true },
  { name: "follow", type: "boolean" },
  { name: "help", short: "h", type: "boolean" },
  { name: "verbose", short: "v", type: "boolean" },
];

describe("parseArgs", () => {
  it("accepts long, long=, short, attached short values and grouped flags", () => {
    const parsed = parseArgs(
      ["t", "--offset=5", "-Ha=1", "-H", "b=2", "--header", "c=3", "-hv", "--follow", "x"],
      SPECS,
    );
    expect(parsed.positionals).toEqual(["t", "x"]);
    expect(parsed.values).toEqual({
      offset: "5",
      header: ["a=1", "b=2", "c=3"],
      help: true,
      verbose: true,
      follow: true,
    });
  });

  it("takes a value starting with a dash verbatim, and treats -N as a positional", () => {
    expect(parseArgs(["-o", "-10"], SPECS).values.offset).toBe("-10");
    expect(parseArgs(["-5"], SPECS).positionals).toEqual(["-5"]);
    expect(parseArgs(["--", "--follow"], SPECS).positionals).toEqual(["--follow"]);
  });

  it("rejects unknown options, missing values, repeated single options and values for flags", () => {
    expect(() => parseArgs(["--nope"], SPECS)).toThrow(new UsageError("unknown option --nope"));
    expect(() => parseArgs(["-x"], SPECS)).toThrow(new UsageError("unknown option -x"));
    expect(() => parseArgs(["-o"], SPECS)).toThrow(new UsageError("option -o needs a value"));
    expect(() => parseArgs(["-o", "1", "-o", "2"], SPECS)).toThrow(/more than once/);
    expect(() => parseArgs(["--follow=yes"], SPECS)).toThrow(/takes no value/);
  });
});

describe("option helpers", () => {
  it("parses integers with ranges", () => {
    expect(integerOption({ n: "12" }, "n", "-n")).toBe(12);
    expect(integerOption({}, "n", "-n")).toBeUndefined();
    expect(() => integerOption({ n: "1.5" }, "n", "-n")).toThrow(/must be an integer/);
    expect(() => integerOption({ n: "0" }, "n", "-n", { min: 1 })).toThrow(/at least 1/);
  });

  it("splits name=value at the first equals sign and unescapes kcat escapes", () => {
    expect(keyValue("a=b=c", "-H")).toEqual(["a", "b=c"]);
    expect(() => keyValue("=x", "-H")).toThrow(/expects name=value/);
    expect(unescapeText("a\\tb\\nc\\\\d\\x")).toBe("a\tb\nc\\d\\x");
  });
});

describe("parseStartSpec", () => {
  it("understands rpk and kcat offsets", () => {
    expect(parseStartSpec("beginning")).toEqual({ kind: "start" });
    expect(parseStartSpec("start")).toEqual({ kind: "start" });
    expect(parseStartSpec("end")).toEqual({ kind: "end" });
    expect(parseStartSpec("42")).toEqual({ kind: "absolute", offset: 42 });
    expect(parseStartSpec("-3")).toEqual({ kind: "fromEnd", count: 3 });
    expect(parseStartSpec("+3")).toEqual({ kind: "fromStart", count: 3 });
    expect(parseStartSpec("@1700000000000")).toEqual({ kind: "timestamp", timestamp: 1_700_000_000_000 });
    expect(parseStartSpec("@2023-11-14T22:13:20Z")).toEqual({
      kind: "timestamp",
      timestamp: 1_700_000_000_000,
    });
  });

  it("rejects anything else as a usage error", () => {
    for (const bad of ["", "@", "@yesterday", "soon", "1e3"]) {
      expect(() => parseStartSpec(bad)).toThrow(UsageError);
    }
  });
});
