/**
 * @lvqr/cluster: broadcast ownership across LVQR nodes.
 *
 * - {@link ClusterStore} holds ownership and the node registry: {@link MemoryStore} for a single
 *   node (the default, nothing external), {@link RedisStore} for several nodes sharing Redis or
 *   Valkey. Claims are atomic, carry a fencing epoch that always increases, and are renewed by
 *   compare-and-renew.
 * - {@link BroadcastClaims} is the lease manager the server calls when a broadcast starts; its
 *   handles renew, step down locally before the lease can expire elsewhere, apply the conflict
 *   policy (`takeover-if-stale`, `takeover`, `reject`) and report `lost` / `stolen`.
 * - {@link NodeRegistry} advertises the node's endpoints and measured capacity with a heartbeat.
 * - {@link clusterNodesJson} / {@link clusterBroadcastsJson} produce the admin routes' bodies.
 * - {@link ClusterNode} bundles all of that for one node.
 * - {@link ClusterDirectory} is a node's cached view of who owns what and where nodes are;
 *   {@link RelayPull} uses it to serve broadcasts owned elsewhere by pulling them over moq-lite
 *   ({@link UpstreamSession}, {@link RelayedBroadcast}, {@link forwardTrack}).
 *
 * ```ts
 * const node = await ClusterNode.start({ nodeId: "a", redisUrl: "redis://127.0.0.1:6379" });
 * const claim = await node.claims.claim("live/cam0");   // throws CLUSTER_BUSY if another node has it
 * claim.on("lost", () => publisher.close());
 * onFrame(() => claim.markMedia());
 * if (claim.isOwner()) sink.write(data, claim.epoch);
 * await claim.release();
 * await node.close();
 * ```
 */
export * from "./admin-json.ts";
export * from "./capacity.ts";
export * from "./claims.ts";
export * from "./cluster-node.ts";
export * from "./directory.ts";
export * from "./error.ts";
export * from "./logger.ts";
export * from "./memory-store.ts";
export * from "./names.ts";
export * from "./redis/redis-store.ts";
export * from "./registry.ts";
export * from "./relay/forward-track.ts";
export * from "./relay/relay-pull.ts";
export * from "./relay/relayed-broadcast.ts";
export * from "./relay/upstream-session.ts";
export type * from "./store.ts";
