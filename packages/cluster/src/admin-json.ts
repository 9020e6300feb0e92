/**
 * The JSON served by the admin routes `/api/v1/cluster/nodes` and `/api/v1/cluster/broadcasts`.
 * Field names follow the reference server (snake_case). Additions over the reference: nodes carry
 * their endpoints, subscribers, version and timestamps; broadcasts carry the fencing epoch and the
 * last media time. `gossip_addr` is kept for clients written against the reference, and is always
 * null here because ownership lives in the store, not in a gossip mesh.
 */

import { compareStrings } from "./memory-store.ts";
import type { ClusterStore, NodeRecord, OwnershipRecord } from "./store.ts";

/** One element of `GET /api/v1/cluster/nodes`. */
export interface ClusterNodeJson {
  readonly id: string;
  /** Unix seconds when the node started (the reference's generation). */
  readonly generation: number;
  readonly gossip_addr: null;
  readonly endpoints: {
    readonly moq: string | null;
    readonly hls: string | null;
    readonly dash: string | null;
  };
  readonly capacity: {
    readonly cpu_pct: number;
    readonly rss_bytes: number;
    readonly bytes_out_per_sec: number;
    readonly subscribers: number;
  } | null;
  readonly version: string;
  readonly started_at_ms: number;
  /** Store time of the last heartbeat. */
  readonly last_seen_ms: number;
  /** Store time when the entry expires without another heartbeat. */
  readonly expires_at_ms: number;
}

/** One element of `GET /api/v1/cluster/broadcasts`. */
export interface ClusterBroadcastJson {
  readonly name: string;
  /** Node id of the owner. */
  readonly owner: string;
  /** Store time (Unix ms) when the lease runs out unless renewed. */
  readonly expires_at_ms: number;
  /** Fencing epoch of the current claim. */
  readonly epoch: number;
  /** Store time (Unix ms) of the last media the owner reported. */
  readonly last_media_ms: number;
}

/** Renders node records as the `/api/v1/cluster/nodes` body, sorted by id. */
export function renderClusterNodes(records: readonly NodeRecord[]): ClusterNodeJson[] {
  return [...records]
    .sort((a, b) => compareStrings(a.nodeId, b.nodeId))
    .map((record) => ({
      id: record.nodeId,
      generation: Math.floor(record.startedAtMs / 1000),
      gossip_addr: null,
      endpoints: { moq: record.endpoints.moq, hls: record.endpoints.hls, dash: record.endpoints.dash },
      capacity: record.capacity
        ? {
            cpu_pct: record.capacity.cpuPct,
            rss_bytes: record.capacity.rssBytes,
            bytes_out_per_sec: record.capacity.bytesOutPerSec,
            subscribers: record.capacity.subscribers,
          }
        : null,
      version: record.version,
      started_at_ms: record.startedAtMs,
      last_seen_ms: record.lastSeenMs,
      expires_at_ms: record.expiresAtMs,
    }));
}

/** Renders ownership records as the `/api/v1/cluster/broadcasts` body: live claims sorted by name. */
export function renderClusterBroadcasts(records: readonly OwnershipRecord[]): ClusterBroadcastJson[] {
  return records
    .filter((record) => record.expiresAtMs > record.storeNowMs)
    .sort((a, b) => compareStrings(a.broadcast, b.broadcast))
    .map((record) => ({
      name: record.broadcast,
      owner: record.nodeId,
      expires_at_ms: record.expiresAtMs,
      epoch: record.epoch,
      last_media_ms: record.lastMediaMs,
    }));
}

/**
 * The body of `GET /api/v1/cluster/nodes`. Rejects with a `ClusterError` when the store is
 * unreachable (`CLUSTER_STORE_UNAVAILABLE` / `CLUSTER_STORE_TIMEOUT`: answer 503).
 */
export async function clusterNodesJson(store: ClusterStore): Promise<ClusterNodeJson[]> {
  return renderClusterNodes(await store.listNodes());
}

/** The body of `GET /api/v1/cluster/broadcasts`; rejects like {@link clusterNodesJson}. */
export async function clusterBroadcastsJson(store: ClusterStore): Promise<ClusterBroadcastJson[]> {
  return renderClusterBroadcasts(await store.listBroadcasts());
}
