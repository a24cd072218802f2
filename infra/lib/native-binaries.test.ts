import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { architectureOf, assertNativeBinariesMatch, nativeBinaries } from "./native-binaries.js";

function elf(machine: number): Uint8Array {
  const header = new Uint8Array(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  header[18] = machine & 0xff;
  header[19] = machine >> 8;
  return header;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function bundleWith(files: Record<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-native-"));
  dirs.push(dir);
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

describe("native binaries in a bundle", () => {
  it("reads the architecture from the ELF header", () => {
    expect(architectureOf(elf(62))).toBe("x86_64");
    expect(architectureOf(elf(183))).toBe("arm64");
    expect(architectureOf(elf(40))).toBe("ELF machine 40");
    expect(architectureOf(new Uint8Array([0xcf, 0xfa, 0xed, 0xfe]))).toBe("not Linux");
  });

  it("finds every .node file, in subdirectories too", () => {
    const dir = bundleWith({ "index.js": new Uint8Array(), "a.node": elf(62), "lib/b.node": elf(183) });
    expect(nativeBinaries(dir).map((b) => [b.file.slice(dir.length + 1), b.architecture])).toEqual(
      expect.arrayContaining([
        ["a.node", "x86_64"],
        ["lib/b.node", "arm64"],
      ]),
    );
  });

  it("fails a bundle whose binaries do not match the function's architecture, naming them", () => {
    const dir = bundleWith({ "snappy.linux-x64-gnu.node": elf(62) });
    expect(() => assertNativeBinariesMatch(dir, "x86_64")).not.toThrow();
    expect(() => assertNativeBinariesMatch(dir, "arm64")).toThrow(
      /cannot load: snappy\.linux-x64-gnu\.node \(x86_64\)/,
    );
    expect(() => assertNativeBinariesMatch(bundleWith({ "x.node": new Uint8Array(20) }), "x86_64")).toThrow(
      /not Linux/,
    );
  });
});
