/** Stream names: splitting off the credential query, and validating broadcast names. */

/** A stream name with its query removed. */
export interface ParsedStreamName {
  readonly stream: string;
  readonly query: URLSearchParams;
}

/** Splits `key?token=abc` into the name and its query parameters. */
export function splitStreamName(raw: string): ParsedStreamName {
  const q = raw.indexOf("?");
  if (q < 0) return { stream: raw, query: new URLSearchParams() };
  return { stream: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}

/** Maximum broadcast name length in bytes. */
export const MAX_BROADCAST_NAME_LENGTH = 255;

const NAME_CHARS = /^[A-Za-z0-9._~/-]+$/;

/**
 * Checks a broadcast name: at most 255 bytes of `[A-Za-z0-9._~/-]`, slash-separated segments that
 * are neither empty nor `.` / `..`. Returns why it is invalid, or undefined when it is fine.
 */
export function broadcastNameProblem(name: string): string | undefined {
  if (name.length === 0) return "the stream name is empty";
  if (name.length > MAX_BROADCAST_NAME_LENGTH)
    return `the name is ${name.length} bytes long (at most ${MAX_BROADCAST_NAME_LENGTH})`;
  if (!NAME_CHARS.test(name)) return "the name may only contain letters, digits and . _ ~ / -";
  for (const segment of name.split("/")) {
    if (segment === "") return "the name has an empty path segment";
    if (segment === "." || segment === "..") return `the name has a "${segment}" path segment`;
  }
  return undefined;
}
