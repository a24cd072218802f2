/**
 * How the filesystem adapter turns keys into paths under its root, and back.
 *
 * A key is split at "/" into segments; each segment becomes one or more path components. Every
 * UTF-8 byte of a segment outside [a-z0-9._-] is escaped as "%" and two lowercase hex digits, so:
 * - no component can be "", "." or ".." or contain a separator: no key can leave the root;
 * - names use lowercase only, so keys differing in case stay apart on case-insensitive disks;
 * - common keys stay readable ("topics/t1/00000.log" becomes "dtopics/dt1/f00000.log").
 * Each component starts with a type letter: "d" ends a directory segment, "f" ends the last
 * segment (the object's file), and "c" is a continuation: an escaped segment longer than
 * COMPONENT_CHARS_MAX is cut into several nested components (file names are limited to 255 bytes;
 * a 1024-byte key escapes to at most 3072 characters). Because of the letters a file "fa" and a
 * directory "da" never collide (keys "a" and "a/b"), and names starting with anything else
 * (temporary files start with ".") are never objects.
 */

export const COMPONENT_CHARS_MAX = 200;

const KEPT_BYTES = new Set([..."abcdefghijklmnopqrstuvwxyz0123456789._-"].map((c) => c.charCodeAt(0)));
const SLASH = 0x2f;

/** The key with each byte escaped except kept ones and "/", which stays as the segment separator. */
export function escapeKey(key: string): string {
  let escaped = "";
  for (const byte of Buffer.from(key, "utf8")) {
    escaped +=
      KEPT_BYTES.has(byte) || byte === SLASH
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).padStart(2, "0")}`;
  }
  return escaped;
}

/** The inverse of escapeKey, or undefined for names this layout never writes. */
export function unescapeKey(escaped: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const code = escaped.charCodeAt(i);
    if (code === 0x25) {
      const hex = escaped.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (KEPT_BYTES.has(code) || code === SLASH) {
      bytes.push(code);
    } else {
      return undefined;
    }
  }
  const key = Buffer.from(bytes).toString("utf8");
  // A stray file whose bytes are not valid UTF-8 would decode lossily; it is not one of ours.
  return escapeKey(key) === escaped ? key : undefined;
}

/** The path components (relative to the root) of the file holding `key`. */
export function componentsOf(key: string): string[] {
  const segments = escapeKey(key).split("/");
  const components: string[] = [];
  segments.forEach((segment, index) => {
    const pieces = chunk(segment);
    const lastLetter = index === segments.length - 1 ? "f" : "d";
    pieces.forEach((piece, pieceIndex) => {
      components.push((pieceIndex === pieces.length - 1 ? lastLetter : "c") + piece);
    });
  });
  return components;
}

function chunk(segment: string): string[] {
  if (segment.length === 0) return [""];
  const pieces: string[] = [];
  for (let i = 0; i < segment.length; i += COMPONENT_CHARS_MAX) {
    pieces.push(segment.slice(i, i + COMPONENT_CHARS_MAX));
  }
  return pieces;
}

export type ComponentKind = "continuation" | "directory" | "file";

/**
 * What a directory entry adds to the escaped key built so far, or undefined when the entry is not
 * part of the layout (temporary files, anything a person dropped in the tree).
 */
export function readComponent(name: string): { kind: ComponentKind; escaped: string } | undefined {
  const piece = name.slice(1);
  switch (name[0]) {
    case "c":
      return { kind: "continuation", escaped: piece };
    case "d":
      return { kind: "directory", escaped: `${piece}/` };
    case "f":
      return { kind: "file", escaped: piece };
    default:
      return undefined;
  }
}
