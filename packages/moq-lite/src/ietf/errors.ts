/**
 * The numeric codes moq-transport puts on the wire: session termination codes (CONNECTION_CLOSE /
 * WebTransport close), REQUEST_ERROR codes (which draft-14 spreads over one error message per
 * request kind, with different numbers), PUBLISH_DONE status codes and data-stream reset codes.
 * Errors this module raises carry the session code as their `wireCode`.
 */
import { MoqError, type MoqErrorCode } from "../error.ts";
import type { RequestKind } from "./messages.ts";
import { type IetfVersion, isDraft14, IetfVersion as Versions } from "./version.ts";

/** Session termination codes. */
export const IetfSessionCode: {
  readonly NoError: 0x0;
  readonly InternalError: 0x1;
  readonly Unauthorized: 0x2;
  readonly ProtocolViolation: 0x3;
  readonly InvalidRequestId: 0x4;
  readonly DuplicateTrackAlias: 0x5;
  readonly KeyValueFormattingError: 0x6;
  /** TOO_MANY_REQUESTS in drafts 14 to 16 (INVALID_REQUIRED_REQUEST_ID in 17). */
  readonly TooManyRequests: 0x7;
  readonly GoawayTimeout: 0x10;
  readonly ControlMessageTimeout: 0x11;
  readonly VersionNegotiationFailed: 0x15;
} = {
  NoError: 0x0,
  InternalError: 0x1,
  Unauthorized: 0x2,
  ProtocolViolation: 0x3,
  InvalidRequestId: 0x4,
  DuplicateTrackAlias: 0x5,
  KeyValueFormattingError: 0x6,
  TooManyRequests: 0x7,
  GoawayTimeout: 0x10,
  ControlMessageTimeout: 0x11,
  VersionNegotiationFailed: 0x15,
};

/** A peer's violation of moq-transport; `wireCode` is the session termination code to close with. */
export class IetfProtocolError extends MoqError {
  constructor(sessionCode: number, message: string) {
    super("MOQ_PROTOCOL_VIOLATION", message, { wireCode: sessionCode });
    this.name = "IetfProtocolError";
  }
}

const PACKAGE_TO_SESSION: Partial<Record<MoqErrorCode, number>> = {
  MOQ_CANCELLED: IetfSessionCode.NoError,
  MOQ_CLOSED: IetfSessionCode.NoError,
  MOQ_UNAUTHORIZED: IetfSessionCode.Unauthorized,
  MOQ_TIMEOUT: IetfSessionCode.ControlMessageTimeout,
  MOQ_VERSION: IetfSessionCode.VersionNegotiationFailed,
  MOQ_PROTOCOL_VIOLATION: IetfSessionCode.ProtocolViolation,
  MOQ_DECODE: IetfSessionCode.ProtocolViolation,
  MOQ_BOUNDS_EXCEEDED: IetfSessionCode.ProtocolViolation,
  MOQ_DUPLICATE: IetfSessionCode.ProtocolViolation,
  MOQ_UNEXPECTED_STREAM: IetfSessionCode.ProtocolViolation,
};

/**
 * The session termination code for `error`: its own wire code when it is an
 * {@link IetfProtocolError}, otherwise a translation of the package error code (a shared
 * decoder's violation becomes PROTOCOL_VIOLATION).
 */
export function ietfSessionCode(error: MoqError): number {
  if (error instanceof IetfProtocolError) return error.wireCode;
  return PACKAGE_TO_SESSION[error.code] ?? IetfSessionCode.InternalError;
}

/** Why a request was refused; mapped to the draft's code by {@link requestErrorCode}. */
export type RequestRefusal =
  | "internal"
  | "unauthorized"
  | "not_supported"
  | "does_not_exist"
  | "invalid_range"
  | "uninterested"
  | "invalid_joining_request"
  | "excessive_load";

/** The REQUEST_ERROR (or draft-14 per-request error) code for a refusal. */
export function requestErrorCode(reason: RequestRefusal, answers: RequestKind, version: IetfVersion): number {
  switch (reason) {
    case "internal":
      return 0x0;
    case "unauthorized":
      return 0x1;
    case "not_supported":
      return 0x3;
    case "excessive_load":
      // draft-17 has EXCESSIVE_LOAD; earlier drafts only a generic error.
      return version === Versions.Draft17 ? 0x9 : 0x0;
    default:
      break;
  }
  if (isDraft14(version)) {
    switch (reason) {
      case "does_not_exist":
        // TRACK_DOES_NOT_EXIST / NAMESPACE_PREFIX_UNKNOWN
        return answers === "publish_namespace" || answers === "publish" ? 0x0 : 0x4;
      case "invalid_range":
        return answers === "subscribe" || answers === "fetch" ? 0x5 : 0x0;
      case "uninterested":
        return answers === "publish_namespace" || answers === "publish" ? 0x4 : 0x0;
      case "invalid_joining_request":
        return answers === "fetch" ? 0x7 : 0x0;
    }
  }
  switch (reason) {
    case "does_not_exist":
      return 0x10;
    case "invalid_range":
      return 0x11;
    case "uninterested":
      return 0x20;
    case "invalid_joining_request":
      return 0x32;
  }
}

/** PUBLISH_DONE status codes. */
export const PublishDoneStatus: {
  readonly InternalError: 0x0;
  readonly Unauthorized: 0x1;
  readonly TrackEnded: 0x2;
  readonly SubscriptionEnded: 0x3;
  readonly GoingAway: 0x4;
  readonly TooFarBehind: 0x6;
} = {
  InternalError: 0x0,
  Unauthorized: 0x1,
  TrackEnded: 0x2,
  SubscriptionEnded: 0x3,
  GoingAway: 0x4,
  TooFarBehind: 0x6,
};

/** Data stream (subgroup, fetch) reset codes. */
export const StreamResetCode: {
  readonly InternalError: 0x0;
  readonly Cancelled: 0x1;
  readonly DeliveryTimeout: 0x2;
  readonly SessionClosed: 0x3;
} = { InternalError: 0x0, Cancelled: 0x1, DeliveryTimeout: 0x2, SessionClosed: 0x3 };

/** The reset code for a group dropped because its subscriber fell behind. */
export function tooFarBehindResetCode(version: IetfVersion): number {
  // draft-17 has TOO_FAR_BEHIND; earlier drafts' closest code is DELIVERY_TIMEOUT.
  return version === Versions.Draft17 ? 0x5 : StreamResetCode.DeliveryTimeout;
}
