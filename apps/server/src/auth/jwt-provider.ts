/**
 * HS256 JWT auth (`--jwt-secret`, `--jwt-issuer`, `--jwt-audience`), verified with jose.
 *
 * Claims: `exp` (required), `scope` (`subscribe` < `publish` < `admin`; a space-separated list
 * counts its highest known scope), optional `sub`, `iss`, `aud`, and an optional `broadcast` that
 * binds the token to one broadcast on every protocol, RTMP included.
 */

import { errors, type JWTPayload, jwtVerify } from "jose";
import { AuthError } from "./errors.ts";
import {
  type AdminRequest,
  type AuthDecision,
  type AuthProvider,
  MAX_CREDENTIAL_LENGTH,
  type PublishDecision,
  type PublishRequest,
  type SessionGrantRequest,
  type SessionGrants,
  type SubscribeRequest,
} from "./provider.ts";
import { allowPublish, appScopedName, publishTargetOf, scopeUnderRoot } from "./publish-target.ts";

/** JWT scopes, weakest first: each one includes the ones before it. */
export type JwtScope = "subscribe" | "publish" | "admin";

const RANK: Record<JwtScope, number> = { subscribe: 1, publish: 2, admin: 3 };

/** Options of {@link JwtAuth}. */
export interface JwtAuthOptions {
  /** The HS256 secret; its UTF-8 bytes are the key. Use at least 32 random bytes' worth. */
  readonly secret: string;
  /** When set, the `iss` claim must equal it. */
  readonly issuer?: string;
  /** When set, the `aud` claim must contain it. */
  readonly audience?: string;
  /** Seconds of clock skew tolerated on `exp` and `nbf` (default 0). */
  readonly clockToleranceSeconds?: number;
}

/** A verified token's claims that matter here. */
export interface VerifiedJwt {
  readonly scope: JwtScope;
  readonly subject: string | undefined;
  readonly broadcast: string | undefined;
  readonly expiresAtMs: number;
}

/** The result of {@link JwtAuth.verify}. */
export type JwtVerification = { ok: true; token: VerifiedJwt } | { ok: false; reason: string };

/** Decides every check from an HS256 JWT. Every check needs a token; there is no open gate. */
export class JwtAuth implements AuthProvider {
  readonly mode = "jwt" as const;
  readonly #key: Uint8Array;
  readonly #issuer: string | undefined;
  readonly #audience: string | undefined;
  readonly #tolerance: number;

  constructor(options: JwtAuthOptions) {
    if (typeof options.secret !== "string" || options.secret === "") {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        "the JWT secret is empty; pass --jwt-secret with a long random value",
      );
    }
    const tolerance = options.clockToleranceSeconds ?? 0;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        `JWT clock tolerance must be >= 0 seconds, got ${tolerance}`,
      );
    }
    this.#key = new TextEncoder().encode(options.secret);
    this.#issuer = options.issuer === "" ? undefined : options.issuer;
    this.#audience = options.audience === "" ? undefined : options.audience;
    this.#tolerance = tolerance;
  }

  /** Verifies `token` (signature, `exp`, `nbf`, `iss`, `aud`, scope shape) and returns its claims. */
  async verify(token: string): Promise<JwtVerification> {
    if (token.length > MAX_CREDENTIAL_LENGTH) return { ok: false, reason: "JWT is too long" };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, {
        algorithms: ["HS256"],
        requiredClaims: ["exp"],
        clockTolerance: this.#tolerance,
        ...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
        ...(this.#audience === undefined ? {} : { audience: this.#audience }),
      }));
    } catch (err) {
      return { ok: false, reason: describeJoseError(err) };
    }
    const scope = highestScope(payload["scope"]);
    if (scope === undefined) return { ok: false, reason: "JWT has no subscribe, publish or admin scope" };
    const broadcast = payload["broadcast"];
    if (broadcast !== undefined && typeof broadcast !== "string") {
      return { ok: false, reason: "JWT broadcast claim is not a string" };
    }
    return {
      ok: true,
      token: {
        scope,
        subject: typeof payload.sub === "string" ? payload.sub : undefined,
        broadcast,
        expiresAtMs: (payload.exp as number) * 1000,
      },
    };
  }

  async checkPublish(request: PublishRequest): Promise<PublishDecision> {
    const target = publishTargetOf(request);
    if (target.credential === undefined || target.credential === "") {
      return { allow: false, reason: "publish token missing" };
    }
    if (target.requested === undefined && target.credential.split(".").length !== 3) {
      // The RTMP stream name was taken as the credential, but it is not a JWT at all.
      return {
        allow: false,
        reason:
          "publishing needs a JWT with publish scope: rtmp://host/<app>/<stream>?key=<jwt>, or the JWT as the stream name",
      };
    }
    const checked = await this.#require(target.credential, "publish");
    if (!checked.ok) return { allow: false, reason: checked.reason };
    const jwt = checked.token;
    const extra = {
      expiresAtMs: jwt.expiresAtMs,
      ...(jwt.subject === undefined ? {} : { subject: jwt.subject }),
    };
    if (target.requested !== undefined) {
      if (jwt.broadcast !== undefined && jwt.broadcast !== target.requested) {
        return { allow: false, reason: boundElsewhere(jwt.broadcast, target.requested) };
      }
      return allowPublish(target.requested, extra);
    }
    // The token is the RTMP stream name: name the broadcast from its claims, never from the token.
    const name = jwt.broadcast ?? appScopedName(target.app, jwt.subject);
    if (name === undefined) {
      return {
        allow: false,
        reason:
          "a JWT used as the RTMP stream name needs a broadcast claim or a path-safe sub claim; " +
          "or publish to <app>/<name>?key=<jwt>",
      };
    }
    return allowPublish(name, extra);
  }

  async checkSubscribe(request: SubscribeRequest): Promise<AuthDecision> {
    if (request.token === undefined || request.token === "")
      return { allow: false, reason: "subscribe token missing" };
    const checked = await this.#require(request.token, "subscribe");
    if (!checked.ok) return { allow: false, reason: checked.reason };
    const jwt = checked.token;
    if (jwt.broadcast !== undefined && jwt.broadcast !== request.broadcast) {
      return { allow: false, reason: boundElsewhere(jwt.broadcast, request.broadcast) };
    }
    return {
      allow: true,
      expiresAtMs: jwt.expiresAtMs,
      ...(jwt.subject === undefined ? {} : { subject: jwt.subject }),
    };
  }

  async checkAdmin(request: AdminRequest): Promise<AuthDecision> {
    if (request.token === undefined || request.token === "")
      return { allow: false, reason: "admin token missing" };
    const checked = await this.#require(request.token, "admin");
    if (!checked.ok) return { allow: false, reason: checked.reason };
    const jwt = checked.token;
    return {
      allow: true,
      expiresAtMs: jwt.expiresAtMs,
      ...(jwt.subject === undefined ? {} : { subject: jwt.subject }),
    };
  }

  async sessionGrants(request: SessionGrantRequest): Promise<SessionGrants> {
    if (request.token === undefined || request.token === "") {
      return { allow: false, status: 401, reason: "token missing" };
    }
    const checked = await this.verify(request.token);
    if (!checked.ok) return { allow: false, status: 401, reason: checked.reason };
    const jwt = checked.token;
    let prefix = "";
    if (jwt.broadcast !== undefined) {
      const scoped = scopeUnderRoot(request.root, jwt.broadcast);
      if (scoped === undefined) {
        return {
          allow: false,
          status: 403,
          reason: `JWT is bound to broadcast ${JSON.stringify(jwt.broadcast)}, outside the session path ${JSON.stringify(request.root)}`,
        };
      }
      prefix = scoped;
    }
    return {
      allow: true,
      read: [prefix],
      publish: RANK[jwt.scope] >= RANK.publish ? [prefix] : [],
      expiresAtMs: jwt.expiresAtMs,
      ...(jwt.subject === undefined ? {} : { subject: jwt.subject }),
    };
  }

  async #require(token: string, needed: JwtScope): Promise<JwtVerification> {
    const checked = await this.verify(token);
    if (!checked.ok) return checked;
    if (RANK[checked.token.scope] < RANK[needed]) {
      return { ok: false, reason: `JWT scope "${checked.token.scope}" does not allow ${needed}` };
    }
    return checked;
  }
}

function highestScope(claim: unknown): JwtScope | undefined {
  if (typeof claim !== "string") return undefined;
  let best: JwtScope | undefined;
  for (const word of claim.split(" ")) {
    if (word === "subscribe" || word === "publish" || word === "admin") {
      if (best === undefined || RANK[word] > RANK[best]) best = word;
    }
  }
  return best;
}

function boundElsewhere(bound: string, asked: string): string {
  return `JWT is bound to broadcast ${JSON.stringify(bound)}, not ${JSON.stringify(asked)}`;
}

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "JWT expired";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "JWT signature invalid";
  if (err instanceof errors.JOSEAlgNotAllowed) return "JWT algorithm not allowed (only HS256)";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return "JWT issuer mismatch";
    if (err.claim === "aud") return "JWT audience mismatch";
    if (err.claim === "nbf") return "JWT not valid yet";
    if (err.claim === "exp") return "JWT has no valid exp claim";
    return `JWT ${err.claim} claim invalid`;
  }
  return "JWT malformed";
}
