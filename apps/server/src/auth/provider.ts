/**
 * The auth provider contract every entry point asks: RTMP and MoQ publish, HLS/DASH/MoQ playback,
 * the admin API. Checks are async (JWT verification uses WebCrypto) and never throw for a bad
 * credential; they answer a decision with a reason a person can act on.
 */

/** Which inner provider decides: nothing configured, static tokens, or HS256 JWTs. */
export type AuthMode = "noop" | "static" | "jwt";

/** The answer to a subscribe or admin check. */
export type AuthDecision =
  | {
      readonly allow: true;
      /** Who was authenticated, for logs: a JWT `sub`, `stream-key:<id>`, `static`, or `anonymous`. Never a secret. */
      readonly subject?: string;
      /** Unix ms when the credential stops being valid (JWT `exp`, stream-key expiry). */
      readonly expiresAtMs?: number;
    }
  | { readonly allow: false; readonly reason: string };

/**
 * A publish attempt. RTMP callers pass `app`, `stream` (the stream name without its `?query`) and
 * `key` (the `?key=` or `?token=` value, if any); see `splitRtmpStreamName`. Other protocols pass
 * the `broadcast` they publish and the credential as `key`.
 */
export interface PublishRequest {
  /** RTMP application (the first path segment of `rtmp://host/<app>/<stream>`). */
  readonly app?: string;
  /** RTMP stream name without any query. When `key` is absent, it is the credential itself. */
  readonly stream?: string;
  /** The credential, when it travels apart from the name (RTMP `?key=`, a bearer token). */
  readonly key?: string;
  /** The broadcast asked for, when the protocol names it explicitly (not RTMP). */
  readonly broadcast?: string;
  /** The publisher's address, for logs. */
  readonly remoteAddress?: string;
}

/**
 * The answer to a publish check. `broadcast` is the name to publish under: the requested one, or,
 * when the RTMP stream name was itself the credential, a name derived from the credential that
 * never contains it (see `splitRtmpStreamName` for the rule).
 */
export type PublishDecision =
  | {
      readonly allow: true;
      readonly broadcast: string;
      readonly subject?: string;
      readonly expiresAtMs?: number;
    }
  | { readonly allow: false; readonly reason: string };

/** A playback attempt: `token` is undefined when the viewer sent none. */
export interface SubscribeRequest {
  readonly token?: string;
  readonly broadcast: string;
}

/** An admin API request: `token` is the bearer token, empty or undefined when none was sent. */
export interface AdminRequest {
  readonly token?: string;
}

/** A MoQ session asking for permissions under its root (the session URL path). */
export interface SessionGrantRequest {
  /** The session root, already validated (`""` or a broadcast-style path). */
  readonly root: string;
  readonly token?: string;
}

/**
 * What a MoQ session may do, as path prefixes relative to its root (the shape
 * `OriginProducer.restrict()` takes): `[""]` is everything under the root, `[]` nothing. A token
 * bound to one broadcast yields that broadcast's path (and, since MoQ permissions are prefixes,
 * paths nested under it).
 */
export type SessionGrants =
  | {
      readonly allow: true;
      readonly read: string[];
      readonly publish: string[];
      readonly subject?: string;
      /** Unix ms when the credential expires; the session should be closed then. */
      readonly expiresAtMs?: number;
    }
  | { readonly allow: false; readonly status: 401 | 403; readonly reason: string };

/** The checks an auth provider answers. Providers compose: stream keys wrap a static or JWT provider. */
export interface AuthProvider {
  /** The inner provider's mode, for `/api/v1/server-info`. */
  readonly mode: AuthMode;
  checkPublish(request: PublishRequest): Promise<PublishDecision>;
  checkSubscribe(request: SubscribeRequest): Promise<AuthDecision>;
  checkAdmin(request: AdminRequest): Promise<AuthDecision>;
  sessionGrants(request: SessionGrantRequest): Promise<SessionGrants>;
}

/** Longest credential looked at; anything longer is refused without parsing (bounds the work per attempt). */
export const MAX_CREDENTIAL_LENGTH = 8192;
