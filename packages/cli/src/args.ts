/** A wrong command line: reported as one line and exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface OptionSpec {
  /** The long name, without dashes. */
  name: string;
  /** A one-letter alias, without the dash. */
  short?: string;
  type: "string" | "boolean";
  /** The option may repeat; its value is then a list. */
  multiple?: boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  values: OptionValues;
  positionals: string[];
}

/**
 * Parses a command line the way rpk and kcat users expect: `--name value`, `--name=value`,
 * `-x value`, `-xvalue`, grouped boolean letters (`-hv`), `--` ending the options. A value is
 * taken verbatim even when it starts with a dash, so `-o -10` means "10 before the end".
 */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const byLong = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((spec) => spec.short).map((spec) => [spec.short as string, spec]));
  const values: OptionValues = {};
  const positionals: string[] = [];

  const assign = (spec: OptionSpec, value: string | boolean, shown: string) => {
    if (spec.multiple) {
      const list = (values[spec.name] as string[] | undefined) ?? [];
      list.push(value as string);
      values[spec.name] = list;
    } else if (values[spec.name] !== undefined && spec.type === "string") {
      throw new UsageError(`option ${shown} given more than once`);
    } else {
      values[spec.name] = value;
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const equals = arg.indexOf("=");
      const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown option --${name}`);
      if (spec.type === "boolean") {
        if (equals !== -1) throw new UsageError(`option --${name} takes no value`);
        assign(spec, true, `--${name}`);
        continue;
      }
      let value: string | undefined;
      if (equals !== -1) value = arg.slice(equals + 1);
      else {
        value = argv[i + 1];
        i++;
      }
      if (value === undefined) throw new UsageError(`option --${name} needs a value`);
      assign(spec, value, `--${name}`);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg)) {
      // One or more short options; a string option takes the rest of the word or the next word.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j] as string;
        const spec = byShort.get(letter);
        if (!spec) throw new UsageError(`unknown option -${letter}`);
        if (spec.type === "boolean") {
          assign(spec, true, `-${letter}`);
          continue;
        }
        let value: string | undefined = arg.slice(j + 1);
        if (value === "") {
          value = argv[i + 1];
          i++;
        } else if (value.startsWith("=")) {
          value = value.slice(1);
        }
        if (value === undefined) throw new UsageError(`option -${letter} needs a value`);
        assign(spec, value, `-${letter}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { values, positionals };
}

export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

export function listOption(values: OptionValues, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value : [];
}

export function integerOption(
  values: OptionValues,
  name: string,
  shown: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new UsageError(`${shown} must be an integer, got ${JSON.stringify(text)}`);
  }
  if (range.min !== undefined && value < range.min)
    throw new UsageError(`${shown} must be at least ${range.min}`);
  if (range.max !== undefined && value > range.max)
    throw new UsageError(`${shown} must be at most ${range.max}`);
  return value;
}

/** `name=value` pairs (the value may contain `=`). */
export function keyValue(text: string, shown: string): [string, string] {
  const equals = text.indexOf("=");
  if (equals <= 0) throw new UsageError(`${shown} expects name=value, got ${JSON.stringify(text)}`);
  return [text.slice(0, equals), text.slice(equals + 1)];
}

/** Backslash escapes of kcat's delimiters and format strings: \n \t \r \0 \\. */
export function unescapeText(text: string): string {
  return text.replace(/\\(.)/g, (match, letter: string) => {
    switch (letter) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "r":
        return "\r";
      case "0":
        return "\0";
      case "\\":
        return "\\";
      default:
        return match;
    }
  });
}
