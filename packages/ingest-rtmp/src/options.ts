/** Options of the RTMP server, with their defaults. */

import type { PublishDecision, PublishRequest } from "./admission.ts";
import type { Logger } from "./logger.ts";

/** What to do when a second publisher asks for a name that is already live. */
export type DuplicatePublisherPolicy =
  /** Take over when the current session is stale (no media for `staleAfterMs`, or a dead socket); otherwise refuse. */
  | "takeover-if-stale"
  /** Always take over. */
  | "takeover"
  /** Always refuse the newcomer. */
  | "reject";

/** Options of {@link RtmpServer}. Every limit is per connection unless it says otherwise. */
export interface RtmpServerOptions {
  /**
   * Decides whether a publish may start; awaited before `NetStream.Publish.Start`. Default:
   * allow everything. A thrown error or rejected promise denies with `Unauthorized`.
   */
  readonly authorize?: (request: PublishRequest) => PublishDecision | Promise<PublishDecision>;
  /** Time allowed for `authorize` (default 10,000 ms); past it the publish is denied. */
  readonly authorizeTimeoutMs?: number;
  /** Duplicate-name policy (default "takeover-if-stale"). */
  readonly duplicatePublisher?: DuplicatePublisherPolicy;
  /** A session with no media for this long is stale (default 1,500 ms). */
  readonly staleAfterMs?: number;
  /** Time allowed for the handshake (default 10,000 ms). */
  readonly handshakeTimeoutMs?: number;
  /** A connection that sends no bytes for this long is closed (default 15,000 ms). */
  readonly idleTimeoutMs?: number;
  /** A connection must start publishing this long after its handshake (default 30,000 ms). */
  readonly publishTimeoutMs?: number;
  /** Window Acknowledgement Size announced to clients (default 2,500,000). */
  readonly ackWindow?: number;
  /** Set Peer Bandwidth announced to clients (default 2,500,000, dynamic). */
  readonly peerBandwidth?: number;
  /** Outgoing chunk size (default 4096). */
  readonly outChunkSize?: number;
  /** Largest chunk size a client may set (default 16 MiB). */
  readonly maxChunkSize?: number;
  /** Largest message (default 8 MiB). */
  readonly maxMessageSize?: number;
  /** Chunk streams a client may use (default 64). */
  readonly maxChunkStreams?: number;
  /** Reassembly plus unparsed input, in bytes (default 16 MiB). */
  readonly connectionBudgetBytes?: number;
  /** AMF nesting limit (default 64). */
  readonly amfMaxDepth?: number;
  /** Values (properties, elements) in one command or data message (default 1024). */
  readonly amfMaxValues?: number;
  /** Forward timestamp jumps larger than this rebase the timeline (default 10,000 ms). */
  readonly maxTimestampJumpMs?: number;
  /** Open connections across the server (default 10,000); more are closed at once. */
  readonly maxConnections?: number;
  /** Where violations and lifecycle events are logged (default: nowhere). */
  readonly logger?: Logger;
}

/** Options with every default filled in. */
export type ResolvedServerOptions = Required<Omit<RtmpServerOptions, "authorize" | "logger">> &
  Pick<RtmpServerOptions, "authorize">;

/** The defaults. */
export const DEFAULT_SERVER_OPTIONS: Readonly<Omit<ResolvedServerOptions, "authorize">> = {
  authorizeTimeoutMs: 10_000,
  duplicatePublisher: "takeover-if-stale",
  staleAfterMs: 1500,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 15_000,
  publishTimeoutMs: 30_000,
  ackWindow: 2_500_000,
  peerBandwidth: 2_500_000,
  outChunkSize: 4096,
  maxChunkSize: 16 * 1024 * 1024,
  maxMessageSize: 8 * 1024 * 1024,
  maxChunkStreams: 64,
  connectionBudgetBytes: 16 * 1024 * 1024,
  amfMaxDepth: 64,
  amfMaxValues: 1024,
  maxTimestampJumpMs: 10_000,
  maxConnections: 10_000,
};

/** Fills in defaults and checks ranges. */
export function resolveServerOptions(options: RtmpServerOptions | undefined): ResolvedServerOptions {
  const resolved: ResolvedServerOptions = { ...DEFAULT_SERVER_OPTIONS };
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value !== undefined && key !== "logger")
      (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  const positive: (keyof ResolvedServerOptions)[] = [
    "authorizeTimeoutMs",
    "staleAfterMs",
    "handshakeTimeoutMs",
    "idleTimeoutMs",
    "publishTimeoutMs",
    "ackWindow",
    "peerBandwidth",
    "outChunkSize",
    "maxChunkSize",
    "maxMessageSize",
    "maxChunkStreams",
    "connectionBudgetBytes",
    "amfMaxDepth",
    "amfMaxValues",
    "maxTimestampJumpMs",
    "maxConnections",
  ];
  for (const key of positive) {
    const v = resolved[key];
    if (typeof v !== "number" || !(v > 0))
      throw new RangeError(`RtmpServer option ${key} must be a positive number, got ${String(v)}`);
  }
  if (resolved.outChunkSize > 0x7fffffff) throw new RangeError("outChunkSize must be at most 2147483647");
  if (resolved.maxChunkSize > 0x7fffffff) throw new RangeError("maxChunkSize must be at most 2147483647");
  if (!["takeover-if-stale", "takeover", "reject"].includes(resolved.duplicatePublisher)) {
    throw new RangeError(`duplicatePublisher must be "takeover-if-stale", "takeover" or "reject"`);
  }
  return resolved;
}
