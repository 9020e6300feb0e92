/**
 * Validation of the identifiers that end up inside Redis keys and values. A broadcast name goes
 * between `{}` in a key and into pub/sub messages; a node id goes into the `|`-separated ownership
 * value; a key prefix starts every key. Anything that could break those encodings is refused here,
 * once, with an error a person can act on.
 */

import { ClusterError } from "./error.ts";

/** Longest broadcast name accepted, in UTF-8 bytes (the reference rejects names over 255; we are more generous). */
export const MAX_BROADCAST_NAME_BYTES = 1024;
/** Longest node id accepted. */
export const MAX_NODE_ID_LENGTH = 128;
/** Longest key prefix accepted. */
export const MAX_KEY_PREFIX_LENGTH = 64;

const NODE_ID = /^[A-Za-z0-9._:@-]+$/;
const KEY_PREFIX = /^[A-Za-z0-9._:@/-]*$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws `CLUSTER_INVALID_NAME` unless `name` can be used as a broadcast name in keys and events. */
export function validateBroadcastName(name: string): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new ClusterError("CLUSTER_INVALID_NAME", "broadcast name must be a non-empty string");
  }
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_BROADCAST_NAME_BYTES) {
    throw new ClusterError(
      "CLUSTER_INVALID_NAME",
      `broadcast name is ${bytes} bytes long (at most ${MAX_BROADCAST_NAME_BYTES} allowed)`,
    );
  }
  if (CONTROL.test(name)) {
    throw new ClusterError("CLUSTER_INVALID_NAME", "broadcast name must not contain control characters");
  }
  if (name.isWellFormed && !name.isWellFormed()) {
    throw new ClusterError("CLUSTER_INVALID_NAME", "broadcast name contains an unpaired UTF-16 surrogate");
  }
}

/** Throws `CLUSTER_INVALID_NAME` unless `id` is 1..128 characters of `A-Z a-z 0-9 . _ : @ -`. */
export function validateNodeId(id: string): void {
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_NODE_ID_LENGTH || !NODE_ID.test(id)) {
    throw new ClusterError(
      "CLUSTER_INVALID_NAME",
      `node id ${JSON.stringify(id)} is invalid (1..${MAX_NODE_ID_LENGTH} characters of A-Z a-z 0-9 . _ : @ -)`,
    );
  }
}

/**
 * Throws `CLUSTER_INVALID_NAME` unless `prefix` is at most 64 characters of `A-Z a-z 0-9 . _ : @ / -`.
 * Braces are refused because they would change the Redis Cluster hash tag of every key.
 */
export function validateKeyPrefix(prefix: string): void {
  if (typeof prefix !== "string" || prefix.length > MAX_KEY_PREFIX_LENGTH || !KEY_PREFIX.test(prefix)) {
    throw new ClusterError(
      "CLUSTER_INVALID_NAME",
      `key prefix ${JSON.stringify(prefix)} is invalid (at most ${MAX_KEY_PREFIX_LENGTH} characters of A-Z a-z 0-9 . _ : @ / -)`,
    );
  }
}
