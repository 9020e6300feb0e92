/**
 * `lvqr serve` flags. One table drives parsing, the `LVQR_*` environment fallbacks, validation
 * and `--help`, so they cannot drift apart. A flag beats its environment variable.
 */
import { readFileSync } from "node:fs";
import { ConfigError, DEFAULT_PORTS, type LogLevel, type ServeConfig } from "./config.ts";

type Kind = "port" | "int" | "string" | "bool" | "url" | "file";

interface OptionSpec {
  readonly flag: string;
  readonly kind: Kind;
  readonly help: string;
  readonly defaultText?: string;
  /** Lowest and highest accepted value for numeric kinds. */
  readonly range?: readonly [number, number];
  readonly choices?: readonly string[];
}

const OPTIONS: readonly OptionSpec[] = [
  { flag: "host", kind: "string", help: "address every listener binds", defaultText: "0.0.0.0" },
  {
    flag: "port",
    kind: "port",
    help: "MoQ port (TCP: WebSocket, HTTP/2; UDP: HTTP/3 WebTransport)",
    defaultText: String(DEFAULT_PORTS.moq),
  },
  { flag: "rtmp-port", kind: "port", help: "RTMP ingest port", defaultText: String(DEFAULT_PORTS.rtmp) },
  {
    flag: "admin-port",
    kind: "port",
    help: "admin API port (/healthz, /metrics, /api/v1/*)",
    defaultText: String(DEFAULT_PORTS.admin),
  },
  { flag: "hls-port", kind: "port", help: "LL-HLS port", defaultText: String(DEFAULT_PORTS.hls) },
  { flag: "dash-port", kind: "port", help: "MPEG-DASH port", defaultText: String(DEFAULT_PORTS.dash) },
  { flag: "no-hls", kind: "bool", help: "do not serve LL-HLS" },
  { flag: "no-dash", kind: "bool", help: "do not serve MPEG-DASH" },
  {
    flag: "hls-target-duration",
    kind: "int",
    range: [1, 60],
    help: "HLS segment target duration in seconds",
    defaultText: "2",
  },
  {
    flag: "hls-part-target",
    kind: "int",
    range: [50, 5000],
    help: "LL-HLS part target in milliseconds",
    defaultText: "200",
  },
  {
    flag: "hls-dvr-window",
    kind: "int",
    range: [0, 86_400],
    help: "HLS/DASH sliding window in seconds (0: byte budget only)",
    defaultText: "120",
  },
  {
    flag: "hls-dvr-memory",
    kind: "int",
    range: [0, 86_400],
    help: "seconds of the newest HLS/DASH media kept in memory; older DVR media is kept in files under --data-dir (at or above the window: all in memory)",
    defaultText: "12",
  },
  { flag: "tls-cert", kind: "file", help: "PEM certificate for the MoQ listener (WSS and WebTransport)" },
  { flag: "tls-key", kind: "file", help: "PEM private key matching --tls-cert" },
  { flag: "admin-token", kind: "string", help: "bearer token required by the admin API" },
  { flag: "publish-key", kind: "string", help: "key every publisher must present (stream key or ?key=)" },
  { flag: "subscribe-token", kind: "string", help: "token viewers must present (Bearer or ?token=)" },
  {
    flag: "jwt-secret",
    kind: "string",
    help: "HS256 secret; enables JWT auth (scopes subscribe < publish < admin)",
  },
  { flag: "jwt-issuer", kind: "string", help: "required JWT iss claim" },
  { flag: "jwt-audience", kind: "string", help: "required JWT aud claim" },
  { flag: "no-auth-live-playback", kind: "bool", help: "serve live HLS/DASH without subscribe credentials" },
  { flag: "no-streamkeys", kind: "bool", help: "disable runtime stream keys (lvqr_sk_…) and their API" },
  {
    flag: "hmac-playback-secret",
    kind: "string",
    help: "secret for signed live/playback URLs (exp=…&sig=…)",
  },
  {
    flag: "data-dir",
    kind: "string",
    help: "directory for persistent state (stream keys) and the DVR files",
    defaultText: "./lvqr-data",
  },
  {
    flag: "cluster-redis-url",
    kind: "url",
    help: "Redis/Valkey URL shared by cluster nodes; enables clustering",
  },
  { flag: "cluster-node-id", kind: "string", help: "this node's cluster id", defaultText: "lvqr-<random>" },
  { flag: "cluster-advertise-moq", kind: "url", help: "MoQ base URL other nodes use to pull from this node" },
  { flag: "cluster-advertise-hls", kind: "url", help: "HLS base URL for redirects to this node" },
  { flag: "cluster-advertise-dash", kind: "url", help: "DASH base URL for redirects to this node" },
  {
    flag: "cluster-lease-ms",
    kind: "int",
    range: [500, 600_000],
    help: "ownership lease length",
    defaultText: "6000",
  },
  {
    flag: "cluster-renew-ms",
    kind: "int",
    range: [50, 300_000],
    help: "ownership renew interval",
    defaultText: "2000",
  },
  {
    flag: "cluster-egress",
    kind: "string",
    choices: ["relay", "redirect"],
    help: "non-owner HLS/DASH: pull the media or 302 to the owner",
    defaultText: "relay",
  },
  {
    flag: "cluster-conflict",
    kind: "string",
    choices: ["takeover-if-stale", "takeover", "reject"],
    help: "a second publisher of a live name on another node",
    defaultText: "takeover-if-stale",
  },
  {
    flag: "log-level",
    kind: "string",
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    help: "log level",
    defaultText: "info",
  },
  {
    flag: "shutdown-grace-ms",
    kind: "int",
    range: [0, 600_000],
    help: "how long SIGTERM waits for viewers to drain",
    defaultText: "5000",
  },
];

/** `LVQR_HLS_PART_TARGET` for `hls-part-target`; `--port` is `LVQR_PORT` as in the reference. */
export function envNameOf(flag: string): string {
  return `LVQR_${flag.replace(/-/g, "_").toUpperCase()}`;
}

/** What the command line asked for. */
export type ServeCommand =
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "serve"; readonly config: ServeConfig };

/** Parses `lvqr serve` arguments and `LVQR_*` variables; throws {@link ConfigError} naming the flag. */
export function parseServeCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ServeCommand {
  const values = new Map<string, string | true>();
  const specs = new Map(OPTIONS.map((spec) => [spec.flag, spec]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help", text: serveHelp() };
    if (!arg.startsWith("--"))
      throw new ConfigError(arg, "unexpected argument (flags start with --; see --help)");
    const eq = arg.indexOf("=");
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.get(flag);
    if (!spec) throw new ConfigError(`--${flag}`, "unknown flag (see --help)");
    if (spec.kind === "bool") {
      if (eq >= 0) throw new ConfigError(`--${flag}`, "takes no value");
      values.set(flag, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith("--")))
      throw new ConfigError(`--${flag}`, "needs a value");
    values.set(flag, value);
  }
  for (const spec of OPTIONS) {
    if (values.has(spec.flag)) continue;
    const raw = env[envNameOf(spec.flag)];
    if (raw === undefined || raw === "") continue;
    if (spec.kind === "bool") {
      if (/^(1|true|yes|on)$/i.test(raw)) values.set(spec.flag, true);
      else if (!/^(0|false|no|off)$/i.test(raw))
        throw new ConfigError(envNameOf(spec.flag), `${JSON.stringify(raw)} is not a boolean`);
    } else {
      values.set(spec.flag, raw);
    }
  }
  return { kind: "serve", config: buildConfig(values, specs) };
}

function buildConfig(values: Map<string, string | true>, specs: Map<string, OptionSpec>): ServeConfig {
  const read = <T>(flag: string, convert: (raw: string, spec: OptionSpec) => T): T | undefined => {
    const raw = values.get(flag);
    if (raw === undefined || raw === true) return undefined;
    return convert(raw, specs.get(flag)!);
  };
  const int = (flag: string) => read(flag, parseInteger);
  const port = (flag: string) => read(flag, parseInteger);
  const str = (flag: string) => read(flag, parseString);
  const url = (flag: string) => read(flag, parseUrl);
  const file = (flag: string) => read(flag, readPem);
  const bool = (flag: string) => values.get(flag) === true;

  const tlsCert = file("tls-cert");
  const tlsKey = file("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(
      tlsCert === undefined ? "--tls-cert" : "--tls-key",
      "--tls-cert and --tls-key go together",
    );
  }
  const jwtSecret = str("jwt-secret");
  const redisUrl = url("cluster-redis-url");
  for (const flag of [
    "cluster-node-id",
    "cluster-advertise-moq",
    "cluster-advertise-hls",
    "cluster-advertise-dash",
    "cluster-lease-ms",
    "cluster-renew-ms",
    "cluster-egress",
    "cluster-conflict",
  ]) {
    if (values.has(flag) && redisUrl === undefined)
      throw new ConfigError(`--${flag}`, "only applies with --cluster-redis-url");
  }
  const partTarget = int("hls-part-target");
  const targetDuration = int("hls-target-duration");
  if (partTarget !== undefined && partTarget >= (targetDuration ?? 2) * 1000) {
    throw new ConfigError("--hls-part-target", "must be shorter than --hls-target-duration");
  }
  const leaseMs = int("cluster-lease-ms");
  const renewMs = int("cluster-renew-ms");
  if (renewMs !== undefined && renewMs * 2 > (leaseMs ?? 6000)) {
    throw new ConfigError("--cluster-renew-ms", "must be at most half of --cluster-lease-ms");
  }

  const config: ServeConfig = {
    host: str("host"),
    moqPort: port("port"),
    rtmpPort: port("rtmp-port"),
    adminPort: port("admin-port"),
    hlsPort: bool("no-hls") ? false : port("hls-port"),
    dashPort: bool("no-dash") ? false : port("dash-port"),
    hls: {
      targetDurationS: targetDuration,
      partTargetMs: partTarget,
      dvrWindowS: int("hls-dvr-window"),
      dvrMemoryS: int("hls-dvr-memory"),
    },
    auth: {
      adminToken: str("admin-token"),
      publishKey: str("publish-key"),
      subscribeToken: str("subscribe-token"),
      jwt:
        jwtSecret === undefined
          ? undefined
          : { secret: jwtSecret, issuer: str("jwt-issuer"), audience: str("jwt-audience") },
      streamKeys: !bool("no-streamkeys"),
      livePlaybackAuth: !bool("no-auth-live-playback"),
      hmacPlaybackSecret: str("hmac-playback-secret"),
    },
    tls: tlsCert === undefined || tlsKey === undefined ? undefined : { cert: tlsCert, key: tlsKey },
    dataDir: str("data-dir"),
    cluster:
      redisUrl === undefined
        ? undefined
        : {
            redisUrl,
            nodeId: str("cluster-node-id"),
            advertise: {
              moq: url("cluster-advertise-moq"),
              hls: url("cluster-advertise-hls"),
              dash: url("cluster-advertise-dash"),
            },
            leaseMs,
            renewMs,
            egress: str("cluster-egress") as "relay" | "redirect" | undefined,
            conflictPolicy: str("cluster-conflict") as
              | "takeover-if-stale"
              | "takeover"
              | "reject"
              | undefined,
          },
    logLevel: str("log-level") as LogLevel | undefined,
    shutdownGraceMs: int("shutdown-grace-ms"),
  };
  if (values.has("jwt-issuer") && jwtSecret === undefined)
    throw new ConfigError("--jwt-issuer", "only applies with --jwt-secret");
  if (values.has("jwt-audience") && jwtSecret === undefined)
    throw new ConfigError("--jwt-audience", "only applies with --jwt-secret");
  return config;
}

function parseInteger(raw: string, spec: OptionSpec): number {
  const [low, high] =
    spec.kind === "port" ? [0, 65535] : (spec.range ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
  if (!/^\d+$/.test(raw.trim()))
    throw new ConfigError(`--${spec.flag}`, `${JSON.stringify(raw)} is not a whole number`);
  const value = Number(raw);
  if (value < low || value > high)
    throw new ConfigError(`--${spec.flag}`, `${value} is outside ${low}..${high}`);
  return value;
}

function parseString(raw: string, spec: OptionSpec): string {
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new ConfigError(
      `--${spec.flag}`,
      `${JSON.stringify(raw)} is not one of ${spec.choices.join(", ")}`,
    );
  }
  return raw;
}

function parseUrl(raw: string, spec: OptionSpec): string {
  try {
    new URL(raw);
  } catch {
    throw new ConfigError(`--${spec.flag}`, `${JSON.stringify(raw)} is not a URL`);
  }
  return raw;
}

function readPem(raw: string, spec: OptionSpec): string {
  let text: string;
  try {
    text = readFileSync(raw, "utf8");
  } catch (error) {
    throw new ConfigError(`--${spec.flag}`, `cannot read ${raw}: ${(error as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) throw new ConfigError(`--${spec.flag}`, `${raw} is not a PEM file`);
  return text;
}

/** The `lvqr serve --help` text. */
export function serveHelp(): string {
  const lines = [
    "Usage: lvqr serve [flags]",
    "",
    "Runs the LVQR server: RTMP in; MoQ (WebSocket/WebTransport), LL-HLS and DASH out; admin API.",
    "Every flag can also be set with the environment variable shown (a flag wins).",
    "",
  ];
  const width = Math.max(...OPTIONS.map((spec) => spec.flag.length + (spec.kind === "bool" ? 0 : 8)));
  for (const spec of OPTIONS) {
    const name =
      spec.kind === "bool"
        ? `--${spec.flag}`
        : `--${spec.flag} <${spec.kind === "port" || spec.kind === "int" ? "n" : spec.kind === "file" ? "path" : "value"}>`;
    const extra = [
      spec.choices ? `one of ${spec.choices.join("|")}` : undefined,
      spec.defaultText ? `default ${spec.defaultText}` : undefined,
    ]
      .filter(Boolean)
      .join("; ");
    lines.push(
      `  ${name.padEnd(width + 4)} ${spec.help}${extra ? ` (${extra})` : ""}  [${envNameOf(spec.flag)}]`,
    );
  }
  lines.push("  --help                            this text", "");
  return lines.join("\n");
}
