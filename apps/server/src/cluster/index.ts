/**
 * The server's cluster integration (`ServeConfig.cluster`, the `--cluster-*` flags): auto-claim at
 * the ingest, relay-pull of broadcasts owned by other nodes (MoQ always; HLS and DASH by default),
 * 302 redirects to the owner for HLS and DASH in redirect mode, and the admin cluster routes.
 * `start()` creates one {@link ServerCluster} and calls into it; everything else lives here.
 */
export { type AdvertisedEndpoints, advertisedEndpoints, type BoundListeners } from "./advertise.ts";
export { type PeerTokenSource, peerTokenSource } from "./peer-credentials.ts";
export { PublishClaims } from "./publish-claims.ts";
export { ServerCluster, type ServerClusterOptions, type ServerClusterStart } from "./server-cluster.ts";
