import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";

/**
 * The native codecs (snappy, lz4-napi, @mongodb-js/zstd) and @node-rs/crc32 are Node-API modules.
 * When a function bundles them (x86_64 by default, `bundleNativeCodecs`), esbuild copies the
 * binaries npm installed into the bundle, and npm installs only the build machine's platform, so a
 * bundle made on Linux x64 runs on an x86_64 function and nowhere else. (An arm64 function leaves
 * them out and runs the portable codecs.) This check fails the synthesis when a bundle holds a
 * binary the function cannot load, instead of a deployed function whose codecs fail at run time.
 * An emulator running functions on the host CPU would not notice.
 */

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
/** ELF e_machine values of the two Lambda architectures. */
const MACHINES: Record<number, string> = { 62: "x86_64", 183: "arm64" };

export interface NativeBinary {
  file: string;
  /** "x86_64", "arm64", another ELF machine, or "not Linux" (Mach-O, PE). */
  architecture: string;
}

/** Every `*.node` file under `dir` with the architecture it was built for. */
export function nativeBinaries(dir: string): NativeBinary[] {
  const found: NativeBinary[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".node")) continue;
    const file = join(entry.parentPath, entry.name);
    found.push({ file, architecture: architectureOf(readHeader(file)) });
  }
  return found;
}

export function architectureOf(header: Uint8Array): string {
  if (!ELF_MAGIC.every((byte, i) => header[i] === byte)) return "not Linux";
  const machine = (header[18] ?? 0) | ((header[19] ?? 0) << 8);
  return MACHINES[machine] ?? `ELF machine ${machine}`;
}

/** Throws when a binary in the bundle at `dir` cannot load on a Linux function of `architecture`. */
export function assertNativeBinariesMatch(dir: string, architecture: string): void {
  const wrong = nativeBinaries(dir).filter((binary) => binary.architecture !== architecture);
  if (wrong.length === 0) return;
  const list = wrong.map((b) => `${b.file.slice(dir.length + 1)} (${b.architecture})`).join(", ");
  throw new Error(
    `the bundle holds native modules a Linux ${architecture} function cannot load: ${list}. npm installs binaries for the build machine only: leave them out of the bundle so that the portable codecs run (bundleNativeCodecs: false, the default on arm64), deploy with the architecture they were built for (-c architecture=x86_64 on a Linux x64 machine), or bundle on a matching Linux machine or in Docker (forceDockerBundling).`,
  );
}

function readHeader(file: string): Uint8Array {
  const header = new Uint8Array(20);
  const fd = openSync(file, "r");
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  return header;
}
