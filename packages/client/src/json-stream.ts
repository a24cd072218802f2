/**
 * Splits text holding JSON values concatenated with optional whitespace between them (Confluent's
 * streaming produce mode, and our newline-separated delivery reports) into the parsed values.
 * Only objects and arrays are accepted at the top level.
 */
export function parseConcatenatedJson(text: string): unknown[] {
  return newlineSeparatedObjects(text) ?? splitAndParse(text);
}

/**
 * The usual answer, objects one to a line, parsed in one JSON.parse as an array: the line breaks
 * between objects become commas. A `}\n{` inside a string (a raw line break there is not JSON)
 * adds no element, so the count tells it apart; then, or on any other shape, undefined.
 */
function newlineSeparatedObjects(text: string): unknown[] | undefined {
  const start = skipWhitespace(text, 0);
  if (text[start] !== "{") return undefined;
  let separators = 0;
  for (let at = text.indexOf("}\n{", start); at >= 0; at = text.indexOf("}\n{", at + 3)) separators++;
  let values: unknown;
  try {
    values = JSON.parse(`[${text.replaceAll("}\n{", "},{")}]`);
  } catch {
    return undefined;
  }
  return Array.isArray(values) && values.length === separators + 1 ? values : undefined;
}

function splitAndParse(text: string): unknown[] {
  const values: unknown[] = [];
  let index = 0;
  while (index < text.length) {
    index = skipWhitespace(text, index);
    if (index >= text.length) break;
    const end = endOfValue(text, index);
    values.push(JSON.parse(text.slice(index, end)));
    index = end;
  }
  return values;
}

function skipWhitespace(text: string, index: number): number {
  let i = index;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** The index just past the object or array starting at `start`. */
function endOfValue(text: string, start: number): number {
  const first = text[start];
  if (first !== "{" && first !== "[") {
    throw new SyntaxError(`expected a JSON object at position ${start}, found ${JSON.stringify(first)}`);
  }
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  throw new SyntaxError("unexpected end of JSON input");
}
