/**
 * Credentials one node presents to another when it pulls a broadcast over MoQ. There is no extra
 * cluster secret to configure: nodes of one cluster share their auth settings, so a node uses them.
 *
 * - With `--jwt-secret`, the node signs a short-lived HS256 JWT (`scope: subscribe`, bound to the
 *   one broadcast it pulls, `sub: cluster-node:<id>`, the configured `iss`/`aud`), renewed before
 *   it expires. A leaked token reads one broadcast for a few minutes.
 * - With `--subscribe-token`, the node sends that token.
 * - Otherwise the MoQ read gate is open and nothing is sent.
 */

import { SignJWT } from "jose";
import type { ServeAuthConfig } from "../config.ts";

/** Lifetime of a signed node token; the owner closes the session when it passes, and the edge reconnects. */
const NODE_JWT_LIFETIME_S = 600;
/** A cached token is reused while it has at least this long to live. */
const NODE_JWT_REUSE_MARGIN_S = 120;
/** Signed tokens kept per process (one per pulled broadcast), oldest dropped first. */
const MAX_CACHED_TOKENS = 1024;

/** Produces the `?token=` a node sends to pull `broadcast`; undefined when none is needed. */
export type PeerTokenSource = (broadcast: string) => Promise<string | undefined>;

/** The token source for these auth settings, or undefined when MoQ reads need no credential. */
export function peerTokenSource(auth: ServeAuthConfig, nodeId: string): PeerTokenSource | undefined {
  const secret = auth.jwt?.secret;
  if (secret !== undefined && secret !== "") {
    const key = new TextEncoder().encode(secret);
    const cache = new Map<string, { token: string; expiresAtS: number }>();
    return async (broadcast) => {
      const nowS = Math.floor(Date.now() / 1000);
      const cached = cache.get(broadcast);
      if (cached && cached.expiresAtS - nowS > NODE_JWT_REUSE_MARGIN_S) return cached.token;
      const expiresAtS = nowS + NODE_JWT_LIFETIME_S;
      let jwt = new SignJWT({ scope: "subscribe", broadcast })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(`cluster-node:${nodeId}`)
        .setIssuedAt(nowS)
        .setExpirationTime(expiresAtS);
      if (auth.jwt?.issuer) jwt = jwt.setIssuer(auth.jwt.issuer);
      if (auth.jwt?.audience) jwt = jwt.setAudience(auth.jwt.audience);
      const token = await jwt.sign(key);
      cache.delete(broadcast);
      cache.set(broadcast, { token, expiresAtS });
      if (cache.size > MAX_CACHED_TOKENS) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return token;
    };
  }
  const token = auth.subscribeToken;
  if (token !== undefined && token !== "") return async () => token;
  return undefined;
}
