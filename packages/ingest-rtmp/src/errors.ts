/**
 * Errors raised by the RTMP ingest: one base class with a stable string `code` per failure kind.
 * A code is never reused for another meaning, so metrics and tests can key on it.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/ingest-rtmp.RtmpError") as never;

/** Stable string codes of {@link RtmpError}. */
export type RtmpErrorCode =
  /** C0/C1/C2 or S0/S1/S2 malformed (wrong version byte, not RTMP at all). */
  | "RTMP_HANDSHAKE_INVALID"
  /** The handshake did not complete within `handshakeTimeoutMs`. */
  | "RTMP_HANDSHAKE_TIMEOUT"
  /** No bytes arrived from the peer for `idleTimeoutMs`. */
  | "RTMP_IDLE_TIMEOUT"
  /** The connection did not start publishing within `publishTimeoutMs` after the handshake. */
  | "RTMP_PUBLISH_TIMEOUT"
  /** Set Chunk Size of 0, with the reserved top bit, or above the configured maximum. */
  | "RTMP_CHUNK_SIZE_INVALID"
  /** A chunk header that cannot be interpreted (e.g. type 2/3 on a chunk stream never started). */
  | "RTMP_CHUNK_STREAM_INVALID"
  /** A message header declared a length above `maxMessageSize`. */
  | "RTMP_MESSAGE_TOO_LARGE"
  /** More chunk streams in use than `maxChunkStreams`. */
  | "RTMP_TOO_MANY_CHUNK_STREAMS"
  /** Reassembly buffers plus unparsed input would exceed the per-connection byte budget. */
  | "RTMP_BUDGET_EXCEEDED"
  /** A protocol control or user control message with a wrong length or value. */
  | "RTMP_MESSAGE_INVALID"
  /** A command that is malformed or arrives in an order the protocol does not allow. */
  | "RTMP_COMMAND_INVALID"
  /** AMF0/AMF3 bytes that cannot be decoded (truncated, unknown marker, bad reference). */
  | "AMF_DECODE"
  /** AMF nesting deeper than the configured limit. */
  | "AMF_DEPTH"
  /** A value that cannot be written as AMF0 (key too long, nesting too deep). */
  | "AMF_ENCODE"
  /** An FLV tag body that is truncated or inconsistent. */
  | "FLV_INVALID"
  /** An avcC/hvcC/av1C record, SPS or AudioSpecificConfig that cannot be parsed. */
  | "CODEC_CONFIG_INVALID"
  /** A codec this ingest cannot carry (declared in metadata or seen in a tag). */
  | "RTMP_UNSUPPORTED_CODEC"
  /** The server answered a publish with an error `onStatus` (client side). */
  | "RTMP_PUBLISH_REJECTED"
  /** The server rejected or failed `connect` (client side). */
  | "RTMP_CONNECT_FAILED"
  /** An operation did not finish within its time limit (client side). */
  | "RTMP_TIMEOUT"
  /** The connection closed before the operation completed. */
  | "RTMP_CLOSED"
  /** A socket-level failure (reset, write after end). */
  | "RTMP_SOCKET"
  /** An rtmp:// or rtmps:// URL that cannot be used. */
  | "RTMP_URL_INVALID"
  /** The server already has `maxConnections` open connections. */
  | "RTMP_TOO_MANY_CONNECTIONS"
  /** A bug: something other than an RtmpError was thrown while handling a connection. */
  | "RTMP_INTERNAL";

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class RtmpError extends Error {
  /** Stable machine-readable code. */
  readonly code: RtmpErrorCode;

  constructor(code: RtmpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RtmpError";
    this.code = code;
  }

  // The brand makes `instanceof RtmpError` true for errors from another copy of this package;
  // subclasses keep ordinary prototype checks.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== RtmpError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(RtmpError.prototype, BRAND, { value: true });

/** The server refused a publish with an `onStatus` error; `status` is the `code` it sent. */
export class PublishRejectedError extends RtmpError {
  /** The `onStatus` code, e.g. `NetStream.Publish.BadName`. */
  readonly status: string;
  /** The `onStatus` description the server sent. */
  readonly description: string;

  constructor(status: string, description: string) {
    super("RTMP_PUBLISH_REJECTED", `publish rejected: ${status}${description ? ` (${description})` : ""}`);
    this.name = "PublishRejectedError";
    this.status = status;
    this.description = description;
  }
}

/** True when `err` is an {@link RtmpError}, optionally with the given code. */
export function isRtmpError(err: unknown, code?: RtmpErrorCode): err is RtmpError {
  return err instanceof RtmpError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into an RtmpError so callers can rely on `code`. */
export function toRtmpError(err: unknown, code: RtmpErrorCode = "RTMP_SOCKET"): RtmpError {
  if (err instanceof RtmpError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RtmpError(code, message, { cause: err });
}
