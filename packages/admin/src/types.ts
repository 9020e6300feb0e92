/**
 * The data the admin API serves and the interfaces the server implements to feed it. Field names
 * are the reference's JSON names (snake_case), so the objects serialize as they are.
 */

/** An auth check's answer. The server's auth providers return this shape. */
export type AuthDecision = { readonly allow: true } | { readonly allow: false; readonly reason: string };

/** A value or a promise of it: callbacks may answer synchronously or not. */
export type MaybePromise<T> = T | Promise<T>;

/** `GET /api/v1/stats`. Every number is measured, none is a placeholder. */
export interface AdminStats {
  /** Broadcasts being published. */
  publishers: number;
  /** Subscribers over all protocols (the sum of `subscribers_by_protocol`). */
  subscribers: number;
  /** Media tracks over all broadcasts. */
  tracks: number;
  /** Media bytes received from publishers since start. */
  bytes_received: number;
  /** Media bytes sent to subscribers since start. */
  bytes_sent: number;
  /** Whole seconds since the server started. */
  uptime_secs: number;
  /** Subscribers per protocol, e.g. `{ "moq": 3, "hls": 12, "dash": 0 }`. */
  subscribers_by_protocol: Record<string, number>;
}

/** One row of `GET /api/v1/streams` (the list is sorted by name). */
export interface StreamSummary {
  /** The broadcast name, e.g. `live/cam0`. */
  name: string;
  /** Subscribers of this broadcast over all protocols. */
  subscribers: number;
  /** Subscribers of this broadcast per protocol. */
  subscribers_by_protocol?: Record<string, number>;
  /** Media bytes received for this broadcast. */
  bytes_received?: number;
  /** Media bytes sent for this broadcast. */
  bytes_sent?: number;
  /** Unix ms when publishing started. */
  started_at_ms?: number;
}

/** Listener addresses reported by `/api/v1/server-info`: `ip:port`, or null when off. */
export interface BoundAddresses {
  admin: string | null;
  rtmp: string | null;
  hls: string | null;
  dash: string | null;
  moq: string | null;
}

/** What the server supplies for `/api/v1/server-info`; the plugin adds the rest of the reference shape. */
export interface ServerInfoInput {
  version: string;
  uptime_secs: number;
  bound: BoundAddresses;
  /** The auth provider in use, reported as it is (the reference says "configured" instead). */
  auth_mode: "noop" | "static" | "jwt";
  hmac_playback_secret_configured: boolean;
  /** Optional build features, listed as they are. */
  build_features?: string[];
}

/**
 * `GET /api/v1/server-info`, in the reference's shape. Features this server does not implement
 * (mesh, WHIP/WHEP, SRT, RTSP, archive, recording, WASM filters, config reload) are reported as
 * off, so SDKs written against the reference keep working.
 */
export interface ServerInfo {
  version: string;
  build_features: string[];
  uptime_secs: number;
  bound: BoundAddresses & {
    whip: string | null;
    whep: string | null;
    srt: string | null;
    rtsp: string | null;
    signal: string | null;
  };
  features: {
    mesh_enabled: boolean;
    cluster_enabled: boolean;
    archive_dir: string | null;
    record_dir: string | null;
    wasm_filter_chain_length: number;
    auth_mode: "noop" | "static" | "jwt";
    hmac_playback_secret_configured: boolean;
    stream_keys_enabled: boolean;
  };
  config_path: string | null;
  wasm_filter_paths: string[];
}

/** A runtime stream key as the API serves it. Times are Unix seconds. */
export interface StreamKey {
  /** Stable handle for revoke and rotate: base64url of 16 random bytes. */
  id: string;
  /** The publish credential: `lvqr_sk_` + base64url of 32 random bytes. */
  token: string;
  label: string | null;
  /** When set, the key publishes only this broadcast. */
  broadcast: string | null;
  /** Unix seconds of the mint or the last rotate. */
  created_at: number;
  /** Unix seconds after which the key no longer authorizes; null for never. */
  expires_at: number | null;
}

/** The body of mint and rotate. `ttl_seconds` of 0 or null means no expiry. */
export interface StreamKeySpec {
  label?: string | null;
  broadcast?: string | null;
  ttl_seconds?: number | null;
}

/**
 * The stream-key store behind `/api/v1/streamkeys`. Mutations should be durable when they resolve.
 * A thrown error with a numeric `statusCode` between 400 and 599 is answered with that status and
 * the error's message; anything else is a 500.
 */
export interface StreamKeyApi {
  /** Every live (unexpired) key. */
  list(): MaybePromise<StreamKey[]>;
  /** Creates a key with a new id and token. */
  mint(spec: StreamKeySpec): MaybePromise<StreamKey>;
  /** Deletes a key; false when the id is unknown. */
  revoke(id: string): MaybePromise<boolean>;
  /**
   * Gives a key a new token and resets `created_at`. Without `spec` the label, broadcast and expiry
   * are kept; with one they are all replaced (a missing or null field clears it). Undefined when the
   * id is unknown.
   */
  rotate(id: string, spec?: StreamKeySpec): MaybePromise<StreamKey | undefined>;
}

/** Measured capacity of a cluster node. */
export interface NodeCapacity {
  cpu_pct: number;
  rss_bytes: number;
  bytes_out_per_sec: number;
}

/** One row of `GET /api/v1/cluster/nodes` (sorted by id). */
export interface ClusterNode {
  id: string;
  /** The node's incarnation (for example its start time in ms); changes when the node restarts. */
  generation: number;
  /** The reference's gossip address; null for store-based clusters, which have none. */
  gossip_addr: string | null;
  capacity: (NodeCapacity & { subscribers?: number }) | null;
  /** Advertised base URLs per egress (`moq`, `hls`, `dash`, ...); null when the node does not serve it. */
  endpoints?: Record<string, string | null>;
  version?: string;
  /** Unix ms when the node started. */
  started_at_ms?: number;
  /** Store time (Unix ms) of the node's last heartbeat. */
  last_seen_ms?: number;
  /** Store time (Unix ms) when the node's entry expires without another heartbeat. */
  expires_at_ms?: number;
}

/** One row of `GET /api/v1/cluster/broadcasts` (sorted by name). */
export interface ClusterBroadcast {
  name: string;
  /** Node id of the owner. */
  owner: string;
  /** Unix ms when the owner's lease runs out unless renewed. */
  expires_at_ms: number;
  /** Fencing number of the current claim. */
  epoch?: number;
  /** Store time (Unix ms) of the last media the owner reported. */
  last_media_ms?: number;
}

/**
 * The cluster view behind `/api/v1/cluster/*`. Errors follow the {@link StreamKeyApi} convention;
 * in addition an error whose `code` is `CLUSTER_STORE_UNAVAILABLE` or `CLUSTER_STORE_TIMEOUT`
 * (what `@lvqr/cluster` raises when its store cannot answer) is a 503 with `Retry-After: 1`.
 */
export interface ClusterApi {
  nodes(): MaybePromise<ClusterNode[]>;
  broadcasts(): MaybePromise<ClusterBroadcast[]>;
}
