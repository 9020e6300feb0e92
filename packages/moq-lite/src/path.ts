/**
 * Broadcast paths. A path is a `/`-separated name such as `live/cam0`. Paths are normalized (no
 * leading, trailing or repeated `/`) and matched by prefix on segment boundaries, so `live`
 * matches `live` and `live/cam0` but not `livestream`. Track names are not paths.
 */

/** Strips leading and trailing `/` and collapses runs of `/`: `"//a//b/"` becomes `"a/b"`. */
export function normalizePath(path: string): string {
  let out = "";
  let pendingSlash = false;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === "/") {
      pendingSlash = out.length > 0;
      continue;
    }
    if (pendingSlash) {
      out += "/";
      pendingSlash = false;
    }
    out += ch;
  }
  return out;
}

/** True when `prefix` (normalized) matches `path` (normalized) on a segment boundary. */
export function hasPathPrefix(path: string, prefix: string): boolean {
  if (prefix === "") return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

/** The part of `path` after `prefix`, or undefined when the prefix does not match. An exact match gives `""`. */
export function stripPathPrefix(path: string, prefix: string): string | undefined {
  if (!hasPathPrefix(path, prefix)) return undefined;
  if (prefix === "") return path;
  return path.length === prefix.length ? "" : path.slice(prefix.length + 1);
}

/** Joins two normalized paths: whichever is non-empty, or `a/b`. */
export function joinPath(a: string, b: string): string {
  if (a === "") return b;
  if (b === "") return a;
  return `${a}/${b}`;
}
