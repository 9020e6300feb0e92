/**
 * @lvqr/admin: the operator's view of an LVQR server.
 *
 * - {@link LatencyTracker}: glass-to-glass latency per (broadcast, transport), a ring of 1024
 *   samples each, summarised as {@link SloEntry} rows (p50/p95/p99/max).
 * - {@link LvqrMetrics}: the server's Prometheus metrics (auth failures, sessions, bytes, latency
 *   histogram, stream-key changes) in their own registry, plus the Node.js process metrics.
 * - {@link adminPlugin}: the admin HTTP API (`/healthz`, `/metrics`, `/api/v1/*`) as a fastify
 *   plugin whose every input (auth, stats, stream keys, cluster) is injected.
 *
 * The package knows nothing about media or how the server is wired; the server implements the
 * small interfaces in `types.ts` and passes them in.
 */

export {
  BROADCAST_NAME_PATTERN,
  isValidBroadcastName,
  MAX_BROADCAST_NAME_LENGTH,
} from "./broadcast-name.ts";
export { AdminError, type AdminErrorCode, isAdminError } from "./errors.ts";
export {
  type AuthFailureEntry,
  type DvrFileUsage,
  GLASS_TO_GLASS_BUCKETS_MS,
  LvqrMetrics,
  type LvqrMetricsOptions,
  type StreamKeyOp,
} from "./metrics.ts";
export {
  ADMIN_BODY_LIMIT,
  type AdminPluginOptions,
  adminPlugin,
  bearerToken,
  CLUSTER_NOT_CONFIGURED_MESSAGE,
  STREAM_KEYS_DISABLED_MESSAGE,
} from "./plugin.ts";
export { CLIENT_SAMPLE_LIMITS, MAX_LABEL_LENGTH, MAX_TTL_SECONDS } from "./schemas.ts";
export {
  type GlassToGlassSink,
  LatencyTracker,
  type LatencyTrackerOptions,
  percentileOfSorted,
  SLO_DEFAULT_MAX_KEYS,
  SLO_RING_CAPACITY,
  type SloEntry,
} from "./slo.ts";
export type {
  AdminStats,
  AuthDecision,
  BoundAddresses,
  ClusterApi,
  ClusterBroadcast,
  ClusterNode,
  MaybePromise,
  NodeCapacity,
  ServerInfo,
  ServerInfoInput,
  StreamKey,
  StreamKeyApi,
  StreamKeySpec,
  StreamSummary,
} from "./types.ts";
