/**
 * Static tokens: `--admin-token`, `--publish-key`, `--subscribe-token`. Each gate is open while
 * its token is unset and otherwise accepts exactly that token, compared in constant time.
 */

import { constantTimeEqual } from "./constant-time.ts";
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
import { allowPublish, publishTargetOf } from "./publish-target.ts";

/** The three static tokens; an unset (or empty) one leaves its gate open. */
export interface StaticAuthOptions {
  readonly adminToken?: string;
  readonly publishKey?: string;
  readonly subscribeToken?: string;
}

/** Static-token auth with the reference's deny reasons. */
export class StaticTokenAuth implements AuthProvider {
  readonly mode = "static" as const;
  readonly #admin: string | undefined;
  readonly #publish: string | undefined;
  readonly #subscribe: string | undefined;

  constructor(options: StaticAuthOptions) {
    this.#admin = nonEmpty(options.adminToken, "adminToken");
    this.#publish = nonEmpty(options.publishKey, "publishKey");
    this.#subscribe = nonEmpty(options.subscribeToken, "subscribeToken");
  }

  async checkPublish(request: PublishRequest): Promise<PublishDecision> {
    const target = publishTargetOf(request);
    if (this.#publish === undefined)
      return allowPublish(target.requested ?? target.fallback, { subject: "anonymous" });
    if (!matches(target.credential, this.#publish)) return { allow: false, reason: "invalid publish key" };
    // The shared key as the stream name would otherwise publish as `<app>/<key>`.
    return allowPublish(target.requested ?? target.app, { subject: "static" });
  }

  async checkSubscribe(request: SubscribeRequest): Promise<AuthDecision> {
    if (this.#subscribe === undefined) return { allow: true, subject: "anonymous" };
    if (matches(request.token, this.#subscribe)) return { allow: true, subject: "static" };
    return { allow: false, reason: "invalid or missing subscribe token" };
  }

  async checkAdmin(request: AdminRequest): Promise<AuthDecision> {
    if (this.#admin === undefined) return { allow: true, subject: "anonymous" };
    if (matches(request.token, this.#admin)) return { allow: true, subject: "static" };
    return { allow: false, reason: "invalid admin token" };
  }

  async sessionGrants(request: SessionGrantRequest): Promise<SessionGrants> {
    const readByToken = this.#subscribe !== undefined && matches(request.token, this.#subscribe);
    const publishByToken = this.#publish !== undefined && matches(request.token, this.#publish);
    const read = this.#subscribe === undefined || readByToken;
    const publish = this.#publish === undefined || publishByToken;
    if (!read && !publish) return { allow: false, status: 401, reason: "invalid or missing token" };
    return {
      allow: true,
      read: read ? [""] : [],
      publish: publish ? [""] : [],
      subject: readByToken || publishByToken ? "static" : "anonymous",
    };
  }
}

function matches(candidate: string | undefined, secret: string): boolean {
  if (candidate === undefined || candidate.length > MAX_CREDENTIAL_LENGTH) return false;
  return constantTimeEqual(candidate, secret);
}

function nonEmpty(value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (value.length > MAX_CREDENTIAL_LENGTH) {
    throw new AuthError("AUTH_INVALID_CONFIG", `${name} is longer than ${MAX_CREDENTIAL_LENGTH} characters`);
  }
  return value;
}
