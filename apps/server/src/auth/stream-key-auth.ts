/**
 * Stream keys layered over another provider. Publish checks look the credential up in the store
 * first; a live key decides by its scope, an unknown `lvqr_sk_…` token is refused (so a revoked or
 * expired key never falls through to an open gate), and anything else goes to the inner provider.
 * Subscribe and admin checks always go to the inner provider: stream keys only publish.
 */

import type {
  AdminRequest,
  AuthDecision,
  AuthMode,
  AuthProvider,
  PublishDecision,
  PublishRequest,
  SessionGrantRequest,
  SessionGrants,
  SubscribeRequest,
} from "./provider.ts";
import { allowPublish, appScopedName, publishTargetOf, scopeUnderRoot } from "./publish-target.ts";
import { STREAM_KEY_TOKEN_PREFIX, type StreamKeyLookup } from "./stream-key-store.ts";

const UNKNOWN_KEY = "unknown, revoked or expired stream key";

/** A provider that accepts the store's stream keys for publishing, on top of `inner`. */
export class StreamKeyAuth implements AuthProvider {
  readonly #keys: StreamKeyLookup;
  readonly #inner: AuthProvider;

  constructor(keys: StreamKeyLookup, inner: AuthProvider) {
    this.#keys = keys;
    this.#inner = inner;
  }

  /** The inner provider's mode: stream keys are an addition, not a mode. */
  get mode(): AuthMode {
    return this.#inner.mode;
  }

  async checkPublish(request: PublishRequest): Promise<PublishDecision> {
    const target = publishTargetOf(request);
    const credential = target.credential;
    if (credential === undefined) return this.#inner.checkPublish(request);
    const key = this.#keys.lookup(credential);
    if (key === undefined) {
      if (credential.startsWith(STREAM_KEY_TOKEN_PREFIX)) return { allow: false, reason: UNKNOWN_KEY };
      return this.#inner.checkPublish(request);
    }
    const extra = {
      subject: `stream-key:${key.id}`,
      ...(key.expires_at === null ? {} : { expiresAtMs: key.expires_at * 1000 }),
    };
    if (key.broadcast !== null) {
      if (target.requested !== undefined && target.requested !== key.broadcast) {
        return {
          allow: false,
          reason: `stream key is scoped to broadcast ${JSON.stringify(key.broadcast)}, not ${JSON.stringify(target.requested)}`,
        };
      }
      return allowPublish(key.broadcast, extra);
    }
    // An unscoped key publishes what was asked for, or (as the stream name) `<app>/<label or id>`.
    return allowPublish(
      target.requested ?? appScopedName(target.app, key.label) ?? appScopedName(target.app, key.id),
      extra,
    );
  }

  checkSubscribe(request: SubscribeRequest): Promise<AuthDecision> {
    return this.#inner.checkSubscribe(request);
  }

  checkAdmin(request: AdminRequest): Promise<AuthDecision> {
    return this.#inner.checkAdmin(request);
  }

  async sessionGrants(request: SessionGrantRequest): Promise<SessionGrants> {
    const token = request.token;
    const key = token === undefined ? undefined : this.#keys.lookup(token);
    if (key === undefined) {
      if (token?.startsWith(STREAM_KEY_TOKEN_PREFIX))
        return { allow: false, status: 401, reason: UNKNOWN_KEY };
      return this.#inner.sessionGrants(request);
    }
    let publish = "";
    if (key.broadcast !== null) {
      const scoped = scopeUnderRoot(request.root, key.broadcast);
      if (scoped === undefined) {
        return {
          allow: false,
          status: 403,
          reason: `stream key is scoped to broadcast ${JSON.stringify(key.broadcast)}, outside the session path ${JSON.stringify(request.root)}`,
        };
      }
      publish = scoped;
    }
    // Reading is whatever an anonymous session may read (the key is not a viewer credential).
    const anonymous = await this.#inner.sessionGrants({ root: request.root });
    return {
      allow: true,
      read: anonymous.allow ? anonymous.read : [],
      publish: [publish],
      subject: `stream-key:${key.id}`,
      ...(key.expires_at === null ? {} : { expiresAtMs: key.expires_at * 1000 }),
    };
  }
}
