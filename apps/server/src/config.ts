/**
 * `ServeConfig`: everything `start()` needs, with the reference's defaults. The CLI builds one from
 * flags and `LVQR_*` environment variables; library users build one in code. Every port accepts 0
 * (ephemeral); optional listeners are switched off with `false`.
 */

/** Auth settings. Every gate is open when its setting is unset. */
export interface ServeAuthConfig {
  /** Bearer token for the admin API. */
  readonly adminToken?: string;
  /** Static key publishers must present (RTMP stream key or `?key=`). */
  readonly publishKey?: string;
  /** Token viewers must present (HLS/DASH/MoQ). */
  readonly subscribeToken?: string;
  /** HS256 JWT verification; takes precedence over the static tokens when set. */
  readonly jwt?: { readonly secret: string; readonly issuer?: string; readonly audience?: string };
  /** Runtime stream keys (`lvqr_sk_…`) managed over the admin API. Default true. */
  readonly streamKeys?: boolean;
  /** Require subscribe credentials on live HLS and DASH. Default true (open when no subscribe gate exists). */
  readonly livePlaybackAuth?: boolean;
  /** HMAC secret for signed live and playback URLs. */
  readonly hmacPlaybackSecret?: string;
}

/** LL-HLS tuning. */
export interface HlsConfig {
  /** Segment target duration in seconds. Default 2. */
  readonly targetDurationS?: number;
  /** Part target in milliseconds. Default 200. */
  readonly partTargetMs?: number;
  /** Sliding window in seconds; 0 keeps as much as the byte budget allows. Default 120. */
  readonly dvrWindowS?: number;
  /**
   * Seconds of the newest media kept in memory; older DVR segments are written to files in a
   * directory under `dataDir` (removed at shutdown). At or above the window, everything stays in
   * memory. Default 12.
   */
  readonly dvrMemoryS?: number;
}

/** Cluster settings; absent means a single node with no external dependencies. */
export interface ClusterConfig {
  /** Redis (or Valkey) URL shared by the nodes, e.g. `redis://10.0.0.5:6379`. */
  readonly redisUrl: string;
  /** This node's id; default `lvqr-` + random. */
  readonly nodeId?: string;
  /** Base URLs other nodes and viewers use to reach this node. */
  readonly advertise?: { readonly moq?: string; readonly hls?: string; readonly dash?: string };
  /** Lease length in ms (default 6000) and renew interval in ms (default 2000). */
  readonly leaseMs?: number;
  readonly renewMs?: number;
  /** How a non-owner serves HLS/DASH viewers: pull the media (default) or 302 to the owner. */
  readonly egress?: "relay" | "redirect";
  /** What a second publisher of a live name on another node gets. Default `takeover-if-stale`. */
  readonly conflictPolicy?: "takeover-if-stale" | "takeover" | "reject";
}

/** TLS material for the MoQ listener (WSS, WebTransport over HTTP/2 and HTTP/3). */
export interface TlsConfig {
  /** PEM certificate chain. */
  readonly cert: string | Uint8Array;
  /** PEM private key. */
  readonly key: string | Uint8Array;
}

/** Log level names pino understands, plus "silent". */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** Configuration of a server started with `start()`. */
export interface ServeConfig {
  /** Address every listener binds. Default `0.0.0.0`. */
  readonly host?: string;
  /** MoQ port: TCP for WebSocket/HTTP/2, UDP for HTTP/3. Default 4443. */
  readonly moqPort?: number;
  /** RTMP port. Default 1935. */
  readonly rtmpPort?: number;
  /** Admin API port. Default 8080. */
  readonly adminPort?: number;
  /** LL-HLS port, or false to disable. Default 8888. */
  readonly hlsPort?: number | false;
  /** DASH port, or false to disable. Default 8889. */
  readonly dashPort?: number | false;
  readonly hls?: HlsConfig;
  readonly auth?: ServeAuthConfig;
  /** TLS for the MoQ listener; without it the TCP port speaks plain HTTP with a development certificate for HTTP/3. */
  readonly tls?: TlsConfig;
  /** Where persistent state (stream keys) lives. Default `./lvqr-data`. */
  readonly dataDir?: string;
  readonly cluster?: ClusterConfig;
  /** Log level (default "info"), and whether logs are JSON (default true) or pretty lines. */
  readonly logLevel?: LogLevel;
  /** How long `shutdown()` waits for publishers and viewers to drain before closing sockets. Default 5000 ms. */
  readonly shutdownGraceMs?: number;
}

/** Default ports, as in the reference server. */
export const DEFAULT_PORTS: {
  readonly moq: 4443;
  readonly rtmp: 1935;
  readonly admin: 8080;
  readonly hls: 8888;
  readonly dash: 8889;
} = {
  moq: 4443,
  rtmp: 1935,
  admin: 8080,
  hls: 8888,
  dash: 8889,
};

/** A config with every listener on 127.0.0.1 and an ephemeral port: what tests want. */
export function loopbackEphemeralConfig(overrides: Partial<ServeConfig> = {}): ServeConfig {
  return {
    host: "127.0.0.1",
    moqPort: 0,
    rtmpPort: 0,
    adminPort: 0,
    hlsPort: 0,
    dashPort: 0,
    logLevel: "silent",
    ...overrides,
  };
}

/** Thrown for a config value that cannot work; `setting` names the flag or field. */
export class ConfigError extends Error {
  readonly code: "LVQR_CONFIG_INVALID" = "LVQR_CONFIG_INVALID";
  /** The flag or field at fault, e.g. `--hls-part-target`. */
  readonly setting: string;

  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.name = "ConfigError";
    this.setting = setting;
  }
}

/** Checks a config for values that cannot work, naming the field at fault. */
export function validateServeConfig(config: ServeConfig): void {
  const port = (name: string, value: number | false | undefined) => {
    if (value === undefined || value === false) return;
    if (!Number.isInteger(value) || value < 0 || value > 65535)
      throw new ConfigError(name, `port ${value} is not an integer in 0..65535`);
  };
  port("moqPort", config.moqPort);
  port("rtmpPort", config.rtmpPort);
  port("adminPort", config.adminPort);
  port("hlsPort", config.hlsPort);
  port("dashPort", config.dashPort);
  const hls = config.hls ?? {};
  if (hls.targetDurationS !== undefined && !(hls.targetDurationS >= 1 && hls.targetDurationS <= 60)) {
    throw new ConfigError("hls.targetDurationS", `${hls.targetDurationS} is outside 1..60 seconds`);
  }
  if (hls.partTargetMs !== undefined && !(hls.partTargetMs >= 50 && hls.partTargetMs <= 5000)) {
    throw new ConfigError("hls.partTargetMs", `${hls.partTargetMs} is outside 50..5000 ms`);
  }
  if (hls.partTargetMs !== undefined && hls.partTargetMs >= (hls.targetDurationS ?? 2) * 1000) {
    throw new ConfigError(
      "hls.partTargetMs",
      "the part target must be shorter than the segment target duration",
    );
  }
  if (hls.dvrWindowS !== undefined && !(hls.dvrWindowS >= 0 && hls.dvrWindowS <= 86_400)) {
    throw new ConfigError("hls.dvrWindowS", `${hls.dvrWindowS} is outside 0..86400 seconds`);
  }
  if (hls.dvrMemoryS !== undefined && !(hls.dvrMemoryS >= 0 && hls.dvrMemoryS <= 86_400)) {
    throw new ConfigError("hls.dvrMemoryS", `${hls.dvrMemoryS} is outside 0..86400 seconds`);
  }
  const cluster = config.cluster;
  if (cluster) {
    if (!/^(redis|rediss|valkey):\/\//.test(cluster.redisUrl)) {
      throw new ConfigError(
        "cluster.redisUrl",
        `${JSON.stringify(cluster.redisUrl)} is not a redis:// or rediss:// URL`,
      );
    }
    const lease = cluster.leaseMs ?? 6000;
    const renew = cluster.renewMs ?? 2000;
    if (!(lease >= 500)) throw new ConfigError("cluster.leaseMs", `${lease} is below the 500 ms minimum`);
    if (!(renew >= 50 && renew * 2 <= lease)) {
      throw new ConfigError(
        "cluster.renewMs",
        `${renew} must be at least 50 ms and at most half the lease (${lease} ms)`,
      );
    }
  }
  if (config.shutdownGraceMs !== undefined && !(config.shutdownGraceMs >= 0)) {
    throw new ConfigError("shutdownGraceMs", `${config.shutdownGraceMs} must be ≥ 0`);
  }
}
