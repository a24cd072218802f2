import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ObjectStore } from "@sluice/storage";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { PackedObjectStore } from "@sluice/storage/packed";

/** How the local server keeps objects: packed into segment files (the default), or one file each. */
export type ObjectStoreKind = "packed" | "files";

/**
 * The local server's object store. A data directory written before packing existed (objects in
 * `objects/`, one file each, and no `packed/`) keeps that layout, so its data stays readable;
 * everything else is packed (`packed/`). `kind` forces one.
 */
export function openObjectStore(
  dataDir: string,
  durability: "fsync" | "buffered",
  kind?: ObjectStoreKind,
): { store: ObjectStore; kind: ObjectStoreKind; close: () => void } {
  const files = join(dataDir, "objects");
  const packed = join(dataDir, "packed");
  const chosen = kind ?? (!existsSync(packed) && hasEntries(files) ? "files" : "packed");
  if (chosen === "files") {
    return {
      store: new FilesystemObjectStore({ root: files, durability }),
      kind: chosen,
      close: () => undefined,
    };
  }
  const store = new PackedObjectStore({ root: packed, durability });
  return { store, kind: chosen, close: () => store.close() };
}

function hasEntries(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}
