/**
 * What the two halves of a session (the publisher serving the peer, the subscriber importing
 * from it) share: the transport, the negotiated version, limits, logging and failure handling.
 */
import { type MoqError, ProtocolViolationError } from "../error.ts";
import type { FrameMeta } from "../model/frame.ts";
import type { TransportSession } from "../transport.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "../wire/group.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../wire/message.ts";
import type { Version } from "../wire/version.ts";
import type { MoqLogger } from "./logger.ts";

/** Bounds a session enforces on its peer and on itself. */
export interface SessionLimits {
  /** Largest frame accepted from the peer, in bytes. */
  readonly maxFrameBytes: number;
  /** Largest control message accepted from the peer (ANNOUNCE_INIT, SUBSCRIBE, ...). */
  readonly maxMessageBytes: number;
  /**
   * Bytes a downstream subscription may have queued across its group streams before its stale
   * groups are reset and it skips to the newest group.
   */
  readonly subscriberBudgetBytes: number;
  /** Concurrent subscriptions the peer may hold on this session. */
  readonly maxSubscriptions: number;
  /** Broadcasts the peer may announce into this session's receive origin. */
  readonly maxAnnouncedBroadcasts: number;
  /** Time the peer has to complete SETUP. */
  readonly setupTimeoutMs: number;
}

/** Defaults sized for a media relay: 16 MiB frames, a 4 MiB per-subscription send budget. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  subscriberBudgetBytes: 4 * 1024 * 1024,
  maxSubscriptions: 4096,
  maxAnnouncedBroadcasts: 4096,
  setupTimeoutMs: 10_000,
};

/** Reported when the last byte of a frame has been handed to a subscriber's connection. */
export interface FrameSentEvent {
  /** Broadcast path relative to the session root. */
  readonly broadcast: string;
  readonly track: string;
  /** Frame payload size. */
  readonly bytes: number;
  /** The frame's in-process side data (e.g. `ingestTimeMs`). */
  readonly meta: FrameMeta | undefined;
}

/** Stream priority above every track priority (0-255): control streams go before media. */
export const CONTROL_PRIORITY = 256;

/** @internal State shared by the halves of one session. */
export interface SessionContext {
  readonly transport: TransportSession;
  readonly version: Version;
  readonly limits: SessionLimits;
  readonly logger: MoqLogger;
  /** Fields added to every log line (session id, remote address, root). */
  readonly logFields: Readonly<Record<string, unknown>>;
  readonly onFrameSent: ((event: FrameSentEvent) => void) | undefined;
  /** Closes the session because of `error` (logged once). */
  fail(error: MoqError): void;
  /** True once the session is closing. */
  readonly closing: boolean;
}

/** True for errors that mean the peer broke the protocol (the session must close). */
export function isViolation(err: unknown): err is MoqError {
  if (err instanceof ProtocolViolationError) return true;
  const code = (err as MoqError | undefined)?.code;
  return (
    code === "MOQ_PROTOCOL_VIOLATION" ||
    code === "MOQ_DECODE" ||
    code === "MOQ_BOUNDS_EXCEEDED" ||
    code === "MOQ_DUPLICATE" ||
    code === "MOQ_VERSION"
  );
}
