/**
 * The broadcast-name rule shared by the admin API (stream-key scopes) and the server's auth.
 * A broadcast name is a `/`-separated path such as `live/cam0`: segments of `[A-Za-z0-9._-]`,
 * no empty, `.` or `..` segment, no leading or trailing `/`, at most 255 bytes. This is the
 * reference relay's rule, tightened to forbid `.` segments and `//`.
 */

/** Longest broadcast name accepted, in bytes (all allowed characters are one byte). */
export const MAX_BROADCAST_NAME_LENGTH = 255;

/**
 * The rule as a regular expression source, usable in a JSON schema `pattern`. It rejects `..`
 * anywhere (as the reference does) and `.` as a whole segment.
 */
export const BROADCAST_NAME_PATTERN: string =
  "^(?!.*\\.\\.)(?!(?:.*/)?\\.(?:/|$))[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$";

const BROADCAST_NAME = new RegExp(BROADCAST_NAME_PATTERN);

/** True when `name` is a valid broadcast name (see the module doc). */
export function isValidBroadcastName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_BROADCAST_NAME_LENGTH && BROADCAST_NAME.test(name);
}
