/**
 * `ServerCluster`: the server's cluster integration, the one object `start()` talks to when
 * `ServeConfig.cluster` is set. It owns the cluster node (claims + registry on Redis), the cached
 * directory of owners and nodes, relay-pull, and publish claiming, and it answers the server's
 * three questions:
 *
 * - may this RTMP publish start? ({@link ServerCluster.admitRtmpPublish}: claim or `BadName`)
 * - where is this HLS/DASH broadcast served? ({@link ServerCluster.resolveOwner}: here, possibly by
 *   relay-pull, or a 302 to the owner in redirect mode)
 * - what are the cluster's nodes and broadcasts? ({@link ServerCluster.admin})
 *
 * Lifecycle: construct it before the listeners (the egress hub follows {@link egressOrigin}), call
 * {@link start} once they are bound (the advertised URLs come from the bound ports), and
 * {@link close} on shutdown. Redis being down never fails any of it: the node runs as a single node
 * and catches up when Redis returns.
 */

import { randomBytes } from "node:crypto";
import type { ClusterApi, LvqrMetrics } from "@lvqr/admin";
import {
  type BroadcastClaims,
  ClusterDirectory,
  ClusterNode,
  type NodeEndpoints,
  RedisStore,
  RelayPull,
  type RelayStatus,
} from "@lvqr/cluster";
import type { PublishDecision, RtmpServer } from "@lvqr/ingest-rtmp";
import { type MoqServer, OriginProducer } from "@lvqr/moq-lite";
import type { PlaybackTransport } from "@lvqr/packager";
import type { Logger } from "pino";
import type { ClusterConfig, ServeAuthConfig } from "../config.ts";
import type { PlaybackAudience } from "../playback-audience.ts";
import { advertisedEndpoints, type BoundListeners } from "./advertise.ts";
import { peerTokenSource } from "./peer-credentials.ts";
import { PublishClaims } from "./publish-claims.ts";

/** What {@link ServerCluster} needs from the server at construction. */
export interface ServerClusterOptions {
  readonly config: ClusterConfig;
  /** The origin every ingest writes into and MoQ sessions read. */
  readonly origin: OriginProducer;
  /** The server's auth settings; node-to-node pulls use them (see peer-credentials.ts). */
  readonly auth: ServeAuthConfig;
  readonly logger: Logger;
  readonly version: string;
}

/** What {@link ServerCluster.start} needs once the listeners are bound. */
export interface ServerClusterStart extends BoundListeners {
  /** Counters the registry advertises as capacity. */
  readonly moqServer: MoqServer;
  readonly metrics: LvqrMetrics;
  readonly audience: PlaybackAudience;
}

/** How long a relayed broadcast outlives its owner at least (a republish elsewhere continues it). */
const MIN_OWNER_GAP_MS = 5000;
/** How long start() waits for Redis before serving as a single node. */
const STORE_WAIT_AT_START_MS = 2000;

/** The server's cluster integration. */
export class ServerCluster {
  readonly nodeId: string;
  readonly config: ClusterConfig;
  /**
   * The origin the HLS/DASH egress hub follows: this node's own broadcasts, plus remote ones while
   * HLS/DASH viewers ask for them. (MoQ sessions read the main origin, where every remote broadcast
   * is announced.)
   */
  readonly egressOrigin: OriginProducer = new OriginProducer();
  readonly #options: ServerClusterOptions;
  readonly #logger: Logger;
  readonly #publishes: PublishClaims;
  readonly #ready: PromiseWithResolvers<BroadcastClaims> = Promise.withResolvers<BroadcastClaims>();
  #node: ClusterNode | undefined;
  #directory: ClusterDirectory | undefined;
  #relay: RelayPull | undefined;
  #endpoints: NodeEndpoints | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ServerClusterOptions) {
    this.#options = options;
    this.config = options.config;
    this.nodeId = options.config.nodeId ?? `lvqr-${randomBytes(8).toString("hex")}`;
    this.#logger = options.logger.child({ component: "cluster", node: this.nodeId });
    this.#publishes = new PublishClaims(this.#ready.promise, this.#logger);
    // Admission waits for start(); a failed start fails admission instead of hanging it.
    this.#ready.promise.catch(() => {});
  }

  /** The running cluster node (undefined before {@link start}). */
  get node(): ClusterNode | undefined {
    return this.#node;
  }

  /** The endpoints this node advertises (undefined before {@link start}). */
  get endpoints(): NodeEndpoints | undefined {
    return this.#endpoints;
  }

  /**
   * True when `path` is live here from a local publisher; false for a broadcast relayed from its
   * owner (and for one that is not live). Stats that count publishers should count only these.
   */
  isLocal(path: string): boolean {
    return this.#relay
      ? this.#relay.isLocal(path)
      : this.#options.origin.consume().consume(path) !== undefined;
  }

  /** Relayed broadcasts and their state (empty before {@link start}). */
  relayStatus(): RelayStatus[] {
    return this.#relay?.status() ?? [];
  }

  /** Joins the cluster: registry entry, directory, relay-pull and claiming. Call once, after binding. */
  start(context: ServerClusterStart): Promise<void> {
    this.#starting ??= this.#start(context).catch((err: unknown) => {
      this.#ready.reject(err);
      throw err;
    });
    return this.#starting;
  }

  async #start(context: ServerClusterStart): Promise<void> {
    const config = this.config;
    const { endpoints, derived } = advertisedEndpoints(config.advertise, context);
    this.#endpoints = endpoints;
    const leaseMs = config.leaseMs ?? 6000;
    const renewMs = config.renewMs ?? 2000;
    const node = await ClusterNode.start({
      nodeId: this.nodeId,
      redisUrl: config.redisUrl,
      endpoints,
      leaseMs,
      renewIntervalMs: renewMs,
      stepdownMarginMs: stepdownMarginFor(leaseMs, renewMs),
      policy: config.conflictPolicy ?? "takeover-if-stale",
      heartbeatMs: renewMs,
      version: this.#options.version,
      subscribers: () => {
        let moq = 0;
        for (const count of context.moqServer.stats().subscribers.values()) moq += count;
        return moq + context.audience.totalViewers("hls") + context.audience.totalViewers("dash");
      },
      bytesOut: () => context.metrics.totals().bytes_sent,
      logger: this.#logger,
    });
    this.#node = node;
    // Give Redis a moment, so the first publishes are checked against the cluster instead of being
    // admitted as pending claims; past that, start as a single node and join when Redis answers.
    if (node.store instanceof RedisStore) {
      await node.store.ready(STORE_WAIT_AT_START_MS).catch(() => {
        this.#logger.warn(
          { waitedMs: STORE_WAIT_AT_START_MS },
          "Redis is not reachable; serving as a single node until it is",
        );
      });
    }
    if (this.#closing) {
      await node.close();
      throw new Error("the server is shutting down");
    }
    const directory = new ClusterDirectory({
      store: node.store,
      pollIntervalMs: renewMs,
      logger: this.#logger,
    });
    this.#directory = directory;
    await directory.start();
    if (this.#closing) {
      directory.close();
      await node.close();
      throw new Error("the server is shutting down");
    }
    const tokens = peerTokenSource(this.#options.auth, this.nodeId);
    this.#relay = new RelayPull({
      nodeId: this.nodeId,
      origin: this.#options.origin,
      egressOrigin: this.egressOrigin,
      directory,
      localMoqUrl: endpoints.moq,
      ...(tokens ? { token: (_owner, broadcast) => tokens(broadcast) } : {}),
      ownerGapMs: Math.max(MIN_OWNER_GAP_MS, leaseMs),
      logger: this.#logger,
    });
    this.#publishes.watchMoqPublishes(this.#options.origin, (broadcast) => this.#relay!.isRelayed(broadcast));
    this.#ready.resolve(node.claims);
    this.#logger.info(
      {
        store: node.store.kind,
        storeState: node.store.state,
        endpoints,
        derivedEndpoints: derived,
        leaseMs,
        renewMs,
        egress: config.egress ?? "relay",
        conflictPolicy: config.conflictPolicy ?? "takeover-if-stale",
      },
      "cluster node started",
    );
  }

  /**
   * RTMP publish admission (after auth allowed the publish as `name`): claims the broadcast, or
   * refuses with `NetStream.Publish.BadName` when another node owns it.
   */
  admitRtmpPublish(name: string): Promise<PublishDecision> {
    return this.#publishes.admitRtmp(name);
  }

  /** Keeps claims in step with the RTMP server's sessions (renew while media flows, release at the end). */
  attachRtmp(rtmp: RtmpServer): void {
    this.#publishes.attachRtmp(rtmp);
  }

  /**
   * The packager's `resolveOwner` hook: undefined to serve `broadcast` here (a local broadcast, or a
   * remote one now relayed into the egress origin), or the owner's base URL for a 302 in redirect
   * mode. Never this node's own URL.
   */
  readonly resolveOwner = async (
    broadcast: string,
    transport: PlaybackTransport,
  ): Promise<string | undefined> => {
    const relay = this.#relay;
    const directory = this.#directory;
    if (!relay || !directory || relay.isLocal(broadcast)) return undefined;
    if (this.config.egress === "redirect") {
      const owner = directory.owner(broadcast) ?? (await directory.lookup(broadcast));
      if (owner && owner.nodeId !== this.nodeId) {
        const base = directory.node(owner.nodeId)?.endpoints[transport] ?? null;
        if (base !== null && base !== this.#endpoints?.[transport]) return base;
      }
      // An owner without an HLS/DASH endpoint is still served, by relay-pull.
    }
    await relay.request(broadcast);
    return undefined;
  };

  /** The admin plugin's cluster view (`/api/v1/cluster/nodes`, `/api/v1/cluster/broadcasts`). */
  readonly admin: ClusterApi = {
    nodes: async () => {
      const node = this.#node;
      if (!node)
        throw Object.assign(new Error("the cluster node is starting"), { code: "CLUSTER_STORE_UNAVAILABLE" });
      return node.nodesJson();
    },
    broadcasts: async () => {
      const node = this.#node;
      if (!node)
        throw Object.assign(new Error("the cluster node is starting"), { code: "CLUSTER_STORE_UNAVAILABLE" });
      return node.broadcastsJson();
    },
  };

  /**
   * Leaves the cluster: stops claiming and relaying, releases every claim (peers can take over at
   * once) and removes this node's registry entry. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#publishes.close();
      this.#relay?.close();
      this.#directory?.close();
      this.#ready.reject(new Error("the server is shutting down"));
      await this.#starting?.catch(() => {});
      await this.#node?.close();
    })();
    return this.#closing;
  }
}

/**
 * The stepdown margin for a lease and renew interval: the package default (max(1000 ms, 25 % of the
 * lease)), narrowed to half the gap between lease and renew interval when that default would leave
 * no room for a renew (short leases the CLI accepts, e.g. 2000/1000), so every lease the flags
 * allow works.
 */
export function stepdownMarginFor(leaseMs: number, renewMs: number): number {
  return Math.max(1, Math.min(Math.max(1000, Math.round(leaseMs / 4)), Math.floor((leaseMs - renewMs) / 2)));
}
