/**
 * Argument checks shared by both stores, so that `MemoryStore` and `RedisStore` refuse exactly the
 * same inputs with the same error codes.
 */

import { ClusterError } from "./error.ts";
import { validateBroadcastName, validateNodeId } from "./names.ts";
import type { AcquireRequest, Lease, NodeInfo } from "./store.ts";

/** Longest lease or TTL accepted (one day); anything longer is almost certainly a unit mistake. */
export const MAX_LEASE_MS = 86_400_000;

const CLAIM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws `CLUSTER_INVALID_CONFIG` unless `value` is an integer in [min, max]. */
export function checkIntegerOption(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ClusterError(
      "CLUSTER_INVALID_CONFIG",
      `${name} must be an integer in ${min}..${max} (got ${value})`,
    );
  }
}

/** Throws `CLUSTER_INVALID_NAME` unless `id` is a usable claim id (1..64 of `A-Z a-z 0-9 _ -`). */
export function checkClaimId(id: string): void {
  if (typeof id !== "string" || !CLAIM_ID.test(id)) {
    throw new ClusterError(
      "CLUSTER_INVALID_NAME",
      `claim id ${JSON.stringify(id)} is invalid (1..64 of A-Z a-z 0-9 _ -)`,
    );
  }
}

/** Validates every field of an acquisition request. */
export function checkAcquireRequest(request: AcquireRequest): void {
  validateBroadcastName(request.broadcast);
  validateNodeId(request.nodeId);
  checkClaimId(request.claimId);
  checkIntegerOption("leaseMs", request.leaseMs, 1, MAX_LEASE_MS);
  if (request.mode !== "claim" && request.mode !== "if-stale" && request.mode !== "force") {
    throw new ClusterError("CLUSTER_INVALID_CONFIG", `unknown acquire mode ${JSON.stringify(request.mode)}`);
  }
  if (request.mode === "if-stale") {
    checkIntegerOption("staleMs", request.staleMs ?? Number.NaN, 0, MAX_LEASE_MS);
  }
  if (request.supersedes !== undefined) checkClaimId(request.supersedes);
}

/** Validates a lease handed back to renew or release. */
export function checkLease(lease: Lease): void {
  validateBroadcastName(lease.broadcast);
  validateNodeId(lease.nodeId);
  checkClaimId(lease.claimId);
}

/** Validates the media age of a renew: undefined, or a finite number >= 0. */
export function checkMediaAge(mediaAgeMs: number | undefined): void {
  if (mediaAgeMs !== undefined && !(Number.isFinite(mediaAgeMs) && mediaAgeMs >= 0)) {
    throw new ClusterError(
      "CLUSTER_INVALID_CONFIG",
      `mediaAgeMs must be a finite number >= 0 (got ${mediaAgeMs})`,
    );
  }
}

/** Validates a node registry entry before it is written. */
export function checkNodeInfo(info: NodeInfo, ttlMs: number): void {
  validateNodeId(info.nodeId);
  checkIntegerOption("node ttlMs", ttlMs, 1, MAX_LEASE_MS);
  for (const key of ["moq", "hls", "dash"] as const) {
    const url = info.endpoints[key];
    if (url !== null && (typeof url !== "string" || url.length > 2048)) {
      throw new ClusterError(
        "CLUSTER_INVALID_CONFIG",
        `endpoint ${key} must be a URL string of at most 2048 characters`,
      );
    }
  }
  if (typeof info.version !== "string" || info.version.length > 128) {
    throw new ClusterError("CLUSTER_INVALID_CONFIG", "version must be a string of at most 128 characters");
  }
}
