/**
 * Decoding of what `RedisStore` reads back: ownership values, script replies, pub/sub events and
 * node hashes. Every decoder is strict and bounded; anything unexpected raises
 * `CLUSTER_STORE_PROTOCOL` (for replies) or is dropped (for events, which are only hints).
 */

import { ClusterError } from "../error.ts";
import { MAX_BROADCAST_NAME_BYTES } from "../names.ts";
import type { ClusterEvent, NodeCapacity, NodeEndpoints, NodeRecord, OwnershipRecord } from "../store.ts";

/** Largest pub/sub payload decoded; real ones are a few hundred bytes. */
export const MAX_EVENT_BYTES: number = 4 * MAX_BROADCAST_NAME_BYTES + 1024;

const OWNER_VALUE = /^([^|]+)\|([^|]+)\|(\d{1,16})\|(\d{1,16})$/;

/** Splits `nodeId|claimId|epoch|lastMediaMs`; throws `CLUSTER_STORE_PROTOCOL` on anything else. */
export function decodeOwnerValue(
  broadcast: string,
  value: string,
  expiresAtMs: number,
  storeNowMs: number,
): OwnershipRecord {
  const match = OWNER_VALUE.exec(value);
  if (!match) {
    throw new ClusterError(
      "CLUSTER_STORE_PROTOCOL",
      `ownership key of broadcast "${broadcast}" holds ${JSON.stringify(value.slice(0, 80))}, which this package did not write`,
    );
  }
  return {
    broadcast,
    nodeId: match[1]!,
    claimId: match[2]!,
    epoch: Number(match[3]),
    lastMediaMs: Number(match[4]),
    expiresAtMs,
    storeNowMs,
  };
}

/** The reply element as a string (Redis bulk strings arrive as strings or Buffers). */
export function replyString(value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  throw new ClusterError("CLUSTER_STORE_PROTOCOL", `expected a string for ${what}, got ${describe(value)}`);
}

/** The reply element as a string, or null for a nil reply. */
export function replyOptionalString(value: unknown, what: string): string | null {
  if (value === null || value === undefined) return null;
  return replyString(value, what);
}

/** The reply element as a safe integer. */
export function replyInteger(value: unknown, what: string): number {
  const number = typeof value === "string" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number)) {
    throw new ClusterError(
      "CLUSTER_STORE_PROTOCOL",
      `expected an integer for ${what}, got ${describe(value)}`,
    );
  }
  return number;
}

/** The reply as an array of at least `length` elements. */
export function replyArray(value: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(value) || value.length < length) {
    throw new ClusterError(
      "CLUSTER_STORE_PROTOCOL",
      `expected an array of ${length} for ${what}, got ${describe(value)}`,
    );
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "nil";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}

function field(object: Record<string, unknown>, key: string): string | undefined {
  const value = object[key];
  return typeof value === "string" && value.length > 0 && value.length <= MAX_BROADCAST_NAME_BYTES * 4
    ? value
    : undefined;
}

function epochField(object: Record<string, unknown>, key: string): number | undefined {
  const value = field(object, key);
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : undefined;
}

/** Decodes one `<prefix>evt` message; undefined when it is not a well-formed event. */
export function decodeEvent(message: string): ClusterEvent | undefined {
  if (message.length > MAX_EVENT_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const object = parsed as Record<string, unknown>;
  const type = object["type"];
  const nodeId = field(object, "node");
  if (nodeId === undefined) return undefined;
  if (type === "node-up" || type === "node-down") return { type, nodeId };
  const broadcast = field(object, "broadcast");
  const claimId = field(object, "claim");
  const epoch = epochField(object, "epoch");
  if (broadcast === undefined || claimId === undefined || epoch === undefined) return undefined;
  if (type === "claimed" || type === "released") return { type, broadcast, nodeId, claimId, epoch };
  if (type === "stolen") {
    const previousNode = field(object, "prev_node");
    const previousClaim = field(object, "prev_claim");
    const previousEpoch = epochField(object, "prev_epoch");
    if (previousNode === undefined || previousClaim === undefined || previousEpoch === undefined)
      return undefined;
    return {
      type,
      broadcast,
      nodeId,
      claimId,
      epoch,
      previous: { nodeId: previousNode, claimId: previousClaim, epoch: previousEpoch },
    };
  }
  return undefined;
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function urlOrNull(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 ? value : null;
}

function finiteOrZero(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

/**
 * Decodes a node hash (HGETALL) into a record; undefined when the hash is empty or not ours.
 * `pttl` and `storeNowMs` give the expiry on the store's clock.
 */
export function decodeNodeHash(
  nodeId: string,
  hash: Record<string, string>,
  pttl: number,
  storeNowMs: number,
): NodeRecord | undefined {
  if (hash["id"] !== nodeId || pttl <= 0) return undefined;
  const endpoints = parseJsonObject(hash["endpoints"]) ?? {};
  const capacityObject = parseJsonObject(hash["capacity"]);
  const capacity: NodeCapacity | null = capacityObject
    ? {
        cpuPct: finiteOrZero(capacityObject["cpu_pct"]),
        rssBytes: finiteOrZero(capacityObject["rss_bytes"]),
        bytesOutPerSec: finiteOrZero(capacityObject["bytes_out_per_sec"]),
        subscribers: finiteOrZero(capacityObject["subscribers"]),
      }
    : null;
  const nodeEndpoints: NodeEndpoints = {
    moq: urlOrNull(endpoints["moq"]),
    hls: urlOrNull(endpoints["hls"]),
    dash: urlOrNull(endpoints["dash"]),
  };
  const startedAtMs = Number(hash["started_at_ms"]);
  const lastSeenMs = Number(hash["seen_ms"]);
  return {
    nodeId,
    endpoints: nodeEndpoints,
    capacity,
    version: hash["version"] ?? "",
    startedAtMs: Number.isSafeInteger(startedAtMs) ? startedAtMs : 0,
    lastSeenMs: Number.isSafeInteger(lastSeenMs) ? lastSeenMs : storeNowMs,
    expiresAtMs: storeNowMs + pttl,
  };
}

/** Encodes capacity the way it is stored and served (snake_case, as in the admin JSON). */
export function encodeCapacity(capacity: NodeCapacity | null): string {
  if (!capacity) return "";
  return JSON.stringify({
    cpu_pct: capacity.cpuPct,
    rss_bytes: capacity.rssBytes,
    bytes_out_per_sec: capacity.bytesOutPerSec,
    subscribers: capacity.subscribers,
  });
}
