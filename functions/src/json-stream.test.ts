import { describe, expect, it } from "vitest";
import { JsonObjectSplitter, MalformedJsonError } from "./json-stream.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Feeds `text` in chunks of `size` bytes and returns the objects' texts and start offsets. */
function split(text: string, size = Number.POSITIVE_INFINITY): { text: string; start: number }[] {
  const bytes = encoder.encode(text);
  const splitter = new JsonObjectSplitter();
  const objects: { text: string; start: number }[] = [];
  for (let position = 0; position < bytes.length; position += Math.min(size, bytes.length)) {
    for (const slice of splitter.push(bytes.subarray(position, position + size))) {
      objects.push({ text: decoder.decode(slice.bytes), start: slice.start });
    }
  }
  splitter.end();
  return objects;
}

describe("JsonObjectSplitter", () => {
  it("splits concatenated objects with or without whitespace between them", () => {
    expect(split('{"a":1}{"b":2}\n \t\r\n{"c":{"d":[1,{"e":2}]}}\n')).toEqual([
      { text: '{"a":1}', start: 0 },
      { text: '{"b":2}', start: 7 },
      { text: '{"c":{"d":[1,{"e":2}]}}', start: 19 },
    ]);
  });

  it("ignores braces, brackets and escaped quotes inside strings", () => {
    const tricky = '{"s":"}{ ][ \\" \\\\","t":"\\\\"}';
    expect(JSON.parse(tricky)).toEqual({ s: '}{ ][ " \\', t: "\\" });
    expect(split(`${tricky} {"next":true}`).map((object) => object.text)).toEqual([tricky, '{"next":true}']);
  });

  it("gives the same objects whatever the chunk boundaries, multi-byte characters included", () => {
    const text = '{"k":"✓ é 😀 \\"}"}  {"v":[{"w":"{"}]}{"x":null}';
    const whole = split(text);
    expect(whole.map((object) => JSON.parse(object.text))).toEqual([
      { k: '✓ é 😀 "}' },
      { v: [{ w: "{" }] },
      { x: null },
    ]);
    for (const size of [1, 2, 3, 5, 7, 11]) expect(split(text, size)).toEqual(whole);
  });

  it("returns nothing for an empty or blank stream", () => {
    expect(split("")).toEqual([]);
    expect(split(" \n\t ")).toEqual([]);
  });

  it("rejects a value that is not an object, naming the character and its byte offset", () => {
    const splitter = new JsonObjectSplitter();
    expect(splitter.push(encoder.encode('{"a":1}'))).toHaveLength(1);
    const failure = new MalformedJsonError(
      "unexpected character '[' between records (each record is a JSON object starting with '{')",
      8,
    );
    expect(splitter.push(encoder.encode(" [1]"))).toEqual([]);
    expect(splitter.failure).toEqual(failure);
    expect(() => splitter.push(encoder.encode("{}"))).toThrow(failure);
    expect(() => splitter.end()).toThrow(failure);
    expect(() => split('"text"')).toThrow(/unexpected character '"'.*at byte 0/);
    expect(() => split("}")).toThrow(/unexpected character '}'/);
    expect(() => split("{}\u0000")).toThrow(/unexpected byte 0x00.*at byte 2/);
  });

  it("rejects a stream that ends inside an object", () => {
    expect(() => split('{"a":1} {"b":')).toThrow(
      /the body ends inside the record that starts at byte 8 \(at byte 13\)/,
    );
    expect(() => split('{"a":"unterminated}')).toThrow(MalformedJsonError);
  });

  it("leaves syntax inside an object to JSON.parse, and still finds where it ends", () => {
    const objects = split('{"a": nope}{"b":1}');
    expect(objects.map((object) => object.text)).toEqual(['{"a": nope}', '{"b":1}']);
    expect(() => JSON.parse(objects[0]!.text)).toThrow(SyntaxError);
  });

  it("refuses nesting deeper than its limit", () => {
    const splitter = new JsonObjectSplitter(3);
    expect(splitter.push(encoder.encode('{"a":[{}]}'))).toHaveLength(1);
    expect(splitter.push(encoder.encode('{"a":[{"b":[]}]}'))).toEqual([]);
    expect(splitter.failure?.message).toMatch(/nested deeper than 3 levels/);
  });

  it("returns the objects before a malformation, whatever chunk they share with it", () => {
    for (const size of [1, 4, 100]) {
      const splitter = new JsonObjectSplitter();
      const objects: string[] = [];
      const bytes = encoder.encode('{"a":1} {"b":2} nope {"c":3}');
      for (let position = 0; position < bytes.length && !splitter.failure; position += size) {
        for (const slice of splitter.push(bytes.subarray(position, position + size))) {
          objects.push(decoder.decode(slice.bytes));
        }
      }
      expect(objects, `chunks of ${size}`).toEqual(['{"a":1}', '{"b":2}']);
      expect(splitter.failure?.position).toBe(16);
    }
  });
});
