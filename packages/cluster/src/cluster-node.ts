/**
 * `ClusterNode`: one node's whole cluster membership in one object, which is what the server
 * composes. It owns (and closes, in order) the lease manager, the registry entry and, when it
 * created it, the store. Without a Redis URL it runs on a `MemoryStore`: a single node with the
 * same semantics and no external dependency.
 */

import {
  type ClusterBroadcastJson,
  type ClusterNodeJson,
  clusterBroadcastsJson,
  clusterNodesJson,
} from "./admin-json.ts";
import type { CapacityMeter } from "./capacity.ts";
import { BroadcastClaims, type ConflictPolicy } from "./claims.ts";
import type { ClusterLogger } from "./logger.ts";
import { MemoryStore } from "./memory-store.ts";
import { RedisStore } from "./redis/redis-store.ts";
import { NodeRegistry } from "./registry.ts";
import type { ClusterStore, NodeEndpoints, NodeRecord, OwnershipRecord } from "./store.ts";

/** Options of {@link ClusterNode.start}. */
export interface ClusterNodeOptions {
  readonly nodeId: string;
  /** A store to use (not closed by the node). */
  readonly store?: ClusterStore;
  /** Redis URL; the node then creates (and closes) a {@link RedisStore}. Ignored when `store` is given. */
  readonly redisUrl?: string;
  /** Key prefix for a created RedisStore. Default `lv:`. */
  readonly keyPrefix?: string;
  /** Base URLs this node advertises. */
  readonly endpoints?: Partial<NodeEndpoints>;
  readonly leaseMs?: number;
  readonly renewIntervalMs?: number;
  readonly stepdownMarginMs?: number;
  readonly staleMs?: number;
  readonly policy?: ConflictPolicy;
  readonly heartbeatMs?: number;
  readonly version?: string;
  readonly meter?: CapacityMeter;
  readonly subscribers?: () => number;
  readonly bytesOut?: () => number;
  readonly logger?: ClusterLogger;
}

/** Where a broadcast lives, for relay-pull and redirects. */
export interface OwnerLocation {
  readonly record: OwnershipRecord;
  /** The owner's registry entry; null when it has none (not registered yet, or expired). */
  readonly node: NodeRecord | null;
  /** True when this node is the owner. */
  readonly local: boolean;
}

/** A node's cluster membership: claims, registry entry and store. */
export class ClusterNode {
  readonly nodeId: string;
  readonly store: ClusterStore;
  readonly claims: BroadcastClaims;
  readonly registry: NodeRegistry;
  readonly #ownsStore: boolean;
  #closing: Promise<void> | undefined;

  private constructor(
    store: ClusterStore,
    ownsStore: boolean,
    claims: BroadcastClaims,
    registry: NodeRegistry,
  ) {
    this.nodeId = claims.nodeId;
    this.store = store;
    this.claims = claims;
    this.registry = registry;
    this.#ownsStore = ownsStore;
  }

  /**
   * Creates the node and writes its first heartbeat. Never waits for Redis: when it is unreachable
   * the node starts as a single node and joins when Redis becomes reachable.
   */
  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const ownsStore = options.store === undefined;
    const store: ClusterStore =
      options.store ??
      (options.redisUrl !== undefined
        ? new RedisStore({
            url: options.redisUrl,
            ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
            ...(options.logger ? { logger: options.logger } : {}),
          })
        : new MemoryStore());
    try {
      const claims = new BroadcastClaims({
        store,
        nodeId: options.nodeId,
        ...pick(options, ["leaseMs", "renewIntervalMs", "stepdownMarginMs", "staleMs", "policy", "logger"]),
      });
      const registry = new NodeRegistry({
        store,
        nodeId: options.nodeId,
        heartbeatMs: options.heartbeatMs ?? claims.renewIntervalMs,
        ...pick(options, ["endpoints", "version", "meter", "subscribers", "bytesOut", "logger"]),
      });
      await registry.start();
      return new ClusterNode(store, ownsStore, claims, registry);
    } catch (err) {
      if (ownsStore) await store.close();
      throw err;
    }
  }

  /** The owner of `broadcast` with its advertised endpoints, or null when nobody owns it. */
  async ownerOf(broadcast: string): Promise<OwnerLocation | null> {
    const record = await this.store.owner(broadcast);
    if (!record) return null;
    const nodes = await this.store.listNodes();
    return {
      record,
      node: nodes.find((node) => node.nodeId === record.nodeId) ?? null,
      local: record.nodeId === this.nodeId,
    };
  }

  /** Body of `GET /api/v1/cluster/nodes`. */
  nodesJson(): Promise<ClusterNodeJson[]> {
    return clusterNodesJson(this.store);
  }

  /** Body of `GET /api/v1/cluster/broadcasts`. */
  broadcastsJson(): Promise<ClusterBroadcastJson[]> {
    return clusterBroadcastsJson(this.store);
  }

  /** Releases every claim, removes the registry entry, then closes the store if this node created it. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        await Promise.all([this.claims.close(), this.registry.close()]);
        if (this.#ownsStore) await this.store.close();
      })();
    }
    return this.#closing;
  }
}

function pick<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key];
  return out;
}
