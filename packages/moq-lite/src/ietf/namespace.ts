/**
 * The mapping between moq-lite broadcast paths and moq-transport namespaces: a path's segments
 * are the namespace tuple's fields (`live/cam0` ↔ ("live", "cam0"), the empty path ↔ ()), and
 * a broadcast's track names are the track names. Priorities flip direction: moq-lite's 0-255 is
 * higher-first, moq-transport's lower-first.
 */
import { normalizePath } from "../path.ts";
import { type IetfVersion, IetfVersion as Versions } from "./version.ts";

/** The namespace fields of a broadcast path (already normalized: no empty segments). */
export function pathFields(path: string): string[] {
  const normalized = normalizePath(path);
  return normalized === "" ? [] : normalized.split("/");
}

/**
 * The broadcast path of a namespace, or undefined when a field contains "/" (a moq-lite path
 * cannot represent it).
 */
export function namespacePath(fields: readonly string[]): string | undefined {
  for (const field of fields) if (field.includes("/")) return undefined;
  return fields.join("/");
}

/** moq-transport subscriber priority (lower first) for a moq-lite priority (higher first). */
export function wirePriority(priority: number, version: IetfVersion): number {
  const flipped = 255 - Math.min(255, Math.max(0, Math.round(priority)));
  // draft-17 values must stay below 128 so both parameter layouts read the same byte.
  return version === Versions.Draft17 ? flipped >> 1 : flipped;
}

/** moq-lite priority (higher first) for a moq-transport subscriber priority (lower first). */
export function litePriority(wire: number): number {
  return 255 - Math.min(255, Math.max(0, wire));
}
