/**
 * Builds the provider stack from the server's auth flags, as the reference does: HS256 JWT when a
 * JWT secret is given, else static tokens when any is given, else noop; then stream keys on top
 * unless they are disabled. Unlike the reference, combining JWT and static flags is an error
 * instead of silently ignoring the static tokens.
 */

import type { AuthDecision as AdminAuthDecision } from "@lvqr/admin";
import { AuthError } from "./errors.ts";
import { JwtAuth } from "./jwt-provider.ts";
import { NoopAuth } from "./noop-provider.ts";
import type { AuthProvider } from "./provider.ts";
import { StaticTokenAuth } from "./static-provider.ts";
import { StreamKeyAuth } from "./stream-key-auth.ts";
import type { StreamKeyLookup } from "./stream-key-store.ts";

/** The auth flags (`--admin-token`, ...). Empty strings count as unset, like an empty env variable. */
export interface AuthConfig {
  readonly adminToken?: string;
  readonly publishKey?: string;
  readonly subscribeToken?: string;
  readonly jwtSecret?: string;
  readonly jwtIssuer?: string;
  readonly jwtAudience?: string;
}

/**
 * The provider for `config`, with `streamKeys` (the store, or undefined for `--no-streamkeys`)
 * layered on top.
 */
export function createAuthProvider(config: AuthConfig, streamKeys?: StreamKeyLookup): AuthProvider {
  const set = (value: string | undefined): value is string => value !== undefined && value !== "";
  const staticSet = [
    ["--admin-token", config.adminToken],
    ["--publish-key", config.publishKey],
    ["--subscribe-token", config.subscribeToken],
  ].filter(([, value]) => set(value));
  let inner: AuthProvider;
  if (set(config.jwtSecret)) {
    if (staticSet.length > 0) {
      throw new AuthError(
        "AUTH_INVALID_CONFIG",
        `--jwt-secret cannot be combined with ${staticSet.map(([flag]) => flag).join(", ")}; ` +
          "issue JWTs with the admin, publish or subscribe scope instead",
      );
    }
    inner = new JwtAuth({
      secret: config.jwtSecret,
      ...(set(config.jwtIssuer) ? { issuer: config.jwtIssuer } : {}),
      ...(set(config.jwtAudience) ? { audience: config.jwtAudience } : {}),
    });
  } else {
    if (set(config.jwtIssuer) || set(config.jwtAudience)) {
      throw new AuthError("AUTH_INVALID_CONFIG", "--jwt-issuer and --jwt-audience need --jwt-secret");
    }
    inner =
      staticSet.length > 0
        ? new StaticTokenAuth({
            ...(set(config.adminToken) ? { adminToken: config.adminToken } : {}),
            ...(set(config.publishKey) ? { publishKey: config.publishKey } : {}),
            ...(set(config.subscribeToken) ? { subscribeToken: config.subscribeToken } : {}),
          })
        : new NoopAuth();
  }
  return streamKeys === undefined ? inner : new StreamKeyAuth(streamKeys, inner);
}

/** The two callbacks `adminPlugin` takes, answered by `provider`. */
export function adminAuthorizers(provider: AuthProvider): {
  authorizeAdmin(token: string): Promise<AdminAuthDecision>;
  authorizeSubscribe(token: string | undefined, broadcast: string): Promise<AdminAuthDecision>;
} {
  return {
    authorizeAdmin: (token) => provider.checkAdmin({ token }),
    authorizeSubscribe: (token, broadcast) =>
      provider.checkSubscribe({ broadcast, ...(token === undefined ? {} : { token }) }),
  };
}
