/**
 * Errors raised by the moq-lite model, codec and sessions. Every error carries a stable string
 * `code` (never reused for another meaning) and the numeric `wireCode` that a session puts in a
 * RESET_STREAM or CONNECTION_CLOSE, using the reference relay's numbering.
 */

const BRAND: unique symbol = Symbol.for("@lvqr/moq-lite.MoqError") as never;

/** Stable string codes of {@link MoqError}. */
export type MoqErrorCode =
  | "MOQ_CANCELLED"
  | "MOQ_TIMEOUT"
  | "MOQ_TRANSPORT"
  | "MOQ_DECODE"
  | "MOQ_UNAUTHORIZED"
  | "MOQ_VERSION"
  | "MOQ_UNEXPECTED_STREAM"
  | "MOQ_BOUNDS_EXCEEDED"
  | "MOQ_DUPLICATE"
  | "MOQ_NOT_FOUND"
  | "MOQ_PROTOCOL_VIOLATION"
  | "MOQ_UNSUPPORTED"
  | "MOQ_LAGGED"
  | "MOQ_CLOSED"
  | "MOQ_CACHE_FULL"
  | "MOQ_APP";

/** The numeric codes used on the wire (RESET_STREAM / CONNECTION_CLOSE), as the reference relay uses them. */
export const WireErrorCode: {
  readonly Cancel: 0;
  readonly Timeout: 3;
  readonly Transport: 4;
  readonly Decode: 5;
  readonly Unauthorized: 6;
  readonly Version: 9;
  readonly UnexpectedStream: 10;
  readonly BoundsExceeded: 11;
  readonly Duplicate: 12;
  readonly NotFound: 13;
  readonly WrongSize: 14;
  readonly ProtocolViolation: 15;
  readonly UnexpectedMessage: 16;
  readonly Unsupported: 17;
  readonly Dropped: 24;
  readonly Closed: 25;
  readonly CacheFull: 26;
  readonly AppBase: 64;
} = {
  Cancel: 0,
  Timeout: 3,
  Transport: 4,
  Decode: 5,
  Unauthorized: 6,
  Version: 9,
  UnexpectedStream: 10,
  BoundsExceeded: 11,
  Duplicate: 12,
  NotFound: 13,
  WrongSize: 14,
  ProtocolViolation: 15,
  UnexpectedMessage: 16,
  Unsupported: 17,
  Dropped: 24,
  Closed: 25,
  CacheFull: 26,
  AppBase: 64,
};

const DEFAULT_WIRE_CODES: Record<MoqErrorCode, number> = {
  MOQ_CANCELLED: WireErrorCode.Cancel,
  MOQ_TIMEOUT: WireErrorCode.Timeout,
  MOQ_TRANSPORT: WireErrorCode.Transport,
  MOQ_DECODE: WireErrorCode.Decode,
  MOQ_UNAUTHORIZED: WireErrorCode.Unauthorized,
  MOQ_VERSION: WireErrorCode.Version,
  MOQ_UNEXPECTED_STREAM: WireErrorCode.UnexpectedStream,
  MOQ_BOUNDS_EXCEEDED: WireErrorCode.BoundsExceeded,
  MOQ_DUPLICATE: WireErrorCode.Duplicate,
  MOQ_NOT_FOUND: WireErrorCode.NotFound,
  MOQ_PROTOCOL_VIOLATION: WireErrorCode.ProtocolViolation,
  MOQ_UNSUPPORTED: WireErrorCode.Unsupported,
  MOQ_LAGGED: WireErrorCode.Dropped,
  MOQ_CLOSED: WireErrorCode.Closed,
  MOQ_CACHE_FULL: WireErrorCode.CacheFull,
  MOQ_APP: WireErrorCode.AppBase,
};

/** Base class of every error this package raises. `instanceof` works across copies of the package. */
export class MoqError extends Error {
  readonly code: MoqErrorCode;
  /** The code a session sends on the wire when this error ends a stream or the session. */
  readonly wireCode: number;

  constructor(code: MoqErrorCode, message: string, options?: { wireCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MoqError";
    this.code = code;
    this.wireCode = options?.wireCode ?? DEFAULT_WIRE_CODES[code];
  }

  // The brand makes `instanceof MoqError` true for errors from another copy of this package;
  // subclasses keep ordinary prototype checks (compare `code` across copies).
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against.
    if (this !== MoqError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

Object.defineProperty(MoqError.prototype, BRAND, { value: true });

/**
 * A consumer fell behind the producer's bounded cache: the group or frame it wanted next was
 * evicted. Call `skipToLatest()` on the consumer to resume at the newest group.
 */
export class LaggedError extends MoqError {
  constructor(message: string) {
    super("MOQ_LAGGED", message);
    this.name = "LaggedError";
  }
}

/** The peer sent bytes that break the protocol: a bad length, an unknown type, trailing bytes. */
export class ProtocolViolationError extends MoqError {
  constructor(
    message: string,
    code: "MOQ_PROTOCOL_VIOLATION" | "MOQ_DECODE" | "MOQ_BOUNDS_EXCEEDED" = "MOQ_PROTOCOL_VIOLATION",
  ) {
    super(code, message);
    this.name = "ProtocolViolationError";
  }
}

/** A broadcast or track that does not exist (or not any more). */
export class NotFoundError extends MoqError {
  constructor(message: string) {
    super("MOQ_NOT_FOUND", message);
    this.name = "NotFoundError";
  }
}

/** Normal cancellation: the other side no longer wants the data. */
export class CancelledError extends MoqError {
  constructor(message = "cancelled") {
    super("MOQ_CANCELLED", message);
    this.name = "CancelledError";
  }
}

/** True when `err` is a {@link MoqError} with the given code. */
export function isMoqError(err: unknown, code?: MoqErrorCode): err is MoqError {
  return err instanceof MoqError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a MoqError so callers can rely on `code` and `wireCode`. */
export function toMoqError(err: unknown): MoqError {
  if (err instanceof MoqError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new MoqError("MOQ_TRANSPORT", message, { cause: err });
}

/** HTTP statuses an authorizer may answer a refused connection with. */
export type AuthorizationStatus = 400 | 401 | 403;

/**
 * Thrown by an authorizer to refuse a connection with a specific HTTP status before the
 * WebSocket upgrade or WebTransport CONNECT: 400 (malformed credentials), 401 (missing or
 * expired), 403 (valid but not allowed). Any other error refuses with 401.
 */
export class MoqAuthorizationError extends MoqError {
  readonly status: AuthorizationStatus;

  constructor(status: AuthorizationStatus, reason: string) {
    if (status !== 400 && status !== 401 && status !== 403) {
      throw new RangeError(`authorization status ${status} is invalid (400, 401 or 403)`);
    }
    super("MOQ_UNAUTHORIZED", reason);
    this.name = "MoqAuthorizationError";
    this.status = status;
  }
}

/** The HTTP status for an authorizer's error: its `status` when 400/401/403, else 401. */
export function authorizationStatus(err: unknown): AuthorizationStatus {
  const status = (err as { status?: unknown } | undefined)?.status;
  return status === 400 || status === 403 || status === 401 ? status : 401;
}
